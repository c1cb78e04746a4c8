"""/metrics: the Prometheus exposition, right across every web and worker process.

State-like numbers are read when Prometheus scrapes, from where they are kept exact:
messages by status and channel from the dispatches' counters (the numbers campaigns
show), campaigns by status and the progress of those under way from the campaigns,
queue depths from the broker. Event-like numbers (vendor latency and errors, task
runtimes) are observed in the workers (config.metrics) and, with
PROMETHEUS_MULTIPROC_DIR set, added up over every process's files.
"""

import os
from collections.abc import Iterator

import structlog
from django.db.models import Count, Sum
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from api import monitoring
from campaigns.models import Campaign
from messaging.models import Dispatch
from messaging.services.dispatches import COUNTERS

logger = structlog.get_logger(__name__)

# The dispatch counters by status: every message is counted in audience, and the
# undelivered are a part of failed.
MESSAGE_COUNTERS = tuple(
    name for name in COUNTERS if name not in ("audience", "undelivered")
)
UNDER_WAY = (Campaign.Status.RUNNING, Campaign.Status.PAUSED)


class PipelineCollector(Collector):
    """Reads the database and the broker at each scrape: a few aggregate queries
    over dispatches and campaigns, and one passive declare per queue."""

    def collect(self) -> Iterator[Metric]:
        yield self._messages()
        yield from self._campaigns()
        queues = self._queue_depths()
        if queues is not None:
            yield queues

    def _messages(self) -> Metric:
        metric = GaugeMetricFamily(
            "crm_messages",
            "Messages by status and channel: the sum of every dispatch's counters "
            "(campaigns' and automations'); sent counts every message the vendor "
            "accepted, delivered or not since.",
            labels=["status", "channel"],
        )
        rows = (
            Dispatch.objects.order_by()
            .values("channel")
            .annotate(**{name: Sum(name) for name in MESSAGE_COUNTERS})
        )
        for row in rows:
            for name in MESSAGE_COUNTERS:
                metric.add_metric([name, row["channel"]], row[name] or 0)
        return metric

    def _campaigns(self) -> Iterator[Metric]:
        by_status = GaugeMetricFamily(
            "crm_campaigns", "Campaigns by status.", labels=["status"]
        )
        counted = dict(
            Campaign.objects.order_by()
            .values("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        for status in Campaign.Status.values:
            by_status.add_metric([status], counted.get(status, 0))
        yield by_status
        progress = GaugeMetricFamily(
            "crm_campaign_progress",
            "Share of a running or paused campaign's audience in a final state.",
            labels=["campaign_id"],
        )
        under_way = Campaign.objects.filter(
            status__in=UNDER_WAY, dispatch__isnull=False
        ).values_list(
            "pk",
            "total_leads",
            "dispatch__delivered",
            "dispatch__failed",
            "dispatch__skipped",
            "dispatch__cancelled",
        )
        for pk, total_leads, *final in under_way:
            share = sum(final) / total_leads if total_leads else 0.0
            progress.add_metric([str(pk)], round(share, 4))
        yield progress

    def _queue_depths(self) -> Metric | None:
        try:
            depths = monitoring.queue_depths()
        except Exception as error:  # noqa: BLE001 (the other numbers still count)
            logger.warning("metrics_broker_unreachable", error=type(error).__name__)
            return None
        metric = GaugeMetricFamily(
            "crm_queue_depth",
            "Messages waiting in each Celery queue.",
            labels=["queue"],
        )
        for queue, depth in depths.items():
            metric.add_metric([queue], depth)
        return metric


class _ThisProcess(Collector):
    """Without a multiprocess directory, this process's own metrics."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def exposition() -> bytes:
    """The whole scrape in the Prometheus text format."""
    registry = CollectorRegistry()
    registry.register(PipelineCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    return generate_latest(registry)
