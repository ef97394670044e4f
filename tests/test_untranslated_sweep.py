"""Issue 19, Acceptance 1 (part) and items 5, 6, 12 — in a real browser over real daphne (the
``stack`` fixture), logged in as each demo role (``ops.demo.operators``) in Chinese mode (the
default):

- every page the role can open from its landing page — its desks, its workbench and navigation,
  the admin's index and every record list on it, a card's and a holder's page, 为什么被拒绝？ —
  shows no English word outside a short allow-list (product names, units, ids) and no raw code
  (``lost``, ``active``, ``pedestrian_gate`` …: they are English words too), and no input a
  person cannot type into (zero width);
- 为什么被拒绝？ is linked from the card, the holder, a denied row on the desks and the help
  desk's navigation, and the link answers;
- ``/api/docs/`` is Swagger UI served from here (no CDN), for a logged-in operator.

The sweep's own positive control: the scanner finds the leftovers this issue named."""

from __future__ import annotations

import re
import signal
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Page

from ops.accounts.roles import ROLE_PERMISSIONS, Role, places_for
from ops.demo.operators import DEPARTMENT_OF, ensure_demo_operators
from ops.registry.models import Department
from streams.reasons import Decision, Reason
from tests.browser import chromium, stop
from tests.conftest import campuscard_cmd
from tests.factories import publish, tap

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "sweep-pass-19"

# English a Chinese page may show: the language's own name in the language menu, product and
# format names, units and abbreviations an operator reads as such. Ids are skipped: with a digit
# (card UIDs, most device codes), or a record's own identifier (``_ids``).
ALLOWED = {
    "English",  # the language menu names each language in itself
    "UID",
    "ID",
    "IP",
    "API",
    "CSV",
    "XLSX",
    "ZIP",
    "ICS",
    "JPEG",
    "dpi",  # the photo standard's unit (R-CARD-8, the holder page's photo panel)
    "PNG",  # a photo's format (a repair request's photo, issue 18 Build 1)
    "SIP",
    "PC/SC",
    "Token",  # the API's authentication scheme, as typed in the header
    "Authorization",
    "HTTP",
    "Accept",
    "GET",
    "POST",
    "SHA",
    "HMAC",
    "MAC",
    "CAS",
    "LDAP",
    "WeCom",
    "DingTalk",
    "Webhook",
    "Prometheus",
    "Excel",
    "JSON",
    "URL",
    "POS",  # a card terminal, as the finance office calls it
    "SMTP",
}
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_\-./:]*")
RAW_CODES = {"lost", "active", "replaced", "cancelled", "allow", "deny", "pedestrian_gate", "dorm_door", "staff"}

_TEXT = """() => {
  // a login record's user agent and path are the browser's own text, not the page's words
  for (const td of document.querySelectorAll(".field-user_agent, .field-path_info")) { td.remove(); }
  const parts = [document.title, document.body ? document.body.innerText : ""];
  for (const el of document.querySelectorAll("[placeholder],[title],[aria-label]")) {
    for (const a of ["placeholder", "title", "aria-label"]) { parts.push(el.getAttribute(a) || ""); }
  }
  for (const el of document.querySelectorAll("input[type=submit],input[type=button]")) { parts.push(el.value || ""); }
  for (const o of document.querySelectorAll("option")) { parts.push(o.textContent); }
  return parts.join("\\n");
}"""
_NARROW_INPUTS = """() => [...document.querySelectorAll("input:not([type=hidden]),select,textarea")].filter(e => {
  const s = getComputedStyle(e);
  if (s.display === "none" || s.visibility === "hidden" || e.offsetParent === null) return false;
  return e.getBoundingClientRect().width < 8;
}).map(e => e.name || e.id || e.outerHTML.slice(0, 80))"""


def foreign_words(text: str, *, ids: frozenset[str] = frozenset()) -> set[str]:
    """The English words of ``text`` a Chinese page should not show: every word of two letters or
    more without a digit (ids have digits), neither allowed nor one of ``ids`` (usernames,
    department and device codes, group names: the records' own identifiers, in any case), nor
    a URL path."""
    found = set()
    known = {i.lower() for i in ids}
    for match in _WORD.finditer(text):
        word = match.group().strip("-./_:")
        if match.start() and text[match.start() - 1] == "/":  # a URL path ("/accounts/login/"): an address
            continue
        if len(word) < 2 or any(c.isdigit() for c in word) or word.lower() in known:
            continue
        if all(part in ALLOWED for part in word.split("/")):  # "ICS/CSV", "PC/SC"
            continue
        found.add(word)
    return found


def _ids() -> frozenset[str]:
    from django.contrib.auth.models import Group, User

    from ops.registry.models import Device

    return frozenset(
        [
            *User.objects.values_list("username", flat=True),
            *Department.objects.values_list("code", flat=True),
            *Device.objects.values_list("code", flat=True),
            *Group.objects.values_list("name", flat=True),  # "role:security": the role groups' names
        ]
    )


def test_the_sweep_flags_the_leftovers_this_issue_named():
    """Positive control: what issue 19 found on the pages, the scanner finds."""
    for leftover in ("状态 lost", "active", "AXES", "Access attempts", "Access failures", "Access logs"):
        assert foreign_words(leftover), leftover
    assert foreign_words("无权访问此页面（403）。You are not allowed to see this page.")
    assert foreign_words('{"detail":"Not Found"}') == {"detail", "Not", "Found"}
    assert not foreign_words(
        "卡号 A0000001 · G-E-01 · 简体中文 English · 10:24:01 · NIC · ICS/CSV", ids=frozenset({"nic"})
    )
    assert foreign_words("ICS/files") == {"ICS/files"}
    assert not foreign_words("路径 /accounts/login/")


def _seed(campus, redis_client) -> dict[str, str]:
    """Demo operators for every role, a denied and an allowed tap at the gate and the dorm door,
    a loss report (the card-action feed's 状态)."""
    from ops.registry.lifecycle import services

    for code in set(DEPARTMENT_OF.values()) - {"SEC"}:
        Department.objects.get_or_create(code=code, defaults={"name": f"部门{code}"})
    ensure_demo_operators(password=PASSWORD)
    from django.contrib.auth import get_user_model

    nic = get_user_model().objects.get(username="nic")
    services.report_loss(card=campus.cards[5], operator=nic, basis="本人挂失")
    denied = tap("G-E-01", campus.cards[5].uid, seq=1, decision=Decision.DENY, reason=Reason.LOST)
    dorm_denied = tap("D1-01", campus.cards[5].uid, seq=1, decision=Decision.DENY, reason=Reason.LOST)
    publish(redis_client, [denied, tap("G-E-01", campus.cards[1].uid, seq=2), dorm_denied])
    return {"gate": str(denied.event_id), "dorm": str(dorm_denied.event_id)}


def _log_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_load_state("load")
    assert "/accounts/login/" not in page.url, username


def _settle(page: Page, path: str) -> None:
    """A desk has drawn its first snapshot (its status says live); other pages are loaded."""
    if page.locator("#react-entry-point").count():  # a Dash desk (not a 403/404 page under /live/)
        page.wait_for_selector(".status.live", timeout=30_000)
        page.wait_for_timeout(500)


def _pages_of(page: Page, base: str, role: Role) -> list[str]:
    """The role's landing page, its places (the navigation), the admin's index and every record
    list the admin offers it."""
    paths = ["/", *(href for href, _label in places_for(role))]
    if role in ROLE_PERMISSIONS:
        page.goto(f"{base}/admin/")
        links = page.eval_on_selector_all("#content-main table a[href]", "els => els.map(e => e.getAttribute('href'))")
        paths += [h for h in links if h.startswith("/admin/") and not h.endswith("/add/")]
    return list(dict.fromkeys(paths))


@pytest.mark.timeout(900)
def test_no_page_a_role_can_open_shows_english_raw_codes_or_narrow_inputs(campus, redis_client, stack, subprocess_env):
    relay = subprocess.Popen(campuscard_cmd("relay"), env=subprocess_env)  # the loss report reaches the feed
    try:
        _sweep(campus, redis_client, stack)
    finally:
        stop(relay, signal.SIGTERM)


def _sweep(campus, redis_client, stack: str) -> None:
    events = _seed(campus, redis_client)
    ids = _ids()
    usernames = [r.value for r in Role if r != Role.DORM_MANAGER] + ["dorm1"]
    # Two browsers, each in a thread of its own (Playwright's sync API: one instance a thread):
    # NIC's pages (the whole admin, about half the sweep) on one, every other role on the other.
    shards = [["nic"], [u for u in usernames if u != "nic"]]
    with ThreadPoolExecutor(len(shards)) as pool:
        swept = list(pool.map(lambda shard: _sweep_roles(shard, campus, events, ids, stack), shards))
    problems = [problem for found, _visited in swept for problem in found]
    visited = {username: n for _found, counted in swept for username, n in counted.items()}
    assert not problems, "English or raw codes on Chinese pages:\n" + "\n".join(problems)
    # not vacuous: every role opened its pages, NIC the whole admin
    assert set(visited) == set(usernames)
    assert visited["nic"] >= 25, visited
    assert all(n >= 2 for n in visited.values()), visited


def _sweep_roles(
    usernames: list[str], campus, events: dict[str, str], ids: frozenset[str], stack: str
) -> tuple[list[str], dict[str, int]]:
    """Each of ``usernames`` logged in, in a context of its own of one browser, and every page
    it can open read: the problems found, and how many pages each opened."""
    roles = {r.value: r for r in Role} | {"dorm1": Role.DORM_MANAGER}
    problems: list[str] = []
    visited: dict[str, int] = {}
    with chromium() as browser:
        for username in usernames:
            context = browser.new_context(viewport={"width": 1500, "height": 1000})
            page = context.new_page()
            _log_in(page, stack, username)
            role = roles[username]
            extra = []
            if role == Role.NIC:  # the help desk's pages: a card, a holder, 为什么被拒绝？ answered
                card = campus.cards[5]
                extra = [
                    f"/admin/campus/card/{card.pk}/change/",
                    f"/admin/campus/cardholder/{card.holder_id}/change/",
                    f"/admin/campus/card/explain/?event={events['gate']}",
                    "/live/gates/nope",  # the desks' 404, and /api/ in the browser
                ]
            if role == Role.SECURITY:
                extra = ["/live/dorm/"]  # a desk the role may not open: the 403 page
            paths = _pages_of(page, stack, role) + extra
            for path in paths:
                page.goto(f"{stack}{path}")
                _settle(page, path)
                text = page.evaluate(_TEXT)
                words = foreign_words(text, ids=ids)
                if words:
                    problems.append(f"{username} {path}: {sorted(words)}")
                if words & RAW_CODES:
                    problems.append(f"{username} {path}: raw codes {sorted(words & RAW_CODES)}")
                narrow = page.evaluate(_NARROW_INPUTS)
                if narrow:
                    problems.append(f"{username} {path}: inputs without width {narrow}")
            visited[username] = len(paths)
            if role == Role.GENERAL:  # the card-action feed: the loss report's status in words
                page.goto(f"{stack}/live/cards/")
                _settle(page, "/live/cards/")
                page.wait_for_selector("tr.card-row", timeout=20_000)
                assert "挂失" in page.locator("tr.card-row").first.inner_text()
            context.close()
    return problems, visited


@pytest.mark.timeout(600)
def test_why_denied_is_linked_from_the_card_the_holder_the_desks_and_the_navigation(campus, redis_client, stack):
    events = _seed(campus, redis_client)
    card = campus.cards[5]
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1500, "height": 1000}).new_page()
        _log_in(page, stack, "nic")
        # the NIC desk's navigation (the help desk's workbench) names it
        page.goto(f"{stack}/live/devices/")
        _settle(page, "/live/devices/")
        assert page.locator("header.nav a", has_text="为什么被拒绝？").get_attribute("href") == (
            "/admin/campus/card/explain/"
        )
        # the card's page and the holder's page
        page.goto(f"{stack}/admin/campus/card/{card.pk}/change/")
        page.click("a.why-denied")
        assert page.input_value("#explain-uid") == card.uid
        page.goto(f"{stack}/admin/campus/cardholder/{card.holder_id}/change/")
        page.click("a.why-denied")
        assert page.input_value("#explain-uid") == card.uid
        # a denied row on the gate desk and on the dorm desk: the tap's card and door, explained
        for desk, event, device in (
            ("/live/gates/", events["gate"], "G-E-01"),
            ("/live/dorm/", events["dorm"], "D1-01"),
        ):
            page.goto(f"{stack}{desk}")
            link = page.locator(f'tr[data-event="{event}"] a.why-denied')
            link.wait_for(timeout=30_000)
            assert page.locator("tr.tap-row:not(.deny) a.why-denied").count() == 0  # only denied rows
            link.click()
            page.wait_for_selector("#explain-result")
            assert page.input_value("#explain-uid") == card.uid
            assert page.input_value("#explain-device") == device
            assert "挂失" in page.inner_text("#explain-result")
        # an unknown tap: said so, nothing explained
        page.goto(f"{stack}/admin/campus/card/explain/?event={uuid.uuid4()}")
        assert "没有这条刷卡记录" in page.inner_text("#content")
        assert page.locator("#explain-result").count() == 0

        # /api/docs/: Swagger UI from our own static files, the schema naming the real command
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(f"{stack}/api/docs/")
        page.wait_for_selector(".swagger-ui .info", timeout=30_000)
        assert "campuscard api_token" in page.inner_text(".swagger-ui .info")
        assert requests and all(u.startswith(stack) for u in requests), [u for u in requests if not u.startswith(stack)]

        # the security office sees the gate desk's denied rows without a link it could not use
        security = browser.new_context().new_page()
        _log_in(security, stack, "security")
        security.goto(f"{stack}/live/gates/")
        security.locator(f'tr[data-event="{events["gate"]}"]').wait_for(timeout=30_000)
        assert security.locator("a.why-denied").count() == 0
        assert security.locator("header.nav a", has_text="为什么被拒绝？").count() == 0
        anonymous = browser.new_context().new_page()
        anonymous.goto(f"{stack}/api/docs/")
        assert "/accounts/login/" in anonymous.url  # the docs are for a logged-in operator
