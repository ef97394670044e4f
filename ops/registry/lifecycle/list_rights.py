"""Who may import which list beyond enrolment, and act on whose cards through it (issue 18,
Build 7; R-SEC-3). Apart from :mod:`list_kinds` so that the card services can ask it without
importing the lists, which use those services."""

from __future__ import annotations

from typing import Any

from ops.accounts.permissions import role_of
from ops.accounts.roles import Role
from ops.registry.choices import HolderKind
from streams.cards import CardType

# Who imports which list (R-SEC-3); NIC, who runs the system, imports them all.
IMPORTERS: dict[Role, frozenset[str]] = {
    Role.NIC: frozenset({"leavers", "deferral", "dorm", "staff_change"}),
    Role.ACADEMIC: frozenset({"leavers", "deferral"}),  # R-CARD-6, R-END-3: students
    Role.HR: frozenset({"leavers", "staff_change"}),  # R-CARD-4, R-END-2: staff
    Role.DORM_MANAGER: frozenset({"dorm"}),  # Student Affairs / dorm managers: their buildings
}
# Whose rows an importer's list may hold (None: anyone's): Academic Affairs answers for students,
# HR for staff.
HOLDER_SCOPE: dict[Role, frozenset[str]] = {
    Role.ACADEMIC: frozenset({HolderKind.STUDENT}),
    Role.HR: frozenset({HolderKind.STAFF}),
}
CARD_FOR_HOLDER: dict[str, str] = {HolderKind.STUDENT: CardType.STUDENT, HolderKind.STAFF: CardType.STAFF}


def kinds_of(operator: Any) -> frozenset[str]:
    role = role_of(operator)
    return IMPORTERS.get(role, frozenset()) if role is not None else frozenset()


def list_may_act(operator: Any, kind: str, card_type: str) -> bool:
    """May ``operator``, applying a list of ``kind``, act on a card of ``card_type`` through the
    card services (``by_list``)? Only the kinds that act on cards, only on the cards of the
    holders the operator's lists answer for — never a temporary card (R-CARD-7)."""
    if kind not in ("leavers", "deferral") or kind not in kinds_of(operator):
        return False
    if kind == "deferral" and card_type != CardType.STUDENT:
        return False
    role = role_of(operator)
    allowed = HOLDER_SCOPE.get(role) if role is not None else None
    types = {CardType.STUDENT, CardType.STAFF} if allowed is None else {CARD_FOR_HOLDER[k] for k in allowed}
    return card_type in types
