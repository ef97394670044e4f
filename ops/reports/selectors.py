"""The figures of a report (issue 18, Build 4): one function, :func:`report`, that the page,
its XLSX and the scheduled mail all use — so the page and the file show the same numbers.

Every aggregation runs in the database (``values().annotate()``), filtered first on the table's
time column: the tap history (``AccessEvent``, partitioned by month on PostgreSQL, tens of
millions of rows) is read through its ``event_time`` index by ``occurred_at`` and restricted to
the devices in question by id, so a month's report touches one or two partitions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Max, Q, Sum
from django.db.models.functions import ExtractHour
from django.utils import timezone
from django.utils.translation import gettext as _

from ops.alerts.choices import AlertKind, RepairCause
from ops.alerts.models import Alert, RepairTicket
from ops.registry.choices import CARD_TYPES, REASONS
from ops.registry.dorm import LATE_RETURN
from ops.registry.lifecycle.choices import Action, ChargeStatus, FeeKind
from ops.registry.lifecycle.models import CardAction, FeeCharge
from ops.registry.models import AccessEvent, Building, Device
from ops.reports.periods import Period
from streams.cards import GATE_KINDS, CardStatus, DeviceKind
from streams.reasons import Decision

HOURS = list(range(24))
# a device's faults (R-DEV-2): what NIC repairs, not security events or scheduled jobs
FAULT_KINDS = (AlertKind.DEVICE_FAULT, AlertKind.UPLOAD_STOPPED, AlertKind.TAMPER)


@dataclass
class Section:
    """One table of a report: its rows as the page shows them and the XLSX holds them, and
    the chart drawn from them (``chart``: Plotly traces and axis titles, text not yet escaped)."""

    key: str
    title: str
    headers: list[str]
    rows: list[list[Any]]
    chart: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass
class Report:
    period: Period
    sections: list[Section]

    def section(self, key: str) -> Section:
        return next(s for s in self.sections if s.key == key)


def _hours(td: Any) -> float | None:
    return None if td is None else round(td.total_seconds() / 3600, 2)


def taps_per_gate_per_hour(period: Period) -> Section:
    """Taps at each gate (pedestrian and vehicle) per hour of the day, local time, summed over
    the period; allowed and denied alike (every passage attempt)."""
    lo, hi = period.bounds()
    gates = {d.id: d for d in Device.objects.filter(kind__in=[str(k) for k in GATE_KINDS]).order_by("code")}
    counts: dict[int, list[int]] = {pk: [0] * 24 for pk in gates}
    for r in (
        AccessEvent.objects.filter(occurred_at__gte=lo, occurred_at__lt=hi, device_id__in=list(gates))
        .annotate(hour=ExtractHour("occurred_at", tzinfo=timezone.get_current_timezone()))
        .values("device_id", "hour")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts[r["device_id"]][r["hour"]] = r["n"]
    rows = [[gates[pk].code, gates[pk].name, *counts[pk], sum(counts[pk])] for pk in gates if sum(counts[pk])]
    return Section(
        "taps",
        _("各闸机每小时刷卡次数"),
        [_("设备编号"), _("名称"), *[f"{h:02d}" for h in HOURS], _("合计")],
        rows,
        {
            "type": "bar",
            "barmode": "stack",
            "x_title": _("时段（时）"),
            "y_title": _("刷卡次数"),
            "traces": [{"name": f"{r[0]} {r[1]}", "x": [f"{h:02d}" for h in HOURS], "y": r[2:26]} for r in rows],
        },
    )


def denials_by_reason(period: Period) -> Section:
    lo, hi = period.bounds()
    rows = [
        [REASONS.label(r["reason"]), r["n"]]
        for r in AccessEvent.objects.filter(occurred_at__gte=lo, occurred_at__lt=hi, decision=Decision.DENY)
        .values("reason")
        .annotate(n=Count("id"))
        .order_by("-n", "reason")
    ]
    return Section(
        "denials",
        _("拒绝通行（按原因）"),
        [_("原因"), _("次数")],
        rows,
        {
            "type": "bar",
            "x_title": _("原因"),
            "y_title": _("次数"),
            "traces": [{"name": _("拒绝次数"), "x": [r[0] for r in rows], "y": [r[1] for r in rows]}],
        },
    )


def cards_by_type_and_department(period: Period) -> Section:
    """Cards issued, reported lost (R-USE-1), replaced (R-USE-2; a replacement counts once: the
    old card's step to "replaced") and cancelled (R-END-*), per card type (R-CARD-1) and the
    holder's department — from the status history, ``CardAction``."""
    lo, hi = period.bounds()
    rows = [
        [
            CARD_TYPES.label(r["card__card_type"]),
            r["holder__department__name"],
            r["issued"],
            r["lost"],
            r["replaced"],
            r["cancelled"],
        ]
        for r in CardAction.objects.filter(at__gte=lo, at__lt=hi)
        .values("card__card_type", "holder__department__name")
        .annotate(
            issued=Count("id", filter=Q(action=Action.ISSUE)),
            lost=Count("id", filter=Q(action=Action.LOSE)),
            replaced=Count("id", filter=Q(action=Action.REPLACE, to_status=CardStatus.REPLACED)),
            cancelled=Count("id", filter=Q(action=Action.CANCEL)),
        )
        .filter(Q(issued__gt=0) | Q(lost__gt=0) | Q(replaced__gt=0) | Q(cancelled__gt=0))
        .order_by("card__card_type", "holder__department__name")
    ]
    columns = [_("发卡"), _("挂失"), _("补卡"), _("注销")]
    return Section(
        "cards",
        _("卡务办理（按卡类型和部门）"),
        [_("卡类型"), _("部门"), *columns],
        rows,
        {
            "type": "bar",
            "barmode": "group",
            "x_title": _("卡类型 / 部门"),
            "y_title": _("张数"),
            "traces": [
                {"name": name, "x": [f"{r[0]} / {r[1]}" for r in rows], "y": [r[2 + i] for r in rows]}
                for i, name in enumerate(columns)
            ],
        },
    )


def fees(period: Period) -> Section:
    """Payments by fee kind, on the day they were paid — as Finance's ledger counts them
    (R-FEE-3, ``ops.registry.lifecycle.ledger``)."""
    lo, hi = period.bounds()
    rows = [
        [str(FeeKind(r["kind"]).label), r["n"], r["total"] or Decimal("0.00")]
        for r in FeeCharge.objects.filter(status=ChargeStatus.PAID, paid_at__gte=lo, paid_at__lt=hi)
        .values("kind")
        .annotate(n=Count("id"), total=Sum("amount"))
        .order_by("kind")
    ]
    return Section(
        "fees",
        _("收费（按项目）"),
        [_("收费项目"), _("笔数"), _("金额（元）")],
        rows,
        {
            "type": "bar",
            "x_title": _("收费项目"),
            "y_title": _("金额（元）"),
            "traces": [{"name": _("金额（元）"), "x": [r[0] for r in rows], "y": [float(r[2]) for r in rows]}],
        },
    )


def device_faults(period: Period) -> Section:
    """Device faults (R-DEV-2, R-DEV-3) that began in the period, by kind: how many, how many are repaired
    (resolved), and the time to repair — from the fault's first occurrence to its resolution —
    on average and at most, in hours."""
    lo, hi = period.bounds()
    to_repair = ExpressionWrapper(F("resolved_at") - F("first_at"), output_field=DurationField())
    rows = [
        [
            str(AlertKind(r["kind"]).label),
            r["n"],
            r["repaired"],
            _hours(r["mean"]),
            _hours(r["longest"]),
        ]
        for r in Alert.objects.filter(
            first_at__gte=lo, first_at__lt=hi, kind__in=[str(k) for k in FAULT_KINDS], device__isnull=False
        )
        .values("kind")
        .annotate(
            n=Count("id"),
            repaired=Count("id", filter=Q(resolved_at__isnull=False)),
            mean=Avg(to_repair, filter=Q(resolved_at__isnull=False)),
            longest=Max(to_repair, filter=Q(resolved_at__isnull=False)),
        )
        .order_by("kind")
    ]
    return Section(
        "faults",
        _("设备故障与修复时长"),
        [_("故障类型"), _("故障次数"), _("已修复"), _("平均修复时长（小时）"), _("最长修复时长（小时）")],
        rows,
        {
            "type": "bar",
            "barmode": "group",
            "x_title": _("故障类型"),
            "y_title": _("次数"),
            "traces": [
                {"name": _("故障次数"), "x": [r[0] for r in rows], "y": [r[1] for r in rows]},
                {"name": _("已修复"), "x": [r[0] for r in rows], "y": [r[2] for r in rows]},
            ],
        },
    )


def _has_field(model: Any, name: str) -> bool:
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


def repairs(period: Period) -> Section:
    """Repair tickets (报修, R-ROLE-3, R-DEV-3) opened in the period, by cause: how many, how
    many are repaired, and the time to repair — from the report to the repair — on average and
    at most, in hours (what the repair queue shows per ticket). A ticket whose cause is not yet
    judged counts under 未判定."""
    lo, hi = period.bounds()
    done = "repaired_at" if _has_field(RepairTicket, "repaired_at") else "closed_at"
    to_repair = ExpressionWrapper(F(done) - F("opened_at"), output_field=DurationField())
    repaired = Q(**{f"{done}__isnull": False})
    rows = [
        [
            str(RepairCause(r["cause"]).label) if r["cause"] else _("未判定"),
            r["n"],
            r["repaired"],
            _hours(r["mean"]),
            _hours(r["longest"]),
        ]
        for r in RepairTicket.objects.filter(opened_at__gte=lo, opened_at__lt=hi)
        .values("cause")
        .annotate(
            n=Count("id"),
            repaired=Count("id", filter=repaired),
            mean=Avg(to_repair, filter=repaired),
            longest=Max(to_repair, filter=repaired),
        )
        .order_by("cause")
    ]
    return Section(
        "repairs",
        _("维修单与修复时长"),
        [_("原因"), _("维修单数"), _("已修复"), _("平均修复时长（小时）"), _("最长修复时长（小时）")],
        rows,
        {
            "type": "bar",
            "barmode": "group",
            "x_title": _("原因"),
            "y_title": _("维修单数"),
            "traces": [
                {"name": _("维修单数"), "x": [r[0] for r in rows], "y": [r[1] for r in rows]},
                {"name": _("已修复"), "x": [r[0] for r in rows], "y": [r[2] for r in rows]},
            ],
        },
    )


def late_returns_per_building(period: Period) -> Section:
    """Entries into each dorm building that its doors flagged late (``is_late_return``) by the
    building's own residents — what the dorm desk counts each night, over the period."""
    lo, hi = period.bounds()
    doors = list(Device.objects.filter(kind=DeviceKind.DORM_DOOR, building__isnull=False).values_list("id", flat=True))
    counts: dict[int, int] = {}
    for r in (
        AccessEvent.objects.filter(
            occurred_at__gte=lo,
            occurred_at__lt=hi,
            device_id__in=doors,
            decision=Decision.ALLOW,
            direction="in",
            flags__contains=LATE_RETURN,
            holder__dorm_building_id=F("device__building_id"),
        )
        .values("device__building_id")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts[r["device__building_id"]] = r["n"]
    rows = [[b.code, b.name, counts.get(b.id, 0)] for b in Building.objects.filter(is_dorm=True).order_by("code")]
    return Section(
        "late",
        _("宿舍晚归（按楼宇）"),
        [_("楼宇代码"), _("楼宇"), _("晚归人次")],
        rows,
        {
            "type": "bar",
            "x_title": _("楼宇"),
            "y_title": _("晚归人次"),
            "traces": [{"name": _("晚归人次"), "x": [r[1] for r in rows], "y": [r[2] for r in rows]}],
        },
    )


SECTIONS = (
    taps_per_gate_per_hour,
    denials_by_reason,
    cards_by_type_and_department,
    fees,
    device_faults,
    repairs,
    late_returns_per_building,
)


def report(period: Period) -> Report:
    """Every figure of the report for ``period`` (in the current language)."""
    return Report(period, [section(period) for section in SECTIONS])
