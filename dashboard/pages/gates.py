"""The security office's desk (R-OPS-2, R-SEC-5): card-misuse alerts that pop with the holder's
photo (blacklist hits, clones, old cards, anti-passback), every gate's state and in/out flow,
the latest taps (holder masked), taps per minute per gate, today's allow/deny totals — all
pushed live, never polled."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
from dash import ctx, dcc, html
from dash.exceptions import PreventUpdate
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from dashboard import alert_view
from dashboard.chart_text import chart_text
from dashboard.gate_board import GateBoard
from dashboard.guard import current_scope, language_of
from dashboard.keyed_board import KeyedBoard
from dashboard.live import live_status, run_feed
from dashboard.pages import replay
from dashboard.pages.common import (
    feed_table,
    grid,
    live_app,
    may_explain,
    page,
    panel,
    status_head,
    tile,
    viewer_language,
    why_denied_url,
)
from dashboard.shared_view import SharedPainter, SharedView
from ops.alerts.choices import SECURITY_KINDS
from ops.alerts.selectors import alert_rows, alert_snapshot
from ops.push import current_seq
from ops.redis_client import client
from ops.registry import selectors
from ops.registry.choices import DIRECTIONS, REASONS, DeviceState
from streams import names
from streams.cards import GATE_KINDS
from streams.reasons import Decision

PREFIX = "/live/gates/"
CHART_MINUTES = 30
CHART_EVERY_S = 2.0  # per-minute bars: no need to redraw them at the feed's 4 frames/s
GRID_EVERY_S = 1.0
DESK_FRAME_S = 0.1  # rendered once per process for all pages: a short frame is affordable
TOTALS_EVERY_S = 0.5  # the counters: every browser message costs a dash-renderer walk

# component ids
TOTAL_ALLOW = "gates-total-allow"
TOTAL_DENY = "gates-total-deny"
DENY_REASONS = "gates-deny-reasons"
CHART = "gates-per-minute"
FEED = "gates-feed"  # a dcc.Store of plain rows; assets/feed.js draws them
FEED_BODY = "gates-feed-body"
STATUS = "gates-status"
ALERTS = "gates-alerts"
GRID = "gates-grid"
SECURITY = frozenset(k.value for k in SECURITY_KINDS)

app = live_app(__name__, prefix=PREFIX, title="校门通行实时监控")


def layout() -> html.Div:
    with viewer_language():
        why: Any = _("为什么被拒绝？") if may_explain() else ""  # the link's words; "" for who may not ask
        return page(
            _("校门通行实时监控"),
            *alert_view.alarm_components(),
            dcc.Store(id=FEED),  # drawn by assets/feed.js at each frame, not by dash-renderer
            grid(
                panel(_("安全告警（黑名单、克隆卡、旧卡、防潜回）"), html.Div(id=ALERTS, className="security-alerts")),
                panel(_("闸机状态与近5分钟进出"), html.Div(id=GRID, className="devgrid")),
            ),
            html.Div(
                className="tiles",
                children=[
                    tile(_("今日通过"), "—", value_id=TOTAL_ALLOW, class_name="tile ok"),
                    tile(_("今日拒绝"), "—", value_id=TOTAL_DENY, class_name="tile deny"),
                    tile(_("拒绝原因"), None, value_id=DENY_REASONS, class_name="tile wide", value_class="reasons"),
                ],
            ),
            grid(
                panel(
                    _("各闸机每分钟刷卡次数（近30分钟）"),
                    dcc.Graph(id=CHART, config={"displayModeBar": False}, figure=go.Figure(layout={"height": 520})),
                ),
                panel(
                    status_head(_("最新刷卡"), STATUS),
                    feed_table(
                        [_("时间"), _("闸机"), _("持卡人"), _("卡号"), _("方向"), _("结果")],
                        # issue 19, item 5: feed.js adds this link to denied rows, for who may ask
                        html.Tbody(id=FEED_BODY, **{"data-why": why}),
                    ),
                    class_name="panel feed-panel",
                ),
            ),
            replay.panel(),
        )


app.layout = layout
alert_view.install_alarm(app)


def _load() -> tuple[int, dict[str, Any]]:
    seq = current_seq(client(), names.GROUP_GATES)  # before the snapshot: see GateBoard
    snapshot = selectors.gate_snapshot(rows=settings.LIVE_FEED_ROWS, minutes=CHART_MINUTES)
    snapshot["gates"] = {g["code"]: g["name"] for g in selectors.gate_devices()}
    return seq, snapshot


def _alerts_load() -> tuple[int, dict[str, Any]]:
    seq = current_seq(client(), names.GROUP_ALERTS)
    return seq, alert_snapshot(kinds=SECURITY)


def _gate_health(ids: list[int] | None = None) -> dict[int, dict[str, Any]]:
    return {pk: d for pk, d in selectors.device_health(ids).items() if d["kind"] in GATE_KINDS}


def _gates_load() -> tuple[int, dict[str, Any]]:
    seq = current_seq(client(), names.GROUP_DEVICES)
    return seq, {"rows": list(_gate_health().values())}


def _gate_cell(d: dict[str, Any], board: GateBoard, *, now: float | None = None) -> html.Div:
    came_in, went_out = board.flow(d["code"], now=time.time() if now is None else now)
    return html.Div(
        className=f"dev {d['state']}",
        id=f"gate-{d['code']}",
        **{"data-state": d["state"]},
        children=[
            html.Div(d["name"], className="dev-code"),
            html.Div(str(DeviceState(d["state"]).label)),
            html.Div(_("进 %(i)s · 出 %(o)s") % {"i": came_in, "o": went_out}, className="flow"),
        ],
    )


def _reason_chip(reason: str, count: int) -> html.Span:
    return html.Span(f"{REASONS.label(reason)} {count}", className="reason")


def _feed_row(row: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """A tap as the browser's feed table draws it (assets/feed.js): its id, classes, cells."""
    tr = _row(row, tz)
    classes = tr.className  # type: ignore[attr-defined]  # Dash sets a component's props as attributes at runtime
    drawn = {"data-event": row["id"], "k": classes, "c": [str(td.children) for td in tr.children]}
    if row["decision"] != Decision.ALLOW:  # drawn as a link where the viewer may ask (feed.js)
        drawn["w"] = why_denied_url(row["id"])
    return drawn


def _row(row: dict[str, Any], tz: ZoneInfo) -> html.Tr:
    allowed = row["decision"] == Decision.ALLOW
    denied = _("拒绝")
    result = _("允许") if allowed else f"{denied} · {REASONS.label(row['reason'])}"
    classes = "tap-row " + ("allow" if allowed else "deny")
    if row["reason"] == "blacklisted":
        classes += " alarm"
    # data-event: the tap's id, so a test or `bench fanout` can tell when a tap reached a page
    return html.Tr(
        className=classes,
        **{"data-event": row["id"]},
        children=[
            html.Td(datetime.fromtimestamp(row["ts"], tz).strftime("%H:%M:%S")),
            html.Td(row["device_name"]),
            html.Td(row["holder"] or _("（未知）")),
            html.Td(row["card"]),
            html.Td(str(DIRECTIONS.label(row["direction"]))),
            html.Td(result),
        ],
    )


def _figure(board: GateBoard, gate_names: dict[str, str], tz: ZoneInfo) -> dict[str, Any]:
    """The chart as the JSON data Dash sends for it: exactly what ``go.Figure`` with one
    stacked bar trace per gate serialises to (tests/test_bench_fanout.py compares the two),
    without plotly's per-call validation and copying — ~30 ms per page per frame, most of the
    page's cost with 50 desks open (docs/benchmarks.md, ``bench fanout``)."""
    data = []
    for code in sorted(board.counts):
        per = board.counts[code]
        minutes = sorted(per)
        data.append(
            {
                "name": chart_text(gate_names.get(code, code)),  # a device's name is text, never markup
                "x": [datetime.fromtimestamp(m * 60, tz) for m in minutes],
                "y": [per[m] for m in minutes],
                "type": "bar",
            }
        )
    return {
        "data": data,
        "layout": {  # in plotly's key order: the same bytes on the wire
            "template": _default_template(),
            "margin": {"l": 40, "r": 10, "t": 10, "b": 40},
            "legend": {"orientation": "h", "y": -0.2},
            "xaxis": {"tickformat": "%H:%M"},
            "barmode": "stack",
            "height": 520,
            "uirevision": "keep",
            "yaxis": {"title": {"text": chart_text(_("次/分钟"))}},
        },
    }


@functools.cache
def _default_template() -> dict[str, Any]:
    """The default plotly template every ``go.Figure`` carries (built once; never mutated)."""
    return _plain(go.Figure().to_plotly_json()["layout"]["template"])


# Each open page redraws up to 4×/s, so the values pushed are plain JSON data, and a row or
# cell is turned into it once per process and shared by every page showing it (bounded).
_PLAIN: dict[tuple[Any, ...], Any] = {}
_PLAIN_MAX = 4096


def _plain(value: Any) -> Any:
    """A component tree (or figure) as the JSON data Dash serialises it to."""
    if hasattr(value, "to_plotly_json"):
        return _plain(value.to_plotly_json())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _shared(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    """``_plain(build())``, computed once per ``key`` (which must name everything ``build``
    reads, the UI language included) and reused."""
    try:
        return _PLAIN[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable value in the key: build it every time
        return _plain(build())
    if len(_PLAIN) >= _PLAIN_MAX:
        del _PLAIN[next(iter(_PLAIN))]  # the oldest: rows leave every page in arrival order
    value = _PLAIN[key] = _plain(build())
    return value


def _replay_row(row: dict[str, Any], tz: ZoneInfo) -> html.Tr:
    """A replayed tap (drawn for one viewer): a denied one links to 为什么被拒绝？ where the viewer
    may ask (issue 19, item 5)."""
    tr = _row(row, tz)
    if row["decision"] != Decision.ALLOW and may_explain():
        last = tr.children[-1]
        last.children = [
            f"{last.children} ",
            html.A(_("为什么被拒绝？"), href=why_denied_url(row["id"]), className="why-denied"),
        ]
    return tr


replay.install(app, _replay_row)


@app.callback(persistent=True)
async def stream_gate_traffic() -> None:
    """Runs once per open page over its websocket: the desk's shared view (one per server
    process and language, ``dashboard/shared_view.py``) sends it every change until it closes."""
    ws = ctx.websocket
    if ws is None:
        raise PreventUpdate  # no websocket (very old browser): never loop in a POST
    lang = language_of(current_scope.get())
    await SharedView.serve(ws, ("security-desk", lang), lang, _run_desk, transient=frozenset({alert_view.ALARM}))


async def _run_desk(paint: SharedPainter, closed: Callable[[], bool]) -> None:
    """The security desk's feeds, rendered once for every page of this language."""
    lang = paint.lang
    tz = ZoneInfo(settings.TIME_ZONE)
    board = GateBoard(max_rows=settings.LIVE_FEED_ROWS, minutes=CHART_MINUTES, tz=tz)
    gate_names: dict[str, str] = {}

    def load() -> tuple[int, dict[str, Any]]:
        seq, snapshot = _load()
        gate_names.update(snapshot["gates"])
        return seq, snapshot

    async def render(_board: object) -> None:
        with translation.override(lang):
            totals = board.totals
            allow, deny = totals["allow"], totals["deny"]
            paint.paint(TOTAL_ALLOW, allow, lambda: {"children": f"{allow:,}"}, every=TOTALS_EVERY_S)
            paint.paint(TOTAL_DENY, deny, lambda: {"children": f"{deny:,}"}, every=TOTALS_EVERY_S)
            reasons = sorted(totals["reasons"].items(), key=lambda kv: -kv[1])
            paint.paint(
                DENY_REASONS,
                tuple(reasons),
                every=TOTALS_EVERY_S,
                build=lambda: {
                    "children": [
                        _shared(("reason", lang, r, n), functools.partial(_reason_chip, r, n)) for r, n in reasons
                    ]
                },
            )
            top = board.rows[0]["id"] if board.rows else None
            paint.paint(
                FEED,
                (top, len(board.rows), board.resyncs),
                lambda: {
                    "data": [
                        _shared(("feed", lang, tz.key, row["id"]), functools.partial(_feed_row, row, tz))
                        for row in board.rows
                    ]
                },
            )
            # the chart counts per minute: redrawn at most every CHART_EVERY_S (Plotly's redraw
            # is the costliest thing a desk's browser does), and when the minute turns
            paint.paint(
                CHART,
                (board.seq, int(time.time() // 60), board.resyncs),  # a push applied: seq moved on
                lambda: {"figure": _figure(board, gate_names, tz)},
                every=CHART_EVERY_S,
            )
            now = datetime.now(tz).strftime("%H:%M:%S")
            paint.paint(STATUS, (now, getattr(_board, "offline", False)), lambda: live_status(_board, now))

    alerts = KeyedBoard(fetch=lambda ids: alert_rows(ids, kinds=SECURITY))
    gates = KeyedBoard(fetch=_gate_health, limit=100_000)
    seen: set[int] = set()
    loaded, alarms = False, 0

    async def render_alerts(_board: object) -> None:
        nonlocal loaded, alarms
        rows = alert_view.security_order(list(alerts.rows.values()))[:30]  # blacklist hits on top (issue 19)
        new = {r["id"] for r in rows if r["id"] not in seen and alert_view.is_loud(r)} if loaded else set()
        seen.update(r["id"] for r in rows)
        loaded = True
        with translation.override(lang):
            shown = tuple((r["id"] in new, *r.items()) for r in rows)
            paint.paint(
                ALERTS,
                shown,
                lambda: {
                    "children": [
                        _shared(
                            ("alert", lang, tz.key, r["id"] in new, *r.items()),
                            functools.partial(alert_view.alert_item, r, tz, new=r["id"] in new, photo=True),
                        )
                        for r in rows
                    ]
                    or html.P(_("暂无安全告警"), className="status")
                },
            )
        if new:
            alarms += 1
            paint.paint(alert_view.ALARM, alarms, lambda: {"data": alarms})

    async def render_grid(_board: object) -> None:
        with translation.override(lang):
            now = time.time()
            cells = [(d, board.flow(d["code"], now=now)) for d in sorted(gates.rows.values(), key=lambda d: d["code"])]
            shown = tuple((d["code"], d["state"], d["name"], flow) for d, flow in cells)
            paint.paint(
                GRID,
                shown,
                lambda: {
                    "children": [
                        _shared(("cell", lang, *d.items(), *flow), functools.partial(_gate_cell, d, board, now=now))
                        for d, flow in cells
                    ]
                },
                every=GRID_EVERY_S,
            )

    async def render_all(_board: object) -> None:
        await render(_board)
        await render_grid(_board)

    await asyncio.gather(
        run_feed(
            group=names.GROUP_GATES, board=board, load=load, render=render_all, is_closed=closed, frame_s=DESK_FRAME_S
        ),
        run_feed(
            group=names.GROUP_ALERTS,
            board=alerts,
            load=_alerts_load,
            render=render_alerts,
            is_closed=closed,
            frame_s=DESK_FRAME_S,
        ),
        run_feed(group=names.GROUP_DEVICES, board=gates, load=_gates_load, render=render_grid, is_closed=closed),
    )
