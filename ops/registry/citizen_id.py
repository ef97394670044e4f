"""Citizen ID numbers (GB 11643-1999): 6-digit region, 8-digit birth date, 3-digit sequence and
an ISO 7064 MOD 11-2 check character."""

from __future__ import annotations

import datetime as dt
from datetime import date

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def check_char(first17: str) -> str:
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def make(region: str, birth: date, sequence: int) -> str:
    body = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return body + check_char(body)


def is_valid(value: str) -> bool:
    if len(value) != 18 or not value[:17].isdigit():
        return False
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return value[17].upper() == check_char(value[:17])


def problem(value: str, today: date | None = None) -> str | None:
    """Why ``value`` is not a valid citizen ID number (GB 11643), or None: the one check every
    path runs (the model's validator, so the admin; the services; the list import)."""
    if len(value) != 18:
        return _("身份证号应为18位")
    if not value.isascii() or not value[:17].isdigit() or not (value[17].isdigit() or value[17] in "Xx"):
        return _("身份证号只能由数字组成，最后一位可以是 X")
    try:
        birth = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return _("身份证号中的出生日期无效")
    if birth.year < 1900 or birth > (today or timezone.localdate()):
        return _("身份证号中的出生日期无效")
    if value[17].upper() != check_char(value[:17]):
        return _("身份证号校验位错误")
    return None


def validate(value: str) -> None:
    """The model field's validator (issue 13: the admin accepted ``123456789012345678``)."""
    reason = problem(value) if value else None
    if reason:
        raise ValidationError(reason, code="citizen_id")
