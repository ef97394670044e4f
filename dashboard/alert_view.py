"""How an alert looks on a desk (NIC and security share it), and the alarm for new ones."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import Dash, Input, Output, dcc, html
from django.utils.translation import gettext as _

from ops.alerts.choices import AlertKind, AlertStatus, Severity
from ops.registry.choices import CARD_TYPES

ALARM = "desk-alarm"  # set to a new number when a high-priority alert arrives
ALARM_ECHO = "desk-alarm-echo"


def alarm_components() -> list[Any]:
    return [dcc.Store(id=ALARM, data=0), dcc.Store(id=ALARM_ECHO, data=0)]


def install_alarm(app: Dash) -> None:
    """A short tone and a bell in the tab title when a new critical alert pops (the browser
    may mute sound until the operator has clicked the page once — the flash still shows)."""
    app.clientside_callback(
        """function(n) {
            if (!n) { return window.dash_clientside.no_update; }
            window.__campuscardAlarms = (window.__campuscardAlarms || 0) + 1;
            try {
                const ctx = window.__campuscardAudio = window.__campuscardAudio
                    || new (window.AudioContext || window.webkitAudioContext)();  // one, reused
                const osc = ctx.createOscillator();
                osc.frequency.value = 880; osc.connect(ctx.destination);
                osc.start(); osc.stop(ctx.currentTime + 0.3);
            } catch (e) {}
            document.title = "🔔 " + document.title.replace(/^🔔 /, "");
            return n;
        }""",
        Output(ALARM_ECHO, "data"),
        Input(ALARM, "data"),
    )


def is_loud(row: dict[str, Any]) -> bool:
    """Worth a sound: critical, open, and not a flapping device (suppressed)."""
    return row["severity"] == Severity.CRITICAL and row["status"] == AlertStatus.OPEN and not row["flapping"]


def _when(ts: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, tz).strftime("%m-%d %H:%M:%S")


def badges(row: dict[str, Any]) -> list[html.Span]:
    out = [html.Span(str(AlertStatus(row["status"]).label), className=f"badge st-{row['status']}")]
    if row["lapses"] and row["status"] == AlertStatus.OPEN:
        out.append(html.Span(_("确认已失效（复发）"), className="badge lapsed"))
    if row["flapping"]:
        out.append(html.Span(_("抖动·已抑制"), className="badge flapping"))
    if row["escalation"]:
        out.append(html.Span(_("已升级 %(n)s 级") % {"n": row["escalation"]}, className="badge escalated"))
    if row["cleared"] and row["status"] != AlertStatus.RESOLVED:
        out.append(html.Span(_("已恢复·待关闭"), className="badge cleared"))
    return out


def alert_item(row: dict[str, Any], tz: ZoneInfo, *, new: bool = False, photo: bool = False) -> html.Div:
    classes = f"alert sev-{row['severity']} st-{row['status']}" + (" alert-new" if new else "")
    where = row["device_name"] or row["device"] or "—"
    body: list[Any] = [
        html.Div(
            className="alert-head",
            children=[
                html.Strong(str(AlertKind(row["kind"]).label)),
                html.Span(f"×{row['count']}", className="alert-count"),
                *badges(row),
            ],
        ),
        html.Div(
            className="alert-meta",
            children=[
                html.Span(_("地点：%(w)s") % {"w": where}),
                html.Span(_("对象：%(s)s") % {"s": row["card"] or row["subject"]}),
                html.Span(_("首次 %(a)s · 最近 %(b)s") % {"a": _when(row["first"], tz), "b": _when(row["last"], tz)}),
            ],
        ),
    ]
    if row["holder"]:
        body[1].children.append(html.Span(_("持卡人：%(h)s") % {"h": row["holder"]}))
    if row["card_type"]:
        body[1].children.append(html.Span(_("卡类型：%(t)s") % {"t": CARD_TYPES.label(row["card_type"])}))
    if row["assignee"]:
        body[1].children.append(html.Span(_("处理人：%(u)s") % {"u": row["assignee"]}))
    if row["ack_comment"] and row["status"] == AlertStatus.ACKNOWLEDGED:
        body.append(
            html.Div(
                _("确认：%(c)s（%(u)s）") % {"c": row["ack_comment"], "u": row["acknowledged_by"]},
                className="alert-ack",
            )
        )
    body.append(html.A(_("处理 →"), href=f"/alerts/{row['id']}/", className="alert-act"))
    children: list[Any] = []
    if photo and row["holder_id"] and row["photo"]:
        children.append(
            html.Img(src=f"/photos/holders/{row['holder_id']}.jpg", className="alert-photo", alt=_("持卡人照片"))
        )
    elif photo and row["holder_id"]:
        children.append(html.Div(_("无照片"), className="alert-photo no-photo"))
    children.append(html.Div(body, className="alert-body"))
    return html.Div(
        children,
        className=classes,
        id=f"alert-{row['id']}",
        **{"data-alert": str(row["id"]), "data-status": row["status"]},
    )


def grouped(rows: list[dict[str, Any]], tz: ZoneInfo, *, new: set[int]) -> list[html.Div]:
    """Alerts grouped by building (gates and campus-wide devices under their location)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["building_name"] or row["location"] or _("其他"), []).append(row)
    order = sorted(groups, key=lambda g: -max(r["last"] for r in groups[g]))
    return [
        html.Div(
            className="alert-group",
            children=[
                html.H4(f"{name}（{len(groups[name])}）"),
                *[alert_item(r, tz, new=r["id"] in new) for r in groups[name]],
            ],
        )
        for name in order
    ]


def desk_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open first (escalated, then critical), then acknowledged, then resolved; newest first."""
    status_rank = {AlertStatus.OPEN: 0, AlertStatus.ACKNOWLEDGED: 1, AlertStatus.RESOLVED: 2}
    sev_rank = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted(
        rows,
        key=lambda r: (
            status_rank[AlertStatus(r["status"])],
            -r["escalation"],
            sev_rank[Severity(r["severity"])],
            -r["last"],
        ),
    )


# -- issue 19: a fleet-wide condition is one row; the security desk ranks by what matters --------

# This many devices (or more) with an unresolved alert of one kind at once: one grouped row on
# the NIC desk (Alertmanager's grouping by kind) — the count, the worst state, the devices on
# expand — never one row per device (docs/decisions.md, "Fleet-wide alerts are one row").
FLEET_MIN_DEVICES = 5
RESOLVED_LISTED = 50  # the resolved alerts of the last hours, folded, at most this many named


def _data(**attributes: str) -> dict[str, Any]:
    """``data-*`` attributes (no keyword can name them)."""
    return {f"data-{name}": value for name, value in attributes.items()}


def fleet_split(rows: list[dict[str, Any]]) -> tuple[list[list[dict[str, Any]]], list[dict[str, Any]]]:
    """The unresolved rows as ``(groups, single)``: a group per kind on at least
    ``FLEET_MIN_DEVICES`` devices (in desk order, worst group first), and the rest as they were."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_kind.setdefault(row["kind"], []).append(row)
    groups, single = [], []
    for kind_rows in by_kind.values():
        devices = {r["device"] or r["subject"] for r in kind_rows}
        if len(devices) >= FLEET_MIN_DEVICES:
            groups.append(desk_order(kind_rows))
        else:
            single.extend(kind_rows)
    groups.sort(key=lambda g: _rank(g[0]))
    return groups, desk_order(single)


def _rank(row: dict[str, Any]) -> tuple[Any, ...]:
    status_rank = {AlertStatus.OPEN: 0, AlertStatus.ACKNOWLEDGED: 1, AlertStatus.RESOLVED: 2}
    sev_rank = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return (
        status_rank[AlertStatus(row["status"])],
        -row["escalation"],
        sev_rank[Severity(row["severity"])],
        -row["last"],
    )


def fleet_item(rows: list[dict[str, Any]], tz: ZoneInfo, *, new: set[int]) -> html.Div:
    """One row for one kind of alert on many devices: how many devices, how many still open,
    since when; the devices (each its own alert, worked on its own page) on expand."""
    worst, kind = rows[0], rows[0]["kind"]
    open_ = sum(1 for r in rows if r["status"] == AlertStatus.OPEN)
    recovered = sum(1 for r in rows if r["cleared"])
    devices = sorted({r["device"] or r["subject"] for r in rows})
    head: list[Any] = [
        html.Strong(str(AlertKind(kind).label)),
        html.Span(_("%(n)s 台设备") % {"n": len(devices)}, className="badge fleet"),
        html.Span(_("未处理 %(n)s") % {"n": open_}, className="badge st-open") if open_ else None,
        html.Span(_("已恢复 %(n)s") % {"n": recovered}, className="badge cleared") if recovered else None,
    ]
    if max(r["escalation"] for r in rows):
        head.append(
            html.Span(_("已升级 %(n)s 级") % {"n": max(r["escalation"] for r in rows)}, className="badge escalated")
        )
    first, last = min(r["first"] for r in rows), max(r["last"] for r in rows)
    listed = html.Ul(
        [
            html.Li(
                [
                    html.A(r["device"] or r["subject"], href=f"/alerts/{r['id']}/"),
                    f" {r['device_name']} · " if r["device_name"] else " · ",
                    str(AlertStatus(r["status"]).label),
                    " · " + str(_("已恢复·待关闭")) if r["cleared"] else "",
                ],
                **_data(alert=str(r["id"])),
            )
            for r in rows
        ],
        className="fleet-devices",
    )
    new_here = any(r["id"] in new for r in rows)
    return html.Div(
        className=f"alert alert-fleet sev-{worst['severity']} st-{worst['status']}"
        + (" alert-new" if new_here else ""),
        id=f"fleet-{kind}",
        **{"data-kind": kind, "data-devices": str(len(devices)), "data-alerts": str(len(rows))},
        children=html.Div(
            className="alert-body",
            children=[
                html.Div([h for h in head if h is not None], className="alert-head"),
                html.Div(
                    className="alert-meta",
                    children=[
                        html.Span(_("同类告警合并显示（%(n)s 台及以上设备同时发生）") % {"n": FLEET_MIN_DEVICES}),
                        html.Span(_("首次 %(a)s · 最近 %(b)s") % {"a": _when(first, tz), "b": _when(last, tz)}),
                    ],
                ),
                html.Details([html.Summary(_("展开设备列表（%(n)s）") % {"n": len(rows)}), listed]),
            ],
        ),
    )


def resolved_fold(rows: list[dict[str, Any]], tz: ZoneInfo) -> html.Details:
    """The alerts resolved in the last hours, folded: the desk stays one screen (issue 19)."""
    return html.Details(
        id="resolved-alerts",
        className="resolved-fold",
        **_data(alerts=str(len(rows))),
        children=[
            html.Summary(_("近期已解决 %(n)s 条") % {"n": len(rows)}),
            html.Ul(
                [
                    html.Li(
                        [
                            html.A(str(AlertKind(r["kind"]).label), href=f"/alerts/{r['id']}/"),
                            f" · {r['card'] or r['subject']} · {_when(r['last'], tz)}",
                        ],
                        id=f"alert-{r['id']}",
                        **_data(alert=str(r["id"]), status=r["status"]),
                    )
                    for r in sorted(rows, key=lambda r: -r["last"])[:RESOLVED_LISTED]
                ]
            ),
        ],
    )


def nic_board(rows: list[dict[str, Any]], tz: ZoneInfo, *, new: set[int]) -> list[Any]:
    """The NIC desk's alert panel: fleet-wide kinds one row each, the other unresolved alerts by
    building, the resolved ones folded."""
    active = [r for r in rows if r["status"] != AlertStatus.RESOLVED]
    resolved = [r for r in rows if r["status"] == AlertStatus.RESOLVED]
    groups, single = fleet_split(active)
    out: list[Any] = [fleet_item(g, tz, new=new) for g in groups]
    out += grouped(single, tz, new=new)
    if resolved:
        out.append(resolved_fold(resolved, tz))
    return out


def security_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The security desk (R-OPS-2): unresolved before resolved; among them blacklist hits on top,
    then by severity (critical first), escalation, newest — a burst of clone suspicions or
    anti-passback warnings never pushes a blacklisted card out of sight (issue 19)."""
    status_rank = {AlertStatus.OPEN: 0, AlertStatus.ACKNOWLEDGED: 0, AlertStatus.RESOLVED: 1}
    sev_rank = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted(
        rows,
        key=lambda r: (
            status_rank[AlertStatus(r["status"])],
            r["kind"] != AlertKind.BLACKLIST_HIT,
            sev_rank[Severity(r["severity"])],
            r["status"] != AlertStatus.OPEN,
            -r["escalation"],
            -r["last"],
        ),
    )
