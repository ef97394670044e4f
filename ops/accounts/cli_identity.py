"""Who a ``campuscard`` command acts as (issue 13, defect 7; R-SEC-1): a command that changes
cards acts as an operator only when that operator proves it — their API token in
``CAMPUSCARD_TOKEN`` (or a file named by ``CAMPUSCARD_TOKEN_FILE``: scripts, cron), or their
password typed at the terminal. ``--operator NAME`` alone proves nothing. Each proof and each
refusal is audited."""

from __future__ import annotations

import getpass
import hmac
import os
import sys
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from rest_framework.authtoken.models import Token

from ops.audit import services as audit

TOKEN_ENV = "CAMPUSCARD_TOKEN"  # noqa: S105 (the variable's name, not a secret)


def _token() -> str:
    path = os.environ.get(f"{TOKEN_ENV}_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CommandError(f"{TOKEN_ENV}_FILE={path!r} 无法读取：{exc}") from None
    return os.environ.get(TOKEN_ENV, "").strip()


def _refuse(username: str, why: str) -> CommandError:
    audit.record(actor=None, action="cli.refused", object_type="user", object_id=username, data={"reason": why})
    return CommandError(
        f"无法确认您是操作员 {username}：{why}。请设置 {TOKEN_ENV}（本人的 API 令牌，campuscard api_token 生成），"
        "或在终端中输入本人密码。"
    )


def proven_operator(username: str, *, command: str) -> Any:
    """The active operator ``username``, once proven (token, else a password at a terminal);
    raises ``CommandError`` (audited) otherwise."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise _refuse(username, "没有此有效操作员")
    token = _token()
    if token:
        key = Token.objects.filter(user=user).values_list("key", flat=True).first()
        if key is None or not hmac.compare_digest(key, token):
            raise _refuse(username, "API 令牌不属于此操作员")
        how = "token"
    elif sys.stdin.isatty():
        if not user.check_password(getpass.getpass(f"操作员 {username} 的密码: ")):
            raise _refuse(username, "密码错误")
        how = "password"
    else:
        raise _refuse(username, "未提供 API 令牌，也不在终端中")
    audit.record(
        actor=user,
        action="cli.authenticated",
        object_type="user",
        object_id=username,
        data={"command": command, "by": how},
    )
    return user
