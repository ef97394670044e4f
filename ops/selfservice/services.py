"""Cardholder self-service (issue 18, Build 6): sign-in, the holder's own loss report, their own
passages. Each function is the one way to do its action; every act is audited — as the
cardholder's own (``actor_name`` "cardholder:<number>", no operator), in the one audit chain.

Sign-in is number + the last six characters of the citizen ID + the password NIC set at the desk;
failures go through Django's ``user_login_failed`` signal, so django-axes counts and locks them out
exactly like an operator's (R-SEC-1; the lockout key is "cardholder:<number>" per address, and NIC
unlocks it in the admin like any other), and the audit records every failure and lockout."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _

from ops.accounts.audit_hooks import client_address
from ops.accounts.permissions import role_of
from ops.accounts.roles import Role
from ops.audit import services as audit
from ops.registry.choices import LIVE_CARD_STATUSES
from ops.registry.lifecycle import services as lifecycle
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.models import AccessEvent, Card, Cardholder
from ops.selfservice.models import HolderPassword

SESSION_HOLDER = "selfservice_holder"  # the session's keys: apart from Django's operator login
SESSION_HASH = "selfservice_hash"
SESSION_AGE_S = 15 * 60  # a phone left on a desk: the self-service session is short
ID_DIGITS = 6  # the last six characters of the citizen ID (the check character may be X)
PASSWORD_MIN_LENGTH = 8
PASSAGE_DAYS = 30
PASSAGE_LIMIT = 500
LOSS_BASIS = "持卡人本人通过自助服务挂失"


@functools.cache
def _dummy_hash() -> str:
    """A hash to check a wrong number's password against, so both answers take the same time;
    made on first use, not at import (PBKDF2 costs ~0.25 s in every process that imports this)."""
    return make_password("campuscard-self-service-dummy")


class SelfServiceError(ValueError):
    """A refusal with a message for the cardholder; nothing was changed."""


class LockedOut(SelfServiceError):
    """Too many failed sign-ins for this number from this address (django-axes)."""


@dataclass(frozen=True)
class HolderActor:
    """The cardholder as the actor of their own act: no operator account (``pk`` None), named
    "cardholder:<number>" in the audit record, the status history and the live card feed."""

    number: str
    pk: None = None
    is_superuser: bool = False
    is_authenticated: bool = False

    @property
    def username(self) -> str:
        return f"cardholder:{self.number}"


def lockout_key(number: str) -> str:
    return f"cardholder:{number}"


# -- the desk: NIC sets the password -------------------------------------------------------------
def check_new_password(holder: Cardholder, raw_password: str) -> None:
    """Raises :class:`SelfServiceError` when ``raw_password`` is too weak for ``holder``."""
    raw_password = raw_password or ""
    if len(raw_password) < PASSWORD_MIN_LENGTH:
        raise SelfServiceError(_("密码至少 %(n)s 位") % {"n": PASSWORD_MIN_LENGTH})
    lowered = raw_password.lower()
    if holder.number.lower() in lowered or (holder.citizen_id and holder.citizen_id[-ID_DIGITS:].lower() in lowered):
        raise SelfServiceError(_("密码不能包含学工号或身份证号"))
    try:
        password_validation.validate_password(raw_password)
    except ValidationError as exc:
        raise SelfServiceError(" ".join(exc.messages)) from exc


@transaction.atomic
def set_password(*, holder: Cardholder, raw_password: str, operator: Any, basis: str = "") -> HolderPassword:
    """NIC sets (or resets) a cardholder's self-service password at the desk, the holder present
    with their ID (R-USE-1's "in person with ID" moves to the desk where the password is set).
    Only NIC (R-SEC-3); the password meets the project's password rules; audited, never logged."""
    if not (getattr(operator, "is_superuser", False) or role_of(operator) == Role.NIC):
        raise SelfServiceError(_("只有网信中心可以设置持卡人的自助服务密码"))
    check_new_password(holder, raw_password)
    first = not HolderPassword.objects.filter(holder=holder).exists()
    row, _created = HolderPassword.objects.update_or_create(
        holder=holder,
        defaults={"password": make_password(raw_password), "set_at": timezone.now(), "set_by": operator},
    )
    audit.record(
        actor=operator,
        action="selfservice.password_set",
        object_type="cardholder",
        object_id=holder.number,
        basis=basis or _("持卡人本人持证件到网信中心设置"),
        data={"first": first},
    )
    return row


# -- signing in and out --------------------------------------------------------------------------
def _session_hash(holder_pk: int, row: HolderPassword | None) -> str:
    """Changes when NIC sets or resets the password: every session of the holder's ends."""
    return salted_hmac("ops.selfservice.session", f"{holder_pk}:{row.password if row else ''}").hexdigest()


def _start_session(request: Any, holder: Cardholder, row: HolderPassword | None, via: str) -> None:
    request.session.cycle_key()  # no session fixation
    request.session[SESSION_HOLDER] = holder.pk
    request.session[SESSION_HASH] = _session_hash(holder.pk, row)
    request.session.set_expiry(SESSION_AGE_S)
    audit.record(
        actor=HolderActor(holder.number),
        action="selfservice.login",
        object_type="cardholder",
        object_id=holder.number,
        data={"ip": client_address(request), "via": via},
    )


def _password_row(number: str) -> HolderPassword | None:
    return HolderPassword.objects.select_related("holder").filter(holder__number=number).first()


def sign_in(request: Any, *, number: str, id_digits: str, password: str) -> Cardholder:
    """Check number + the last six ID characters + password; on success the session is the
    holder's (a new session key). Raises :class:`LockedOut` or :class:`SelfServiceError` (one
    message for every wrong field: it does not tell which numbers exist)."""
    number = (number or "").strip()[:32]
    id_digits = (id_digits or "").strip().upper()
    credentials = {"username": lockout_key(number)}
    if not number or not password or len(id_digits) != ID_DIGITS:
        raise SelfServiceError(_("请填写学工号、身份证号后 %(n)s 位和自助服务密码") % {"n": ID_DIGITS})
    if AxesProxyHandler.is_locked(request, credentials):
        request.axes_locked_out = False  # our own page answers, not the operators' lockout page
        raise LockedOut(_("登录失败次数过多，已暂时锁定。请稍后再试，或本人持证件到网信中心解锁。"))
    row = _password_row(number)
    holder = row.holder if row is not None else None
    id_ok = (
        holder is not None
        and len(holder.citizen_id) == 18
        and constant_time_compare(holder.citizen_id[-ID_DIGITS:].upper(), id_digits)
    )
    password_ok = check_password(password, row.password if row is not None else _dummy_hash())  # same time either way
    if row is None or holder is None or not (id_ok and password_ok):
        user_login_failed.send(sender=__name__, credentials=credentials, request=request)  # axes + audit
        if getattr(request, "axes_locked_out", False):
            request.axes_locked_out = False
            raise LockedOut(_("登录失败次数过多，已暂时锁定。请稍后再试，或本人持证件到网信中心解锁。"))
        raise SelfServiceError(_("学工号、身份证号后六位或密码不正确"))
    AxesProxyHandler.reset_attempts(username=credentials["username"], ip_address=client_address(request))
    _start_session(request, holder, row, "password")
    return holder


def sign_in_through_cas(request: Any, username: str) -> Cardholder:
    """The campus CAS server vouched for ``username`` (issue 11/16): the cardholder whose number it
    is (CAS uids are 学工号 on campus; case aside) gets a self-service session — no operator
    account is made or touched. Anyone else is refused, and the refusal audited."""
    username = (username or "").strip()[:64]
    holder = Cardholder.objects.filter(number__iexact=username).first() if username else None
    if holder is None:
        audit.record(
            actor=None,
            action="selfservice.login_refused",
            object_type="cardholder",
            object_id=username,
            data={"ip": client_address(request), "via": "cas", "why": "not a cardholder"},
        )
        raise SelfServiceError(
            _("统一身份认证账号“%(username)s”不是在册持卡人的学工号，无法使用校园卡自助服务") % {"username": username}
        )
    _start_session(request, holder, HolderPassword.objects.filter(holder=holder).first(), "cas")
    return holder


def signed_in_holder(request: Any) -> Cardholder | None:
    """The cardholder this session belongs to, or None (never an operator: operators sign in
    with Django's own session key, which this never reads)."""
    pk = request.session.get(SESSION_HOLDER)
    if pk is None:
        return None
    holder = Cardholder.objects.filter(pk=pk).first()
    row = HolderPassword.objects.filter(holder_id=pk).first()
    if holder is None or not constant_time_compare(request.session.get(SESSION_HASH, ""), _session_hash(pk, row)):
        request.session.pop(SESSION_HOLDER, None)
        request.session.pop(SESSION_HASH, None)
        return None
    return holder


def sign_out(request: Any) -> None:
    holder = signed_in_holder(request)
    if holder is not None:
        audit.record(
            actor=HolderActor(holder.number),
            action="selfservice.logout",
            object_type="cardholder",
            object_id=holder.number,
            data={"ip": client_address(request)},
        )
    request.session.pop(SESSION_HOLDER, None)
    request.session.pop(SESSION_HASH, None)
    request.session.cycle_key()


# -- the holder's own card -----------------------------------------------------------------------
def own_card(holder: Cardholder) -> Card | None:
    """The holder's card in use (normal or lost), else their latest card (cancelled, replaced)."""
    live = holder.cards.filter(status__in=LIVE_CARD_STATUSES).order_by("-id").first()
    return live or holder.cards.order_by("-id").first()


def report_own_loss(holder: Cardholder) -> Card:
    """The holder reports their own card lost (R-USE-1): it stops working at every reader at
    once (the credential change goes out in the same transaction); audited as their own act."""
    card = holder.cards.filter(status__in=LIVE_CARD_STATUSES).order_by("-id").first()
    if card is None:
        raise SelfServiceError(_("您名下没有可以挂失的卡"))
    try:
        return lifecycle.report_own_loss(card=card, holder=holder, actor=HolderActor(holder.number), basis=LOSS_BASIS)
    except CardRuleError as exc:
        raise SelfServiceError(str(exc)) from exc


def own_passages(holder: Cardholder, request: Any) -> list[AccessEvent]:
    """The holder's own passages of the last 30 days, newest first (at most 500) — the viewing
    is audited like any look at personal data (R-SEC-1), as the holder's own."""
    since = timezone.now() - timedelta(days=PASSAGE_DAYS)
    rows = list(
        AccessEvent.objects.filter(holder=holder, occurred_at__gte=since)
        .select_related("device")
        .order_by("-occurred_at")[:PASSAGE_LIMIT]
    )
    audit.record(
        actor=HolderActor(holder.number),
        action="selfservice.view_passages",
        object_type="cardholder",
        object_id=holder.number,
        data={"days": PASSAGE_DAYS, "shown": len(rows), "ip": client_address(request)},
    )
    return rows
