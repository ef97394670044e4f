"""Typed environment readers that fail loudly.

A mistyped setting must stop the process at start-up with a message naming the variable,
never fall back silently (house style: healthchecks ``hc/settings.py``). Any variable may
instead be given as ``<NAME>_FILE`` pointing at a file that holds the value (Docker secrets).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import overload

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@overload
def envstr(name: str, default: str) -> str: ...
@overload
def envstr(name: str, default: None = None) -> str | None: ...
def envstr(name: str, default: str | None = None) -> str | None:
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_name!r} cannot be read: {exc}") from exc
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    raw = envstr(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no)")


def envint(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = envstr(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def envlist(name: str, default: list[str]) -> list[str]:
    raw = envstr(name)
    if raw is None:
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


def parse_clock(name: str, raw: str | None) -> dt.time | None:
    """A local time of day ``HH:MM`` for a daily job (``BACKUP_AT=02:30``); empty turns it off."""
    if raw is None or not raw.strip():
        return None
    try:
        hours, minutes = (int(part) for part in raw.strip().split(":"))
        return dt.time(hours, minutes)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a time of day HH:MM (or empty: off)") from None
