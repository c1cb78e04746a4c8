"""The API app; its ready() connects the workers' task counters and heartbeat."""

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API"

    def ready(self) -> None:
        from api import monitoring

        monitoring.connect_signals()
