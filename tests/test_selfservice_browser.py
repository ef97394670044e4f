"""Acceptance 6 (issue 18, Build 6; R-USE-1): a cardholder reports their own card lost on a
phone-sized page, and a reader agent refuses the card within a second; the audit records it as
the cardholder's own act.

Real parts: daphne, the processor and the supervisor (the ``stack`` fixture), ``campuscard relay``
as a process, a reader agent's credential sync and cache following the signed feed (in this
process, as in tests/test_simulated_doors_follow_the_feed.py), the simulator's door deciding from
that cache, headless Chromium with a phone's viewport, PostgreSQL and Redis."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import date

import pytest
import redis
from django.conf import settings

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit import chain
from ops.audit.models import AuditRecord
from ops.registry import citizen_id, selectors
from ops.selfservice import services
from readers.agent.cache import CredentialCache
from readers.agent.sync import CredentialSync
from readers.simulator import CampusSimulator
from streams import credentials as feed
from streams import envelopes
from streams.reasons import Reason
from tests.browser import chromium, outside_the_browser_loop, stop
from tests.conftest import campuscard_cmd
from tests.private_servers import wait_until
from tests.signing_keys import PUBLIC_KEYS

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "Qiuyu-lake-2026"
CITIZEN_ID = citizen_id.make("110105", date(2005, 9, 1), 418)


@pytest.fixture
def one_audit_key(subprocess_env):
    """The server processes chain the audit with this process's key, so the test can verify
    the chain they wrote (requested before ``stack``, which starts them)."""
    subprocess_env["AUDIT_HMAC_KEY"] = settings.AUDIT_HMAC_KEY
    return subprocess_env


def test_a_cardholder_reports_their_card_lost_on_a_phone_and_the_reader_refuses_it_within_a_second(
    campus, one_audit_key, stack, subprocess_env, tmp_path
):
    card = campus.cards[2]
    holder = card.holder
    holder.citizen_id = CITIZEN_ID
    holder.save(update_fields=["citizen_id"])
    nic = create_or_update_operator(username="nic-desk", password="pw-nic-desk-1", role=Role.NIC)
    services.set_password(holder=holder, raw_password=PASSWORD, operator=nic)
    doors = [d for d in selectors.doors() if d.device_id == "G-E-01"]
    credentials = selectors.credentials()

    relay = subprocess.Popen(campuscard_cmd("relay"), env=subprocess_env)
    stop_sync = threading.Event()
    cache = CredentialCache(tmp_path / "credentials.sqlite3")
    sync = CredentialSync(
        cache, feed.FeedVerifier(PUBLIC_KEYS), lambda: redis.Redis.from_url(settings.REDIS_URL), stopping=stop_sync
    )
    thread = threading.Thread(target=sync.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(cache) == len(campus.cards), 30, "the agent's synced snapshot")
        sim = CampusSimulator(credentials, doors, rate=100, rhythmic=False, seed=1, keys={}, lookup=cache.lookup)
        sim._pick_card = lambda door: (None, card.uid)  # type: ignore[method-assign]  # always this card

        def reasons() -> set[str]:
            return {e.reason for e in sim.step(time.time(), 0.05) if isinstance(e, envelopes.Tap)}

        assert reasons() == {Reason.OK}  # the agent admits the card before the report

        with chromium() as browser:
            context = browser.new_context(  # a phone: 390 × 844 CSS pixels, touch
                locale="zh-CN",
                viewport={"width": 390, "height": 844},
                is_mobile=True,
                has_touch=True,
                device_scale_factor=3,
            )
            page = context.new_page()
            page.goto(f"{stack}/me/")
            page.wait_for_url(f"{stack}/me/login/")
            page.fill("#me-number", holder.number)
            page.fill("#me-id-digits", CITIZEN_ID[-6:])
            page.fill("#me-password", PASSWORD)
            page.click("#me-login")
            page.wait_for_url(f"{stack}/me/")
            assert page.inner_text("#me-card-status") == "正常"
            assert "网信中心" in page.inner_text("#me-at-the-desk") and "身份证" in page.inner_text("#me-at-the-desk")
            # phone-sized: nothing wider than the screen, the button big enough for a thumb
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            button = page.locator("#me-report-loss").bounding_box()
            assert button is not None and button["height"] >= 40

            page.click("#me-report-loss")
            page.wait_for_url(f"{stack}/me/loss/")
            cached = cache.lookup(card.uid)
            assert cached is not None and cached.status == "active"  # not yet: the confirmation comes first
            reported = time.monotonic()
            page.click("#me-confirm-loss")
            wait_until(
                lambda: (c := cache.lookup(card.uid)) is not None and c.status == "lost", 1.0, "the loss", step=0.01
            )
            assert reasons() == {Reason.LOST}
            refused_after = time.monotonic() - reported
            assert refused_after < 1.0, refused_after
            page.wait_for_selector("#me-done")
            assert "挂失成功" in page.inner_text("#me-done")
            assert page.inner_text("#me-card-status") == "挂失"
            assert page.locator("#me-report-loss").count() == 0

            # the audit: the cardholder's own act, no operator, and the chain intact
            def audit_rows():
                rows = list(AuditRecord.objects.filter(action="card.lose", object_id=card.uid))
                return rows, chain.verify()

            rows, intact = outside_the_browser_loop(audit_rows)
            assert len(rows) == 1
            assert intact.ok, intact
            assert rows[0].actor_id is None and rows[0].actor_name == f"cardholder:{holder.number}"
            assert rows[0].data["self_service"] is True
            context.close()
    finally:
        stop_sync.set()
        thread.join(5)
        cache.close()
        stop(relay, signal.SIGTERM)


def test_a_cardholder_signs_in_through_campus_cas_and_a_non_holder_is_refused(campus, subprocess_env, tmp_path):
    """The campus CAS server (django-cas-server, its own process) vouches for the uid; the uid is
    the cardholder number. Someone CAS knows who is no cardholder gets no session. No operator
    account is made either way."""
    from django.contrib.auth import get_user_model

    from tests.browser import free_port, wait_http
    from tests.sso_servers import Person, cas_server

    holder = campus.cards[4].holder
    student = Person(holder.number, "cas-pass-holder-1", "张三4", "s4@campus.test")
    stranger = Person("visitor.li", "cas-pass-visitor-1", "李访客", "li@campus.test")
    users_before = get_user_model().objects.count()
    with cas_server(tmp_path / "cas", [student, stranger]) as cas_url:
        port = free_port()
        env = {**subprocess_env, "CAS_SERVER_URL": cas_url, "AUDIT_HMAC_KEY": settings.AUDIT_HMAC_KEY}
        web = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "ops.asgi:application"], env=env
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{base}/healthz", proc=web)
            with chromium() as browser:
                for person, lands_on in ((stranger, "/me/sso/?ticket=**"), (student, "/me/")):
                    context = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
                    page = context.new_page()
                    page.goto(f"{base}/me/login/")
                    page.click("#me-cas-login")
                    page.wait_for_url(f"{cas_url}login?**")
                    page.fill("#id_username", person.uid)
                    page.fill("#id_password", person.password)
                    page.click("#login_form button[type=submit]")
                    page.wait_for_url(f"{base}{lands_on}")
                    if person is stranger:
                        assert "不是在册持卡人" in page.inner_text("#me-error")
                        page.goto(f"{base}/me/")
                        page.wait_for_url(f"{base}/me/login/")
                    else:
                        assert page.inner_text("#me-card-status") == "正常"
                        assert holder.number in page.content()
                    context.close()
        finally:
            stop(web, signal.SIGTERM)

    def records():
        rows = AuditRecord.objects.filter(action__startswith="selfservice.login").order_by("id")
        return [(r.action, r.actor_name, r.object_id, r.data.get("via")) for r in rows], chain.verify().ok

    rows, intact = outside_the_browser_loop(records)
    assert rows == [
        ("selfservice.login_refused", "system", "visitor.li", "cas"),
        ("selfservice.login", f"cardholder:{holder.number}", holder.number, "cas"),
    ]
    assert intact
    assert get_user_model().objects.count() == users_before  # no operator account made
