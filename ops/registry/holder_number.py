"""Student and staff numbers (学号/工号) as HR and Academic Affairs issue them (issue 20, item 3:
the list import took ``+1+1`` and ``@SUM(1+1)``, which then sat in every export as a formula).
A number is letters and digits, with ``-`` or ``_`` inside, at most 32 characters — the one
check the list import and the admin's form run."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

MAX_LENGTH = 32  # Cardholder.number
_NUMBER = re.compile(r"^[0-9A-Za-z](?:[0-9A-Za-z_-]{0,30}[0-9A-Za-z])?$")


def problem(value: str) -> str | None:
    """Why ``value`` is not a student/staff number, or None."""
    if _NUMBER.match(value):
        return None
    return _("学号/工号只能由字母和数字组成（中间可有 - 或 _），不超过 %(max)d 位") % {"max": MAX_LENGTH}


def validate(value: str) -> None:
    reason = problem(value) if value else None
    if reason:
        raise ValidationError(reason, code="holder_number")
