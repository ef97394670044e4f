"""Issue 19, Acceptance 1 and items 10, 11 — in a real browser over real daphne (the ``stack``
fixture, one server for every role in turn), logged in as each demo role (``ops.demo.operators``)
in Chinese mode (the default), the page the role lands on:

- shows the role's figures: a desk's today-tiles, the Library's readers and faults, or the
  workbench's panels (``ops.workbench``) with the figures of that role — and the right numbers
  for what the test made happen today;
- greets a workbench operator by name, not username;
- shows no English word and no raw code (the sweep's scanner, ``tests/test_untranslated_sweep.py``);
- has no input narrower than a person can use: every visible input, select and text area is
  wider than 20 px (the look-back panel's 从/到 rendered zero-width, item 10);
- on the security desk, the look-back chart before anything is loaded is the empty window drawn
  sensibly: the window's times on the x axis, y from 0, and "无数据" said (not axes −1…6).

The full per-role sweep of every page a role may open is ``test_untranslated_sweep.py``; this
test is the landing page's, kept fast."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page

from ops.accounts.roles import Role
from ops.demo.operators import DEMO_NAMES
from ops.registry.lifecycle.models import ImportBatch
from ops.registry.models import Card, Cardholder, Department
from tests.browser import chromium, stop
from tests.conftest import campuscard_cmd
from tests.test_untranslated_sweep import RAW_CODES, _ids, _log_in, _seed, _settle, foreign_words

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MIN_INPUT_WIDTH = 20  # px: narrower, a person cannot see what they type

_INPUTS = """() => [...document.querySelectorAll("input:not([type=hidden]),select,textarea")].filter(e => {
  const s = getComputedStyle(e);
  return !(s.display === "none" || s.visibility === "hidden" || e.offsetParent === null);
}).map(e => ({name: e.name || e.id || e.outerHTML.slice(0, 80), width: e.getBoundingClientRect().width}))"""

_TEXT = """() => [document.title, document.body.innerText,
  ...[...document.querySelectorAll("[placeholder],[title],[aria-label]")].flatMap(
    e => ["placeholder", "title", "aria-label"].map(a => e.getAttribute(a) || "")),
  ...[...document.querySelectorAll("option")].map(o => o.textContent)].join("\\n")"""

# The figures each workbench role's landing page must show (ops.workbench's figure keys).
WORKBENCH_FIGURES = {
    Role.LEADER: {"taps_today", "denied_today", "alerts_open", "lost_today", "requests_filed", "emergency_pending"},
    Role.HR: {"imports_waiting", "imports_applied_today", "last_import"},
    Role.ACADEMIC: {"imports_waiting", "imports_applied_today", "last_import"},
    Role.FINANCE: {"payments_today", "payments_today_total", "last_statement", "last_closed", "open_days"},
    Role.GENERAL: {"temporary_active", "temporary_ending_soon", "temporary_ending_tomorrow"},
}
# Where each desk role lands, and the figures its desk shows (selectors).
DESK_FIGURES = {
    Role.SECURITY: ("/live/gates/", ["#gates-total-allow", "#gates-total-deny"]),
    Role.NIC: ("/live/devices/", [".tile .tile-value"]),
    Role.DORM_MANAGER: ("/live/dorm/", ["#dorm-D1 .tile-value"]),
    Role.LIBRARY: ("/library/", ["#library-readers", "#library-faults", "tr.sip2-count"]),
}


def _figures(page: Page) -> dict[str, str]:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll("#today [data-figure]")].map(
             e => [e.dataset.figure, e.querySelector(".wb-value").innerText.trim()]))"""
    )


def _seed_the_day(campus) -> None:
    """Something for each workbench to show: a staff and a student list previewed, a temporary
    card of General Affairs ending tomorrow."""
    ImportBatch.objects.create(kind="staff", filename="教职工名单.xlsx", sha256="a" * 64, rows=3)
    ImportBatch.objects.create(kind="student", filename="学生名单.xlsx", sha256="b" * 64, rows=5)
    gao = Department.objects.get(code="GAO")
    holder = Cardholder.objects.create(kind="short_term", number="TMP00001", name="施工人员", department=gao)
    now = timezone.now()
    Card.objects.create(
        uid="7E123456",
        holder=holder,
        card_type="temporary",
        status="active",
        owner_department=gao,
        approving_department=gao,
        valid_from=now - timedelta(days=1),
        valid_until=now + timedelta(hours=20),
    )


def _replay_chart_problems(page: Page) -> list[str]:
    """The look-back chart before a period is loaded: the window's times, y from 0, 无数据."""
    chart = "#replay-chart"
    page.wait_for_selector(f"{chart} .main-svg", timeout=20_000)
    y = [t for t in page.eval_on_selector_all(f"{chart} .ytick text", "els => els.map(e => e.textContent)") if t]
    x = [t for t in page.eval_on_selector_all(f"{chart} .xtick text", "els => els.map(e => e.textContent)") if t]
    notes = page.eval_on_selector_all(f"{chart} .annotation-text", "els => els.map(e => e.textContent)")
    axes = page.evaluate(
        """() => { const l = document.querySelector("#replay-chart .js-plotly-plot")._fullLayout;
                   return {x: l.xaxis.type, y: l.yaxis.range}; }"""
    )
    problems = []
    if axes["y"][0] < 0 or any(t.replace("−", "-").startswith("-") for t in y):
        problems.append(f"y axis below 0: {axes['y']} {y}")
    if axes["x"] != "date":
        problems.append(f"x axis is {axes['x']}, not the window's time")
    if not x or not all(":" in t for t in x):  # times of day, not −1…6
        problems.append(f"x ticks are not times {x}")
    if "无数据" not in notes:
        problems.append(f"no 无数据 annotation {notes}")
    return problems


def _replay_loaded_problems(page: Page) -> list[str]:
    """Loading a period: an empty one is drawn as the empty window, a busy one as its bars."""
    now = timezone.localtime()
    problems = []
    for start, end, taps in (
        (now - timedelta(days=3), now - timedelta(days=2), False),
        (now - timedelta(hours=1), now + timedelta(minutes=1), True),
    ):
        page.fill("#replay-from", start.strftime("%Y-%m-%dT%H:%M"))
        page.fill("#replay-to", end.strftime("%Y-%m-%dT%H:%M"))
        page.click("#replay-load")
        page.wait_for_function(
            "t => document.getElementById('replay-message').innerText.includes(t)",
            arg="共 2 次" if taps else "共 0 次",  # the two gate taps the test made
            timeout=15_000,
        )
        page.wait_for_timeout(300)  # the figure drawn
        notes = page.eval_on_selector_all("#replay-chart .annotation-text", "els => els.map(e => e.textContent)")
        bars = page.locator("#replay-chart .bars .point").count()
        if taps and ("无数据" in notes or not bars):
            problems.append(f"a busy period drawn as empty: {notes}, {bars} bars")
        if not taps and "无数据" not in notes:
            problems.append(f"an empty period without 无数据: {notes}")
    return problems


@pytest.mark.timeout(600)
def test_every_role_lands_on_its_figures_in_chinese_with_usable_inputs(campus, redis_client, stack, subprocess_env):
    relay = subprocess.Popen(campuscard_cmd("relay"), env=subprocess_env)  # the loss report reaches the feed
    try:
        _landing_sweep(campus, redis_client, stack)
    finally:
        stop(relay, signal.SIGTERM)


def _landing_sweep(campus, redis_client, stack: str) -> None:
    _seed(campus, redis_client)  # operators of every role, a loss report, taps allowed and denied
    _seed_the_day(campus)
    # a file's name is the record's own identifier, its extension with it ("名单.xlsx")
    ids = _ids() | {f.rsplit(".", 1)[-1] for f in ImportBatch.objects.values_list("filename", flat=True)}
    usernames = {r.value: r for r in Role if r != Role.DORM_MANAGER} | {"dorm1": Role.DORM_MANAGER}
    problems: list[str] = []
    seen: dict[str, set[str]] = {}
    with chromium() as browser:
        for username, role in usernames.items():
            context = browser.new_context(viewport={"width": 1500, "height": 1000})
            page = context.new_page()
            _log_in(page, stack, username)
            path = page.url.removeprefix(stack)
            _settle(page, path)
            if role in DESK_FIGURES:
                desk, selectors = DESK_FIGURES[role]
                if path != desk:
                    problems.append(f"{username} landed on {path}, not {desk}")
                for selector in selectors:
                    if not page.locator(selector).count():
                        problems.append(f"{username} {path}: no {selector}")
                seen[username] = set(selectors)
                if role == Role.SECURITY:  # today's totals pushed in: one allowed, one denied gate tap
                    page.wait_for_function(
                        "() => ['gates-total-allow', 'gates-total-deny'].every("
                        "id => document.getElementById(id).innerText.trim() === '1')",
                        timeout=20_000,
                    )
                    problems += [f"security look-back chart: {p}" for p in _replay_chart_problems(page)]
                    problems += [f"security look-back: {p}" for p in _replay_loaded_problems(page)]
            else:
                if path != "/":
                    problems.append(f"{username} landed on {path}, not the workbench")
                name = page.inner_text("#greeting")
                if DEMO_NAMES[role] not in name or username in name:
                    problems.append(f"{username}: greeted as {name!r}")
                figures = _figures(page)
                missing = WORKBENCH_FIGURES[role] - set(figures)
                if missing:
                    problems.append(f"{username} {path}: figures missing {sorted(missing)}")
                seen[username] = set(figures)
                if role == Role.LEADER:  # the day as it happened: 3 taps (2 denied), 1 loss report
                    deadline = time.monotonic() + 30
                    while figures.get("taps_today") != "3" and time.monotonic() < deadline:
                        page.wait_for_timeout(500)  # the processor stores the taps
                        page.reload()
                        figures = _figures(page)
                    assert (figures["denied_today"], figures["lost_today"]) == ("2", "1"), figures
                if role in (Role.HR, Role.ACADEMIC):
                    assert figures["imports_waiting"] == "1", (username, figures)
                if role == Role.GENERAL:
                    assert figures["temporary_ending_tomorrow"] == "1", figures
            words = foreign_words(page.evaluate(_TEXT), ids=ids)
            if words:
                problems.append(f"{username} {path}: English {sorted(words)}")
            if words & RAW_CODES:
                problems.append(f"{username} {path}: raw codes {sorted(words & RAW_CODES)}")
            narrow = [i for i in page.evaluate(_INPUTS) if i["width"] <= MIN_INPUT_WIDTH]
            if narrow:
                problems.append(f"{username} {path}: inputs {MIN_INPUT_WIDTH} px or narrower {narrow}")
            context.close()
    assert not problems, "landing pages:\n" + "\n".join(problems)
    assert set(seen) == set(usernames)  # not vacuous: every role was looked at
