"""The library's SIP2 server (issue 18, Build 5; R-CARD-2): the 3M Standard Interchange Protocol
2.00 that library circulation systems (Koha, Evergreen, FOLIO, 汇文 …) use to check a patron.

The wire layer — framing, the AY sequence number and AZ checksum, ``96`` (resend) on a bad
checksum, replay of a duplicate request — is the ``pysip2`` library's; this module answers:

- ``93`` login: the SC's CN/CO against ``SIP2_ACCOUNTS`` (constant-time); a failed login is
  answered ``94 ok=0`` after a pause, logged, audited, and the connection closed;
- nothing but a login before a login: ``94 ok=0``, logged, counted, the connection closed;
- ``99`` SC status → ``98`` (what this server supports: 23, 63, 93, 97, 99);
- ``23`` patron status → ``24``, ``63`` patron information → ``64``: from the card registry
  (``ops.library.patrons``): valid (BL Y) and may borrow; a temporary card valid but every
  privilege denied (R-CARD-7); lost, cancelled, replaced, blacklisted, expired, not yet valid or
  unknown → BL N, privileges denied, "card reported lost" for a lost card.

Screen messages are in Simplified Chinese, or English when the request's language is 001
(English) or 024 (UK). Every request is counted per day (``ops.library.traffic``)."""

from __future__ import annotations

import hmac
import logging
import signal
import time
from types import SimpleNamespace
from typing import Any

import anyio
import msgspec
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from pysip2 import (
    LOGIN,
    PATRON_INFORMATION,
    PATRON_STATUS,
    SC_STATUS,
    LoginRequest,
    LoginResponse,
    PatronInformationRequest,
    PatronInformationResponse,
    PatronStatusRequest,
    PatronStatusResponse,
    SCStatusRequest,
    SIP2Server,
    encode_message,
)
from pysip2.errors import SIP2ProtocolError
from pysip2.models import RequestACSResend, RequestSCResend

from ops.audit.services import record
from ops.library.patrons import Patron, Standing, patron
from ops.library.traffic import Counter
from ops.masking import mask_uid

log = logging.getLogger(__name__)

ENGLISH = frozenset({"001", "024"})  # SIP2 language codes: English, United Kingdom
ALLOWED_BEFORE_LOGIN = (LoginRequest, RequestACSResend, RequestSCResend)


def now_18() -> str:
    """A SIP2 date: local ``YYYYMMDD    HHMMSS`` (four blanks: local time, TIME_ZONE)."""
    return timezone.localtime().strftime("%Y%m%d    %H%M%S")


def accounts_match(login: str, password: str, accounts: dict[str, str]) -> bool:
    """Whether ``login``/``password`` is one of ``accounts``, in time that does not depend on
    which part differs."""
    found = False
    for name, secret in accounts.items():
        same_name = hmac.compare_digest(login.encode(), name.encode())
        same_secret = hmac.compare_digest(password.encode(), secret.encode())
        found |= same_name and same_secret
    return found


def _peer(ctx: Any) -> str:
    peer = ctx.connection.peer
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


class CardSIP2Server(SIP2Server):
    """pysip2's server, with login required and every refusal answered, logged and counted."""

    def __init__(self, *, counter: Counter, **options: Any) -> None:
        super().__init__(login_required=True, **options)
        self.counter = counter

    async def _send_96(self, stream: Any, state: Any) -> None:  # a bad checksum: ask for a resend
        await anyio.to_thread.run_sync(self.counter.count, "resend")
        log.warning("sip2 %s: bad or missing checksum, asked to resend (96)", state.peer)
        await super()._send_96(stream, state)

    async def _dispatch(self, stream: Any, state: Any, decoded: Any) -> None:
        if isinstance(decoded.message, LoginRequest):
            state.authenticated = False  # a new login replaces the old one: a failed one ends the session
        if not state.authenticated and not isinstance(decoded.message, ALLOWED_BEFORE_LOGIN):
            # pysip2 would close without a word: answer "not logged in" (94 ok=0), then close
            await anyio.to_thread.run_sync(self.counter.count, "not_logged_in")
            log.warning("sip2 %s: %s before a login, refused", state.peer, type(decoded.message).__name__)
            checksummed = decoded.checksum is not None
            frame = encode_message(
                LoginResponse(ok="0"),
                sequence_number=decoded.sequence_number if checksummed else None,
                checksum=checksummed,
                encoding=self.encoding,
                field_delimiter=self.field_delimiter,
            )
            await self._send(stream, state, frame)
            raise SIP2ProtocolError("login required before other commands")
        await super()._dispatch(stream, state, decoded)


def build_server(counter: Counter | None = None) -> CardSIP2Server:
    """The server as configured (``SIP2_*`` settings, docs/configuration.md)."""
    counter = counter or Counter()
    server = CardSIP2Server(
        counter=counter,
        error_detection=settings.SIP2_ERROR_DETECTION,
        encoding=settings.SIP2_ENCODING,
        institution_id=settings.SIP2_INSTITUTION,
        library_name=str(_("校园一卡通")),
        idle_timeout=float(settings.SIP2_IDLE_TIMEOUT_S),
        protocol_version="2.00",
    )

    @server.route(LOGIN)
    def login(req: LoginRequest, ctx: Any) -> LoginResponse:
        close_old_connections()
        peer = _peer(ctx)
        plain = (req.uid_algorithm, req.pwd_algorithm) == ("0", "0")  # we hold no other algorithm
        ok = plain and accounts_match(req.login_user_id, req.login_password, settings.SIP2_ACCOUNTS)
        account = req.login_user_id[:64]
        actor = SimpleNamespace(pk=None, username=f"sip2@{peer}"[:150])
        data = {"peer": peer, "location": (req.location_code or "")[:64]}
        if ok:
            record(actor=actor, action="library.sip2_login", object_type="sip2_account", object_id=account, data=data)
            counter.count("login_ok")
            log.info("sip2 %s: login as %s", peer, account)
            return LoginResponse(ok="1")
        # R-SEC-5: a failed login is on the record; the pause slows guessing, the close ends it
        record(
            actor=actor, action="library.sip2_login_failed", object_type="sip2_account", object_id=account, data=data
        )
        counter.count("login_failed")
        log.warning("sip2 %s: login as %r refused", peer, account)
        time.sleep(settings.SIP2_LOGIN_FAILURE_DELAY_MS / 1000)
        return LoginResponse(ok="0")

    @server.route(SC_STATUS)
    def sc_status(req: SCStatusRequest, ctx: Any) -> Any:
        counter.count("sc_status")
        return msgspec.structs.replace(server.build_acs_status(req), date_time_sync=now_18())

    @server.route(PATRON_STATUS)
    def patron_status(req: PatronStatusRequest, ctx: Any) -> PatronStatusResponse:
        with translation.override("en" if req.language in ENGLISH else "zh-hans"):
            answer, message = _answer(req.patron_identifier, "patron_status", counter, _peer(ctx))
            return PatronStatusResponse(
                patron_status=answer.status_flags(),
                language=req.language,
                transaction_date=now_18(),
                institution_id=req.institution_id,
                patron_identifier=req.patron_identifier,
                personal_name=answer.name,
                valid_patron="Y" if answer.valid else "N",
                screen_message=(message,),
            )

    @server.route(PATRON_INFORMATION)
    def patron_information(req: PatronInformationRequest, ctx: Any) -> PatronInformationResponse:
        with translation.override("en" if req.language in ENGLISH else "zh-hans"):
            answer, message = _answer(req.patron_identifier, "patron_information", counter, _peer(ctx))
            unknown = "    "  # loans, holds and fines are the library's own records, not ours
            return PatronInformationResponse(
                patron_status=answer.status_flags(),
                language=req.language,
                transaction_date=now_18(),
                hold_items_count=unknown,
                overdue_items_count=unknown,
                charged_items_count=unknown,
                fine_items_count=unknown,
                recall_items_count=unknown,
                unavailable_holds_count=unknown,
                institution_id=req.institution_id,
                patron_identifier=req.patron_identifier,
                personal_name=answer.name,
                valid_patron="Y" if answer.valid else "N",
                screen_message=(message,),
            )

    return server


def _answer(identifier: str, kind: str, counter: Counter, peer: str) -> tuple[Patron, str]:
    """The patron's answer and its screen message; counted and logged (UID masked). A registry
    that cannot be read is a refusal, never a loan (fail closed)."""
    close_old_connections()
    try:
        answer = patron(identifier, timezone.now())
        message = answer.message()
    except Exception:
        log.exception("sip2 %s: patron lookup failed", peer)
        answer, message = Patron(Standing.UNKNOWN), _("一卡通系统暂时无法查询，请稍后再试")
    outcome = "valid" if answer.may_borrow else "unknown_patron" if answer.standing == Standing.UNKNOWN else "refused"
    counter.count(kind, outcome)
    log.info("sip2 %s: %s %s → %s", peer, kind, mask_uid(identifier), answer.standing.value)
    return answer, message


async def serve(host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = build_server()
    async with anyio.create_task_group() as tg:

        async def stop_on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _signum in signals:
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(stop_on_signal)
        await server.serve(host, port)
