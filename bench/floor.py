#!/usr/bin/env python3
# A copy of the team's ../shared/bench/floor.py, for a clone that has no ../shared beside it
# (CI elsewhere, a user's machine). bench/benchmark.py prefers the shared one.
"""The database floor of a campaign: the least Postgres work that sending to N leads needs.

It does, with raw SQL from one connection and the fastest plain methods, what any campaign
pipeline must do at the least: read the leads, write one personalized log row per lead
(COPY into a staging table, then INSERT ... ON CONFLICT), mark every row sent with a vendor
reference, write one receipt per row and mark every row delivered. No broker, no vendor,
no retries. A pipeline's end-to-end time divided by this time is its overhead ratio.

Usage: floor.py [N] [--dsn postgresql://...]   (DSN defaults to $DATABASE_URL)
Prints one JSON line: {"leads": N, "seconds": ..., "leads_per_s": ...}
It works in its own schema `floor_bench`, dropped at the end.
"""
import argparse
import json
import os
import random
import time

import psycopg

BATCH = 1000
TEMPLATE = "Hi {name}, you have spent ${spend} and visited {visits} times. Get 10% off!"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=100_000)
    ap.add_argument("--dsn", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = ap.parse_args()
    n = args.n

    with psycopg.connect(args.dsn, autocommit=True) as conn:
        c = conn.cursor()
        c.execute("DROP SCHEMA IF EXISTS floor_bench CASCADE; CREATE SCHEMA floor_bench; SET search_path TO floor_bench")
        c.execute(
            "CREATE TABLE leads (id bigserial primary key, name text, phone text, email text,"
            " total_spend numeric, visits int);"
            "CREATE TABLE logs (id bigserial primary key, campaign_id bigint, lead_id bigint, message text,"
            " status text, attempts int default 0, vendor_ref text, created_at timestamptz default now(),"
            " updated_at timestamptz default now(), unique (campaign_id, lead_id));"
            "CREATE TABLE receipts (id bigserial primary key, log_id bigint, vendor_ref text, status text,"
            " received_at timestamptz default now());"
        )
        rnd = random.Random(7)
        with c.copy("COPY leads (name, phone, email, total_spend, visits) FROM STDIN") as cp:
            for i in range(n):
                cp.write_row((f"Lead {i}", f"+1555{i:07d}", f"lead{i}@example.com", rnd.randint(0, 10_000), rnd.randint(0, 50)))
        c.execute("ANALYZE leads")

        t0 = time.perf_counter()
        ids = [r[0] for r in c.execute("SELECT id FROM leads ORDER BY id")]
        c.execute(
            "CREATE TEMP TABLE stage (campaign_id bigint, lead_id bigint, message text, status text)"
        )
        for s in range(0, n, BATCH):
            rows = c.execute(
                "SELECT id, name, total_spend, visits FROM leads WHERE id = ANY(%s)", (ids[s:s + BATCH],)
            ).fetchall()
            with conn.transaction():
                with c.copy("COPY stage FROM STDIN") as cp:
                    for lead_id, name, spend, visits in rows:
                        cp.write_row((1, lead_id, TEMPLATE.format(name=name, spend=spend, visits=visits), "PENDING"))
                c.execute(
                    "INSERT INTO logs (campaign_id, lead_id, message, status) SELECT * FROM stage"
                    " ON CONFLICT (campaign_id, lead_id) DO NOTHING; TRUNCATE stage"
                )
        log_ids = [r[0] for r in c.execute("SELECT id FROM logs WHERE campaign_id = 1 ORDER BY id")]
        for s in range(0, n, BATCH):
            chunk = log_ids[s:s + BATCH]
            c.execute(
                "UPDATE logs SET status = 'SENT', attempts = attempts + 1, vendor_ref = v.ref, updated_at = now()"
                " FROM unnest(%s::bigint[], %s::text[]) AS v(id, ref) WHERE logs.id = v.id",
                (chunk, [f"SM{x:012d}" for x in chunk]),
            )
        for s in range(0, n, BATCH):
            chunk = log_ids[s:s + BATCH]
            with conn.transaction():
                with c.copy("COPY receipts (log_id, vendor_ref, status) FROM STDIN") as cp:
                    for x in chunk:
                        cp.write_row((x, f"SM{x:012d}", "DELIVERED"))
                c.execute(
                    "UPDATE logs SET status = 'DELIVERED', updated_at = now()"
                    " FROM unnest(%s::bigint[]) AS v(id) WHERE logs.id = v.id",
                    (chunk,),
                )
        c.execute("SELECT status, count(*) FROM logs WHERE campaign_id = 1 GROUP BY status").fetchall()
        seconds = time.perf_counter() - t0
        c.execute("DROP SCHEMA floor_bench CASCADE")

    print(json.dumps({"leads": n, "seconds": round(seconds, 3), "leads_per_s": round(n / seconds)}))


if __name__ == "__main__":
    main()
