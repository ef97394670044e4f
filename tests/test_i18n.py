"""Simplified Chinese by default, English when the operator picks it."""

from __future__ import annotations

import gettext
import os
import re
import shutil
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_the_login_page_is_in_chinese_by_default(client):
    html = client.get("/accounts/login/").content.decode()
    assert "操作员登录" in html and 'lang="zh-hans"' in html


def test_the_operator_can_switch_to_english(client):
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/accounts/login/"})
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    html = client.get("/accounts/login/").content.decode()
    assert "Operator login" in html and "操作员登录" not in html


def test_the_gate_page_layout_follows_the_language_cookie():
    from dashboard.guard import current_scope
    from dashboard.pages import gates

    for lang, expected in (("en", "Gate traffic — live"), ("zh-hans", "校门通行实时监控")):
        token = current_scope.set({"cookies": {settings.LANGUAGE_COOKIE_NAME: lang}})
        try:
            assert expected in str(gates.layout())
        finally:
            current_scope.reset(token)


def test_an_english_browser_still_gets_chinese_until_the_operator_chooses(client):
    html = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert "操作员登录" in html


# --- The catalogue: ops/locale/en/LC_MESSAGES/django.po is the only place the English lives ----

PO_PATH = settings.BASE_DIR / "ops" / "locale" / "en" / "LC_MESSAGES" / "django.po"
REGENERATE = "run `campuscard makemessages -l en --no-location`, then translate in the .po"
_PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[#0 +-]*\d*(?:\.\d+)?[sdifrxXeEgGc%]")


def _key(entry: polib.POEntry) -> tuple[str | None, str, str]:
    return (entry.msgctxt, entry.msgid, entry.msgid_plural)


def _live(po: polib.POFile) -> list[polib.POEntry]:
    return [e for e in po if not e.obsolete]


def test_every_entry_of_the_catalogue_is_translated_and_not_fuzzy():
    po = polib.pofile(str(PO_PATH))
    assert not po.metadata_is_fuzzy, "the .po header is marked fuzzy: msgfmt would ignore it"
    fuzzy = [e.msgid for e in _live(po) if "fuzzy" in e.flags]
    untranslated = [
        e.msgid
        for e in _live(po)
        if (not all(e.msgstr_plural.values()) if e.msgid_plural else not e.msgstr) and "fuzzy" not in e.flags
    ]
    assert not fuzzy, f"fuzzy entries in {PO_PATH.name} (check the English, drop the flag): {fuzzy}"
    assert not untranslated, f"untranslated entries in {PO_PATH.name}: {untranslated}"


def test_the_english_keeps_the_placeholders_of_the_chinese():
    wrong = []
    for e in _live(polib.pofile(str(PO_PATH))):
        for msgstr in e.msgstr_plural.values() if e.msgid_plural else [e.msgstr]:
            if sorted(_PLACEHOLDER.findall(e.msgid)) != sorted(_PLACEHOLDER.findall(msgstr)):
                wrong.append((e.msgid, msgstr))
    assert not wrong, f"placeholders differ between msgid and msgstr: {wrong}"


def _copy_sources(dst: Path) -> None:
    """What `makemessages` run at the project root reads: .py/.html/.txt files outside hidden
    directories (.venv, .git) and outside var/."""
    root = Path(settings.BASE_DIR)
    skip = {Path(settings.VAR_DIR).resolve(), (root / "var").resolve()}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [
            d for d in dirnames if not d.startswith(".") and d != "__pycache__" and (here / d).resolve() not in skip
        ]
        for name in filenames:
            if name.endswith((".py", ".html", ".txt")) and not name.startswith("."):
                target = dst / (here / name).relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(here / name, target)


def test_every_translatable_string_in_the_source_is_in_the_catalogue(tmp_path, monkeypatch):
    """Extract afresh with Django's makemessages (xgettext: `scripts/setup.sh --test` installs
    gettext) into a copy of the tree, so the checkout is never written, and compare msgids."""
    assert shutil.which("xgettext"), "gettext is not installed (scripts/setup.sh --test installs it)"
    _copy_sources(tmp_path)
    locale = tmp_path / "ops" / "locale"
    monkeypatch.chdir(tmp_path)
    with override_settings(LOCALE_PATHS=[locale]):
        call_command("makemessages", locale=["en"], no_location=True, verbosity=0)
    extracted = {_key(e) for e in _live(polib.pofile(str(locale / "en" / "LC_MESSAGES" / "django.po")))}
    committed = {_key(e) for e in _live(polib.pofile(str(PO_PATH)))}
    missing = sorted(k[1] for k in extracted - committed)
    stale = sorted(k[1] for k in committed - extracted)
    assert not missing, f"strings in the source but not in {PO_PATH.name} ({REGENERATE}): {missing}"
    assert not stale, f"entries in {PO_PATH.name} that no source uses any more ({REGENERATE}): {stale}"


def test_the_compiled_catalogue_matches_the_po():
    """django.mo is built by scripts/setup.sh (scripts/compile_translations.py), not committed."""
    mo_path = PO_PATH.with_suffix(".mo")
    assert mo_path.exists(), "django.mo is missing: run scripts/setup.sh"
    with mo_path.open("rb") as fp:
        on_disk = gettext.GNUTranslations(fp)

    def shipped(e: polib.POEntry) -> list[str]:
        if e.msgid_plural:
            return [
                on_disk.npgettext(e.msgctxt, e.msgid, e.msgid_plural, n)
                if e.msgctxt
                else on_disk.ngettext(e.msgid, e.msgid_plural, n)
                for n in (1, 2)
            ]
        return [on_disk.pgettext(e.msgctxt, e.msgid) if e.msgctxt else on_disk.gettext(e.msgid)]

    def written(e: polib.POEntry) -> list[str]:
        return [e.msgstr_plural[0], e.msgstr_plural[1]] if e.msgid_plural else [e.msgstr]

    stale = [e.msgid for e in _live(polib.pofile(str(PO_PATH))) if shipped(e) != written(e)]
    assert not stale, f"django.mo is older than django.po (run scripts/setup.sh): {stale}"
