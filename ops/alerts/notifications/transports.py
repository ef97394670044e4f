"""The channels' adapters behind one small interface (house style 9): ``send(message)`` returns
when the channel accepted the message and raises ``DeliveryError`` otherwise, saying whether
trying again could help (``permanent``) and, when the far end said so, how soon
(``retry_after_s``). Formats, as the vendors document them (docs/notifications.md):

- WeCom group robot: ``POST {address}?key=KEY`` with
  ``{"msgtype": "markdown", "markdown": {"content": …}}``; reply ``{"errcode": 0, "errmsg": "ok"}``;
  errcode 45009: over the robot's 20 messages a minute.
- DingTalk custom robot with 加签: ``POST {address}?access_token=T&timestamp=MS&sign=S`` where
  S = urlencode(base64(HMAC-SHA256(secret, f"{MS}\\n{secret}"))), body
  ``{"msgtype": "markdown", "markdown": {"title": …, "text": …}}``; reply errcode 0; 130101:
  sending too fast.
- Generic webhook: ``POST {address}`` with a JSON body (``Message.as_json``); with a secret, the
  header ``X-Campuscard-Signature: sha256=<hex HMAC-SHA256(secret, body)>``.
- E-mail: Django's SMTP backend (``EMAIL_*`` settings) to the recipients and the channel's
  addresses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from ops.alerts.choices import ChannelKind
from ops.alerts.models import NotificationChannel
from ops.env import envstr

HTTP_TIMEOUT_S = 10
SIGNATURE_HEADER = "X-Campuscard-Signature"
WECOM_MAX_BYTES = 4096  # a markdown message's content, as WeCom documents it
RATE_LIMITED = {ChannelKind.WECOM: {45009}, ChannelKind.DINGTALK: {130101}}


class DeliveryError(Exception):
    """The channel did not take the message. ``permanent``: trying again will not help (a wrong
    key, a bad address, a refused payload); otherwise retry with backoff."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after_s: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Recipient:
    username: str
    name: str
    email: str


@dataclass(frozen=True)
class Message:
    """What is sent, whatever the channel: a title, a Markdown text, a plain text, and the
    data behind them for the webhook."""

    title: str
    markdown: str
    text: str
    data: dict[str, Any]
    recipients: list[Recipient] = field(default_factory=list)

    def as_json(self) -> bytes:
        return json.dumps(self.data, ensure_ascii=False, separators=(",", ":")).encode()


def resolve_secret(value: str) -> str:
    """A stored value, or ``env:NAME``: the environment's NAME (or the file NAME_FILE names)."""
    if value.startswith("env:"):
        name = value[4:].strip()
        resolved = envstr(name) if name else None
        if not resolved:
            raise DeliveryError(f"environment variable {name or '?'} is not set", permanent=True)
        return resolved
    return value


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签: the URL-encoded base64 of HMAC-SHA256(secret, "<timestamp>\\n<secret>")."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def webhook_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _with_query(url: str, params: list[tuple[str, str]], *, raw: str = "") -> str:
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query), *params])
    if raw:
        query = f"{query}&{raw}" if query else raw
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _post_json(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    if urlsplit(url).scheme not in ("http", "https"):
        raise DeliveryError(f"not an http(s) address: {url.split('?')[0]}", permanent=True)
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
        url, data=body, method="POST", headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
            return response.status, response.read(65536)
    except urllib.error.HTTPError as exc:
        retry_after = exc.headers.get("Retry-After") if exc.headers else None
        permanent = 400 <= exc.code < 500 and exc.code not in (408, 425, 429)
        raise DeliveryError(
            f"HTTP {exc.code}",
            permanent=permanent,
            retry_after_s=float(retry_after) if retry_after and retry_after.isdigit() else None,
        ) from None
    except (urllib.error.URLError, OSError) as exc:  # refused, unreachable, timed out
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{type(exc).__name__}: {reason}") from None


def _robot_reply(kind: ChannelKind, status: int, body: bytes) -> None:
    try:
        reply = json.loads(body or b"{}")
        errcode = int(reply.get("errcode", -1))
    except (ValueError, TypeError, AttributeError):
        raise DeliveryError(f"HTTP {status}: not the robot's JSON reply") from None
    if errcode == 0:
        return
    message = f"errcode {errcode}: {str(reply.get('errmsg', ''))[:200]}"
    if errcode in RATE_LIMITED[kind]:
        raise DeliveryError(message, retry_after_s=60.0)
    if errcode == -1:  # the robot's service is busy: its documented "try again"
        raise DeliveryError(message)
    raise DeliveryError(message, permanent=True)  # wrong key, bad signature, refused content


def _truncate_utf8(text: str, limit: int) -> str:
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode(errors="ignore") + "…"


def send(channel: NotificationChannel, message: Message, *, now: datetime) -> None:
    """Send ``message`` through ``channel``; raises ``DeliveryError``. ``now`` signs DingTalk's
    request (its timestamp must be within an hour of DingTalk's clock)."""
    kind = ChannelKind(channel.kind)
    if kind == ChannelKind.EMAIL:
        _send_email(channel, message)
        return
    url = channel.endpoint()
    if kind == ChannelKind.WECOM:
        body = {"msgtype": "markdown", "markdown": {"content": _truncate_utf8(message.markdown, WECOM_MAX_BYTES)}}
        status, reply = _post_json(
            _with_query(url, [("key", resolve_secret(channel.token))]), json.dumps(body, ensure_ascii=False).encode()
        )
        _robot_reply(kind, status, reply)
    elif kind == ChannelKind.DINGTALK:
        timestamp = int(now.timestamp() * 1000)
        sign = dingtalk_sign(resolve_secret(channel.secret), timestamp)
        target = _with_query(
            url, [("access_token", resolve_secret(channel.token)), ("timestamp", str(timestamp))], raw=f"sign={sign}"
        )
        body = {"msgtype": "markdown", "markdown": {"title": message.title, "text": message.markdown}}
        status, reply = _post_json(target, json.dumps(body, ensure_ascii=False).encode())
        _robot_reply(kind, status, reply)
    else:
        payload = message.as_json()
        headers = (
            {SIGNATURE_HEADER: webhook_signature(resolve_secret(channel.secret), payload)} if channel.secret else {}
        )
        _post_json(url, payload, headers)


def _send_email(channel: NotificationChannel, message: Message) -> None:
    to = sorted({r.email for r in message.recipients if r.email} | set(channel.emails()))
    if not to:
        raise DeliveryError("no recipient has an e-mail address", permanent=True)
    email = EmailMessage(
        subject=message.title,
        body=message.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
        connection=get_connection(fail_silently=False),
    )
    try:
        email.send()
    except OSError as exc:  # smtplib's errors are OSErrors: refused, unreachable, 4xx/5xx
        code = getattr(exc, "smtp_code", 0) or 0
        raise DeliveryError(f"SMTP: {type(exc).__name__}: {exc}"[:300], permanent=500 <= code < 600) from None
