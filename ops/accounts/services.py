"""Operator account services."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group, Permission
from django.db import transaction

from ops.accounts import permission_changes
from ops.accounts.models import Operator
from ops.accounts.roles import ROLE_PERMISSIONS, Role

if TYPE_CHECKING:  # an operator's scope names the registry's places; accounts sit below it
    from django.contrib.auth.models import User  # what get_user_model() is (AUTH_USER_MODEL)

    from ops.registry.models import Building, Department


@transaction.atomic
def create_or_update_operator(
    *,
    username: str,
    password: str,
    role: Role,
    department: Department | None = None,
    buildings: Iterable[Building] = (),
    is_superuser: bool = False,
    full_name: str = "",
    actor: AbstractUser | None = None,
    basis: str = "",
) -> User:
    """A personal operator account (R-SEC-1) with one role and its scope; what it may do is
    audited (R-SEC-3) — ``actor`` None is the system itself (set-up, demo, a command)."""
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username)
    before = {} if created else permission_changes.snapshot(user)
    user.set_password(password)
    user.is_staff = True  # may use the admin; what they can do there is per role
    user.is_superuser = is_superuser
    user.first_name = full_name
    user.save()
    operator, _ = Operator.objects.update_or_create(user=user, defaults={"role": role, "department": department})
    operator.buildings.set(list(buildings))
    user.groups.set([role_group(role)])
    permission_changes.audit_change(actor=actor, user=user, before=before, basis=basis)
    return user


def role_group(role: Role) -> Group:
    """The auth group of a role, with exactly the permissions ROLE_PERMISSIONS gives it."""
    group, _ = Group.objects.get_or_create(name=f"role:{role.value}")
    before = permission_changes.group_permissions(group)
    wanted = ROLE_PERMISSIONS.get(role, [])
    perms = [
        Permission.objects.get(content_type__app_label=label.split(".")[0], codename=label.split(".")[1])
        for label in wanted
    ]
    group.permissions.set(perms)
    permission_changes.audit_group_change(actor=None, group=group, before=before, basis="ROLE_PERMISSIONS")
    return group
