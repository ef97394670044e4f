"""Issue 18, Build 4: reports for leadership — a day, week, month or semester (between the
academic calendar's vacations): taps per gate per hour, denials by reason, cards issued / lost /
replaced / cancelled by type and department, fees, device faults and time to repair, dorm late
returns per building. The page (Plotly charts and tables) and its XLSX come from one selector;
the supervisor mails each ended period's XLSX to every leader once. The leader and NIC only
(R-ROLE-2, R-SEC-3)."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.test import Client
from openpyxl import load_workbook

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.alerts.choices import AlertKind, AlertStatus, RepairCause, Severity
from ops.alerts.models import Alert, RepairTicket
from ops.audit.models import AuditRecord
from ops.pipeline import scheduled
from ops.registry.calendar.models import CalendarDay
from ops.registry.lifecycle.choices import Action, ChargeStatus, FeeKind
from ops.registry.lifecycle.models import CardAction, FeeCharge
from ops.registry.models import AccessEvent, Building, Cardholder, Department
from ops.reports import periods, selectors, xlsx
from ops.reports.mailing import mail_due
from ops.reports.models import MailedReport
from streams.calendar import DayType
from streams.cards import CardStatus, CardType
from streams.reasons import Decision, Reason
from tests import test_untranslated_sweep as sweep
from tests.browser import chromium, free_port, log_in, stop, wait_http
from tests.test_untranslated_sweep import foreign_words

CAMPUS = ZoneInfo("Asia/Shanghai")
PASSWORD = "reports-pass-4"
SECTIONS = len(selectors.SECTIONS)
MARCH = periods.Period(periods.Kind.MONTH, date(2026, 3, 1), date(2026, 3, 31))


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CAMPUS)


def _tap(device, when, *, card=None, decision=Decision.ALLOW, reason=Reason.OK, flags="", direction="in"):
    return AccessEvent.objects.create(
        event_id=uuid.uuid4(),
        device=device,
        card=card,
        card_uid=card.uid if card else "FFFFFFFF",
        holder=card.holder if card else None,
        occurred_at=when,
        direction=direction,
        decision=decision,
        reason=reason,
        flags=flags,
    )


def _action(card, action, to_status, when):
    row = CardAction.objects.create(card=card, holder=card.holder, action=action, to_status=to_status)
    CardAction.objects.filter(pk=row.pk).update(at=when)


def _fault(device, kind, first, repaired_after=None):
    Alert.objects.create(
        kind=kind,
        severity=Severity.WARNING,
        subject=device.code,
        device=device,
        first_at=first,
        last_at=first,
        status=AlertStatus.RESOLVED if repaired_after else AlertStatus.OPEN,
        resolved_at=first + repaired_after if repaired_after else None,
    )


def seed(campus) -> None:
    """Known counts in March 2026 (campus time), and decoys just outside it or of other kinds."""
    gate, vgate, door = campus.gate, campus.vehicle_gate, campus.dorm_door
    c = campus.cards
    # taps: G-E-01 three at 08h and one at 17h, V-E-IN two at 08h; decoys either side of March
    for minute in (0, 10, 59):
        _tap(gate, local(2026, 3, 3, 8, minute), card=c[0])
    _tap(gate, local(2026, 3, 31, 17, 30), card=c[1])
    _tap(vgate, local(2026, 3, 9, 8, 5), card=c[2])
    _tap(vgate, local(2026, 3, 9, 8, 6), card=c[2], decision=Decision.DENY, reason=Reason.LOST)
    _tap(gate, local(2026, 2, 28, 23, 59), card=c[0])  # February
    _tap(gate, local(2026, 4, 1, 0, 0), card=c[0])  # April
    # denials: two lost (one above at the vehicle gate), one blacklisted, one unknown card
    _tap(door, local(2026, 3, 5, 12, 0), card=c[3], decision=Decision.DENY, reason=Reason.LOST)
    _tap(door, local(2026, 3, 6, 12, 0), card=c[4], decision=Decision.DENY, reason=Reason.BLACKLISTED)
    _tap(door, local(2026, 3, 7, 12, 0), decision=Decision.DENY, reason=Reason.UNKNOWN_CARD)
    # dorm late returns: two residents flagged late; not counted: a resident unflagged, a
    # non-resident flagged, a late exit; a second dorm building with none
    _tap(door, local(2026, 3, 10, 23, 40), card=c[5], flags="late_return")
    _tap(door, local(2026, 3, 11, 0, 15), card=c[6], flags="late_return,passback")
    _tap(door, local(2026, 3, 11, 21, 0), card=c[7])
    outsider = Cardholder.objects.create(
        kind="staff", number="T90001", name="外来", department=campus.dept, dorm_building=None
    )
    other_card = outsider.cards.create(
        uid="B0000001", card_type=CardType.STAFF, status=CardStatus.ACTIVE, valid_from=local(2026, 1, 1)
    )
    _tap(door, local(2026, 3, 12, 23, 50), card=other_card, flags="late_return")
    _tap(door, local(2026, 3, 12, 23, 55), card=c[8], flags="late_return", direction="out")
    Building.objects.create(code="D2", name="2号学生公寓", is_dorm=True)
    # cards: student/保卫处 issued 2 (one in April: not counted), lost 1, replaced 1 (two rows:
    # old card → replaced, new card → active: counted once), cancelled 1; staff/人事处 issued 1
    hr = Department.objects.create(code="HR", name="人事处")
    staff = Cardholder.objects.create(kind="staff", number="T00001", name="李四", department=hr)
    staff_card = staff.cards.create(
        uid="C0000001", card_type=CardType.STAFF, status=CardStatus.ACTIVE, valid_from=local(2026, 1, 1)
    )
    _action(c[0], Action.ISSUE, CardStatus.ACTIVE, local(2026, 3, 2, 9))
    _action(c[1], Action.ISSUE, CardStatus.ACTIVE, local(2026, 3, 2, 10))
    _action(c[2], Action.ISSUE, CardStatus.ACTIVE, local(2026, 4, 2, 10))
    _action(c[3], Action.LOSE, CardStatus.LOST, local(2026, 3, 4, 10))
    _action(c[3], Action.REPLACE, CardStatus.REPLACED, local(2026, 3, 5, 10))
    _action(c[9], Action.REPLACE, CardStatus.ACTIVE, local(2026, 3, 5, 10))
    _action(c[10], Action.CANCEL, CardStatus.CANCELLED, local(2026, 3, 20, 10))
    _action(c[11], Action.FIND, CardStatus.ACTIVE, local(2026, 3, 20, 11))  # not reported
    _action(staff_card, Action.ISSUE, CardStatus.ACTIVE, local(2026, 3, 15, 10))
    # fees paid in March: two losses at 20.00, one damage at 15.50; not: owed, void, paid in April
    for kind, amount, status, paid in (
        (FeeKind.LOSS, "20.00", ChargeStatus.PAID, local(2026, 3, 5, 10)),
        (FeeKind.LOSS, "20.00", ChargeStatus.PAID, local(2026, 3, 31, 23, 59)),
        (FeeKind.DAMAGE, "15.50", ChargeStatus.PAID, local(2026, 3, 6, 10)),
        (FeeKind.DEVICE_DAMAGE, "300.00", ChargeStatus.OWED, None),
        (FeeKind.LOSS, "20.00", ChargeStatus.VOID, None),
        (FeeKind.LOSS, "20.00", ChargeStatus.PAID, local(2026, 4, 1, 8)),
    ):
        FeeCharge.objects.create(holder=c[3].holder, kind=kind, amount=Decimal(amount), status=status, paid_at=paid)
    # faults begun in March: two device faults (one repaired in 2 h, one open), an upload stop
    # repaired in 4 h; not: a blacklist hit, a fault begun in February
    _fault(gate, AlertKind.DEVICE_FAULT, local(2026, 3, 3, 9), timedelta(hours=2))
    _fault(vgate, AlertKind.DEVICE_FAULT, local(2026, 3, 8, 9))
    _fault(door, AlertKind.UPLOAD_STOPPED, local(2026, 3, 9, 9), timedelta(hours=4))
    _fault(gate, AlertKind.BLACKLIST_HIT, local(2026, 3, 9, 9), timedelta(hours=1))
    _fault(gate, AlertKind.DEVICE_FAULT, local(2026, 2, 27, 9), timedelta(hours=1))
    # repair tickets reported in March: two non-human (repaired in 3 h and 5 h), one human not
    # yet repaired, one not yet judged; not: one reported in April
    clerk = create_or_update_operator(username="nic-clerk", password=PASSWORD, role=Role.NIC)
    for cause, opened, hours in (
        (RepairCause.NON_HUMAN, local(2026, 3, 3, 10), 3),
        (RepairCause.NON_HUMAN, local(2026, 3, 12, 10), 5),
        (RepairCause.HUMAN, local(2026, 3, 20, 10), None),
        ("", local(2026, 3, 30, 10), None),
        (RepairCause.NON_HUMAN, local(2026, 4, 1, 10), 1),
    ):
        human = cause == RepairCause.HUMAN
        RepairTicket.objects.create(
            device=gate,
            cause=cause,
            description="读卡无反应",
            responsible=c[12].holder if human else None,
            price=Decimal("120.00") if human else Decimal("0"),
            opened_by=clerk,
            opened_at=opened,
            repaired_at=opened + timedelta(hours=hours) if hours else None,
        )


def _rows(report, key):
    return report.section(key).rows


# -- each aggregation ------------------------------------------------------------------------


@pytest.mark.django_db
def test_taps_per_gate_per_hour(campus):
    seed(campus)
    rows = {r[0]: r for r in _rows(selectors.report(MARCH), "taps")}
    assert set(rows) == {"G-E-01", "V-E-IN"}  # gates only: the dorm door's taps are not here
    gate, vgate = rows["G-E-01"], rows["V-E-IN"]
    assert gate[2 + 8] == 3 and gate[2 + 17] == 1 and gate[-1] == 4  # hour columns 00…23, then 合计
    assert vgate[2 + 8] == 2 and vgate[-1] == 2
    assert sum(gate[2:26]) == gate[-1]


@pytest.mark.django_db
def test_denials_by_reason(campus):
    seed(campus)
    assert _rows(selectors.report(MARCH), "denials") == [["已挂失", 2], ["黑名单", 1], ["未知卡", 1]]


@pytest.mark.django_db
def test_cards_issued_lost_replaced_cancelled_by_type_and_department(campus):
    seed(campus)
    assert _rows(selectors.report(MARCH), "cards") == [
        ["教工卡", "人事处", 1, 0, 0, 0],
        ["学生卡", "保卫处", 2, 1, 1, 1],
    ]


@pytest.mark.django_db
def test_fees_paid_in_the_period_by_kind(campus):
    seed(campus)
    assert _rows(selectors.report(MARCH), "fees") == [
        ["损坏补卡", 1, Decimal("15.50")],
        ["挂失补卡", 2, Decimal("40.00")],
    ]


@pytest.mark.django_db
def test_device_faults_and_time_to_repair(campus):
    seed(campus)
    assert _rows(selectors.report(MARCH), "faults") == [
        ["设备故障", 2, 1, 2.0, 2.0],
        ["设备停止上传", 1, 1, 4.0, 4.0],
    ]


@pytest.mark.django_db
def test_repair_tickets_and_time_to_repair(campus):
    seed(campus)
    assert _rows(selectors.report(MARCH), "repairs") == [
        ["未判定", 1, 0, None, None],
        ["人为损坏（责任人按市价赔偿）", 1, 0, None, None],
        ["非人为（厂商免费维修）", 2, 2, 4.0, 5.0],
    ]


@pytest.mark.django_db
def test_dorm_late_returns_per_building(campus):
    seed(campus)
    assert _rows(selectors.report(MARCH), "late") == [["D1", "1号学生公寓", 2], ["D2", "2号学生公寓", 0]]


@pytest.mark.django_db
def test_a_day_holds_only_its_own_figures(campus):
    seed(campus)
    day = selectors.report(periods.period_of("day", date(2026, 3, 3)))
    assert [r[-1] for r in _rows(day, "taps")] == [3]
    assert _rows(day, "faults") == [["设备故障", 1, 1, 2.0, 2.0]]
    assert _rows(day, "denials") == [] and _rows(day, "fees") == []


# -- periods ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_day_week_and_month_periods():
    assert periods.period_of("week", date(2026, 3, 4)) == periods.Period(
        periods.Kind.WEEK, date(2026, 3, 2), date(2026, 3, 8)
    )
    assert periods.period_of("month", date(2024, 2, 10)).end == date(2024, 2, 29)
    assert periods.period_of("month", date(2026, 12, 31)).start == date(2026, 12, 1)
    assert [p.kind for p in periods.ended_on(date(2026, 3, 8))] == ["day", "week"]


@pytest.mark.django_db
def test_a_semester_runs_between_the_calendars_vacations():
    def vacation(first: date, last: date, kind: DayType) -> None:
        d = first
        while d <= last:
            CalendarDay.objects.create(date=d, day_type=kind)
            d += timedelta(days=1)

    vacation(date(2026, 1, 24), date(2026, 3, 1), DayType.WINTER_VACATION)
    vacation(date(2026, 7, 4), date(2026, 8, 30), DayType.SUMMER_VACATION)
    CalendarDay.objects.create(date=date(2026, 5, 1), day_type=DayType.HOLIDAY)  # no boundary
    spring = periods.Period(periods.Kind.SEMESTER, date(2026, 3, 2), date(2026, 7, 3))
    assert periods.period_of("semester", date(2026, 5, 1)) == spring
    assert periods.period_of("semester", date(2026, 7, 20)) == spring  # a vacation: the semester it ends
    assert periods.ended_on(date(2026, 7, 3))[-1] == spring
    autumn = periods.period_of("semester", date(2026, 10, 1))
    assert autumn.start == date(2026, 8, 31)


@pytest.mark.django_db
def test_without_a_calendar_the_usual_college_year_stands_in():
    assert periods.period_of("semester", date(2026, 4, 1)) == periods.Period(
        periods.Kind.SEMESTER, date(2026, 3, 1), date(2026, 7, 9)
    )
    assert periods.period_of("semester", date(2026, 11, 1)) == periods.Period(
        periods.Kind.SEMESTER, date(2026, 9, 1), date(2027, 1, 19)
    )


# -- the XLSX holds the page's figures -------------------------------------------------------


def _sheets(content: bytes) -> dict[str, list[list]]:
    book = load_workbook(io.BytesIO(content))
    return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in book.worksheets}


@pytest.mark.django_db
def test_the_xlsx_holds_one_sheet_per_section_with_the_same_rows(campus):
    seed(campus)
    report = selectors.report(MARCH)
    sheets = _sheets(xlsx.to_xlsx(report))
    for section in report.sections:
        header, *rows = sheets[xlsx.sheet_name(section.title)]
        assert header == section.headers
        assert rows == [[float(v) if isinstance(v, Decimal) else v for v in r] for r in section.rows]
    assert sheets["说明"][1] == ["报表期间", "月报 2026-03-01 至 2026-03-31"]


# -- who may open it -------------------------------------------------------------------------


def _client(username: str, role: Role) -> Client:
    c = Client()
    c.force_login(create_or_update_operator(username=username, password=PASSWORD, role=role))
    return c


@pytest.mark.django_db
def test_only_the_leader_and_nic_open_the_reports(campus):
    for path in ("/reports/", "/reports/xlsx?period=month&date=2026-03-01", "/reports/plotly.min.js"):
        assert _client("sec1", Role.SECURITY).get(path).status_code == 403, path
        assert _client("dorm1", Role.DORM_MANAGER).get(path).status_code == 403, path
        assert _client("fin1", Role.FINANCE).get(path).status_code == 403, path
        assert Client().get(path).status_code == 302, path  # to the login page
        assert _client("lead1", Role.LEADER).get(path).status_code == 200, path
        assert _client("nic1", Role.NIC).get(path).status_code == 200, path
    home = _client("lead1", Role.LEADER).get("/").content.decode()
    assert 'href="/reports/"' in home  # the leader's workbench links to it
    assert 'href="/reports/"' not in _client("fin1", Role.FINANCE).get("/").content.decode()


@pytest.mark.django_db
def test_a_bad_period_or_date_is_refused_in_chinese(campus):
    c = _client("lead1", Role.LEADER)
    r = c.get("/reports/?period=year&date=2026-03-01")
    assert r.status_code == 400 and "未知的报表类型" in r.content.decode()
    r = c.get("/reports/?period=month&date=2026-13-01")
    assert r.status_code == 400 and "日期格式不正确" in r.content.decode()
    assert c.get("/reports/xlsx?period=month&date=x").status_code == 400
    assert not AuditRecord.objects.filter(action="report.export").exists()
    assert c.get("/reports/xlsx?period=month&date=2026-03-09").status_code == 200
    assert AuditRecord.objects.filter(action="report.export", object_id="month-20260301-20260331").count() == 1


# -- the scheduled mail ----------------------------------------------------------------------


@pytest.mark.django_db
def test_each_ended_period_is_mailed_once_to_every_leader_with_its_xlsx(campus, settings):
    seed(campus)
    settings.BACKUP_AT = settings.AUDIT_PURGE_AT = settings.REMINDERS_AT = None
    for name, email in (("lead1", "lead1@example.edu.cn"), ("lead2", "lead2@example.edu.cn"), ("lead3", "")):
        user = create_or_update_operator(username=name, password=PASSWORD, role=Role.LEADER)
        user.email = email
        user.save()
    nic = create_or_update_operator(username="nic1", password=PASSWORD, role=Role.NIC)
    nic.email = "nic@example.edu.cn"
    nic.save()
    settings.REPORTS_MAIL_AT = time(7, 0)
    # Tuesday 31 March 2026 ends a day and a month; the supervisor is first seen the day before
    assert scheduled.run_due(now=local(2026, 3, 31, 8), runner="s") == {}
    assert scheduled.run_due(now=local(2026, 4, 1, 6, 59), runner="s") == {}  # not yet due
    assert scheduled.run_due(now=local(2026, 4, 1, 7, 1), runner="s") == {"reports-mail": "ok"}
    assert sorted((m.to[0], m.subject) for m in mail.outbox) == [
        ("lead1@example.edu.cn", "校园一卡通统计报表：日报 2026-03-31 至 2026-03-31"),
        ("lead1@example.edu.cn", "校园一卡通统计报表：月报 2026-03-01 至 2026-03-31"),
        ("lead2@example.edu.cn", "校园一卡通统计报表：日报 2026-03-31 至 2026-03-31"),
        ("lead2@example.edu.cn", "校园一卡通统计报表：月报 2026-03-01 至 2026-03-31"),
    ]
    monthly = next(m for m in mail.outbox if "月报" in m.subject)
    ((name, content, mimetype),) = monthly.attachments
    assert name == "campuscard-report-month-20260301-20260331.xlsx" and mimetype == xlsx.XLSX_TYPE
    attached, fresh = _sheets(content), _sheets(xlsx.to_xlsx(selectors.report(MARCH)))
    assert attached.pop("说明")[:4] == fresh.pop("说明")[:4]  # the cover, but for when it was made
    assert attached == fresh  # the page's figures
    assert MailedReport.objects.count() == 2
    assert AuditRecord.objects.filter(action="report.mailed").count() == 2

    # once: asked again the same day (another supervisor), nothing more is sent
    mail.outbox.clear()
    assert scheduled.run_due(now=local(2026, 4, 1, 9), runner="t") == {}
    assert mail_due(local(2026, 4, 1, 9)) == {"mailed": {}}
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_supervisor_that_was_down_catches_up_on_the_ended_periods(campus):
    create_or_update_operator(username="lead1", password=PASSWORD, role=Role.LEADER).__class__.objects.filter(
        username="lead1"
    ).update(email="lead1@example.edu.cn")
    assert mail_due(local(2026, 3, 6, 7)) == {"mailed": {"day-20260305-20260305": 1}}
    # down from Friday to Tuesday: Thursday … Monday's days, and the week ending Sunday
    mailed = mail_due(local(2026, 3, 10, 7))["mailed"]
    assert sorted(mailed) == [
        "day-20260306-20260306",
        "day-20260307-20260307",
        "day-20260308-20260308",
        "day-20260309-20260309",
        "week-20260302-20260308",
    ]


# -- acceptance 4: the leader opens the monthly report; its XLSX has the same figures ---------


@pytest.fixture
def web(subprocess_env):
    """Real daphne on the test database (the page needs nothing else)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "ops.asgi:application"], env=subprocess_env
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc, signal.SIGTERM)


def _same(shown: str, stored: object) -> bool:
    if stored is None:
        return shown == "—"
    if isinstance(stored, int | float):
        return float(shown) == float(stored)
    return shown == stored


@pytest.mark.browser
def test_the_leader_opens_the_monthly_report_and_its_xlsx_has_the_same_figures(campus, web):
    seed(campus)
    create_or_update_operator(username="leader1", password=PASSWORD, role=Role.LEADER)
    ids = sweep._ids()
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        log_in(page, web, "leader1", PASSWORD, "/reports/")
        page.select_option("#id_period", "month")
        page.fill("#id_date", "2026-03-15")
        page.click("#report-show")
        page.wait_for_url("**/reports/?period=month&date=2026-03-15")
        shown_period = page.locator("#report-period")
        assert shown_period.get_attribute("data-start") == "2026-03-01"
        assert shown_period.get_attribute("data-end") == "2026-03-31"
        # each section with figures has its Plotly chart drawn, axes in Chinese
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.wait_for_function(
            f"document.querySelectorAll('.report-chart.js-plotly-plot .xtitle').length === {SECTIONS}", timeout=20_000
        )
        assert page.locator("#chart-taps .xtitle").text_content() == "时段（时）"
        assert page.locator("#chart-faults .ytitle").text_content() == "次数"
        assert errors == []
        assert foreign_words(page.evaluate(sweep._TEXT), ids=ids) == set()  # Chinese throughout (issue 19)
        tables = page.evaluate(
            """() => Array.from(document.querySelectorAll('.report-section')).map(s => ({
                title: s.dataset.title,
                headers: Array.from(s.querySelectorAll('thead th')).map(th => th.textContent),
                rows: Array.from(s.querySelectorAll('tbody tr')).map(
                    tr => Array.from(tr.querySelectorAll('td')).map(td => td.textContent)),
            }))"""
        )
        with page.expect_download() as info:
            page.click("#report-xlsx")
        download = info.value
        assert download.suggested_filename == "campuscard-report-month-20260301-20260331.xlsx"
        content = open(download.path(), "rb").read()

    sheets = _sheets(content)
    assert len(tables) == SECTIONS and len(sheets) == SECTIONS + 1  # a cover sheet, then one per section
    for table in tables:
        header, *rows = sheets[xlsx.sheet_name(table["title"])]
        assert header == table["headers"]
        assert len(rows) == len(table["rows"]) > 0, table["title"]
        for shown, stored in zip(table["rows"], rows, strict=True):
            assert len(shown) == len(stored) and all(map(_same, shown, stored)), (table["title"], shown, stored)
    # and the figures are the seeded ones, not merely equal to each other
    by_title = {t["title"]: t for t in tables}
    assert by_title["拒绝通行（按原因）"]["rows"] == [["已挂失", "2"], ["黑名单", "1"], ["未知卡", "1"]]
    assert by_title["收费（按项目）"]["rows"][1] == ["挂失补卡", "2", "40.00"]


@pytest.mark.django_db
def test_in_english_the_page_and_the_file_are_in_english(campus, settings):
    seed(campus)
    c = _client("lead1", Role.LEADER)
    c.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = c.get("/reports/?period=month&date=2026-03-09").content.decode()
    assert "Taps per gate per hour" in html and "Monthly report 2026-03-01 to 2026-03-31" in html
    assert "各闸机每小时刷卡次数" not in html
    sheets = _sheets(c.get("/reports/xlsx?period=month&date=2026-03-09").content)
    header, *rows = sheets["Denials by reason"]
    assert not [ch for ch in f"{header}{rows}" if "\u4e00" <= ch <= "\u9fff"], (header, rows)  # no Chinese left
    assert [r[1] for r in rows] == [2, 1, 1]
