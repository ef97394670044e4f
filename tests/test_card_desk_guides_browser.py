"""Issue 19, items 4, 7 and 8 (and issue 18, Build 7's single-photo upload), in a real browser over
the real web server (daphne):

- the card's own form has no 状态 or 黑名单 field (item 4): they change only through the actions;
- the card actions guide the desk: the loss form shows the holder's photo and masked name to
  confirm against; only the actions the card's state allows are offered (no 解挂 on an active
  card — the lifecycle service's own rules); after 补卡 the page is the new card's, saying the
  fee charged; the reason list has no 损坏设备赔偿; no regulation ids in the help texts;
- photos: the holder's form has no typed digest; the desk uploads a photo, checked against the
  photo standard (R-CARD-8) — a valid one is shown, an invalid one refused with the reason and
  nothing changed — or takes it with the webcam (Chromium's fake camera), through the same
  upload and the same check."""

from __future__ import annotations

import hashlib
import io
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.masking import mask_name
from ops.registry.lifecycle import photo_store
from ops.registry.lifecycle.models import FeeCharge
from ops.registry.lifecycle.photos import make_test_photo
from ops.registry.models import Card, Cardholder
from tests.browser import chromium, free_port, log_in, outside_the_browser_loop, stop, wait_http

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "desk-guide-19"
FAKE_CAMERA = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")


@pytest.fixture
def web(campus, subprocess_env, monkeypatch):
    """daphne alone (no pipeline needed), sharing its photo store with this test process."""
    monkeypatch.setenv("CAMPUSCARD_VAR_DIR", subprocess_env["CAMPUSCARD_VAR_DIR"])
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "ops.asgi:application"], env=subprocess_env
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc, signal.SIGTERM)


def _nic() -> None:
    create_or_update_operator(username="nic-desk", password=PASSWORD, role=Role.NIC)


def _offered(page: Page) -> set[str]:
    return {(el.get_attribute("id") or "")[3:] for el in page.query_selector_all("a.button[id^=do-]")}


def _image_width(page: Page, selector: str) -> int:
    """The width of the image as the browser decoded it (0: not loaded)."""
    page.wait_for_function(f"document.querySelector('{selector}').complete")
    return page.eval_on_selector(selector, "img => img.naturalWidth")


def test_card_actions_show_the_holder_offer_what_the_state_allows_and_land_on_the_new_card(web):
    _nic()
    card = Card.objects.select_related("holder").get(uid="A0000000")
    holder = card.holder
    holder.photo_sha256 = photo_store.save(make_test_photo(seed=7))
    holder.save(update_fields=["photo_sha256"])
    card_url = f"{web}/admin/campus/card/{card.pk}/change/"

    with chromium() as browser:
        page = browser.new_page()
        log_in(page, web, "nic-desk", PASSWORD, f"/admin/campus/card/{card.pk}/change/")
        # issue 19, item 4: 状态 and 黑名单 are shown on the card's page, not fields of its form —
        # they change only through the actions below (basis, history, readers, feed)
        assert page.query_selector("[name=status]") is None and page.query_selector("[name=blacklisted]") is None
        assert "正常" in page.inner_text("#content")
        offered = _offered(page)
        assert {"lose", "replace", "cancel", "blacklist"} <= offered
        assert not offered & {"find", "unblacklist", "grant", "revoke_grant"}  # no 解挂 on an active card

        # the loss form: the photo (NIC may see photos) and the masked name to confirm against
        page.click("#do-lose")
        page.wait_for_selector("#holder-confirm")
        assert page.inner_text("#holder-confirm-name") == mask_name(holder.name) != holder.name
        assert page.inner_text("#holder-confirm-number") == holder.number
        assert _image_width(page, "#holder-confirm-photo") == 295
        assert not re.search(r"R-[A-Z]+-\d", page.inner_text("#content"))  # help texts speak plainly
        page.fill("#id_basis", "本人持身份证挂失")
        with page.expect_navigation():
            page.click("#action-submit")
        assert page.url == card_url
        offered = _offered(page)
        assert "find" in offered and "lose" not in offered

        # a loss form opened on a lost card by its address: refused with why, nothing to submit
        page.goto(f"{web}/admin/campus/card/{card.pk}/lose/")
        assert "只有正常状态的卡可以挂失" in page.inner_text("#rule-error")
        assert page.query_selector("#action-submit") is None

        # 补卡: the card's reasons only; then the new card's page with the fee charged
        page.goto(card_url)
        page.click("#do-replace")
        page.wait_for_selector("#id_reason")
        options = page.eval_on_selector_all("#id_reason option", "os => os.map(o => [o.value, o.textContent])")
        assert "device_damage" not in [v for v, _t in options]
        assert "损坏设备赔偿" not in page.inner_text("#id_reason")
        assert "挂失补卡" in page.inner_text("#id_reason")
        assert not re.search(r"R-[A-Z]+-\d", page.inner_text("#content"))
        page.fill("#id_new_uid", "B1C2D3E4")
        page.select_option("#id_reason", "loss")
        page.fill("#id_basis", "补卡申请 2026-119")
        page.fill("#id_window", "一号窗口")
        with page.expect_navigation():
            page.click("#action-submit")
        new = outside_the_browser_loop(lambda: Card.objects.get(uid="B1C2D3E4"))
        charge = outside_the_browser_loop(lambda: FeeCharge.objects.get(card=new))
        assert page.url == f"{web}/admin/campus/card/{new.pk}/change/"
        message = page.inner_text(".messagelist")
        assert "B1C2D3E4" in message and f"{charge.amount} 元" in message and "挂失补卡" in message
        assert charge.amount > 0
        assert {"lose", "replace"} <= _offered(page)  # the new card is active

        # the old card, replaced: dead — no loss, found, replacement, extension or cancellation
        # (a blacklisting stays possible: a hit on it alerts the security desk)
        page.goto(card_url)
        assert _offered(page) == {"blacklist"}


def test_the_desk_uploads_a_photo_checked_against_the_standard(web, tmp_path):
    _nic()
    holder = Cardholder.objects.get(number="2025CS00003")
    assert holder.photo_sha256 == ""
    white = tmp_path / "白底.jpg"
    white.write_bytes(make_test_photo(color=(250, 250, 250)))
    good_bytes = make_test_photo(seed=3)
    good = tmp_path / f"{holder.number}.jpg"
    good.write_bytes(good_bytes)

    with chromium() as browser:
        page = browser.new_page()
        log_in(page, web, "nic-desk", PASSWORD, f"/admin/campus/cardholder/{holder.pk}/change/")
        # the digest is not a field anyone types
        assert page.query_selector("[name=photo_sha256]") is None
        assert "照片摘要" not in page.inner_text("#content")
        assert page.query_selector("#holder-photo-none") is not None

        # an invalid photo: refused with the reason, in Chinese; nothing changed
        page.set_input_files("#photo-file", str(white))
        with page.expect_navigation():
            page.click("#photo-upload")
        errors = page.inner_text(".messagelist")
        assert "照片背景不是蓝色" in errors and "照片未更改" in errors
        assert outside_the_browser_loop(lambda: Cardholder.objects.get(pk=holder.pk).photo_sha256) == ""
        assert page.query_selector("#holder-photo") is None

        # a valid one: stored, shown
        page.set_input_files("#photo-file", str(good))
        with page.expect_navigation():
            page.click("#photo-upload")
        assert "照片已更新" in page.inner_text(".messagelist .success")
        assert _image_width(page, "#holder-photo") == 295

    sha = hashlib.sha256(good_bytes).hexdigest()
    assert Cardholder.objects.get(pk=holder.pk).photo_sha256 == sha
    assert photo_store.path_for(sha) is not None
    record = AuditRecord.objects.get(action="holder.photo")
    assert record.actor_name == "nic-desk" and record.data["sha256"] == sha and record.data["source"] == "upload"


def _y4m(path: Path, size: tuple[int, int] = (640, 480)) -> Path:
    """A camera's video file for Chromium's fake camera: someone before a blue background."""
    frame = Image.open(io.BytesIO(make_test_photo(size=size, noise=0, fmt="PNG"))).convert("YCbCr")
    y, cb, cr = frame.split()
    half = (size[0] // 2, size[1] // 2)
    planes = b"".join(plane.tobytes() for plane in (y, *(c.resize(half, Image.Resampling.BOX) for c in (cb, cr))))
    header = f"YUV4MPEG2 W{size[0]} H{size[1]} F30:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + (b"FRAME\n" + planes) * 2)
    return path


def _take_with_the_webcam(page: Page) -> None:
    page.click("#camera-start")
    page.wait_for_selector("#camera-shoot:not([disabled])")
    page.wait_for_function("document.getElementById('camera-video').videoWidth > 0")
    with page.expect_navigation():
        page.click("#camera-shoot")


def test_the_webcam_frame_goes_through_the_same_check_refused_when_it_misses_the_standard(web):
    """Chromium's own fake camera (a test pattern, not a blue-background portrait): the frame
    is posted like a file and refused with the reason; the holder keeps no photo."""
    _nic()
    holder = Cardholder.objects.get(number="2025CS00004")
    with chromium(*FAKE_CAMERA) as browser:
        page = browser.new_context().new_page()
        log_in(page, web, "nic-desk", PASSWORD, f"/admin/campus/cardholder/{holder.pk}/change/")
        _take_with_the_webcam(page)
        errors = page.inner_text(".messagelist")
        assert "照片背景" in errors and "照片未更改" in errors
        # the frame was cropped and marked to the standard's size and resolution: only the
        # background is wrong
        assert "像素" not in errors and "dpi" not in errors
    assert Cardholder.objects.get(pk=holder.pk).photo_sha256 == ""
    assert not AuditRecord.objects.filter(action="holder.photo").exists()


def test_a_webcam_portrait_before_a_blue_background_becomes_the_photo(web, tmp_path):
    _nic()
    holder = Cardholder.objects.get(number="2025CS00005")
    video = _y4m(tmp_path / "camera.y4m")
    with chromium(*FAKE_CAMERA, f"--use-file-for-fake-video-capture={video}") as browser:
        page = browser.new_context().new_page()
        log_in(page, web, "nic-desk", PASSWORD, f"/admin/campus/cardholder/{holder.pk}/change/")
        _take_with_the_webcam(page)
        assert "照片已更新" in page.inner_text(".messagelist .success")
        assert _image_width(page, "#holder-photo") == 295
    holder.refresh_from_db()
    stored = photo_store.path_for(holder.photo_sha256)
    assert stored is not None
    with Image.open(stored) as image:
        assert image.size == (295, 421) and round(image.info["dpi"][0]) == 300
    assert AuditRecord.objects.get(action="holder.photo").data["source"] == "camera"
