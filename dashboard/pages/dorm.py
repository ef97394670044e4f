"""The dorm manager's desk (R-OPS-4): door activity of *their own* buildings, live — residents
inside now, late returns after curfew, residents not seen for N days. Which buildings is decided
on the server from the operator's scope (``RoleGuard`` puts it in the ASGI scope); nothing the
browser sends can widen it: the page has no input, and its one callback ignores what it is
sent."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import ctx, html
from dash.exceptions import PreventUpdate
from django.conf import settings
from django.utils.translation import gettext as _

from dashboard.dorm_board import DormBoard
from dashboard.guard import current_scope, language_of, role_in
from dashboard.live import live_status, run_feed
from dashboard.pages.common import (
    feed_table,
    live_app,
    may_explain,
    page,
    status_head,
    tile,
    viewer_language,
    why_denied_url,
)
from dashboard.shared_view import SharedPainter, SharedView
from ops.accounts.roles import Role
from ops.push import current_seq
from ops.redis_client import client
from ops.registry.choices import DIRECTIONS
from ops.registry.dorm import dorm_snapshot
from ops.registry.models import Building
from streams import names
from streams.reasons import Decision

PREFIX = "/live/dorm/"
PANELS = "dorm-panels"
STATUS = "dorm-status"

app = live_app(__name__, prefix=PREFIX, title="宿舍门禁")


def layout() -> html.Div:
    with viewer_language():
        return page(
            _("宿舍门禁实时"),
            status_head(_("我负责的楼宇"), STATUS, class_name="panel-head panel"),
            html.Div(id=PANELS),
        )


app.layout = layout


def buildings_in_scope(scope: dict[str, Any] | None) -> list[str]:
    """The viewer's buildings: a dorm manager's own, or every dorm building for NIC."""
    codes = scope.get("campuscard_buildings") if scope else []
    if codes is None:  # NIC: all
        return list(Building.objects.filter(is_dorm=True).order_by("code").values_list("code", flat=True))
    return list(codes)


def _result(row: dict[str, Any], why: bool) -> list[Any] | str:
    """允许, or 拒绝 — with 为什么被拒绝？ for who may ask (issue 19, item 5)."""
    if row["decision"] == Decision.ALLOW:
        return _("允许")
    if not why:
        return _("拒绝")
    return [_("拒绝") + " ", html.A(_("为什么被拒绝？"), href=why_denied_url(row["id"]), className="why-denied")]


def _panel(board: DormBoard, tz: ZoneInfo, with_names: bool, why: bool = False) -> html.Div:
    info, code = board.info, board.building
    tiles = [
        (_("在楼人数"), f"{len(board.inside)} / {info['residents']}", "inside"),
        (_("今日晚归"), str(board.late_count), "late"),
        (_("%(n)s天未出现") % {"n": info["not_seen_days"]}, str(info["not_seen"]), "not-seen"),
    ]
    feed = [
        html.Tr(
            className="tap-row" + ("" if r["decision"] == Decision.ALLOW else " deny"),
            **{"data-event": r["id"]},
            children=[
                html.Td(datetime.fromtimestamp(r["ts"], tz).strftime("%H:%M:%S")),
                html.Td(r["device_name"]),
                html.Td(r["holder"] or _("（未知）")),
                html.Td(str(DIRECTIONS.label(r["direction"]))),
                html.Td(_result(r, why)),
            ],
        )
        for r in board.rows
    ]
    extra: list[Any] = []
    if board.late:
        extra.append(
            html.Div(
                className="late",
                children=[
                    html.H4(_("晚归记录")),
                    html.Ul(
                        [
                            html.Li(f"{datetime.fromtimestamp(r['ts'], tz):%H:%M} {r['holder']} · {r['device']}")
                            for r in board.late[-20:]
                        ]
                    ),
                ],
            )
        )
    if with_names and info["not_seen_names"]:
        extra.append(
            html.Div(
                className="not-seen",
                children=[
                    html.H4(_("%(n)s天未出现的住宿生") % {"n": info["not_seen_days"]}),
                    html.P("、".join(info["not_seen_names"])),
                ],
            )
        )
    data: dict[str, Any] = {"data-building": code}  # a data-* attribute: no keyword can name it
    return html.Div(
        className="panel dorm",
        id=f"dorm-{code}",
        **data,
        children=[
            html.H3(info["name"]),
            html.Div(
                className="tiles",
                children=[
                    tile(label, value, value_id=f"dorm-{code}-{key}", class_name="tile small")
                    for label, value, key in tiles
                ],
            ),
            html.Div(
                className="grid",
                children=[
                    feed_table([_("时间"), _("门"), _("持卡人"), _("方向"), _("结果")], html.Tbody(feed)),
                    html.Div(extra),
                ],
            ),
        ],
    )


@app.callback(persistent=True)
async def stream_dorm_doors() -> None:
    """Runs once per open page over its websocket. Pages whose viewers have the same scope (the
    same buildings, names or not) and language share one view (``dashboard/shared_view.py``);
    the scope comes from the server-side session (``RoleGuard``), never from the page."""
    ws = ctx.websocket
    if ws is None:
        raise PreventUpdate
    scope = current_scope.get()
    lang = language_of(scope)
    # names of residents not seen: dorm managers (their own residents); others see counts
    with_names = role_in(scope) == Role.DORM_MANAGER
    why = may_explain()  # denied rows link to 为什么被拒绝？ (issue 19, item 5)
    from channels.db import database_sync_to_async

    codes = tuple(await database_sync_to_async(buildings_in_scope)(scope))
    await SharedView.serve(
        ws,
        ("dorm-desk", lang, with_names, why, codes),
        lang,
        functools.partial(_run_desk, codes=codes, with_names=with_names, why=why),
    )


async def _run_desk(
    paint: SharedPainter, closed: Callable[[], bool], *, codes: tuple[str, ...], with_names: bool, why: bool = False
) -> None:
    tz = ZoneInfo(settings.TIME_ZONE)
    boards = {code: DormBoard(building=code, max_rows=settings.LIVE_FEED_ROWS, tz=tz) for code in codes}

    async def render(_board: object) -> None:
        shown = tuple(
            (c, b.rows[0]["id"] if b.rows else None, len(b.rows), len(b.inside), b.late_count, b.resyncs)
            for c, b in boards.items()
            if b.info
        )
        paint.paint(
            PANELS,
            shown,
            lambda: {
                "children": [_panel(boards[c], tz, with_names, why) for c in codes if boards[c].info]
                or html.P(_("您没有负责的楼宇，请联系网信中心分配。"))
            },
        )
        now = f"{datetime.now(tz):%H:%M:%S}"
        paint.paint(STATUS, (now, getattr(_board, "offline", False)), lambda: live_status(_board, now))

    def loader(code: str) -> Callable[[], tuple[int, dict[str, Any]]]:
        def load() -> tuple[int, dict[str, Any]]:
            seq = current_seq(client(), names.dorm_group(code))
            return seq, dorm_snapshot(
                code, rows=settings.LIVE_FEED_ROWS, not_seen_days=settings.DORM_NOT_SEEN_DAYS, with_names=with_names
            )

        return load

    if not codes:
        await render(None)
        while not closed():  # nothing to watch; the view ends with its last page
            await asyncio.sleep(5)
        return
    await asyncio.gather(
        *[
            run_feed(
                group=names.dorm_group(code), board=boards[code], load=loader(code), render=render, is_closed=closed
            )
            for code in codes
        ]
    )
