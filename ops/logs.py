"""Log lines for people and for a log collector (issue 16, Build 5).

``LOG_FORMAT=plain`` (the default) writes one human line per record; ``LOG_FORMAT=json`` writes one
JSON object per line (python-json-logger) with the time, level, logger, message and every field
the call passed in ``extra``. A notable event names itself with ``extra={"event": "…"}`` (an
audited action, an alert raised, a dead-lettered entry, a partition changing owner, a refused
scrape of ``/metrics``), so a collector can select on it without parsing the message.

Whatever is being worked on is carried in context variables and added to every record by
:class:`ContextFilter`: the web request's id (``X-Request-ID``, set by
``ops.middleware.RequestIdMiddleware``) and, on the event path, the reader event's id. A line
logged after the commit (``transaction.on_commit``) still carries the request that caused it.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

FORMATS = ("plain", "json")
request_id: ContextVar[str | None] = ContextVar("campuscard_request_id", default=None)
event_id: ContextVar[str | None] = ContextVar("campuscard_event_id", default=None)


class ContextFilter(logging.Filter):
    """Adds ``request_id`` / ``event_id`` of the work in hand to each record (unless the call
    named its own); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in (("request_id", request_id), ("event_id", event_id)):
            value = var.get()
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        return True


def config(*, fmt: str, level: str) -> dict[str, Any]:
    """Django's ``LOGGING`` for ``LOG_FORMAT`` = ``fmt`` (one of :data:`FORMATS`)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "ops.logs.ContextFilter"}},
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(levelname)s %(name)s %(message)s",
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": "time",  # ISO 8601, UTC
                "json_ensure_ascii": False,  # Chinese names of places stay readable
            },
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": fmt, "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
    }
