"""Citizen ID numbers (GB 11643-1999): 6-digit region, 8-digit birth date, 3-digit sequence and
an ISO 7064 MOD 11-2 check character."""

from __future__ import annotations

from datetime import date

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
