"""Compile ops/locale/*/LC_MESSAGES/*.po to the .mo files Django reads, in pure Python (polib,
a pinned dependency), so a plain setup needs no gettext system package. Run by scripts/setup.sh
and the Dockerfile. A .mo is rewritten only when its .po is newer (or with --force); the .mo
files are build output, not committed. Fuzzy and untranslated entries are left out, as msgfmt
does (tests/test_i18n.py fails on them anyway)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import polib

LOCALE = Path(__file__).resolve().parent.parent / "ops" / "locale"


def compile_all(force: bool = False) -> list[Path]:
    written = []
    for po_path in sorted(LOCALE.glob("*/LC_MESSAGES/*.po")):
        mo_path = po_path.with_suffix(".mo")
        if not force and mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        tmp = mo_path.with_name(f".{mo_path.name}.{os.getpid()}.tmp")
        polib.pofile(str(po_path)).save_as_mofile(str(tmp))
        os.replace(tmp, mo_path)  # a running server never reads a half-written catalogue
        written.append(mo_path)
    return written


if __name__ == "__main__":
    for path in compile_all(force="--force" in sys.argv[1:]):
        print(f"compiled {path.relative_to(LOCALE.parent.parent)}")
