"""The NIC desk (R-OPS-3, R-DEV-2): every device's health, live, and the device alerts with their
workflow state — grouped by building, open and escalated first, new critical ones flashing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from channels.db import database_sync_to_async
from dash import ctx, html
from dash.exceptions import PreventUpdate
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from dashboard import alert_view
from dashboard.guard import current_scope, language_of
from dashboard.keyed_board import KeyedBoard
from dashboard.live import live_status, run_feed
from dashboard.pages.common import grid, live_app, page, panel, status_head, tile, viewer_language
from dashboard.shared_view import SharedPainter, SharedView
from ops.alerts.choices import SECURITY_KINDS, AlertKind, AlertStatus
from ops.alerts.selectors import alert_rows, alert_snapshot, response_times
from ops.push import current_seq
from ops.redis_client import client
from ops.registry import selectors
from ops.registry.choices import DeviceState
from streams import names

PREFIX = "/live/devices/"
DEVICE_KINDS = frozenset(k.value for k in AlertKind) - {k.value for k in SECURITY_KINDS}

KPIS = "nic-kpis"
DEVICES = "nic-devices"
ALERTS = "nic-alerts"
STATUS = "nic-status"

app = live_app(__name__, prefix=PREFIX, title="网信中心设备值班台")


def layout() -> html.Div:
    with viewer_language():
        return page(
            _("网信中心设备值班台"),
            *alert_view.alarm_components(),
            html.Div(id=KPIS, className="tiles"),
            grid(
                panel(status_head(_("设备告警（按楼宇）"), STATUS), html.Div(id=ALERTS)),
                panel(_("设备状态"), html.Div(id=DEVICES)),
            ),
        )


app.layout = layout
alert_view.install_alarm(app)


def _alerts_load() -> tuple[int, dict[str, Any]]:
    seq = current_seq(client(), names.GROUP_ALERTS)
    return seq, alert_snapshot(kinds=DEVICE_KINDS)


def _devices_load() -> tuple[int, dict[str, Any]]:
    seq = current_seq(client(), names.GROUP_DEVICES)
    return seq, {"rows": list(selectors.device_health().values())}


def _ago(ts: float | None) -> str:
    if ts is None:
        return _("从未上线")
    seconds = max(int(time.time() - ts), 0)
    if seconds < 120:
        return _("%(n)s秒前") % {"n": seconds}
    if seconds < 7200:
        return _("%(n)s分钟前") % {"n": seconds // 60}
    return _("%(n)s小时前") % {"n": seconds // 3600}


def _device_cell(d: dict[str, Any]) -> html.Div:
    lines: list[Any] = [
        html.Div(d["code"], className="dev-code"),
        html.Div(f"{DeviceState(d['state']).label} · {_ago(d['last_seen'])}"),
    ]
    if d["lag"]:
        lines.append(html.Div(_("凭证落后 %(n)s 版") % {"n": d["lag"]}, className="warn"))
    if d["buffered"]:
        lines.append(html.Div(_("待上传 %(n)s 条") % {"n": d["buffered"]}, className="warn"))
    return html.Div(
        lines,
        className=f"dev {d['state']}",
        title=f"{d['name']} · {d['location']}",
        id=f"dev-{d['code']}",
        **{"data-state": d["state"]},
    )


def _device_groups(rows: list[dict[str, Any]]) -> list[html.Div]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for d in rows:
        groups.setdefault(d["building_name"] or d["location"] or _("其他"), []).append(d)
    return [
        html.Div(
            className="devgroup",
            children=[html.H4(name), html.Div([_device_cell(d) for d in groups[name]], className="devgrid")],
        )
        for name in sorted(groups)
    ]


def _kpi(label: str, value: str, tile_id: str, extra: str = "") -> html.Div:
    return tile(label, value, value_id=tile_id, class_name=f"tile small {extra}")


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else _("%(m)s 分钟") % {"m": f"{seconds / 60:.1f}"}


@app.callback(persistent=True)
async def stream_nic_desk() -> None:
    """Runs once per open page over its websocket: the desk's shared view (one per server
    process and language, ``dashboard/shared_view.py``) sends it every change."""
    ws = ctx.websocket
    if ws is None:
        raise PreventUpdate
    lang = language_of(current_scope.get())
    await SharedView.serve(ws, ("nic-desk", lang), lang, _run_desk, transient=frozenset({alert_view.ALARM}))


async def _run_desk(paint: SharedPainter, closed: Callable[[], bool]) -> None:
    """The NIC desk's feeds, rendered once for every page of this language."""
    tz = ZoneInfo(settings.TIME_ZONE)
    alerts = KeyedBoard(fetch=lambda ids: alert_rows(ids, kinds=DEVICE_KINDS))
    devices = KeyedBoard(fetch=selectors.device_health, limit=100_000)
    seen: set[int] = set()
    times: dict[str, Any] = {"mtta_s": None, "mttr_s": None}
    loaded = False
    alarms = 0

    async def render_alerts(_board: object) -> None:
        nonlocal loaded, alarms
        times.update(await database_sync_to_async(response_times)(since=timezone.now() - timedelta(days=7)))
        rows = alert_view.desk_order(list(alerts.rows.values()))
        new = {r["id"] for r in rows if r["id"] not in seen and alert_view.is_loud(r)} if loaded else set()
        seen.update(r["id"] for r in rows)
        loaded = True
        paint.paint(
            ALERTS,
            (rows, new),
            lambda: {
                "children": alert_view.grouped(rows, tz, new=new) or html.P(_("暂无设备告警"), className="status")
            },
        )
        _render_kpis()
        now = f"{datetime.now(tz):%H:%M:%S}"
        paint.paint(STATUS, (now, getattr(_board, "offline", False)), lambda: live_status(_board, now))
        if new:
            alarms += 1
            paint.paint(alert_view.ALARM, alarms, lambda: {"data": alarms})

    def _render_kpis() -> None:
        states = [d["state"] for d in devices.rows.values()]
        open_ = [r for r in alerts.rows.values() if r["status"] == AlertStatus.OPEN]
        figures = (
            states.count(DeviceState.ONLINE),
            states.count(DeviceState.SILENT),
            states.count(DeviceState.FAULT),
            len(open_),
            sum(1 for r in open_ if r["escalation"]),
            times["mtta_s"],
            times["mttr_s"],
        )
        online, silent, fault, unhandled, escalated, mtta, mttr = figures
        paint.paint(
            KPIS,
            figures,
            lambda: {
                "children": [
                    _kpi(_("在线"), str(online), "kpi-online", "ok"),
                    _kpi(_("静默"), str(silent), "kpi-silent", "deny"),
                    _kpi(_("故障"), str(fault), "kpi-fault", "deny"),
                    _kpi(_("未处理告警"), str(unhandled), "kpi-open", "deny"),
                    _kpi(_("已升级"), str(escalated), "kpi-escalated"),
                    _kpi(_("平均确认时长（7天）"), _minutes(mtta), "kpi-mtta"),
                    _kpi(_("平均修复时长（7天）"), _minutes(mttr), "kpi-mttr"),
                ]
            },
        )

    async def render_devices(_board: object) -> None:
        rows = sorted(devices.rows.values(), key=lambda d: d["code"])
        # the cells say how long ago a device was seen: redrawn with every device push
        paint.paint(DEVICES, (rows, int(time.time())), lambda: {"children": _device_groups(rows)})
        _render_kpis()

    await asyncio.gather(
        run_feed(group=names.GROUP_DEVICES, board=devices, load=_devices_load, render=render_devices, is_closed=closed),
        run_feed(group=names.GROUP_ALERTS, board=alerts, load=_alerts_load, render=render_alerts, is_closed=closed),
    )
