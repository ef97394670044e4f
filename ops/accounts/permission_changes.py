"""Who may grant permissions, and the record of every grant (R-SEC-3, R-SEC-1).

Roles, scopes, groups and permissions are given only by NIC administrators (an account with the
NIC role — being a Django superuser alone is not enough), and every change to what an account
may do is audited with its before and after, whoever made it and however (admin or command)."""

from __future__ import annotations

from typing import Any

from ops.accounts.permissions import role_of
from ops.accounts.roles import Role
from ops.audit.services import record


def may_grant(user: Any) -> bool:
    return role_of(user) == Role.NIC


def snapshot(user: Any) -> dict[str, Any]:
    """Everything that decides what an account may do or see."""
    if user is None or not getattr(user, "pk", None):
        return {}
    operator = getattr(user, "operator", None)
    return {
        "role": operator.role if operator else None,
        "department": operator.department.code if operator and operator.department else None,
        "buildings": sorted(operator.buildings.values_list("code", flat=True)) if operator else [],
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "permissions": sorted(
            f"{p.content_type.app_label}.{p.codename}" for p in user.user_permissions.select_related("content_type")
        ),
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
    }


def audit_change(*, actor: Any, user: Any, before: dict[str, Any], basis: str = "") -> bool:
    """Audit what changed in ``user``'s permissions since ``before`` (nothing → no record)."""
    user = type(user).objects.get(pk=user.pk)  # fresh: no cached operator or groups
    after = snapshot(user)
    changed = {k: {"from": before.get(k), "to": v} for k, v in after.items() if before.get(k) != v}
    if not changed:
        return False
    record(
        actor=actor,
        action="permission.grant" if not before else "permission.change",
        object_type="user",
        object_id=user.get_username(),
        basis=basis,
        data=changed,
    )
    return True


def group_permissions(group: Any) -> list[str]:
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type"))


def audit_group_change(*, actor: Any, group: Any, before: list[str], basis: str = "") -> bool:
    after = group_permissions(group)
    added, removed = sorted(set(after) - set(before)), sorted(set(before) - set(after))
    if not added and not removed:
        return False
    record(
        actor=actor,
        action="permission.group_change",
        object_type="group",
        object_id=group.name,
        basis=basis,
        data={"added": added, "removed": removed},
    )
    return True
