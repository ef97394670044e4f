"""One demo operator per role, named after the role (``security``, ``nic``, ``dorm1`` …)."""

from __future__ import annotations

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.registry.models import Building, Department

DEPARTMENT_OF = {  # the department each demo role works in
    Role.NIC: "NIC",
    Role.SECURITY: "SEC",
    Role.DORM_MANAGER: "SAO",
    Role.HR: "HR",
    Role.ACADEMIC: "AAO",
    Role.GENERAL: "GAO",
    Role.FINANCE: "FIN",
    Role.LIBRARY: "LIB",
    Role.LEADER: "NIC",
}


def ensure_demo_operators(*, password: str) -> list[tuple[str, str]]:
    """Create or reset the demo operators; returns (username, description) pairs."""
    depts = {d.code: d for d in Department.objects.all()}
    made: list[tuple[str, str]] = []
    for role in Role:
        if role == Role.DORM_MANAGER:
            for building in Building.objects.filter(is_dorm=True).order_by("code"):
                username = f"dorm{building.code.removeprefix('D')}"
                create_or_update_operator(
                    username=username, password=password, role=role, department=depts.get("SAO"), buildings=[building]
                )
                made.append((username, f"{role.label} · {building.name}"))
            continue
        create_or_update_operator(
            username=role.value,
            password=password,
            role=role,
            department=depts.get(DEPARTMENT_OF[role]),
            is_superuser=role == Role.NIC,
        )
        made.append((role.value, str(role.label)))
    return made
