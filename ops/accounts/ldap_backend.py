"""Sign-in with a campus directory (LDAP) user name and password on the login form
(django-auth-ldap; issue 16). django-auth-ldap finds the person's entry and checks the password by
binding as them; the account is made, refused or refreshed by
``services.sign_in_through_sso`` — no directory attribute or group ever sets a permission or
the staff/superuser flags."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django_auth_ldap.backend import LDAPBackend

from ops.accounts.backends import first_value
from ops.accounts.models import SignIn
from ops.accounts.services import sign_in_through_sso


class CampusLDAPBackend(LDAPBackend):
    def get_or_build_user(self, username: str, ldap_user: Any) -> tuple[Any, bool]:
        """Called once the directory accepted the password. Returns the account as "not built",
        so django-auth-ldap neither sets nor copies anything on it."""
        attrs = ldap_user.attrs or {}
        user = sign_in_through_sso(
            source=SignIn.LDAP,
            username=username,
            full_name=first_value(attrs.get(settings.LDAP_NAME_ATTRIBUTE)),
            email=first_value(attrs.get(settings.LDAP_EMAIL_ATTRIBUTE)),
        )
        if user is None:
            raise ldap_user.AuthenticationFailed("refused by sign_in_through_sso (a local account, or disabled)")
        return user, False
