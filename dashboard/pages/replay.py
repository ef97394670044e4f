"""Look back and replay (R-OPS-2): pick a past period on the security desk, see its traffic
per gate, then step or play through it — the feed and totals as they stood at each moment.
The live part of the page keeps running beside it.

The browser holds only the chart's bars (bounded by ``history_bucket``); the feed at a replay
position is fetched from the server per step (the latest rows up to that moment), so a week
replays in the same memory as an hour."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
from channels.db import database_sync_to_async
from dash import Dash, Input, Output, State, dcc, html, no_update
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from dashboard.chart_text import chart_text
from dashboard.guard import current_scope, language_of
from ops.registry import selectors
from ops.registry.choices import REASONS

FROM, TO, LOAD = "replay-from", "replay-to", "replay-load"
CHART, SLIDER, PLAY, TICK = "replay-chart", "replay-slider", "replay-play", "replay-tick"
RANGE, MESSAGE, AT, FEED, TOTALS = ("replay-range", "replay-message", "replay-at", "replay-feed", "replay-totals")
FORMAT = "%Y-%m-%dT%H:%M"


def panel() -> html.Div:
    tz = ZoneInfo(settings.TIME_ZONE)
    now = datetime.now(tz).replace(second=0, microsecond=0)
    return html.Div(
        className="panel replay",
        children=[
            html.H3(_("回看与回放")),
            html.Div(
                className="replay-controls",
                children=[
                    html.Label(
                        [
                            _("从"),
                            dcc.Input(
                                id=FROM,
                                type="datetime-local",  # type: ignore[arg-type]  # dcc.Input renders any input type; its Literal omits this one
                                value=(now - timedelta(hours=1)).strftime(FORMAT),
                            ),
                        ]
                    ),
                    html.Label(
                        [
                            _("到"),
                            dcc.Input(
                                id=TO,
                                type="datetime-local",  # type: ignore[arg-type]  # dcc.Input renders any input type; its Literal omits this one
                                value=now.strftime(FORMAT),
                            ),
                        ]
                    ),
                    html.Button(_("查看"), id=LOAD, n_clicks=0),
                    html.Button(_("播放/暂停"), id=PLAY, n_clicks=0),
                    html.Span(id=MESSAGE, className="replay-message"),
                ],
            ),
            dcc.Store(id=RANGE),
            dcc.Interval(id=TICK, interval=1000, disabled=True),
            dcc.Graph(id=CHART, config={"displayModeBar": False}, figure=empty_chart(now - timedelta(hours=1), now)),
            dcc.Slider(id=SLIDER, min=0, max=1, step=1, value=0, marks=None, tooltip={"placement": "bottom"}),
            html.Div(
                className="replay-state", children=[html.Strong(id=AT), html.Span(id=TOTALS, className="replay-totals")]
            ),
            html.Table(className="feed", children=[html.Tbody(id=FEED)]),
        ],
    )


def _layout(fig: go.Figure, start: datetime, end: datetime) -> go.Figure:
    """The chart's frame (issue 19, item 10): the x axis is the chosen window's time, the y axis
    counts from 0 — the same for an empty period as for a busy one."""
    fig.update_layout(
        barmode="stack",
        height=260,
        margin={"l": 40, "r": 10, "t": 10, "b": 30},
        legend={"orientation": "h", "y": -0.25},
        # times in figures, not Plotly's English month names ("Dec 7, 2026")
        xaxis={
            "type": "date",
            "range": [start, end],
            "tickformat": "%H:%M" if end - start <= timedelta(days=1) else "%m-%d %H:%M",
        },
        yaxis={"rangemode": "tozero"},
    )
    return fig


def empty_chart(start: datetime, end: datetime) -> go.Figure:
    """A period with no taps (or none loaded yet): its window on the x axis, y from 0 to 1 and
    "无数据" in the middle — not Plotly's empty default of axes −1…6."""
    fig = _layout(go.Figure(), start, end)
    fig.update_layout(
        yaxis={"range": [0, 1], "dtick": 1},
        annotations=[
            {
                "text": chart_text(_("无数据")),
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "showarrow": False,
                "font": {"size": 16, "color": "#889"},
            }
        ],
    )
    return fig


def _parse(value: str | None, tz: ZoneInfo) -> datetime | None:
    try:
        return datetime.strptime(value or "", FORMAT).replace(tzinfo=tz)
    except ValueError:
        return None


def install(app: Dash, render_row: Any) -> None:
    @app.callback(
        Output(CHART, "figure"),
        Output(SLIDER, "min"),
        Output(SLIDER, "max"),
        Output(SLIDER, "step"),
        Output(SLIDER, "value"),
        Output(RANGE, "data"),
        Output(MESSAGE, "children"),
        Input(LOAD, "n_clicks"),
        State(FROM, "value"),
        State(TO, "value"),
        prevent_initial_call=True,
    )
    async def load(_clicks: int, start_text: str, end_text: str) -> tuple[Any, ...]:
        tz = ZoneInfo(settings.TIME_ZONE)
        with translation.override(language_of(current_scope.get())):
            start, end = _parse(start_text, tz), _parse(end_text, tz)
            problem = None
            if start is None or end is None:
                problem = _("请填写完整的起止时间")
            elif end <= start:
                problem = _("结束时间必须晚于开始时间")
            elif end - start > selectors.MAX_LOOKBACK:
                problem = _("一次最多回看 7 天")
            if problem:
                return (no_update,) * 6 + (html.Span(problem, className="error"),)
            assert start is not None and end is not None
            history = await database_sync_to_async(selectors.gate_history)(start, end)
            total = sum(sum(p.values()) for p in history["counts"].values())
            fig = _layout(go.Figure(), start, end) if total else empty_chart(start, end)
            for name in sorted(history["counts"]):
                per = history["counts"][name]
                slots = sorted(per)
                x = [datetime.fromtimestamp(s, tz) for s in slots]
                fig.add_bar(name=chart_text(name), x=x, y=[per[s] for s in slots])  # a name is text, not markup
            fig.update_layout(yaxis={"title": chart_text(_("次/%(n)s分钟") % {"n": history["bucket"] // 60})})
            lo, hi, step = start.timestamp(), end.timestamp(), history["bucket"]
            return (
                fig,
                lo,
                hi,
                step,
                lo,
                {"start": lo, "end": hi, "step": step},
                _("共 %(n)s 次刷卡；拖动滑块或点“播放”回放") % {"n": f"{total:,}"},
            )

    @app.callback(
        Output(FEED, "children"),
        Output(AT, "children"),
        Output(TOTALS, "children"),
        Input(SLIDER, "value"),
        State(RANGE, "data"),
        prevent_initial_call=True,
    )
    async def position(at: float, period: dict[str, float] | None) -> tuple[Any, ...]:
        if not period:
            return no_update, no_update, no_update
        tz = ZoneInfo(settings.TIME_ZONE)
        start = datetime.fromtimestamp(period["start"], tz)
        moment = datetime.fromtimestamp(max(min(at, period["end"]), period["start"]), tz)
        state = await database_sync_to_async(selectors.gate_state_at)(start, moment, rows=settings.LIVE_FEED_ROWS)
        with translation.override(language_of(current_scope.get())):
            reasons = "，".join(
                f"{REASONS.label(r)} {n}" for r, n in sorted(state["reasons"].items(), key=lambda kv: -kv[1])
            )
            totals = _("通过 %(a)s · 拒绝 %(d)s") % {"a": state["allow"], "d": state["deny"]}
            return (
                [render_row(r, tz) for r in state["rows"]],
                _("回放至 %(t)s") % {"t": f"{moment:%m-%d %H:%M}"},
                f"{totals}{'（' + reasons + '）' if reasons else ''}",
            )

    @app.callback(
        Output(TICK, "disabled"),
        Input(PLAY, "n_clicks"),
        State(TICK, "disabled"),
        State(RANGE, "data"),
        prevent_initial_call=True,
    )
    async def play(_clicks: int, disabled: bool, period: dict[str, float] | None) -> bool:
        return not disabled if period else True

    @app.callback(
        Output(SLIDER, "value", allow_duplicate=True),
        Input(TICK, "n_intervals"),
        State(SLIDER, "value"),
        State(RANGE, "data"),
        prevent_initial_call=True,
    )
    async def advance(_n: int, at: float, period: dict[str, float] | None) -> Any:
        if not period or at >= period["end"]:
            return no_update
        return min(at + period["step"], period["end"])
