"""Role checks used by pages, websockets and APIs — one place, so every entry point agrees."""

from __future__ import annotations

from typing import Any

from ops.accounts.roles import CARD_ACTION_VIEWERS, GATE_VIEWERS, Role


def role_of(user: Any) -> Role | None:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    operator = getattr(user, "operator", None)
    return Role(operator.role) if operator is not None else None


def can_view_gates(user: Any) -> bool:
    return role_of(user) in GATE_VIEWERS


def can_view_card_actions(user: Any) -> bool:
    return role_of(user) in CARD_ACTION_VIEWERS
