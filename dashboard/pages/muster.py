"""The muster board (紧急清点, issue 17): for each running muster of the viewer's buildings, how
many people are to be accounted for, how many are safe, how many unaccounted — and their names,
live as people tap at the assembly points. Which buildings is decided on the server from the
viewer's role and scope (``muster_scope``), never from the page, which has no input.

Names are shown in full (an emergency; docs/decisions.md "Muster names"), so the board is
computed per page rather than shared between pages: each viewer's first sight of a muster's
names is audited (``record_views``) before they are sent. A muster board is open on a handful of
desks during an emergency, not on fifty all day.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from channels.db import database_sync_to_async
from dash import ctx, html
from dash.exceptions import PreventUpdate
from django.conf import settings
from django.utils.translation import gettext as _

from dashboard.guard import current_scope, language_of
from dashboard.live import live_status, run_feed
from dashboard.muster_board import MusterBoard
from dashboard.pages.common import live_app, page, status_head, tile, viewer_language
from dashboard.paint import Painter
from ops.accounts.permissions import can_lead_musters, muster_scope
from ops.muster.choices import LIVE_GROUP
from ops.muster.selectors import board_snapshot
from ops.muster.services import record_views
from ops.push import current_seq
from ops.redis_client import client

PREFIX = "/live/muster/"
PANELS = "muster-panels"
STATUS = "muster-status"
UNACCOUNTED_SHOWN = 500  # names listed per muster (all are counted; the export has everyone)
SAFE_SHOWN = 200  # the latest to reach an assembly point
TICK_S = 1.0  # the status clock moves even when nobody taps: the board is visibly alive

app = live_app(__name__, prefix=PREFIX, title="紧急清点")


def layout() -> html.Div:
    with viewer_language():
        return page(
            _("紧急清点"),
            status_head(_("进行中的清点"), STATUS, class_name="panel-head panel"),
            html.Div(id=PANELS),
        )


app.layout = layout


def _at(ts: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, tz).strftime("%H:%M:%S")


def _table(headers: list[str], rows: list[html.Tr], table_id: str) -> html.Table:
    return html.Table(
        className="feed", id=table_id, children=[html.Thead(html.Tr([html.Th(h) for h in headers])), html.Tbody(rows)]
    )


def _panel(board: MusterBoard, muster_id: int, tz: ZoneInfo) -> html.Div:
    m = board.musters[muster_id]
    code, marks = m["building"], board.safe[muster_id]
    inside, safe = board.counts(muster_id)
    missing = [p for p in m["persons"] if p["id"] not in marks]
    by_id = {p["id"]: p for p in m["persons"]}
    arrived = sorted(marks.items(), key=lambda kv: -kv[1][0])[:SAFE_SHOWN]
    missing_rows = [
        html.Tr(
            className="unaccounted-row",
            **{"data-holder": p["number"]},
            children=[
                html.Td(p["number"]),
                html.Td(p["name"]),
                html.Td(p["department"]),
                html.Td(p["door"]),
                html.Td(_at(p["entered_at"], tz)),
            ],
        )
        for p in missing[:UNACCOUNTED_SHOWN]
    ]
    safe_rows = [
        html.Tr(
            className="safe-row",
            **{"data-holder": by_id[holder]["number"]},
            children=[
                html.Td(_at(ts, tz)),
                html.Td(by_id[holder]["name"]),
                html.Td(by_id[holder]["number"]),
                html.Td(place),
            ],
        )
        for holder, (ts, place) in arrived
    ]
    more = len(missing) - len(missing_rows)
    data: dict[str, Any] = {"data-building": code, "data-muster": str(muster_id)}  # data-*: no keyword names them
    return html.Div(
        className="panel muster",
        id=f"muster-{code}",
        **data,
        children=[
            html.H3(_("%(building)s · 清点中") % {"building": m["building_name"]}),
            html.P(
                className="muster-meta",
                children=_("原因：%(reason)s · 发起：%(by)s %(at)s")
                % {"reason": m["reason"], "by": m["started_by"], "at": _at(m["started_at"], tz)},
            ),
            html.Div(
                className="tiles",
                children=[
                    tile(_("楼内人数"), str(inside), value_id=f"muster-{code}-inside", class_name="tile small"),
                    tile(_("已确认安全"), str(safe), value_id=f"muster-{code}-safe", class_name="tile small ok"),
                    tile(
                        _("未确认"),
                        str(inside - safe),
                        value_id=f"muster-{code}-unaccounted",
                        class_name="tile small deny",
                    ),
                ],
            ),
            html.Div(
                className="grid",
                children=[
                    html.Div(
                        [
                            html.H4(_("未确认人员")),
                            _table(
                                [_("学工号"), _("姓名"), _("部门/学系"), _("进楼门"), _("进楼时间")],
                                missing_rows,
                                f"muster-{code}-unaccounted-list",
                            ),
                            html.P(_("另有 %(n)s 人未列出，见导出文件") % {"n": more}) if more > 0 else None,
                        ]
                    ),
                    html.Div(
                        [
                            html.H4(_("已确认安全（最新在前）")),
                            _table(
                                [_("时间"), _("姓名"), _("学工号"), _("集合点")], safe_rows, f"muster-{code}-safe-list"
                            ),
                        ]
                    ),
                ],
            ),
            html.P(
                className="muster-links",
                children=[
                    html.A(_("导出 XLSX"), href=f"/muster/{muster_id}/export.xlsx", id=f"muster-{code}-export"),
                    " · ",
                    html.A(_("清点详情 / 结束清点"), href=f"/muster/{muster_id}/"),
                ],
            ),
        ],
    )


def _none(can_lead: bool) -> html.Div:
    children: list[Any] = [html.P(_("当前没有进行中的清点。"), id="muster-none")]
    if can_lead:
        children.append(html.A(_("发起清点"), href="/muster/"))
    return html.Div(className="panel", children=children)


@app.callback(persistent=True)
async def stream_musters() -> None:
    """Runs once per open page over its websocket, for the viewer the server-side session names
    (``RoleGuard``)."""
    ws = ctx.websocket
    if ws is None:
        raise PreventUpdate
    scope = current_scope.get() or {}
    user = scope["user"]
    lang = language_of(scope)
    codes, can_lead = await database_sync_to_async(lambda: (muster_scope(user), can_lead_musters(user)))()
    tz = ZoneInfo(settings.TIME_ZONE)
    painter = Painter(lang)
    audited: set[int] = set()

    def load() -> tuple[int, dict[str, Any]]:
        seq = current_seq(client(), LIVE_GROUP)  # before the snapshot
        return seq, board_snapshot(codes)

    board = MusterBoard(counter=lambda: current_seq(client(), LIVE_GROUP), loader=load)

    def paint_status() -> None:
        now = _at(datetime.now(tz).timestamp(), tz)
        painter.paint(STATUS, (now, getattr(board, "offline", False)), lambda: live_status(board, now))

    async def render(_board: object) -> None:
        new = sorted(set(board.musters) - audited)
        if new:  # the viewer is about to see these musters' names: on the record first
            await database_sync_to_async(record_views)(by=user, muster_ids=new, via="board")
            audited.update(new)
        shown = tuple((m, len(board.safe[m]), board.resyncs) for m in sorted(board.musters))
        painter.paint(
            PANELS,
            shown,
            lambda: {
                "children": [
                    _panel(board, m, tz) for m in sorted(board.musters, key=lambda i: board.musters[i]["building"])
                ]
                or _none(can_lead)
            },
        )
        paint_status()

    def closed() -> bool:
        return bool(ws.is_shutdown)

    async def tick() -> None:
        while not closed():
            await asyncio.sleep(TICK_S)
            paint_status()

    # the feed waits for pushes up to IDLE_REFRESH_S at a time; the clock notices a closed page
    # within a second, and the feed goes with it (its subscription left at once)
    feed = asyncio.ensure_future(run_feed(group=LIVE_GROUP, board=board, load=load, render=render, is_closed=closed))
    clock = asyncio.ensure_future(tick())
    try:
        done, _pending = await asyncio.wait({feed, clock}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # an error of either is the page's error
    finally:
        for task in (feed, clock):
            task.cancel()
        painter.close()
