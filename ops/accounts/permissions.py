"""Role checks used by pages, websockets and APIs — one place, so every entry point agrees."""

from __future__ import annotations

from typing import Any

from ops.accounts.roles import (
    CARD_ACTION_VIEWERS,
    DEVICE_VIEWERS,
    DORM_VIEWERS,
    EMERGENCY_LEADERS,
    GATE_VIEWERS,
    MUSTER_LEADERS,
    MUSTER_VIEWERS,
    PASSBACK_FORGIVERS,
    PHOTO_VIEWERS,
    Role,
)


def role_of(user: Any) -> Role | None:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    operator = getattr(user, "operator", None)
    # no role yet (an SSO newcomer, issue 16): no rights at all until NIC grants one (R-SEC-3)
    return Role(operator.role) if operator is not None and operator.role else None


def can_view_gates(user: Any) -> bool:
    return role_of(user) in GATE_VIEWERS


def can_view_card_actions(user: Any) -> bool:
    return role_of(user) in CARD_ACTION_VIEWERS


def can_view_devices(user: Any) -> bool:
    return role_of(user) in DEVICE_VIEWERS


def can_view_dorms(user: Any) -> bool:
    return role_of(user) in DORM_VIEWERS


def can_view_photos(user: Any) -> bool:
    return role_of(user) in PHOTO_VIEWERS


def can_lead_emergency(user: Any) -> bool:
    """Start, approve and end an emergency mode (issue 17, Build 2): the security office."""
    return role_of(user) in EMERGENCY_LEADERS


def can_see_emergency(user: Any) -> bool:
    """See the banner of the emergency modes in force: every operator with a role."""
    return role_of(user) is not None


def dorm_scope(user: Any) -> list[str] | None:
    """Building codes a user may watch on the dorm desk: a dorm manager only the buildings
    assigned to them (R-OPS-4); NIC every building (None); anyone else none."""
    role = role_of(user)
    if role == Role.NIC:
        return None
    if role == Role.DORM_MANAGER:
        return sorted(user.operator.buildings.values_list("code", flat=True))
    return []


def can_view_musters(user: Any) -> bool:
    return role_of(user) in MUSTER_VIEWERS


def can_lead_musters(user: Any) -> bool:
    """Start and end a muster (issue 17): the security office and NIC."""
    return role_of(user) in MUSTER_LEADERS


def muster_scope(user: Any) -> list[str] | None:
    """Building codes whose musters a user may see: the security office and NIC every building
    (None); a dorm manager the buildings assigned to them; anyone else none."""
    role = role_of(user)
    if role in MUSTER_LEADERS:
        return None
    if role == Role.DORM_MANAGER:
        return sorted(user.operator.buildings.values_list("code", flat=True))
    return []


def can_forgive_passback(user: Any) -> bool:
    """Forgive anti-passback from the security desk (issue 17, Build 5): the security office."""
    return role_of(user) in PASSBACK_FORGIVERS
