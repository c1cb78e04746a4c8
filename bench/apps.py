"""The harness's app config: installed so that its management commands are found."""

from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "bench"
    verbose_name = "Demo and benchmark harness"
