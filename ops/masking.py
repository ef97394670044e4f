"""Masking of personal data by default (PIPL minimisation; R-SEC-2 needs a grant to unmask)."""

from __future__ import annotations


def mask_name(name: str) -> str:
    """张三 → 张*, 张三丰 → 张*丰, 欧阳小明 → 欧**明."""
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_citizen_id(value: str) -> str:
    """440507199001011234 → 440507********123X-style: region and last four kept."""
    if len(value) < 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_phone(value: str) -> str:
    if len(value) < 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_uid(uid: str) -> str:
    if len(uid) <= 4:
        return uid
    return uid[:2] + "*" * (len(uid) - 4) + uid[-2:]
