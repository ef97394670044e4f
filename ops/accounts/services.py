"""Operator account services."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import transaction

from ops.accounts.models import Operator
from ops.accounts.roles import Role
from ops.campus.models import Building, Department


@transaction.atomic
def create_or_update_operator(
    *, username: str, password: str, role: Role, department: Department | None = None,
    buildings: Iterable[Building] = (), is_superuser: bool = False, full_name: str = "",
) -> AbstractUser:
    """A personal operator account (R-SEC-1) with one role and its scope."""
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=username)
    user.set_password(password)
    user.is_staff = True  # may use the admin; what they can do there is per role
    user.is_superuser = is_superuser
    user.first_name = full_name
    user.save()
    operator, _ = Operator.objects.update_or_create(
        user=user, defaults={"role": role, "department": department}
    )
    operator.buildings.set(list(buildings))
    return user
