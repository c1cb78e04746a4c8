"""Structured logs: one JSON object a line (LOG_FORMAT=json) or readable console lines.

structlog renders the app's own lines and, through the same formatter, every line of
the standard library's loggers (Django's, Celery's), so each carries the ids bound
to the context (request, task, campaign, dispatch) and goes through the redaction of
personal data last, after the exception text is rendered.
"""

import logging
from typing import Any

import structlog

from config.redaction import redact_personal_data

# What every line gets, whichever logger wrote it.
_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def logging_config(*, json: bool, level: str) -> dict[str, Any]:
    """The LOGGING setting: every logger through one handler and formatter."""
    renderer = (
        structlog.processors.JSONRenderer(default=str)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": _SHARED,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    redact_personal_data,
                    renderer,
                ],
            },
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "structured"},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's defaults give these their own plain handlers and levels;
            # here they go through the root's like every other line.
            "django": {"level": "NOTSET", "propagate": True},
            "django.server": {"level": "NOTSET", "propagate": True},
            "django.db.backends": {"level": "WARNING"},
            # The task_finished line says this, with the task's ids and counts.
            "celery.app.trace": {"level": "WARNING"},
            "celery.worker.strategy": {"level": "WARNING"},
            "py.warnings": {"level": "WARNING"},
        },
    }


def configure_structlog() -> None:
    """structlog's loggers hand their lines to the standard library's formatter."""
    logging.captureWarnings(True)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
