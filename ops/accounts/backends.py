"""Sign-in backends (issue 16). Local passwords are for local accounts only; CAS and LDAP vouch for
campus identities, whose accounts are made and refused by ``services.sign_in_through_sso``.
The CAS and LDAP backends live in ``cas_backend`` and ``ldap_backend`` so that neither library is
imported where it is not configured (python-ldap is an optional, compiled dependency)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend

from ops.accounts.models import SignIn


def first_value(value: Any) -> str:
    """One attribute value from a directory or CAS answer, which may give a list of them."""
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return "" if value is None else str(value)


class LocalPasswordBackend(ModelBackend):
    """Django's password check, for local accounts alone: an SSO account proves who it is only
    through the campus directory — a password set on it by hand must not outlive the person's
    campus identity (R-SEC-1)."""

    def user_can_authenticate(self, user: Any) -> bool:
        operator = getattr(user, "operator", None)
        if operator is not None and operator.sign_in != SignIn.LOCAL:
            return False
        return super().user_can_authenticate(user)
