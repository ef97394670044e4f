"""The workbench: a role's landing page shows its day (issue 19, item 11).

Roles whose work is a live desk land on it (``ops.accounts.roles.LANDING``); the others land on
the workbench (``ops.views.home``), which shows, above the list of places and records the role
may open, the panels registered here for that role:

- the responsible leader: today's figures on campus and what awaits an approval;
- HR and Academic Affairs: their latest list imports;
- Finance: where reconciliation and day closing stand (R-FEE-3);
- General Affairs: the temporary cards it manages that end soon (R-CARD-7, R-END-4), and its
  devices' repair tickets (issue 18, Build 1).

Adding a panel is one function here (decorated with :func:`panel` for its roles) returning a
:class:`Panel`; the one template ``workbench/panel.html`` draws any panel — figures, then an
optional table. Each panel function is a selector: a fixed, small number of queries (one per
figure group, never one per row), whatever the size of the campus."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from ops.accounts.permissions import role_of
from ops.accounts.roles import Role
from ops.alerts import repairs
from ops.alerts.choices import AlertStatus, RepairState, Severity
from ops.alerts.models import Alert
from ops.masking import mask_name, mask_uid
from ops.personal_data.choices import RequestStatus
from ops.personal_data.models import PersonalDataRequest
from ops.registry.emergency.choices import Status
from ops.registry.emergency.models import EmergencyMode
from ops.registry.lifecycle.choices import Action, ChargeStatus, ImportStatus
from ops.registry.lifecycle.importing import IMPORTERS
from ops.registry.lifecycle.models import BankStatement, CardAction, ClosedDay, FeeCharge, ImportBatch
from ops.registry.lifecycle.selectors import temporary_cards_ending as ending
from ops.registry.models import AccessEvent, Card
from ops.registry.selectors import cards_visible_to
from streams.cards import CardStatus, CardType
from streams.reasons import Decision

SOON = timedelta(days=7)  # a temporary card "ends soon" within this (the reminders' horizon)
ROWS = 10  # rows a panel's table shows at most
OPEN_DAYS_LOOKED_BACK = 7  # Finance: the days before today checked for a closing


@dataclass(frozen=True)
class Figure:
    """One figure of a panel: ``key`` names it for pages and tests (``data-figure``)."""

    key: str
    label: str
    value: object
    href: str = ""
    attention: bool = False  # something waits for the operator (drawn highlighted)


@dataclass
class Panel:
    key: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[object]] = field(default_factory=list)
    row_links: list[str] = field(default_factory=list)  # one address per row ("" for none)
    empty: str = ""  # said instead of an empty table
    link: tuple[str, str] | None = None  # (address, label): where the panel's work is done
    template: str = "workbench/panel.html"

    @property
    def linked_rows(self) -> list[tuple[list[object], str]]:
        """Each row with its address ("" when it has none)."""
        return [(row, self.row_links[i] if i < len(self.row_links) else "") for i, row in enumerate(self.rows)]


PanelFunction = Callable[[Any], Panel]
PANELS: dict[Role, list[PanelFunction]] = {}


def panel(*roles: Role) -> Callable[[PanelFunction], PanelFunction]:
    """Register a panel function for ``roles`` (in the order of registration)."""

    def register(function: PanelFunction) -> PanelFunction:
        for role in roles:
            PANELS.setdefault(role, []).append(function)
        return function

    return register


def panels_for(user: Any) -> list[Panel]:
    """The panels of ``user``'s role, filled."""
    role = role_of(user)
    return [function(user) for function in PANELS.get(role, [])] if role is not None else []


def _midnight() -> datetime:
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


def _when(moment: datetime | None) -> str:
    return date_format(timezone.localtime(moment), "Y-m-d H:i") if moment else "—"


# -- the responsible leader ---------------------------------------------------------------------------
@panel(Role.LEADER)
def today_on_campus(user: Any) -> Panel:
    """Today since midnight: taps and denials at every reader, open alerts, cards reported lost
    and cards issued — three queries."""

    midnight = _midnight()
    taps = AccessEvent.objects.filter(occurred_at__gte=midnight).aggregate(
        all=Count("id"), denied=Count("id", filter=Q(decision=Decision.DENY))
    )
    alerts = Alert.objects.exclude(status=AlertStatus.RESOLVED).aggregate(
        open=Count("id"), critical=Count("id", filter=Q(severity=Severity.CRITICAL))
    )
    cards = CardAction.objects.filter(at__gte=midnight).aggregate(
        lost=Count("id", filter=Q(action=Action.LOSE)),
        issued=Count("id", filter=Q(action__in=[Action.ISSUE, Action.REPLACE, Action.REISSUE])),
    )
    return Panel(
        key="today",
        title=_("今日概况"),
        figures=[
            Figure("taps_today", _("今日刷卡"), taps["all"]),
            Figure("denied_today", _("今日拒绝"), taps["denied"]),
            Figure("alerts_open", _("未解决告警"), alerts["open"], attention=bool(alerts["critical"])),
            Figure("lost_today", _("今日挂失"), cards["lost"]),
            Figure("issued_today", _("今日发卡/补卡"), cards["issued"]),
        ],
    )


@panel(Role.LEADER)
def awaiting_approval(user: Any) -> Panel:
    """What waits for a leader's or a second person's approval: personal-data requests filed
    (R-SEC-2: the responsible leader approves them) and emergency modes waiting for a second
    operator (a campus-wide lockdown, issue 17) — two queries."""

    filed = list(
        PersonalDataRequest.objects.filter(status=RequestStatus.FILED)
        .select_related("requester")
        .order_by("created_at", "id")[: ROWS + 1]
    )
    modes = list(
        EmergencyMode.objects.filter(status=Status.PENDING)
        .select_related("requested_by")
        .order_by("requested_at", "id")[: ROWS + 1]
    )
    rows: list[list[object]] = []
    links: list[str] = []
    for request in filed[:ROWS]:
        rows.append([_("个人数据查询"), request.purpose[:40], _who(request.requester), _when(request.created_at)])
        links.append(f"/privacy/requests/{request.pk}/")
    for mode in modes[:ROWS]:
        rows.append(
            [
                _("紧急模式"),
                f"{mode.get_kind_display()} · {mode.get_scope_display()}",
                _who(mode.requested_by),
                _when(mode.requested_at),
            ]
        )
        links.append("")
    return Panel(
        key="approvals",
        title=_("待审批"),
        figures=[
            Figure("requests_filed", _("待审批的个人数据查询"), _capped(filed), "/privacy/requests/", bool(filed)),
            Figure("emergency_pending", _("待第二人批准的紧急模式"), _capped(modes), attention=bool(modes)),
        ],
        columns=[_("事项"), _("内容"), _("申请人"), _("申请时间")],
        rows=rows,
        row_links=links,
        empty=_("没有待审批的事项。"),
        link=("/privacy/requests/", _("个人数据查询")),
    )


def greeting_name(user: Any) -> str:
    """How the workbench greets ``user``: by name (``first_name`` holds an operator's full name,
    as CAS and LDAP give it), else by username."""
    return user.get_full_name() or user.get_username()


def _who(user: Any) -> str:
    if user is None:
        return "—"
    return user.get_full_name() or user.get_username()


def _capped(items: list[Any]) -> str:
    return f"{ROWS}+" if len(items) > ROWS else str(len(items))


# -- HR and Academic Affairs ---------------------------------------------------------------------------
@panel(Role.HR, Role.ACADEMIC)
def latest_imports(user: Any) -> Panel:
    """The role's latest list imports (staff lists for HR, student lists for Academic Affairs:
    the kinds it may import), those still waiting for confirmation first counted — two queries."""

    role = role_of(user)
    kinds = sorted(IMPORTERS.get(role, frozenset())) if role is not None else []
    batches = ImportBatch.objects.filter(kind__in=kinds).defer("plan")
    counts = batches.aggregate(
        waiting=Count("id", filter=Q(status=ImportStatus.PREVIEWED)),
        applied_today=Count("id", filter=Q(status=ImportStatus.APPLIED, applied_at__gte=_midnight())),
        last_applied=Max("applied_at", filter=Q(status=ImportStatus.APPLIED)),
    )
    latest = list(batches.select_related("created_by").order_by("-id")[:ROWS])
    return Panel(
        key="imports",
        title=_("最近的名单导入"),
        figures=[
            Figure(
                "imports_waiting",
                _("已预览、待确认"),
                counts["waiting"],
                "/admin/cards/importbatch/?status__exact=previewed",
                bool(counts["waiting"]),
            ),
            Figure("imports_applied_today", _("今日已导入"), counts["applied_today"]),
            Figure(
                "last_import",
                _("最近一次导入"),
                _when(counts["last_applied"]) if counts["last_applied"] else _("尚未导入"),
            ),
        ],
        columns=[_("文件名"), _("名单类型"), _("状态"), _("行数"), _("操作员"), _("预览时间")],
        rows=[
            [b.filename, b.get_kind_display(), b.get_status_display(), b.rows, _who(b.created_by), _when(b.created_at)]
            for b in latest
        ],
        row_links=[f"/admin/cards/importbatch/{b.pk}/review/" for b in latest],
        empty=_("还没有导入过名单。"),
        link=("/admin/cards/importbatch/upload/", _("导入名单")),
    )


# -- Finance ------------------------------------------------------------------------------------------
@panel(Role.FINANCE)
def reconciliation_state(user: Any) -> Panel:
    """R-FEE-3: today's payments, the latest statement imported, the latest day closed and the
    recent days with payments not yet closed for every window — four queries."""

    midnight = _midnight()
    paid = FeeCharge.objects.filter(status=ChargeStatus.PAID)
    today = paid.filter(paid_at__gte=midnight).aggregate(n=Count("id"), total=Sum("amount"))
    statement = BankStatement.objects.order_by("-day", "-id").values_list("day", flat=True).first()
    since = midnight - timedelta(days=OPEN_DAYS_LOOKED_BACK)
    days_paid = set(
        paid.filter(paid_at__gte=since, paid_at__lt=midnight)
        .annotate(day=TruncDate("paid_at", tzinfo=timezone.get_current_timezone()))
        .values_list("day", flat=True)
        .distinct()
    )
    closed = ClosedDay.objects.filter(day__gte=since.date()).values_list("day", "window")
    closed_days = {d for d, w in closed if not w}  # closed for every window
    latest_closed = ClosedDay.objects.order_by("-day").values_list("day", flat=True).first()
    open_days = sorted(days_paid - closed_days)
    return Panel(
        key="reconciliation",
        title=_("对账与结账"),
        figures=[
            Figure("payments_today", _("今日收费笔数"), today["n"]),
            Figure("payments_today_total", _("今日收费金额（元）"), f"{today['total'] or Decimal('0.00'):.2f}"),
            Figure("last_statement", _("最近导入的对账单"), _day(statement) or _("尚未导入")),
            Figure("last_closed", _("最近结账日"), _day(latest_closed) or _("尚未结账")),
            Figure(
                "open_days",
                _("近 %(n)s 天有收费未结账的日子") % {"n": OPEN_DAYS_LOOKED_BACK},
                len(open_days),
                "/admin/cards/bankstatement/reconcile/",
                bool(open_days),
            ),
        ],
        columns=[_("未结账日期")],
        rows=[[_day(d)] for d in open_days],
        row_links=[f"/admin/cards/bankstatement/reconcile/?day={d.isoformat()}" for d in open_days],
        empty=_("近期有收费的日子都已结账。"),
        link=("/admin/cards/bankstatement/reconcile/", _("对账")),
    )


def _day(day: date | None) -> str:
    return day.isoformat() if day else ""


# -- General Affairs ----------------------------------------------------------------------------------
@panel(Role.GENERAL)
def temporary_cards_ending(user: Any) -> Panel:
    """The temporary cards the operator's department manages (contractors', R-CARD-7) that end
    within a week (R-END-4: the holder returns the card or the department extends it) — two
    queries; names and card numbers masked (R-SEC-2)."""

    now = timezone.now()
    mine = cards_visible_to(user, Card.objects.filter(card_type=CardType.TEMPORARY, status=CardStatus.ACTIVE))
    counts = mine.aggregate(
        active=Count("id"),
        soon=Count("id", filter=Q(valid_until__gt=now, valid_until__lte=now + SOON)),
        tomorrow=Count("id", filter=Q(valid_until__gt=now, valid_until__lte=now + timedelta(days=1))),
    )
    cards = list(
        cards_visible_to(user, ending(now=now, within=SOON)).select_related("holder", "owner_department")[:ROWS]
    )
    return Panel(
        key="temporary",
        title=_("即将到期的临时卡"),
        figures=[
            Figure("temporary_active", _("在用临时卡"), counts["active"]),
            Figure("temporary_ending_soon", _("7 天内到期"), counts["soon"], attention=bool(counts["soon"])),
            Figure(
                "temporary_ending_tomorrow", _("24 小时内到期"), counts["tomorrow"], attention=bool(counts["tomorrow"])
            ),
        ],
        columns=[_("卡号"), _("持卡人"), _("管理部门"), _("到期时间")],
        rows=[
            [
                mask_uid(c.uid),
                mask_name(c.holder.name),
                c.owner_department.name if c.owner_department else "—",
                _when(c.valid_until),
            ]
            for c in cards
        ],
        row_links=[f"/admin/campus/card/{c.pk}/change/" for c in cards],
        empty=_("7 天内没有到期的临时卡。"),
        link=("/live/cards/", _("卡务动态")),
    )


# -- the departments that own devices (issue 18, Build 1) ----------------------------------------
@panel(Role.GENERAL)
def own_repairs(user: Any) -> Panel:
    """The department's repair tickets (R-DEV-4): open ones, and those repaired and waiting for
    the department to verify — one query for the figures, one for the rows."""

    tickets = repairs.tickets_for(user)
    counts = tickets.aggregate(
        open=Count("id", filter=Q(state__in=repairs.OPEN_STATES)),
        to_verify=Count("id", filter=Q(state=RepairState.REPAIRED)),
    )
    latest = list(tickets.filter(state__in=repairs.OPEN_STATES).order_by("-opened_at")[:ROWS])
    return Panel(
        key="repairs",
        title=_("设备报修"),
        figures=[
            Figure("repairs_open", _("未结维修单"), counts["open"], href="/repairs/"),
            Figure("repairs_to_verify", _("待本部门验收"), counts["to_verify"], attention=bool(counts["to_verify"])),
        ],
        columns=[_("设备"), _("状态"), _("报修时间")],
        rows=[[t.device.name, t.get_state_display(), _when(t.opened_at)] for t in latest],
        row_links=[f"/repairs/{t.pk}/" for t in latest],
        empty=_("没有未结的维修单。"),
        link=("/repairs/", _("设备报修")),
    )
