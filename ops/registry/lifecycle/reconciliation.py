"""Bank reconciliation (银校对账, R-FEE-3; issue 18, Build 3).

Every fee and damage payment carries a channel and a payment reference (``FeeCharge.channel``,
``.reference``). Finance imports a day's statement from the bank or the payment platform for one
channel (CSV/XLSX through :mod:`ops.registry.lifecycle.tabular`, with its upload caps; the
reference and amount columns are named at import, with common spellings recognised), and
:func:`reconcile` matches it to the ledger by reference:

* **matched** — a statement line and a payment of that day with the same reference and amount;
* **unknown** (对账单有、账上无) — a line with no payment of that day, a different amount, or a
  reference repeated in the statement;
* **missing** (账上有、对账单无) — a payment of that day on a channel whose statement was imported
  that has no line.

:func:`close_day` closes a day for one window or for every window: its payments are locked — the
services call :func:`ensure_open` before writing a payment and a database trigger (migration
0008) refuses any insert, update or delete of a paid charge inside a closed day. Corrections are
new entries on an open day. Every import and closing is audited; exports go through
:mod:`ops.spreadsheet` (no formula reaches Finance's Excel).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from ops.accounts.permissions import role_of
from ops.accounts.roles import Role
from ops.audit import services as audit
from ops.registry.lifecycle import tabular
from ops.registry.lifecycle.choices import ChargeStatus, PayChannel
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.models import BankStatement, ClosedDay, FeeCharge, StatementLine
from ops.spreadsheet import append_row, csv_bytes

# Statement columns: field → accepted header spellings (compared after tabular.header_key). The
# operator may name other headers at import (the bank's own layout: "configurable columns").
STATEMENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "reference": ("交易流水号", "支付流水号", "流水号", "商户订单号", "交易参考号", "参考号", "订单号", "reference"),
    "amount": ("交易金额", "金额", "金额（元）", "金额(元)", "收入金额", "amount"),
}
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {"paid_at": ("交易时间", "时间", "交易日期", "日期", "time")}
MAX_ERRORS_SHOWN = 20


# -- who --------------------------------------------------------------------------------------------
def may_reconcile(operator: Any) -> bool:
    """Finance reconciles and closes days (R-FEE-3)."""
    return bool(getattr(operator, "is_superuser", False)) or role_of(operator) == Role.FINANCE


def _require_finance(operator: Any) -> None:
    if not may_reconcile(operator):
        raise CardRuleError(_("只有计划财务处可以导入对账单或结账"))


# -- the lock ---------------------------------------------------------------------------------------
def day_bounds(day: date) -> tuple[datetime, datetime]:
    tz = timezone.get_current_timezone()
    return datetime.combine(day, time.min, tzinfo=tz), datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)


def closing_of(at: datetime, window: str) -> ClosedDay | None:
    """The closing that locks a payment made at ``at`` through ``window``, if any."""
    return ClosedDay.objects.filter(starts_at__lte=at, ends_at__gt=at).filter(Q(window="") | Q(window=window)).first()


def ensure_open(at: datetime, window: str) -> None:
    """Refuse a payment written into a closed day (R-FEE-3: closed days are locked)."""
    closed = closing_of(at, window)
    if closed is not None:
        raise CardRuleError(
            _("%(day)s（%(window)s）已结账，账目已锁定，不能再登记或更改收费；更正请在未结账的日期另记新流水")
            % {"day": closed.day.isoformat(), "window": closed.window or _("全部窗口")}
        )


def checked_channel(channel: str) -> str:
    channel = (channel or PayChannel.CASH).strip()
    if channel not in PayChannel.values:
        raise CardRuleError(_("未知的支付渠道“%(channel)s”") % {"channel": channel})
    return channel


def checked_reference(reference: str) -> str:
    reference = (reference or "").strip()
    if len(reference) > 64:
        raise CardRuleError(_("支付流水号不能超过 64 个字符"))
    if reference.startswith(("=", "+", "-", "@")):
        raise CardRuleError(_("支付流水号不能以 =、+、-、@ 开头"))
    if reference and FeeCharge.objects.filter(reference=reference).exists():
        raise CardRuleError(_("支付流水号“%(reference)s”已登记过，不能重复使用") % {"reference": reference})
    return reference


def own_reference(charge: FeeCharge) -> str:
    """The reference the system gives a payment when none was typed (cash: printed on the
    receipt): JF + the payment's date + the charge's number."""
    day = timezone.localtime(charge.paid_at or timezone.now()).strftime("%Y%m%d")
    return f"JF{day}{charge.pk:08d}"


# -- statements -------------------------------------------------------------------------------------
def _column(headers: list[str], field_name: str, spellings: tuple[str, ...], chosen: str) -> str | None:
    keys = {tabular.header_key(h): h for h in headers}
    if chosen.strip():
        found = keys.get(tabular.header_key(chosen))
        if found is None:
            raise CardRuleError(
                _("对账单中没有名为“%(column)s”的列；文件的列为：%(headers)s")
                % {"column": chosen.strip(), "headers": "、".join(headers)}
            )
        return found
    for spelling in spellings:
        if (found := keys.get(tabular.header_key(spelling))) is not None:
            return found
    return None


def _amount(text: str) -> Decimal | None:
    cleaned = text.replace(",", "").replace("，", "").replace("¥", "").replace("￥", "").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    exponent = value.as_tuple().exponent  # an int for a finite value ('n', 'N', 'F' otherwise)
    if not value.is_finite() or (isinstance(exponent, int) and exponent < -2) or abs(value) >= Decimal("100000000"):
        return None
    return value.quantize(Decimal("0.01"))


@transaction.atomic
def import_statement(
    *,
    day: date,
    channel: str,
    filename: str,
    data: bytes,
    operator: Any,
    columns: Mapping[str, str] | None = None,
) -> BankStatement:
    """Read a statement (CSV/XLSX, within the upload caps) and store its lines for ``day`` and
    ``channel``. Any bad row refuses the whole file with the rows listed; nothing is stored."""
    _require_finance(operator)
    channel = checked_channel(channel)
    if day > timezone.localdate():
        raise CardRuleError(_("对账日期不能晚于今天"))
    try:
        table = tabular.read_table(filename, data)
    except tabular.TableError as exc:
        raise CardRuleError(str(exc)) from exc
    chosen = dict(columns or {})
    found: dict[str, str] = {}
    for name, spellings in {**STATEMENT_COLUMNS, **OPTIONAL_COLUMNS}.items():
        header = _column(table.headers, name, spellings, chosen.get(name, ""))
        if header is None and name in STATEMENT_COLUMNS:
            raise CardRuleError(
                _("对账单缺少“%(column)s”列（可在导入时填写对账单中的列名）；文件的列为：%(headers)s")
                % {"column": spellings[0], "headers": "、".join(table.headers)}
            )
        if header is not None:
            found[name] = header
    lines, errors, seen = [], [], set()
    for row in table.rows:
        reference = (row.get(found["reference"]) or "").strip()
        amount_text = (row.get(found["amount"]) or "").strip()
        amount = _amount(amount_text)
        if not reference:
            errors.append(_("第 %(row)d 行：支付流水号为空") % {"row": row.row})
        elif len(reference) > 64:
            errors.append(_("第 %(row)d 行：支付流水号超过 64 个字符") % {"row": row.row})
        if amount is None:
            errors.append(_("第 %(row)d 行：金额“%(value)s”不是有效金额") % {"row": row.row, "value": amount_text[:40]})
        if reference and amount is not None and len(reference) <= 64:
            seen.add(reference)
            paid_at = (row.get(found["paid_at"]) or "")[:40] if "paid_at" in found else ""
            lines.append((row.row, reference, amount, paid_at))
    if errors:
        shown = errors[:MAX_ERRORS_SHOWN]
        more = len(errors) - len(shown)
        tail = [_("……另有 %(n)d 处错误") % {"n": more}] if more else []
        raise CardRuleError(_("对账单有误，未导入：") + "；".join([*shown, *tail]))
    if not lines:
        raise CardRuleError(_("对账单没有任何交易记录"))
    statement = BankStatement.objects.create(
        day=day,
        channel=channel,
        filename=filename[:200],
        sha256=hashlib.sha256(data).hexdigest(),
        columns=found,
        rows=len(lines),
        total=sum((a for _r, _ref, a, _t in lines), Decimal("0.00")),
        imported_by=operator if getattr(operator, "pk", None) else None,
    )
    StatementLine.objects.bulk_create(
        StatementLine(statement=statement, row=r, reference=ref, amount=a, paid_at=t) for r, ref, a, t in lines
    )
    audit.record(
        actor=operator,
        action="fee.statement_import",
        object_type="bank_statement",
        object_id=statement.pk,
        basis=filename[:200],
        data={
            "day": day.isoformat(),
            "channel": channel,
            "rows": len(lines),
            "total": str(statement.total),
            "sha256": statement.sha256,
        },
    )
    return statement


# -- matching ---------------------------------------------------------------------------------------
@dataclass
class Reconciliation:
    day: date
    matched: list[tuple[StatementLine, FeeCharge]] = field(default_factory=list)
    unknown: list[tuple[StatementLine, str]] = field(default_factory=list)  # (line, why)
    missing: list[FeeCharge] = field(default_factory=list)
    statements: list[BankStatement] = field(default_factory=list)  # the latest per channel
    unstated: dict[str, int] = field(default_factory=dict)  # channel → payments, no statement yet
    closed: list[ClosedDay] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return not self.unknown and not self.missing

    def summary(self) -> dict[str, Any]:
        return {
            "matched": len(self.matched),
            "unknown": [line.reference for line, _why in self.unknown],
            "missing": [c.reference for c in self.missing],
            "statements": [s.pk for s in self.statements],
            "unstated": self.unstated,
        }


def payments_of(day: date):
    lo, hi = day_bounds(day)
    return FeeCharge.objects.filter(status=ChargeStatus.PAID, paid_at__gte=lo, paid_at__lt=hi)


def reconcile(day: date) -> Reconciliation:
    """Match the day's latest statement per channel to the day's payments, by reference."""
    result = Reconciliation(day=day, closed=list(ClosedDay.objects.filter(day=day).select_related("closed_by")))
    latest: dict[str, BankStatement] = {}
    for statement in BankStatement.objects.filter(day=day).order_by("id"):
        latest[statement.channel] = statement
    result.statements = list(latest.values())
    payments = list(payments_of(day).select_related("holder", "settled_by").order_by("id"))
    by_reference = {c.reference: c for c in payments if c.reference}
    taken: set[int] = set()
    lines = StatementLine.objects.filter(statement__in=result.statements).select_related("statement")
    for line in lines.order_by("statement_id", "row"):
        charge = by_reference.get(line.reference)
        if charge is None:
            elsewhere = FeeCharge.objects.filter(reference=line.reference, status=ChargeStatus.PAID).first()
            if elsewhere is not None and elsewhere.paid_at:
                why = _("账上这笔收费在 %(day)s") % {"day": timezone.localdate(elsewhere.paid_at).isoformat()}
            else:
                why = _("账上无此流水号")
            result.unknown.append((line, why))
        elif charge.pk in taken:
            result.unknown.append((line, _("对账单中流水号重复")))
        elif charge.channel != line.statement.channel:
            taken.add(charge.pk)
            result.unknown.append(
                (line, _("账上为“%(channel)s”渠道") % {"channel": charge.get_channel_display() or _("未登记")})
            )
            result.missing.append(charge)
        elif charge.amount != line.amount:
            taken.add(charge.pk)
            result.unknown.append((line, _("金额不符：账上 %(amount)s 元") % {"amount": charge.amount}))
            result.missing.append(charge)
        else:
            taken.add(charge.pk)
            result.matched.append((line, charge))
    for charge in payments:
        if charge.pk in taken:
            continue
        if charge.channel in latest:
            result.missing.append(charge)
        else:
            key = charge.channel or ""
            result.unstated[key] = result.unstated.get(key, 0) + 1
    result.missing.sort(key=lambda c: c.pk)
    return result


# -- closing ----------------------------------------------------------------------------------------
@transaction.atomic
def close_day(*, day: date, window: str, operator: Any, note: str = "") -> ClosedDay:
    """Close ``day`` for ``window`` (blank: every window). A day with unmatched items or
    payments on a channel whose statement was not imported closes only with a note saying why.
    Audited; never undone."""
    _require_finance(operator)
    window, note = (window or "").strip()[:40], (note or "").strip()[:500]
    if day > timezone.localdate():
        raise CardRuleError(_("不能为未来的日期结账"))
    existing = ClosedDay.objects.select_for_update().filter(day=day).filter(Q(window="") | Q(window=window)).first()
    if existing is not None:
        raise CardRuleError(
            _("%(day)s（%(window)s）已结账，不能重复结账")
            % {"day": day.isoformat(), "window": existing.window or _("全部窗口")}
        )
    result = reconcile(day)
    if window:  # a window's own open items; lines the ledger does not know block the whole day only
        stated = {s.channel for s in result.statements}
        unresolved = any(c.window == window for c in result.missing) or any(
            c.window == window and c.channel not in stated for c in payments_of(day)
        )
    else:
        unresolved = not result.balanced or bool(result.unstated)
    if unresolved and not note:
        raise CardRuleError(_("该日还有未达账项（未匹配或未导入对账单的收费）；如确需结账，请写明结账说明"))
    lo, hi = day_bounds(day)
    closed = ClosedDay.objects.create(
        day=day,
        window=window,
        starts_at=lo,
        ends_at=hi,
        note=note,
        summary=result.summary(),
        closed_by=operator if getattr(operator, "pk", None) else None,
    )
    audit.record(
        actor=operator,
        action="fee.day_close",
        object_type="closed_day",
        object_id=closed.pk,
        basis=note,
        data={"day": day.isoformat(), "window": window, **result.summary()},
    )
    return closed


# -- exports for the bank audit ---------------------------------------------------------------------
EXPORT_HEADERS = ["结果", "渠道", "支付流水号", "对账单金额（元）", "账上金额（元）", "收费窗口", "缴费时间", "说明"]


def export_rows(result: Reconciliation) -> list[list[object]]:
    def when(c: FeeCharge) -> str:
        return timezone.localtime(c.paid_at).strftime("%Y-%m-%d %H:%M:%S") if c.paid_at else ""

    rows: list[list[object]] = []
    for line, c in result.matched:
        rows.append(
            [_("已匹配"), c.get_channel_display(), line.reference, line.amount, c.amount, c.window, when(c), ""]
        )
    for line, why in result.unknown:
        channel = PayChannel(line.statement.channel).label
        rows.append([_("对账单有、账上无"), str(channel), line.reference, line.amount, "", "", line.paid_at, why])
    for c in result.missing:
        rows.append([_("账上有、对账单无"), c.get_channel_display(), c.reference, "", c.amount, c.window, when(c), ""])
    return rows


def to_csv(result: Reconciliation) -> bytes:
    return csv_bytes(EXPORT_HEADERS, export_rows(result))


def to_xlsx(result: Reconciliation) -> bytes:
    from openpyxl import Workbook
    from openpyxl.worksheet.worksheet import Worksheet

    book = Workbook()
    sheet = book.active
    assert isinstance(sheet, Worksheet)
    sheet.title = "对账结果"
    append_row(sheet, EXPORT_HEADERS)
    for row in export_rows(result):
        append_row(sheet, [float(v) if isinstance(v, Decimal) else v for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
