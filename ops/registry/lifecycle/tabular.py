"""Uploaded lists of cardholders: read a CSV or Excel file into rows, then map and validate them.

R-CARD-5: student data from Academic Affairs (教务处) — 姓名, 学系, 班级, 学号, 身份证号 (+ photo).
R-CARD-4: staff data from HR (人事处) — 姓名, 部门, 职务/职称, 工号 (+ photo).
Photos come separately (see :mod:`ops.registry.lifecycle.photos`); this module handles the list.

* :func:`read_table` turns the file into text cells: CSV in UTF-8 (with or without BOM), UTF-16
  (Excel "Unicode text") or GBK/GB18030 (what Chinese Excel writes), comma/tab/semicolon
  separated; XLSX/XLSM/XLS through python-calamine (fast, Rust). Every value is text: numbers
  come back without ".0" or scientific notation, and a number with more than 15 significant
  digits — a citizen ID typed into a "General" Excel cell — is flagged, because Excel has
  already replaced its last digits with zeros.
* :func:`normalize` maps the headers (aliases, spaces, full-width characters) to field names and
  reports each problem as a :class:`RowError` with the row number the operator sees in Excel
  (header = row 1, first data row = row 2) and the header as written in the file.

Citizen ID numbers: GB 11643 check character (ISO 7064 MOD 11-2, :mod:`ops.registry.citizen_id`)
and a valid embedded birth date.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePath

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from ops.registry import citizen_id, holder_number

# Canonical field → accepted header spellings (compared after :func:`header_key`). The first
# spelling is the one shown to the operator. Every field listed is required.
STUDENT_COLUMNS: dict[str, tuple[str, ...]] = {  # R-CARD-5
    "number": ("学号",),
    "name": ("姓名",),
    "department": ("学系", "院系", "系别", "系"),
    "class_name": ("班级",),
    "citizen_id": ("身份证号", "身份证号码", "公民身份号码", "身份证"),
}
# Optional columns of a student list (issue 13, defect 1; R-END-1, R-END-3): when the student's
# study ends — the expected graduation date, or the entry year and the length of study. Without
# them the end is the July of entry year + STUDY_YEARS (see :func:`study_end`).
STUDENT_OPTIONAL: dict[str, tuple[str, ...]] = {
    "study_end": ("预计毕业日期", "毕业日期", "预计毕业时间"),
    "entry_year": ("入学年份", "入学年级", "年级"),
    "study_years": ("学制",),
}
STUDY_YEARS = 4  # 学制 when the list does not say
GRADUATION_MONTH_DAY = (7, 1)  # students' cards end with study: 1 July of the graduation year
STAFF_COLUMNS: dict[str, tuple[str, ...]] = {  # R-CARD-4
    "number": ("工号", "职工号", "教工号"),
    "name": ("姓名",),
    "department": ("部门", "单位", "所在部门", "所在单位"),
    "title": ("职务/职称", "职务", "职称", "职务职称"),
}

EXCEL_DIGITS = 15  # Excel keeps 15 significant digits of a number
EXCEL_EXTENSIONS = frozenset({".xlsx", ".xlsm", ".xls"})
CSV_EXTENSIONS = frozenset({".csv", ".txt"})
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls
_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:\.\d+)?[eE]\+?\d+$")
_EXCEL_TEXT_FORMULA = re.compile(r'^="(.*)"$')  # ="0123": the CSV trick to keep Excel from converting
_STRIP = " \t\r\n\u3000\xa0\u200b\ufeff"
MAX_WORKBOOK_PARTS = 1000  # an XLSX of one list has a dozen


class TableError(ValueError):
    """The file cannot be read as a table; the message says why, for the operator."""


class Row(dict):
    """A data row: ``{header as written: cell text}`` plus ``row``, its row number in Excel."""

    __slots__ = ("row",)

    def __init__(self, values, row: int):
        super().__init__(values)
        self.row = row

    def __repr__(self) -> str:
        return f"Row({dict.__repr__(self)}, row={self.row})"


@dataclass
class Table:
    headers: list[str]  # as written (outer spaces trimmed), left to right
    rows: list[Row]  # non-blank data rows, in file order
    header_row: int = 1  # the first non-blank row is the header
    sheet: str | None = None  # for workbooks: the sheet that was read
    # (row, header) of numeric Excel cells with more than 15 significant digits: the text is
    # what Excel kept, not what was typed (e.g. an 18-digit citizen ID ending in "000").
    lossy_cells: set[tuple[int, str]] = field(default_factory=set)


@dataclass(frozen=True)
class RowError:
    row: int  # as in Excel: header is row 1
    column: str  # the header as written in the file ("" when the problem is not in one column)
    value: str
    message: str


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class Limits:
    """What one uploaded list may hold (issue 20, item 5: a 300 KB XLSX unpacked one 300 MB
    string; a 50 MB CSV took 2 GB before it was refused). Settings ``IMPORT_MAX_*``."""

    file_bytes: int
    unpacked_bytes: int  # an XLSX's parts, decompressed
    rows: int  # data rows (the header not counted)
    columns: int
    cell_chars: int

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            file_bytes=settings.IMPORT_MAX_BYTES,
            unpacked_bytes=settings.IMPORT_MAX_UNPACKED_BYTES,
            rows=settings.IMPORT_MAX_ROWS,
            columns=settings.IMPORT_MAX_COLUMNS,
            cell_chars=settings.IMPORT_MAX_CELL_CHARS,
        )


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.0f}" if size >= 1024 * 1024 else f"{size / (1024 * 1024):.2f}"


def check_file_size(size: int, limits: Limits | None = None) -> None:
    """Refuse a list before it is read (its upload is on disk; its size is known)."""
    limits = limits or Limits.from_settings()
    if size > limits.file_bytes:
        raise TableError(
            _("文件过大（%(size)s MB，上限 %(max)s MB）；请分批导入")
            % {"size": _mb(size), "max": _mb(limits.file_bytes)}
        )


def read_table(filename: str, data: bytes, limits: Limits | None = None) -> Table:
    """Read an uploaded CSV/XLSX into text rows. Raises :class:`TableError` if it can't, or
    as soon as it is past a limit (:class:`Limits`)."""
    limits = limits or Limits.from_settings()
    suffix = PurePath(filename).suffix.lower()
    check_file_size(len(data), limits)
    if not data.strip():
        raise TableError(_("文件是空的"))
    if data.startswith(_ZIP_MAGIC) or data.startswith(_OLE_MAGIC):
        if suffix not in EXCEL_EXTENSIONS | CSV_EXTENSIONS:
            raise TableError(_("不支持的文件类型“%(suffix)s”，请上传 .xlsx 或 .csv 文件") % {"suffix": suffix})
        return _read_workbook(data, limits)
    if suffix in EXCEL_EXTENSIONS:
        raise TableError(
            _("文件扩展名是 %(suffix)s，但内容不是 Excel 工作簿；请在 Excel 中重新另存为 .xlsx") % {"suffix": suffix}
        )
    if suffix not in CSV_EXTENSIONS:
        raise TableError(_("不支持的文件类型“%(suffix)s”，请上传 .xlsx 或 .csv 文件") % {"suffix": suffix or filename})
    return _read_csv(data, limits)


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")  # a superset of GBK and GB2312
    except UnicodeDecodeError as exc:
        raise TableError(_("无法识别文件的文字编码；请在 Excel 中另存为“CSV UTF-8”或 .xlsx 格式")) from exc


def _read_csv(data: bytes, limits: Limits) -> Table:
    text = _decode(data)
    first_line = text[: text.find("\n")] if "\n" in text else text
    delimiter = max((",", "\t", ";"), key=first_line.count)
    if first_line.count(delimiter) == 0:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    cells: list[list[str]] = []
    try:
        for record in reader:  # row by row: refused at the first row past a limit
            _check_row(len(cells) + 1, record, limits)
            cells.append([_csv_cell(value) for value in record])
    except csv.Error as exc:
        message = _("CSV 文件格式有误（第 %(row)d 行）：%(error)s") % {"row": reader.line_num, "error": exc}
        raise TableError(message) from exc
    return _build(cells, lossy=set(), sheet=None)


def _check_row(row: int, record: list, limits: Limits) -> None:
    """Refuse the file at row ``row`` (as in Excel) if it is past the rows, columns or cell size
    a list of people can have."""
    if row > limits.rows + 1:
        raise TableError(_("名单超过 %(max)d 行；请分批导入（每次不超过 %(max)d 行）") % {"max": limits.rows})
    if len(record) > limits.columns and any(record[limits.columns :]):
        raise TableError(
            _("第 %(row)d 行超过 %(max)d 列；名单只需姓名、学号/工号等几列，请删除多余的列")
            % {"row": row, "max": limits.columns}
        )
    for col, value in enumerate(record):
        if value.__class__ is str and len(value) > limits.cell_chars:
            raise TableError(
                _("第 %(row)d 行 %(column)s 列的内容超过 %(max)d 个字符，不是名单数据；请检查文件")
                % {"row": row, "column": _column_letter(col), "max": limits.cell_chars}
            )


def _check_unpacked(data: bytes, limits: Limits) -> None:
    """An XLSX is a ZIP: decompress each part as a stream, counting, and refuse the file as
    soon as the total passes ``limits.unpacked_bytes`` (a part's declared size can lie; Python
    stops at it and checks the CRC). Memory stays at one chunk."""
    budget = limits.unpacked_bytes
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_WORKBOOK_PARTS:
                raise TableError(_("Excel 文件的结构异常（部件过多）；请在 Excel 中重新另存为 .xlsx"))
            if sum(e.file_size for e in entries) > budget:
                raise TableError(_unpacked_message(limits))
            for entry in entries:
                with archive.open(entry) as part:
                    while chunk := part.read(1024 * 1024):
                        budget -= len(chunk)
                        if budget < 0:
                            raise TableError(_unpacked_message(limits))
    except TableError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, OSError, EOFError) as exc:
        raise TableError(_("无法读取 Excel 文件（%(error)s）；请确认文件未损坏、未加密") % {"error": exc}) from exc


def _unpacked_message(limits: Limits) -> str:
    return _("Excel 文件解压后超过 %(max)s MB，不像一份名单；请只保留名单所在的工作表，或分批导入") % {
        "max": _mb(limits.unpacked_bytes)
    }


def _csv_cell(value: str) -> str:
    value = value.strip(_STRIP)
    if value.startswith("="):
        match = _EXCEL_TEXT_FORMULA.match(value)
        if match:
            return match.group(1).strip(_STRIP)
    return value


def _read_workbook(data: bytes, limits: Limits) -> Table:
    try:
        from python_calamine import CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum
    except ImportError as exc:  # pragma: no cover - a pinned dependency
        raise TableError(_("服务器未安装 Excel 读取组件，请上传 CSV 文件")) from exc
    if data.startswith(_ZIP_MAGIC):
        _check_unpacked(data, limits)  # before calamine holds any of it
    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        names = [
            m.name
            for m in book.sheets_metadata
            if m.typ == SheetTypeEnum.WorkSheet and m.visible == SheetVisibleEnum.Visible
        ] or book.sheet_names
        if not names:
            raise TableError(_("Excel 文件中没有工作表"))
        sheet = book.get_sheet_by_name(names[0])
        end = sheet.end  # (row, column) of the last cell, from 0; None for an empty sheet
        if end is not None:  # the padded grid below is rows × columns: check both first
            _check_row(end[0] + 1, [], limits)
            if end[1] + 1 > limits.columns:
                raise TableError(
                    _("工作表“%(sheet)s”有 %(n)d 列，超过 %(max)d 列；请删除多余的列")
                    % {"sheet": names[0], "n": end[1] + 1, "max": limits.columns}
                )
        # skip_empty_area=False: the first list is row 1, so indexes give Excel's row numbers.
        values = sheet.to_python(skip_empty_area=False)
    except TableError:
        raise
    except Exception as exc:  # calamine raises its own error types for corrupt/encrypted files
        raise TableError(_("无法读取 Excel 文件（%(error)s）；请确认文件未损坏、未加密") % {"error": exc}) from exc
    lossy: set[tuple[int, int]] = set()
    cells = []
    for index, record in enumerate(values):
        _check_row(index + 1, record, limits)
        out = []
        for col, value in enumerate(record):
            if value.__class__ is str:  # the common case, without a call
                out.append(value.strip(_STRIP))
                continue
            text, exact = _excel_cell(value)
            if not exact:
                lossy.add((index + 1, col))
            out.append(text)
        cells.append(out)
    return _build(cells, lossy=lossy, sheet=names[0])


def _excel_cell(value) -> tuple[str, bool]:
    """Cell text as the operator sees it, and False if Excel already lost digits of the number."""
    if isinstance(value, str):
        return value.strip(_STRIP), True
    if isinstance(value, bool):
        return ("TRUE" if value else "FALSE"), True
    if isinstance(value, int):
        return str(value), len(str(abs(value))) <= EXCEL_DIGITS
    if isinstance(value, float):
        if value.is_integer():
            digits = str(int(value))
            if len(digits.lstrip("-")) <= EXCEL_DIGITS:
                return digits, True
            # Show what Excel shows: 15 significant digits, then zeros (not float noise like …1008).
            return str(int(Decimal(f"{value:.{EXCEL_DIGITS}g}"))), False
        text = repr(value)
        if "e" in text or "E" in text:
            text = f"{value:.{EXCEL_DIGITS}f}".rstrip("0").rstrip(".")
        return text, True
    if isinstance(value, dt.datetime):
        return (value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")), True
    if isinstance(value, dt.date | dt.time):
        return value.isoformat(), True
    if value is None:
        return "", True
    return str(value).strip(_STRIP), True


def _build(cells: list[list[str]], *, lossy: set[tuple[int, int]], sheet: str | None) -> Table:
    header_index = next((i for i, record in enumerate(cells) if any(record)), None)
    if header_index is None:
        raise TableError(_("文件中没有数据"))
    raw = cells[header_index]
    headers: list[str] = []
    keys: list[tuple[int, str]] = []  # (column index, dict key) for columns with a header
    seen: set[str] = set()
    for col, text in enumerate(raw):
        if not text:
            continue
        key = text
        if key in seen:  # the same header twice: keep both, tell them apart by column letter
            key = f"{text}（{_column_letter(col)}列）"
        seen.add(key)
        headers.append(key)
        keys.append((col, key))
    rows: list[Row] = []
    names = [key for _col, key in keys]
    columns = [col for col, _key in keys]
    full = columns[-1] + 1 if columns else 0
    for index in range(header_index + 1, len(cells)):
        record = cells[index]
        if not any(record):
            continue
        if len(record) < full:
            record = record + [""] * (full - len(record))
        rows.append(Row(zip(names, [record[col] for col in columns], strict=True), index + 1))
    lossy_cells = {(row, key) for col, key in keys for row, lcol in lossy if lcol == col and row > header_index + 1}
    return Table(headers=headers, rows=rows, header_row=header_index + 1, sheet=sheet, lossy_cells=lossy_cells)


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


# ---------------------------------------------------------------- mapping and validation


def header_key(text: str) -> str:
    """How headers are compared: NFKC (full-width → half-width), no spaces of any kind, no
    required-field stars ("*姓名"), case-folded."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in text if not ch.isspace() and ch not in "*\u200b\ufeff").casefold()


def study_end(record: Mapping[str, str], today: dt.date) -> tuple[dt.date, bool] | str:
    """When a listed student's study ends, and whether the list said so (``False``: the default,
    which never overwrites a date on record); or why the cells cannot be read."""
    text = (record.get("study_end") or "").strip()
    if text:
        cleaned = text.replace("/", "-").replace(".", "-").replace("年", "-").replace("月", "-").rstrip("日-")
        parts = cleaned.split("-")
        try:
            year = int(parts[0])
            month = int(parts[1]) if len(parts) > 1 else GRADUATION_MONTH_DAY[0]
            day = int(parts[2]) if len(parts) > 2 else (GRADUATION_MONTH_DAY[1] if len(parts) == 1 else 1)
            end = dt.date(year, month, day)
        except (ValueError, IndexError):
            return _("“预计毕业日期”应为 YYYY-MM-DD（或 YYYY-MM、YYYY），读到“%(value)s”") % {"value": text}
        if not today.year - 1 <= end.year <= today.year + 12:
            return _("“预计毕业日期” %(value)s 不在合理范围内") % {"value": text}
        return end, True
    entry_text = (record.get("entry_year") or "").strip().rstrip("级年")
    years_text = (record.get("study_years") or "").strip().rstrip("年制")
    try:
        years = int(years_text) if years_text else STUDY_YEARS
    except ValueError:
        return _("“学制”应为年数（如 4），读到“%(value)s”") % {"value": record.get("study_years")}
    if not 1 <= years <= 10:
        return _("“学制”应为 1 到 10 年，读到“%(value)s”") % {"value": record.get("study_years")}
    if entry_text:
        try:
            entry = int(entry_text)
        except ValueError:
            return _("“入学年份”应为四位年份（如 2025），读到“%(value)s”") % {"value": record.get("entry_year")}
        if not today.year - 12 <= entry <= today.year + 1:
            return _("“入学年份” %(value)s 不在合理范围内") % {"value": record.get("entry_year")}
        return dt.date(entry + years, *GRADUATION_MONTH_DAY), True
    # no date on the list: entering this academic year (from September), the usual length
    entry = today.year if today.month >= 9 else today.year - 1
    return dt.date(entry + years, *GRADUATION_MONTH_DAY), bool(years_text)


def normalize(
    table: Table, columns: Mapping[str, tuple[str, ...]], optional: Mapping[str, tuple[str, ...]] | None = None
) -> tuple[list[dict], list[RowError]]:
    """Map ``table`` to ``columns`` (e.g. :data:`STUDENT_COLUMNS`) and validate it.

    Returns ``(records, errors)``. ``records`` are the rows without any problem, as
    ``{"row": n, field: value, ...}`` (values trimmed; citizen IDs with an upper-case X).
    ``errors`` lists, in row order: missing/ambiguous columns (at the header row, once), empty
    required cells, numbers repeated in the file, citizen IDs repeated in the file, and citizen
    IDs that are not 18 characters, contain other characters, have an impossible birth date, a
    wrong check character, or were turned into a number by Excel.
    """
    lookup = {header_key(alias): name for name, aliases in columns.items() for alias in aliases}
    mapping: dict[str, str] = {}  # field → header in the file
    errors: list[RowError] = []
    for header in table.headers:
        name = lookup.get(header_key(header))
        if name is None:
            continue
        if name in mapping:
            errors.append(
                RowError(
                    table.header_row,
                    header,
                    "",
                    _("“%(first)s”和“%(second)s”两列都表示“%(field)s”，请只保留一列")
                    % {"first": mapping[name], "second": header, "field": columns[name][0]},
                )
            )
            continue
        mapping[name] = header
    for name, aliases in columns.items():
        if name not in mapping:
            errors.append(
                RowError(
                    table.header_row,
                    aliases[0],
                    "",
                    _("缺少必需的列“%(column)s”（可用的列名：%(aliases)s）")
                    % {"column": aliases[0], "aliases": "、".join(aliases)},
                )
            )

    fields = list(mapping.items())
    optional_lookup = {header_key(a): name for name, aliases in (optional or {}).items() for a in aliases}
    optional_fields = [(optional_lookup[header_key(h)], h) for h in table.headers if header_key(h) in optional_lookup]
    id_header = mapping.get("citizen_id")
    number_header = mapping.get("number")
    lossy = table.lossy_cells
    today = timezone.localdate()
    first_number: dict[str, int] = {}
    first_id: dict[str, int] = {}
    records: list[dict] = []
    empty_message = _("“%(column)s”不能为空")

    for source in table.rows:
        row = source.row
        record: dict = {"row": row}
        row_errors: list[RowError] = []
        for name, header in fields:
            value = source[header]
            if name == "citizen_id":
                if not value.isascii():  # full-width digits, typed with a Chinese input method
                    value = unicodedata.normalize("NFKC", value)
                value = value.replace(" ", "").lstrip("'").upper()
            record[name] = value
            if not value:
                row_errors.append(RowError(row, header, value, empty_message % {"column": header}))
            elif (row, header) in lossy or (
                name in ("number", "citizen_id") and ("E" in value or "e" in value) and _SCIENTIFIC.match(value)
            ):
                row_errors.append(
                    RowError(
                        row,
                        header,
                        value,
                        _(
                            "“%(column)s”被 Excel 当作数字保存，超过 15 位的数字已丢失；"
                            "请把该列设置为“文本”格式后重新填写"
                        )
                        % {"column": header},
                    )
                )
            elif name == "citizen_id":
                problem = citizen_id_problem(value, today)
                if problem:
                    row_errors.append(RowError(row, header, value, problem))
            elif name == "number":  # issue 20, item 3: "+1+1", "@SUM(1+1)" are no numbers
                problem = holder_number.problem(value)
                if problem:
                    row_errors.append(RowError(row, header, value, problem))
        for name, header in optional_fields:  # may be empty; checked by whoever reads them
            record[name] = source[header].strip()
        number = record.get("number")
        if number_header and number:
            if number in first_number:
                row_errors.append(
                    RowError(
                        row,
                        number_header,
                        number,
                        _("%(column)s %(value)s 与第 %(row)d 行重复")
                        % {"column": number_header, "value": number, "row": first_number[number]},
                    )
                )
            else:
                first_number[number] = row
        citizen = record.get("citizen_id")
        if id_header and citizen and not any(e.column == id_header for e in row_errors):
            if citizen in first_id:
                row_errors.append(
                    RowError(row, id_header, citizen, _("身份证号与第 %(row)d 行重复") % {"row": first_id[citizen]})
                )
            else:
                first_id[citizen] = row
        if row_errors:
            errors.extend(row_errors)
        else:
            records.append(record)
    return records, errors


def citizen_id_problem(value: str, today: dt.date | None = None) -> str | None:
    """Why ``value`` is not a valid citizen ID number (GB 11643), or None."""
    return citizen_id.problem(value, today)
