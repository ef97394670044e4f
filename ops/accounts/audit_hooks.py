"""Audit records for what happens to accounts outside the card services (R-SEC-1): every login
(success or failure), logout and lockout, and every write made through the admin — a change to
a card holder, a device, a fee policy, an operator or a group is audited like a service's write.

Connected in ``AccountsConfig.ready``. The admin writes its ``LogEntry`` inside the request's
transaction, so the audit record commits or rolls back with the change itself.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import signals as auth_signals
from django.db.models.signals import post_save
from django.dispatch import receiver

from ops.audit.services import record

_ADMIN_ACTIONS = {ADDITION: "admin.add", CHANGE: "admin.change", DELETION: "admin.delete"}


def client_address(request: Any) -> str:
    """The client's address as the request saw it (behind a proxy: set AXES_PROXY_COUNT)."""
    if request is None:
        return ""
    return getattr(request, "axes_ip_address", None) or request.META.get("REMOTE_ADDR", "")


def _record_auth(action: str, *, actor: Any, username: str, ip: str) -> None:
    """One audit record of what happened to the account ``username`` (``actor``: None when no one is signed in)."""
    record(actor=actor, action=action, object_type="user", object_id=username, data={"ip": ip})


@receiver(auth_signals.user_logged_in)
def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    _record_auth("auth.login", actor=user, username=user.get_username(), ip=client_address(request))


@receiver(auth_signals.user_logged_out)
def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:  # the session had already ended
        return
    _record_auth("auth.logout", actor=user, username=user.get_username(), ip=client_address(request))


@receiver(auth_signals.user_login_failed)
def _login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    # the credentials arrive with the password already replaced by asterisks
    username = str(credentials.get("username", ""))[:64]
    _record_auth("auth.login_failed", actor=None, username=username, ip=client_address(request))


def _locked_out(sender: Any, request: Any, username: str | None, ip_address: str, **kwargs: Any) -> None:
    _record_auth("auth.locked_out", actor=None, username=(username or "")[:64], ip=ip_address)


@receiver(post_save, sender=LogEntry)
def _admin_write(sender: Any, instance: LogEntry, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    record(
        actor=instance.user,
        action=_ADMIN_ACTIONS.get(instance.action_flag, "admin.write"),
        object_type=instance.content_type.model if instance.content_type else "",
        object_id=instance.object_id or "",
        data={"repr": instance.object_repr, "change": instance.get_change_message()},
    )


def _cas_logged_out(sender: Any, user: Any, session: Any, ticket: Any, **kwargs: Any) -> None:
    """The CAS server's single logout ended a session (issue 16): no request of the operator's
    came in, so Django's own logout signal is not sent. (A logout through the product's button
    sends both; its record comes from ``_logged_out``.)"""
    if sender != "slo" or user is None or not getattr(user, "is_authenticated", False):
        return
    record(
        actor=user,
        action="auth.logout",
        object_type="user",
        object_id=user.get_username(),
        data={"ip": "", "via": "cas_single_logout"},
    )


def connect_lockout() -> None:
    """django-axes sends its own signal when it locks an account out."""
    from axes.signals import user_locked_out

    user_locked_out.connect(_locked_out, dispatch_uid="campuscard-audit-locked-out")


def connect_cas_logout() -> None:
    """django-cas-ng's signal for a session ended by the CAS server's single logout."""
    from django_cas_ng.signals import cas_user_logout

    cas_user_logout.connect(_cas_logged_out, dispatch_uid="campuscard-audit-cas-logout")
