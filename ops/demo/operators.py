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

# Each demo operator's name (issue 19, item 11: the workbench greets an operator by name)
DEMO_NAMES = {
    Role.NIC: "王网信",
    Role.SECURITY: "李保卫",
    Role.DORM_MANAGER: "赵宿管",
    Role.HR: "陈人事",
    Role.ACADEMIC: "刘教务",
    Role.GENERAL: "孙总务",
    Role.FINANCE: "周财务",
    Role.LIBRARY: "吴图书",
    Role.LEADER: "郑领导",
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
                    username=username,
                    password=password,
                    role=role,
                    department=depts.get("SAO"),
                    buildings=[building],
                    full_name=DEMO_NAMES[role],
                )
                made.append((username, f"{role.label} · {building.name}"))
            continue
        create_or_update_operator(
            username=role.value,
            password=password,
            role=role,
            department=depts.get(DEPARTMENT_OF[role]),
            is_superuser=role == Role.NIC,
            full_name=DEMO_NAMES[role],
        )
        made.append((role.value, str(role.label)))
    return made
