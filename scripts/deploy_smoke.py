"""make deploy-smoke: install the wheel outside the checkout and run it as production.

The stand-in for `docker compose up` where there is no container engine. It builds
the project's wheel from a copy of the source, installs it into a new virtualenv in
a temporary directory, and from there (the working directory outside the checkout,
so nothing is imported from the source tree), with config.settings.production and
secrets of its own, runs migrate, collectstatic, gunicorn, two Celery workers on
every queue and beat against Postgres and Redis. Then it onboards an organization
with `create_organization`, drives a campaign through the REST API to completed,
signs in to the admin and fetches the campaign's page and its stylesheet, reads
/metrics (the campaign's messages by status) and asks /health/ready. Every process
is stopped and the temporary directory removed, pass or fail; a failure names its
step and shows the end of each process's log.

Only the standard library: it runs on a fresh machine with Python 3.11 and the
services, before anything else is installed.

Environment:
  SMOKE_DATABASE_URL  default postgresql://postgres@127.0.0.1:5432/crm_smoke; the
                      database (its name must contain "smoke") is made anew and
                      dropped at the end
  SMOKE_BROKER_URL    default redis://127.0.0.1:6379/13; that Redis database is
                      emptied before and after
"""

import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

from smoke_harness import Harness, StepFailed

PROJECT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "SMOKE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/crm_smoke"
)
BROKER_URL = os.environ.get("SMOKE_BROKER_URL", "redis://127.0.0.1:6379/13")
# What the image's build leaves out (.dockerignore): local state, never the code.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "var", "test-output", "build", "dist", "*.egg-info",
    "__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache", ".hypothesis",
)  # fmt: skip
LEADS = 20
OWNER = "smoke-owner"


class Smoke(Harness):
    """The steps of a deployment, run by the harness, and what is cleaned up after."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.venv = root / "venv"
        self.env = {
            # Nothing from the caller's environment but what finds programs.
            "PATH": f"{self.venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(root),
            "LANG": "C.UTF-8",
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "SIMULATOR_WEBHOOK_SECRET": secrets.token_urlsafe(32),
            "SECURE_SSL_REDIRECT": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": DATABASE_URL,
            "CELERY_BROKER_URL": BROKER_URL,
            "VAR_DIR": str(root / "var"),
            "STATIC_ROOT": str(root / "static"),
            # Retries of the simulator's failures wait a second, not half a minute.
            "MESSAGING_RETRY_BASE_SECONDS": "1",
            "LOG_FORMAT": "json",
            "METRICS_TOKEN": secrets.token_urlsafe(32),
            "PROMETHEUS_MULTIPROC_DIR": str(root / "metrics"),
        }

    def python(self, code: str) -> str:
        return self.run(str(self.venv / "bin" / "python"), "-c", code)

    # --- the steps ------------------------------------------------------------------

    def build_wheel(self) -> Path:
        source = self.root / "source"
        shutil.copytree(PROJECT, source, ignore=NOT_SOURCE)
        dist = self.root / "dist"
        self.run(
            sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
            "--wheel-dir", str(dist), str(source), cwd=self.root, timeout=600,
        )  # fmt: skip
        (wheel,) = dist.glob("*.whl")
        return wheel

    def install(self, wheel: Path) -> None:
        self.run(sys.executable, "-m", "venv", str(self.venv), cwd=self.root)
        self.run(
            str(self.venv / "bin" / "pip"), "install", "--quiet", str(wheel),
            cwd=self.root, timeout=900,
        )  # fmt: skip

    def check_installed_code_runs(self) -> None:
        where = self.python(
            "import api, automations, campaigns, config, crm, messaging, vendors;"
            "print('\\n'.join(m.__file__ for m in "
            "(api, automations, campaigns, config, crm, messaging, vendors)))"
        )
        outside = [
            path for path in where.split() if not path.startswith(str(self.venv))
        ]
        if outside:
            raise StepFailed(f"imported from outside the virtualenv: {outside}")

    def fresh_database_and_broker(self) -> None:
        name = urllib.parse.urlparse(DATABASE_URL).path.lstrip("/")
        if "smoke" not in name:
            raise StepFailed(f"refusing to drop {name!r}: its name lacks 'smoke'")
        self.python(
            "import psycopg, sys;"
            f"url = {DATABASE_URL!r}.rsplit('/', 1)[0] + '/postgres';"
            "c = psycopg.connect(url, autocommit=True);"
            f"c.execute('DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)');"
            f"c.execute('CREATE DATABASE \"{name}\"')"
        )
        self.flush_broker()

    def flush_broker(self) -> None:
        self.python(f"import redis; redis.Redis.from_url({BROKER_URL!r}).flushdb()")

    def drop_database(self) -> None:
        name = urllib.parse.urlparse(DATABASE_URL).path.lstrip("/")
        self.python(
            "import psycopg;"
            f"url = {DATABASE_URL!r}.rsplit('/', 1)[0] + '/postgres';"
            "c = psycopg.connect(url, autocommit=True);"
            f"c.execute('DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)')"
        )

    def start_processes(self) -> None:
        bin_dir = self.venv / "bin"
        queues = self.python(
            "from config.queues import ALL_QUEUES; print(ALL_QUEUES)"
        ).strip()
        self.start(
            "gunicorn", str(bin_dir / "gunicorn"), "config.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}", "--workers", "2",
            "--access-logfile", "-",
        )  # fmt: skip
        for index in (1, 2):
            self.start(
                f"worker{index}", str(bin_dir / "celery"), "--app=config", "worker",
                f"--hostname=smoke{index}@%h", f"--queues={queues}",
                "--concurrency=1", "--loglevel=INFO",
            )  # fmt: skip
        self.start("beat", str(bin_dir / "celery"), "--app=config", "beat")
        self.wait_for(
            "/health/live answering 200",
            lambda: self.http("GET", "/health/live")[0] == 200,
            timeout=60,
        )

    def workers_answer(self) -> None:
        def both_answer() -> bool:
            completed = subprocess.run(
                [str(self.venv / "bin" / "celery"), "--app=config", "inspect",
                 "ping", "--timeout=2"],
                cwd=self.run_dir, env=self.env, capture_output=True, text=True,
                timeout=60,
            )  # fmt: skip
            return all(f"smoke{i}@" in completed.stdout for i in (1, 2))

        self.wait_for("both workers answering a ping", both_answer, timeout=90)

    def create_organization(self) -> str:
        password_file = self.root / "owner-password"
        self.owner_password = secrets.token_urlsafe(16)
        password_file.write_text(self.owner_password + "\n")
        out = self.run(
            str(self.venv / "bin" / "django-admin"), "create_organization",
            "Smoke Test Co", "--owner", OWNER, "--email", "owner@example.com",
            "--password-file", str(password_file),
        )  # fmt: skip
        found = re.search(r"^API token: (\w+)$", out, flags=re.MULTILINE)
        if not found:
            raise StepFailed(f"no API token in the command's output:\n{out}")
        return found.group(1)

    def run_campaign(self, token: str) -> int:
        auth = {"Authorization": f"Token {token}"}
        for n in range(LEADS):
            lead = {"name": f"Smoke {n}", "phones": [f"+1202555{n:04d}"], "visits": n}
            self.api("POST", "/api/leads", lead, auth, expect=201)
        segment = self.api(
            "POST",
            "/api/segments",
            {"name": "Everyone", "rules": {"field": "visits", "op": "gte", "value": 0}},
            auth,
            expect=201,
        )
        campaign = self.api(
            "POST",
            "/api/campaigns",
            {
                "name": "Smoke campaign",
                "channel": "sms",
                "template": "Hi {{name}}, thanks for {{visits}} visits.",
                "segment": segment["id"],
            },
            auth,
            expect=201,
        )
        url = f"/api/campaigns/{campaign['id']}"
        self.api("POST", f"{url}/launch", None, auth, expect=202)
        self.wait_for(
            f"campaign {campaign['id']} completed",
            lambda: self.api("GET", url, None, auth)["status"] == "completed",
            timeout=240,
        )
        stats = self.api("GET", f"{url}/stats", None, auth)
        final = sum(
            stats[key] for key in ("delivered", "failed", "skipped", "cancelled")
        )
        if (stats["audience"], final) != (LEADS, LEADS):
            raise StepFailed(f"{LEADS} leads, but the campaign's stats say {stats}")
        return campaign["id"]

    def admin_page_and_stylesheet(self, campaign_id: int) -> None:
        cookies: dict[str, str] = {}
        status, _, body = self.http("GET", "/admin/login/", cookies=cookies)
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body)
        if status != 200 or not found:
            raise StepFailed(f"the admin's sign-in page answered {status}")
        page = f"/admin/campaigns/campaign/{campaign_id}/change/"
        form = urllib.parse.urlencode(
            {
                "csrfmiddlewaretoken": found.group(1),
                "username": OWNER,
                "password": self.owner_password,
                "next": page,
            }
        )
        status, headers, _ = self.http(
            "POST",
            "/admin/login/",
            form,
            {"Content-Type": "application/x-www-form-urlencoded"},
            cookies=cookies,
        )
        if status != 302 or headers.get("Location") != page:
            raise StepFailed(f"signing in answered {status}, not a redirect to {page}")
        status, _, body = self.http("GET", page, cookies=cookies)
        if status != 200 or 'id="campaign-dashboard"' not in body:
            raise StepFailed(f"{page} answered {status} without the campaign dashboard")
        stylesheet = re.search(
            r'href="(/static/campaigns/admin/campaign\.[0-9a-f]{12}\.css)"', body
        )
        if not stylesheet:
            raise StepFailed(f"{page} links no content-hashed campaign stylesheet")
        status, headers, _ = self.http("GET", stylesheet.group(1))
        content_type = headers.get("Content-Type", "")
        if status != 200 or not content_type.startswith("text/css"):
            raise StepFailed(
                f"{stylesheet.group(1)} answered {status} {content_type or '-'}"
            )

    def metrics(self, campaign_id: int, token: str) -> None:
        """/metrics counts the campaign's messages by status as its stats do."""
        stats = self.api("GET", f"/api/campaigns/{campaign_id}/stats", None, token)
        bearer = {"Authorization": f"Bearer {self.env['METRICS_TOKEN']}"}
        status, headers, body = self.http("GET", "/metrics", headers=bearer)
        if status != 200 or not headers.get("Content-Type", "").startswith(
            "text/plain"
        ):
            raise StepFailed(f"/metrics answered {status}")
        for name in ("delivered", "failed", "skipped"):
            line = f'crm_messages{{channel="sms",status="{name}"}} {stats[name]:.1f}'
            if line not in body.splitlines():
                raise StepFailed(f"/metrics lacks {line!r} (the campaign's stats)")
        if "crm_task_runtime_seconds_count" not in body:
            raise StepFailed("/metrics has no task runtimes from the workers")

    def ready(self) -> None:
        status, _, body = self.http("GET", "/health/ready")
        if status != 200:
            raise StepFailed(f"/health/ready answered {status}: {body}")


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="crm-deploy-smoke-"))
    smoke = Smoke(root)
    for directory in (smoke.run_dir, smoke.logs, root / "metrics"):
        directory.mkdir()
    services_touched = False
    try:
        wheel = smoke.step("build the wheel", smoke.build_wheel)
        smoke.step("install it into a new virtualenv", lambda: smoke.install(wheel))
        smoke.step("the installed code runs", smoke.check_installed_code_runs)
        services_touched = True
        smoke.step("a new database and broker", smoke.fresh_database_and_broker)
        admin = str(smoke.venv / "bin" / "django-admin")
        smoke.step("migrate", lambda: smoke.run(admin, "migrate", "--noinput"))
        smoke.step(
            "collectstatic", lambda: smoke.run(admin, "collectstatic", "--noinput")
        )
        smoke.step("start gunicorn, two workers and beat", smoke.start_processes)
        smoke.step("the workers answer", smoke.workers_answer)
        token = smoke.step("create_organization", smoke.create_organization)
        campaign_id = smoke.step(
            "a campaign through the API", lambda: smoke.run_campaign(token)
        )
        smoke.step(
            "the admin page and its stylesheet",
            lambda: smoke.admin_page_and_stylesheet(campaign_id),
        )
        smoke.step(
            "/metrics",
            lambda: smoke.metrics(campaign_id, {"Authorization": f"Token {token}"}),
        )
        smoke.step("/health/ready", smoke.ready)
        smoke.step("every process still running", smoke.check_alive)
    except StepFailed as error:
        print(f"deploy-smoke FAILED: {error}", file=sys.stderr)
        smoke.stop()
        smoke.show_logs()
        failed = 1
    except KeyboardInterrupt:
        smoke.stop()
        failed = 1
    else:
        smoke.stop()
        failed = 0
    finally:
        # Each on its own: a broker that is down leaves the database to drop.
        for clean_up in (smoke.flush_broker, smoke.drop_database):
            try:
                if services_touched:
                    clean_up()
            except (StepFailed, subprocess.SubprocessError) as error:
                print(f"deploy-smoke: cleaning up: {error}", file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)
    print(f"deploy-smoke: {smoke.passed} passed, {failed} failed")
    return failed


if __name__ == "__main__":
    sys.exit(main())
