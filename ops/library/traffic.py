"""The SIP2 server's traffic, counted per local day in Redis (the Library's workbench shows
today's): one hash per day, kept a week. Counting never holds up an answer: a Redis that is
down costs the count, not the library's desk."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import redis
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ops.redis_client import client

log = logging.getLogger(__name__)

KEY = "campuscard:sip2:traffic:{day}"
KEEP = timedelta(days=8)

# What is counted, in the order the workbench shows it, with its label.
KINDS = {
    "login_ok": _("登录成功"),
    "login_failed": _("登录失败（已拒绝）"),
    "not_logged_in": _("未登录的请求（已拒绝并断开）"),
    "sc_status": _("状态查询（99）"),
    "patron_status": _("读者状态查询（23）"),
    "patron_information": _("读者信息查询（63）"),
    "valid": _("答复：有效，可借阅"),
    "refused": _("答复：不能借阅（挂失、注销、过期、黑名单、临时卡）"),
    "unknown_patron": _("答复：查无此读者"),
    "resend": _("校验和错误，要求重发（96）"),
}


def key_for(day: date) -> str:
    return KEY.format(day=day.isoformat())


class Counter:
    """Counts into one Redis client (made on first use)."""

    def __init__(self, redis_client: redis.Redis | None = None) -> None:
        self._client = redis_client

    def count(self, *kinds: str) -> None:
        try:
            self._client = self._client or client()
            key = key_for(timezone.localdate())
            pipe = self._client.pipeline(transaction=False)
            for kind in kinds:
                pipe.hincrby(key, kind, 1)
            pipe.expire(key, KEEP)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("sip2 traffic not counted (%s): %s", ", ".join(kinds), exc)


def today(redis_client: redis.Redis | None = None) -> list[tuple[str, str, int]]:
    """(kind, label, count) for today, every kind, in order."""
    raw = (redis_client or client()).hgetall(key_for(timezone.localdate()))
    counts = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
    return [(kind, str(label), counts.get(kind, 0)) for kind, label in KINDS.items()]
