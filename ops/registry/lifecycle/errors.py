"""The one error a card rule raises. It is a Django ValidationError, so the admin, forms, the
API and the CLI all show its (translated) message; nothing has been changed when it is raised."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class CardRuleError(ValidationError):
    pass
