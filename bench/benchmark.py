"""The benchmark: one campaign to N leads through real workers, against the floor.

It seeds N leads (kept for the next run), times segment previews over them, runs
`shared/bench/floor.py` on the same database for the least work any pipeline must
do, then launches an SMS campaign to all N leads with K worker processes and the
simulator at 90% success with no latency, and times it from launch until every
message is final and the counters reconcile. Last, it times a CSV import of new
leads and the same file again. Each timed step starts after a CHECKPOINT.
"""

import json
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection, transaction

from bench.crm_figures import database_checkpoint, import_figures, preview_seconds
from bench.measure import (
    CpuMeter,
    database_backends,
    probe_counts,
    probe_reset,
    worker_peak_rss_mb,
)
from bench.probe import PROBE_URL_ENV, PROFILE_DIR_ENV
from bench.rules import (
    NO_RULES,
    RunRules,
    capped_count,
    deferred_count,
    history_drop,
    rest_final,
    rules_set_up,
)
from bench.runner import campaign_follow, workers_start
from campaigns.models import Campaign
from campaigns.services.lifecycle import campaign_create, campaign_launch
from config.celery import app as celery_app
from crm.models import Channel, Lead, Organization, Segment
from crm.services.demo_data import demo_leads_create
from crm.services.segments import segment_create
from messaging.models import CommunicationLog, DeliveryReceipt, Dispatch
from messaging.services.dispatches import Reconciliation, dispatch_reconcile
from vendors.simulator_store import store_from_settings

# The team's shared floor, else the project's copy of it (a clone without ../shared).
SHARED_FLOOR_SCRIPT = Path(settings.BASE_DIR).parent / "shared" / "bench" / "floor.py"
FLOOR_SCRIPT = (
    SHARED_FLOOR_SCRIPT
    if SHARED_FLOOR_SCRIPT.exists()
    else Path(settings.BASE_DIR) / "bench" / "floor.py"
)
TEMPLATE = (
    "Hi {{name}}, you have spent ${{total_spend}} and visited {{visits}} times. "
    "Get 10% off!"
)
# What the issue fixes for the run: 90% accepted, no added latency, receipts
# included. Retries wait a fifth of a second, not the production half minute: the
# benchmark measures the pipeline's work, not the backoff policy, whose waits
# (up to 3 s with a 1 s base) would be most of the run's tail.
WORKER_SETTINGS = {
    # As production runs them: with DEBUG on (the base settings' default) Django
    # times, formats and keeps every query in every worker.
    "DEBUG": "false",
    "SIMULATOR_SUCCESS_RATE": "0.9",
    "SIMULATOR_LATENCY_MS": "0",
    "SIMULATOR_RECEIPT_DELAY_MS": "0",
    "MESSAGING_RETRY_BASE_SECONDS": "0.2",
}
# How often the run reads its campaign: the end is seen this late at most. At the
# follow loop's default 0.2 s, 0.1 s on average, over 1% of a 7 s run.
FOLLOW_EVERY_SECONDS = 0.05
STAGES = ("launched", "chunked", "expanded", "sent", "final", "reconciled")


class BenchmarkError(Exception):
    """The benchmark cannot run here (say, on SQLite or the in-memory broker)."""


@dataclass
class _Stages:
    """When each stage ended, in seconds since launch, as the follow loop saw it."""

    started: float
    at: dict[str, float] = field(default_factory=dict)

    def mark(self, name: str) -> None:
        self.at.setdefault(name, round(time.monotonic() - self.started, 3))

    def watch(self, campaign: Campaign) -> None:
        dispatch = campaign.dispatch
        if campaign.chunking_done:
            self.mark("chunked")
        expected = dispatch.expected_audience
        if expected is not None and dispatch.audience >= expected:
            self.mark("expanded")
        if dispatch.all_sent:
            self.mark("sent")


def bench_check() -> None:
    """Refuse to run where the figures would mean nothing."""
    if connection.vendor != "postgresql":
        raise BenchmarkError(
            "the benchmark runs on PostgreSQL: set DATABASE_URL=postgresql://..."
        )
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        raise BenchmarkError(
            "the benchmark runs real workers on Redis: set CELERY_BROKER_URL=redis://..."
        )
    if not FLOOR_SCRIPT.exists():
        raise BenchmarkError(f"the floor script is missing: {FLOOR_SCRIPT}")


def database_url() -> str:
    """The DSN of the database this process uses, for the floor and the workers."""
    db = connection.settings_dict
    return "postgresql://" + (
        f"{db['USER']}{':' + db['PASSWORD'] if db['PASSWORD'] else ''}"
        f"@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
    )


def bench_leads_ensure(*, leads: int) -> tuple[Organization, float]:
    """The bench organization with exactly `leads` leads; seeds what is missing.

    One organization per size, so a run at one size never disturbs another's leads.
    """
    started = time.monotonic()
    organization, _ = Organization.objects.get_or_create(
        slug=f"bench-{leads}", defaults={"name": f"Bench {leads:,}"}
    )
    existing = Lead.objects.filter(organization=organization).count()
    if existing < leads:
        with transaction.atomic():
            demo_leads_create(
                organization=organization, count=leads - existing, seed=existing
            )
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Lead._meta.db_table}")
    elif existing > leads:
        raise BenchmarkError(
            f"organization {organization.slug} has {existing} leads, not {leads}"
        )
    return organization, time.monotonic() - started


def floor_run(*, leads: int, dsn: str) -> dict:
    """Run the floor script on the same database; its JSON line."""
    done = subprocess.run(
        [sys.executable, str(FLOOR_SCRIPT), str(leads), "--dsn", dsn],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchmarkError(f"floor.py failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def campaign_data_drop(*, campaign_id: int) -> None:
    """Delete a bench campaign with its chunks, logs and receipts.

    Keeps the tables at the size of one run, so runs stay comparable.
    """
    campaign = Campaign.objects.get(pk=campaign_id)
    logs = CommunicationLog._meta.db_table
    receipts = DeliveryReceipt._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {receipts} r USING {logs} l"
            f" WHERE r.log_id = l.id AND l.dispatch_id = %s",
            [campaign.dispatch_id],
        )
        cursor.execute(
            f"DELETE FROM {logs} WHERE dispatch_id = %s", [campaign.dispatch_id]
        )
        campaign.delete()
        Dispatch.objects.filter(pk=campaign.dispatch_id).delete()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {logs}")
        cursor.execute(f"VACUUM ANALYZE {receipts}")


def bench_run(
    *,
    leads: int,
    workers: int = 2,
    concurrency: int = 1,
    timeout: float = 3600,
    keep: bool = False,
    profile_dir: str = "",
    import_rows: int = 100_000,
    rules: RunRules = NO_RULES,
    say=print,
) -> dict:
    """Run the benchmark once; the figures, as the JSON line prints them.

    With `rules` on, a share of the leads is deferred by quiet hours and a share
    capped (bench.rules); the run ends when the rest are final.
    """
    bench_check()
    dsn = database_url()
    organization, previews, floor = _before_the_run(leads=leads, dsn=dsn, say=say)
    rules_setup = rules_set_up(organization=organization, rules=rules)
    if rules.on:
        say(f"Sending rules: {rules}, {rules_setup}")
    campaign = _bench_campaign(organization=organization, leads=leads)
    probe_url = settings.CELERY_BROKER_URL
    client = redis.Redis.from_url(probe_url)
    celery_app.control.purge()
    store_from_settings().reset()
    probe_reset(client)
    env = _worker_env(dsn=dsn, probe_url=probe_url, profile_dir=profile_dir)
    settings.MESSAGING_RETRY_BASE_SECONDS = float(
        WORKER_SETTINGS["MESSAGING_RETRY_BASE_SECONDS"]
    )
    logfile = Path(settings.VAR_DIR) / "bench-workers.log"
    with ExitStack() as stack:
        processes = workers_start(
            stack=stack,
            count=workers,
            env=env,
            logfile=str(logfile),
            concurrency=concurrency,
            say=say,
        )
        run = _campaign_run(
            campaign_id=campaign.pk,
            processes=processes,
            timeout=timeout,
            deferring=rules.quiet_hours,
        )
        peaks = worker_peak_rss_mb(processes, client)
        # Where the CPU went: the workers' Python, and the database serving them.
        run.workers_cpu.read(process.pid for process in processes)
        run.database_cpu.read(database_backends())
        probe = probe_counts(client)
    if run.reconciliation.differences:
        raise BenchmarkError(f"counters differ: {run.reconciliation.differences}")
    figures = _figures(
        leads=leads, workers=workers, concurrency=concurrency, floor=floor, run=run
    )
    figures.update(_probe_figures(leads=leads, peaks=peaks, probe=probe))
    figures.update(_rules_figures(rules=rules, run=run))
    figures["rules_setup"] = rules_setup
    if not keep:
        campaign_data_drop(campaign_id=campaign.pk)
        history_drop(organization=organization)
    figures.update(preview_seconds=previews, max_preview_seconds=max(previews.values()))
    if import_rows:
        say(f"Importing {import_rows:,} CSV rows, twice")
        figures["import"] = asdict(
            import_figures(rows=import_rows, directory=Path(settings.VAR_DIR))
        )
    return figures


def _worker_env(*, dsn: str, probe_url: str, profile_dir: str) -> dict:
    """The environment of the workers the benchmark starts."""
    env = {
        **WORKER_SETTINGS,
        "DATABASE_URL": dsn,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE,
        PROBE_URL_ENV: probe_url,
    }
    if profile_dir:
        env[PROFILE_DIR_ENV] = profile_dir
    return env


def _before_the_run(
    *, leads: int, dsn: str, say
) -> tuple[Organization, dict[str, float], dict]:
    """The leads seeded, the previews timed over them, the floor run beside them."""
    organization, seed_seconds = bench_leads_ensure(leads=leads)
    say(f"Leads: {leads:,} in organization {organization.slug} ({seed_seconds:.1f} s)")
    previews = preview_seconds(organization=organization)
    say(f"Segment previews: {len(previews)} rules, at most {max(previews.values())} s")
    if not database_checkpoint():
        say(
            "No CHECKPOINT before each timed step (it needs superuser or "
            "pg_checkpoint): one step may pay for the write-back of the one before"
        )
    floor = floor_run(leads=leads, dsn=dsn)
    say(
        f"Floor: {floor['seconds']:.2f} s ({floor['leads_per_s']:,} leads/s) "
        f"by {FLOOR_SCRIPT}"
    )
    return organization, previews, floor


def _bench_campaign(*, organization: Organization, leads: int) -> Campaign:
    """A new SMS campaign to every one of the organization's leads."""
    segment = Segment.objects.filter(
        organization=organization, name="Bench audience"
    ).first() or segment_create(
        organization=organization,
        name="Bench audience",
        rules={"field": "visits", "op": "gte", "value": 0},
    )
    return campaign_create(
        organization=organization,
        name=f"Bench {leads} {time.strftime('%Y-%m-%d %H:%M:%S')}",
        channel=Channel.SMS,
        segment=segment,
        template=TEMPLATE,
    )


@dataclass
class _Run:
    """One timed campaign: its stages, its launch, its reconciliation, its CPU."""

    stages: _Stages
    launch_seconds: float
    reconciliation: Reconciliation
    workers_cpu: CpuMeter
    database_cpu: CpuMeter


def _campaign_run(
    *, campaign_id: int, processes: list, timeout: float, deferring: bool = False
) -> _Run:
    """Launch the campaign and follow it until it is final and reconciled (when
    `deferring`, all but its deferred messages), timing each stage and sampling CPU
    as it goes."""
    database_checkpoint()
    stages = _Stages(started=time.monotonic())
    launch = campaign_launch(campaign_id=campaign_id)
    stages.mark("launched")
    launch_seconds = stages.at["launched"]
    workers_cpu, database_cpu = CpuMeter(), CpuMeter()

    def tick(current: Campaign) -> None:
        stages.watch(current)
        if time.monotonic() >= workers_cpu.next_at:
            workers_cpu.next_at = time.monotonic() + CpuMeter.EVERY_SECONDS
            workers_cpu.read(process.pid for process in processes)
            database_cpu.read(database_backends())

    campaign_follow(
        campaign_id=campaign_id,
        timeout=timeout,
        on_tick=tick,
        poll_every=FOLLOW_EVERY_SECONDS,
        until=rest_final if deferring else None,
    )
    stages.mark("final")
    reconciliation = dispatch_reconcile(
        dispatch_id=launch.campaign.dispatch_id, repair=False
    )
    stages.mark("reconciled")
    return _Run(stages, launch_seconds, reconciliation, workers_cpu, database_cpu)


def _figures(
    *, leads: int, workers: int, concurrency: int, floor: dict, run: _Run
) -> dict:
    """The run's time against the floor, its stages, CPU and final counts."""
    seconds = run.stages.at["reconciled"]
    counted = run.reconciliation.counted
    return {
        "leads": leads,
        "workers": workers,
        "concurrency": concurrency,
        "seconds": seconds,
        "leads_per_s": round(leads / seconds),
        "floor_seconds": floor["seconds"],
        "ratio_to_floor": round(seconds / floor["seconds"], 2),
        "launch_seconds": run.launch_seconds,
        "stages": {name: run.stages.at.get(name) for name in STAGES},
        "worker_cpu_seconds": run.workers_cpu.total(),
        "database_cpu_seconds": run.database_cpu.total(),
        "audience": counted["audience"],
        "sent": counted["sent"],
        "delivered": counted["delivered"],
        "failed": counted["failed"],
        "skipped": counted["skipped"],
        "reconciled": not run.reconciliation.differences,
    }


def _rules_figures(*, rules: RunRules, run: _Run) -> dict:
    """How many messages the rules deferred and capped; the deferred ones checked to
    be all that is left pending, each due later."""
    # The campaign as created, before its launch made its dispatch.
    dispatch_id = run.reconciliation.dispatch_id
    deferred = deferred_count(dispatch_id=dispatch_id)
    if deferred != run.reconciliation.counted["pending"]:
        raise BenchmarkError(
            f"{run.reconciliation.counted['pending']} pending at the end, "
            f"{deferred} of them deferred"
        )
    return {
        "quiet_hours": rules.quiet_hours,
        "frequency_cap": rules.frequency_cap,
        "deferred": deferred,
        "capped": capped_count(dispatch_id=dispatch_id),
    }


def _probe_figures(*, leads: int, peaks: list[float], probe: dict) -> dict:
    """The workers' tasks, statements and memory, as the probe counted them."""
    return {
        "tasks": probe["tasks"],
        "sql_per_1000_leads": round(probe["statements"] * 1000 / leads, 1),
        "worker_peak_rss_mb": peaks,
        "max_worker_rss_mb": max(peaks, default=0.0),
        "tasks_by_name": probe["tasks_by_name"],
        "sql_by_task": probe["statements_by_name"],
        "task_seconds_by_name": probe["task_seconds_by_name"],
        "task_cpu_seconds_by_name": probe["task_cpu_seconds_by_name"],
    }
