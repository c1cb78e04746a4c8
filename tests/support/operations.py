"""What operators watch, as tests set it up and read it: beat's last run, metrics."""

from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from prometheus_client.parser import text_string_to_metric_families


def beat_ran(seconds_ago: float) -> None:
    """Record a beat schedule that last ran `seconds_ago`, as health reads it."""
    every, _ = IntervalSchedule.objects.get_or_create(every=10, period="seconds")
    PeriodicTask.objects.update_or_create(
        name="api test tick",
        defaults={
            "task": "messaging.send_due",
            "interval": every,
            "last_run_at": timezone.now() - timezone.timedelta(seconds=seconds_ago),
        },
    )


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """{(sample name, its labels): value} of a scrape."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
