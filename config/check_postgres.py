"""Exit non-zero, saying how to start it, when Postgres at DATABASE_URL is down."""

import os
import sys

import psycopg

START_HINT = (
    "Start it with:\n"
    "  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"
    "or point DATABASE_URL at a reachable PostgreSQL (postgresql://user@host:port/db)."
)


def main() -> int:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        print(f"The tests need PostgreSQL; DATABASE_URL is {url!r}.", file=sys.stderr)
        return 2
    # The test runner creates its own test database; the server is what must answer.
    server_url = url.rsplit("/", 1)[0] + "/postgres"
    try:
        psycopg.connect(server_url, connect_timeout=5).close()
    except psycopg.OperationalError as error:
        print(f"PostgreSQL is not reachable at {server_url}: {error}", file=sys.stderr)
        print(START_HINT, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
