"""Phone numbers as a card office records them (issue 13: the admin accepted ``x``): a mainland
mobile number (11 digits from 1[3-9]), or a landline with its area code (``010-12345678``,
``0755 1234567``), optionally with an extension (``-123``) — the one check every path runs."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

_MOBILE = re.compile(r"^(?:\+?86[- ]?)?1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}[- ]?\d{7,8}(?:-\d{1,6})?$")


def problem(value: str) -> str | None:
    if _MOBILE.match(value) or _LANDLINE.match(value):
        return None
    return _("手机号应为11位手机号码，或带区号的固定电话（如 010-12345678）")


def validate(value: str) -> None:
    reason = problem(value) if value else None
    if reason:
        raise ValidationError(reason, code="phone")
