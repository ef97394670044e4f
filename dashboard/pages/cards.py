"""Card-management actions, live (R-OPS-5): issuance, loss, found, replacement, cancellation…
with today's count per action — beside the gate traffic, pushed, never polled."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import ctx, html, set_props
from dash.exceptions import PreventUpdate
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from dashboard.card_board import CardBoard
from dashboard.guard import current_scope, language_of
from dashboard.live import live_status, run_feed
from dashboard.pages.common import feed_table, live_app, page, status_head, viewer_language
from ops.push import current_seq
from ops.redis_client import client
from ops.registry.choices import CARD_STATUSES
from ops.registry.lifecycle.choices import Action
from ops.registry.lifecycle.selectors import card_action_snapshot
from streams import names

PREFIX = "/live/cards/"
COUNTS = "cards-counts"
FEED = "cards-feed"
STATUS = "cards-status"

app = live_app(__name__, prefix=PREFIX, title="卡务动态")


def layout() -> html.Div:
    with viewer_language():
        return page(
            _("卡务动态"),
            html.Div(id=COUNTS, className="tiles"),
            html.Div(
                className="panel",
                children=[
                    status_head(_("最新卡务"), STATUS),
                    feed_table(
                        [
                            _("时间"),
                            _("操作"),
                            _("持卡人"),
                            _("卡号"),
                            _("状态"),
                            _("操作员"),
                        ],
                        html.Tbody(id=FEED),
                    ),
                ],
            ),
        )


app.layout = layout


def _load() -> tuple[int, dict[str, Any]]:
    seq = current_seq(client(), names.GROUP_CARD_ACTIONS)  # before the snapshot
    return seq, card_action_snapshot(rows=settings.LIVE_FEED_ROWS)


def _label(action: str) -> str:
    try:
        return str(Action(action).label)
    except ValueError:
        return {"graduation": _("毕业注销/延期")}.get(action, action)


def _status(status: str) -> str:
    """The card's status in the operator's words (issue 19, item 6: the feed showed ``lost``)."""
    try:
        return CARD_STATUSES.label(status)
    except ValueError:
        return status or "—"


@app.callback(persistent=True)
async def stream_card_actions() -> None:
    ws = ctx.websocket
    if ws is None:
        raise PreventUpdate
    lang = language_of(current_scope.get())
    tz = ZoneInfo(settings.TIME_ZONE)
    board = CardBoard(max_rows=settings.LIVE_FEED_ROWS, tz=tz)

    async def render(_board: object) -> None:
        with translation.override(lang):
            set_props(
                COUNTS,
                {
                    "children": [
                        html.Div(
                            className="tile",
                            children=[
                                html.Div(_("今日%(action)s") % {"action": _label(a)}, className="tile-label"),
                                html.Div(str(n), className="tile-value", id=f"cards-count-{a}"),
                            ],
                        )
                        for a, n in sorted(board.counts.items(), key=lambda kv: -kv[1])
                    ]
                    or [html.Div(_("今日暂无卡务"), className="tile")]
                },
            )
            set_props(
                FEED,
                {
                    "children": [
                        html.Tr(
                            className="card-row",
                            children=[
                                html.Td(datetime.fromtimestamp(r["ts"], tz).strftime("%H:%M:%S")),
                                html.Td(_label(r["action"])),
                                html.Td(r["holder"]),
                                html.Td(r["card"]),
                                html.Td(_status(r["status"])),
                                html.Td(r["operator"]),
                            ],
                        )
                        for r in board.rows
                    ]
                },
            )
            set_props(STATUS, live_status(_board, f"{datetime.now(tz):%H:%M:%S}"))

    await run_feed(
        group=names.GROUP_CARD_ACTIONS, board=board, load=_load, render=render, is_closed=lambda: ws.is_shutdown
    )
