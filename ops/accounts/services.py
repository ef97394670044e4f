"""Operator account services."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group, Permission
from django.db import transaction

from ops.accounts import permission_changes
from ops.accounts.models import Operator, SignIn
from ops.accounts.roles import ROLE_PERMISSIONS, Role
from ops.audit.services import record

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


@transaction.atomic
def sign_in_through_sso(*, source: SignIn, username: str, full_name: str = "", email: str = "") -> User | None:
    """The account of a person the campus single sign-on (CAS or LDAP) has just vouched for
    (issue 16), or None when it must not sign in.

    The first time, an operator account is made with no role, no group, no permission and no
    usable password, never staff or superuser whatever the directory says (R-SEC-3: NIC grants);
    that is audited (``account.sso_created``). A local account of the same name is never taken
    over by a directory entry — NIC's break-glass admins stay local — and such a sign-in is
    refused and audited (``auth.sso_refused``), as is one for a disabled account. The name and
    e-mail the directory gives are kept up to date; they grant nothing."""
    User = get_user_model()
    username = username.strip().lower()  # one account per person, however the campus spells it
    if not username or len(username) > (User._meta.get_field("username").max_length or 150):
        return None
    full_name, email = full_name.strip()[:150], email.strip()[:254]
    user = User.objects.select_for_update().filter(username__iexact=username).first()
    if user is None:
        user = User(username=username, first_name=full_name, email=email, is_staff=False, is_superuser=False)
        user.set_unusable_password()
        user.save()
        Operator.objects.create(user=user, role="", sign_in=source)
        record(
            actor=None,
            action="account.sso_created",
            object_type="user",
            object_id=username,
            data={"sign_in": source.value, "role": None, "is_staff": False, "is_superuser": False},
        )
        return user
    operator = getattr(user, "operator", None)
    if operator is None or operator.sign_in == SignIn.LOCAL or not user.is_active:
        reason = "inactive" if operator is not None and operator.sign_in != SignIn.LOCAL else "local_account"
        record(
            actor=None,
            action="auth.sso_refused",
            object_type="user",
            object_id=user.get_username(),
            data={"sign_in": source.value, "reason": reason},
        )
        return None
    given = {"first_name": full_name, "email": email}
    changed = [field for field, value in given.items() if value and getattr(user, field) != value]
    for field in changed:
        setattr(user, field, given[field])
    if changed:
        user.save(update_fields=changed)
    return user
