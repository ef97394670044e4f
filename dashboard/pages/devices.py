"""The NIC desk (R-OPS-3, R-DEV-2): every device's health, live, and the device alerts with their
workflow state — grouped by building, open and escalated first, new critical ones flashing; the
supervisor's scheduled jobs (issue 16, Build 4): each one's last run, outcome and next due; and
the last day's revocations (issue 17, Build 6; R-USE-1): how many readers hold each, which not."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
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
from dashboard.live import AWAY, live_status, run_feed
from dashboard.pages.common import feed_table, grid, live_app, page, panel, status_head, tile, viewer_language
from dashboard.shared_view import SharedPainter, SharedView
from ops.alerts.choices import DEPARTMENT_KINDS, SECURITY_KINDS, AlertKind, AlertStatus
from ops.alerts.selectors import alert_rows, alert_snapshot, repair_times, response_times
from ops.pipeline.choices import RunOutcome
from ops.pipeline.selectors import scheduled_runs
from ops.push import current_seq
from ops.redis_client import client
from ops.registry import selectors
from ops.registry.choices import CARD_STATUSES, DeviceState
from ops.registry.revocations import desk_tracker
from streams import names

PREFIX = "/live/devices/"
DEVICE_KINDS = frozenset(k.value for k in AlertKind) - {k.value for k in SECURITY_KINDS | DEPARTMENT_KINDS}
JOBS_REFRESH_S = 15.0  # the jobs run daily: their table is re-read this often
# revocations are re-read on every device push (a reader's credential version may have moved)
# and at least this often (a new one published)
REVOCATIONS_REFRESH_S = 5.0

KPIS = "nic-kpis"
DEVICES = "nic-devices"
ALERTS = "nic-alerts"
STATUS = "nic-status"
JOBS = "nic-jobs"
REVOCATIONS = "nic-revocations"

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
            panel(_("定时任务"), html.Div(id=JOBS, children=html.P(_("读取中…"), className="status"))),
            panel(
                _("挂失/注销送达读卡器（近24小时）"),
                html.Div(id=REVOCATIONS, children=html.P(_("读取中…"), className="status")),
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


def _jobs_load() -> list[dict[str, Any]]:
    return scheduled_runs(now=timezone.now())


def _when(ts: float | None, tz: ZoneInfo) -> str:
    return "—" if ts is None else f"{datetime.fromtimestamp(ts, tz):%m-%d %H:%M}"


def _outcome(r: dict[str, Any]) -> str:
    if not r["at"]:
        return str(_("未启用"))
    if not r["outcome"]:
        return str(_("尚未运行"))
    text = str(RunOutcome(r["outcome"]).label)
    if r["outcome"] == RunOutcome.FAILED and r["error"]:
        text += f"：{r['error'][:160]}"
    if r["missed"]:
        text += " · " + str(_("逾期未成功（超过两个周期）"))
    return text


def _data(**attributes: str) -> dict[str, Any]:
    """``data-*`` attributes (no keyword can name them)."""
    return {f"data-{name}": value for name, value in attributes.items()}


def jobs_table(rows: list[dict[str, Any]], tz: ZoneInfo) -> html.Table:
    """One row per scheduled job: what, when each day, its last run, outcome, duration, next."""
    return feed_table(
        [_("任务"), _("每天"), _("上次运行"), _("结果"), _("用时"), _("下次运行")],
        html.Tbody(
            [
                html.Tr(
                    id=f"job-{r['job']}",
                    className="deny" if r["outcome"] == RunOutcome.FAILED or r["missed"] else "",
                    **_data(outcome=r["outcome"] or "none", missed="1" if r["missed"] else "0"),
                    children=[
                        html.Td(str(r["label"])),
                        html.Td(r["at"] or "—"),
                        html.Td(_when(r["started"], tz)),
                        html.Td(_outcome(r)),
                        html.Td("—" if r["duration_s"] is None else _("%(s)s 秒") % {"s": f"{r['duration_s']:.1f}"}),
                        html.Td(_when(r["next_due"], tz)),
                    ],
                )
                for r in rows
            ]
        ),
    )


def _jobs_props(rows: list[dict[str, Any]], tz: ZoneInfo) -> dict[str, Any]:
    return {"children": jobs_table(rows, tz)}


def _change(r: dict[str, Any]) -> str:
    words = [] if r["status"] == "active" else [CARD_STATUSES.label(r["status"])]
    return " · ".join([*words, str(_("黑名单"))] if r["blacklisted"] else words)


def _revocations_props(rows: list[dict[str, Any]], tz: ZoneInfo) -> dict[str, Any]:
    return {"children": revocations_table(rows, tz)}


def revocations_table(rows: list[dict[str, Any]], tz: ZoneInfo) -> html.Table | html.P:
    """Issue 17, Build 6: one row per revocation of the last day — when, which card (masked),
    what, and how many readers hold it; the first few that do not yet are named."""
    if not rows:
        return html.P(_("近24小时没有挂失、注销或黑名单"), className="status")
    return feed_table(
        [_("发布时间"), _("卡号"), _("变更"), _("凭证版本"), _("已收到"), _("尚未收到")],
        html.Tbody(
            [
                html.Tr(
                    id=f"rev-{r['id']}",
                    className="deny" if r["missing"] else "",
                    **_data(have=str(r["have"]), missing=str(r["missing"])),
                    children=[
                        html.Td(_when(r["published"], tz)),
                        html.Td(r["card"]),
                        html.Td(_change(r)),
                        html.Td(str(r["version"])),
                        html.Td(str(r["have"])),
                        html.Td(
                            f"{r['missing']}"
                            + (f"：{', '.join(r['missing_codes'])}" if r["missing_codes"] else "")
                            + ("…" if r["missing"] > len(r["missing_codes"]) else "")
                        ),
                    ],
                )
                for r in rows
            ]
        ),
    )


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
    devices_moved = asyncio.Event()  # a device push: readers' credential versions may have moved

    async def render_alerts(_board: object) -> None:
        nonlocal loaded, alarms
        times.update(await database_sync_to_async(response_times)(since=timezone.now() - timedelta(days=7)))
        # issue 18, Build 1: the repair queue's open tickets and time to repair (/repairs/)
        times.update(await database_sync_to_async(repair_times)(since=timezone.now() - timedelta(days=7)))
        rows = alert_view.desk_order(list(alerts.rows.values()))
        new = {r["id"] for r in rows if r["id"] not in seen and alert_view.is_loud(r)} if loaded else set()
        seen.update(r["id"] for r in rows)
        loaded = True
        paint.paint(
            ALERTS,
            (rows, new),
            lambda: {
                "children": alert_view.nic_board(rows, tz, new=new) or html.P(_("暂无设备告警"), className="status")
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
            times.get("tickets_open", 0),
            times.get("ticket_mttr_s"),
        )
        online, silent, fault, unhandled, escalated, mtta, mttr, tickets, ticket_mttr = figures
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
                    _kpi(_("维修单未关闭"), str(tickets), "kpi-tickets"),
                    _kpi(_("报修修复用时（7天）"), _minutes(ticket_mttr), "kpi-ticket-mttr"),
                ]
            },
        )

    async def render_devices(_board: object) -> None:
        rows = sorted(devices.rows.values(), key=lambda d: d["code"])
        # the cells say how long ago a device was seen: redrawn with every device push
        paint.paint(DEVICES, (rows, int(time.time())), lambda: {"children": _device_groups(rows)})
        _render_kpis()
        devices_moved.set()

    async def run_jobs() -> None:
        """The scheduled jobs, re-read every ``JOBS_REFRESH_S`` (they change once a day; a
        failure is also an alert, which reaches the desk at once through the alert feed)."""
        while not closed():
            try:
                rows = await database_sync_to_async(_jobs_load)()
            except AWAY:  # the database away: the table stays as it was, the loop goes on
                pass
            else:
                key = tuple(tuple(v for k, v in r.items() if k != "label") for r in rows)
                paint.paint(JOBS, key, partial(_jobs_props, rows, tz))
            await asyncio.sleep(JOBS_REFRESH_S)

    async def run_revocations() -> None:
        """Issue 17, Build 6: the last day's revocations and who holds them, read again on every
        device push and at least every ``REVOCATIONS_REFRESH_S``."""
        while not closed():
            try:
                rows = await database_sync_to_async(desk_tracker)(now=timezone.now())
            except AWAY:  # the database away: the table stays as it was, the loop goes on
                pass
            else:
                key = tuple((r["id"], r["have"], r["missing"], tuple(r["missing_codes"])) for r in rows)
                paint.paint(REVOCATIONS, key, partial(_revocations_props, rows, tz))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(devices_moved.wait(), REVOCATIONS_REFRESH_S)
            devices_moved.clear()
            await asyncio.sleep(0.25)  # a burst of pushes: one read

    await asyncio.gather(
        run_feed(group=names.GROUP_DEVICES, board=devices, load=_devices_load, render=render_devices, is_closed=closed),
        run_feed(group=names.GROUP_ALERTS, board=alerts, load=_alerts_load, render=render_alerts, is_closed=closed),
        run_jobs(),
        run_revocations(),
    )
