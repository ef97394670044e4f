"""Sign-in through the campus CAS server (CAS 2 or 3, django-cas-ng; issue 16). django-cas-ng
validates the ticket; the account is made, refused or refreshed by
``services.sign_in_through_sso`` — never django-cas-ng's own user creation, which would copy any
attribute the CAS server sends onto the account (``is_staff`` included)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django_cas_ng.backends import CASBackend
from django_cas_ng.utils import get_cas_client

from ops.accounts.backends import first_value
from ops.accounts.models import SignIn
from ops.accounts.services import sign_in_through_sso

log = logging.getLogger(__name__)


class CampusCASBackend(CASBackend):
    def authenticate(self, request: Any, ticket: str, service: str) -> Any:  # type: ignore[override]  # CASBackend's own signature
        client = get_cas_client(service_url=service, request=request)
        try:
            username, attributes, _pgtiou = client.verify_ticket(ticket)
        # requests' errors are OSErrors (the CAS server unreachable); lxml's are SyntaxErrors (an
        # answer that is not CAS XML)
        except (OSError, ValueError, SyntaxError) as exc:
            log.warning("CAS ticket validation failed: %s", exc)
            return None
        if not username:
            return None
        attributes = attributes or {}
        return sign_in_through_sso(
            source=SignIn.CAS,
            username=str(username),
            full_name=first_value(attributes.get(settings.CAS_NAME_ATTRIBUTE)),
            email=first_value(attributes.get(settings.CAS_EMAIL_ATTRIBUTE)),
        )
