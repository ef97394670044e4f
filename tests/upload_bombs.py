"""Hostile uploads for the import's tests (issue 20, items 4-5): a ZIP of photos that unpacks to
1000 MiB, an XLSX whose one shared string is 300 MB, a 50 MB CSV — each a few hundred KB to
write (streamed, never held whole in memory) except the CSV."""

from __future__ import annotations

import zipfile
from pathlib import Path

MIB = 1024 * 1024
_CHUNK = b"\0" * MIB

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="名单" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
    'Target="sharedStrings.xml"/></Relationships>'
)
HEADERS = ["学号", "姓名", "学系", "班级", "身份证号"]


def photo_zip_bomb(path: Path, entries: int = 100, entry_mib: int = 10) -> Path:
    """``entries`` photos of ``entry_mib`` MiB of zeros each, named by student number (about
    1 MB on disk for the defaults)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for i in range(entries):
            with archive.open(f"2026CS{i:05d}.jpg", "w", force_zip64=False) as entry:
                for _ in range(entry_mib):
                    entry.write(_CHUNK)
    return path


def xlsx_with_one_long_string(path: Path, string_mib: int = 300) -> Path:
    """A student list whose B2 (姓名) is one shared string of ``string_mib`` MiB ("A" × …)."""
    strings = [*HEADERS, "2026CS00001", "保卫处", "2026-1", "44050720070102100X"]
    head = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        f'count="{len(strings) + 1}" uniqueCount="{len(strings) + 1}">'
        + "".join(f"<si><t>{s}</t></si>" for s in strings)
        + "<si><t>"
    )
    row1 = "".join(f'<c r="{c}1" t="s"><v>{i}</v></c>' for i, c in enumerate("ABCDE"))
    cells = [("A", 5), ("B", len(strings)), ("C", 6), ("D", 7), ("E", 8)]
    row2 = "".join(f'<c r="{c}2" t="s"><v>{i}</v></c>' for c, i in cells)
    sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        f'<row r="1">{row1}</row><row r="2">{row2}</row></sheetData></worksheet>'
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as entry:
            entry.write(head.encode())
            block = b"A" * MIB
            for _ in range(string_mib):
                entry.write(block)
            entry.write(b"</t></si></sst>")
    return path


def big_csv(rows: int = 819_200, width: int = 54) -> bytes:
    """A student list of ``rows`` rows of about ``width`` bytes (the trial's: 50 MB)."""
    line = "2026CS{:07d},学生,保卫处,2026-1,44050720070102100X".ljust(width - 1, " ") + "\n"
    return ("学号,姓名,学系,班级,身份证号\n" + "".join(line.format(i) for i in range(rows))).encode()
