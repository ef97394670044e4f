"""Reading uploaded cardholder lists (R-CARD-4 staff, R-CARD-5 students) from real CSV and XLSX
files, header aliases, and row validation with Excel row numbers."""

from __future__ import annotations

import io
import time
from datetime import date, timedelta

import openpyxl
import pytest
from django.utils import translation

from ops.registry import citizen_id
from ops.registry.lifecycle.tabular import (
    STAFF_COLUMNS,
    STUDENT_COLUMNS,
    RowError,
    TableError,
    normalize,
    read_table,
)

ID1 = citizen_id.make("110105", date(2006, 3, 7), 123)
ID2 = citizen_id.make("440305", date(2007, 12, 31), 45)
ID_X = next(i for i in (citizen_id.make("320102", date(2006, 5, 1), n) for n in range(1000)) if i.endswith("X"))


@pytest.fixture(autouse=True)
def chinese():
    with translation.override("zh-hans"):
        yield


def csv_bytes(lines: list[str], encoding: str) -> bytes:
    return "\r\n".join(lines).encode(encoding) + b"\r\n"


def xlsx_bytes(rows: list[list]) -> bytes:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("学生名单")
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def wrong_check(value: str) -> str:
    return value[:17] + ("0" if value[17] != "0" else "1")


def test_utf8_bom_csv_with_aliases_spaces_and_row_numbers():
    data = csv_bytes(
        [
            " 学 号 ,姓名,院系,班级\u3000,身份证号码",
            f"2025CS00001, 张三 ,计算机系,计科2501,{ID1}",
            ",,,,",  # a blank row still counts as a row in Excel
            f"2025CS00002,李四,计算机系,计科2502,{ID_X.lower()}",
        ],
        "utf-8-sig",
    )
    table = read_table("名单.csv", data)
    assert table.headers == ["学 号", "姓名", "院系", "班级", "身份证号码"]
    assert [r.row for r in table.rows] == [2, 4]
    records, errors = normalize(table, STUDENT_COLUMNS)
    assert errors == []
    assert records == [
        {
            "row": 2,
            "number": "2025CS00001",
            "name": "张三",
            "department": "计算机系",
            "class_name": "计科2501",
            "citizen_id": ID1,
        },
        {
            "row": 4,
            "number": "2025CS00002",
            "name": "李四",
            "department": "计算机系",
            "class_name": "计科2502",
            "citizen_id": ID_X,
        },
    ]


def test_utf8_csv_without_bom_and_excel_text_formula():
    data = csv_bytes(["学号,姓名,学系,班级,身份证号", f'2025CS00001,王五,数学系,数学2501,="{ID2}"'], "utf-8")
    records, errors = normalize(read_table("a.CSV", data), STUDENT_COLUMNS)
    assert errors == [] and records[0]["citizen_id"] == ID2


def test_gbk_csv_from_chinese_excel():
    data = csv_bytes(["学号,姓名,系别,班级,公民身份号码", f"2025CS00001,欧阳娜娜,外语系,英语2501,{ID1}"], "gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    records, errors = normalize(read_table("名单.csv", data), STUDENT_COLUMNS)
    assert errors == []
    assert records[0]["name"] == "欧阳娜娜" and records[0]["department"] == "外语系"


def test_gb18030_only_characters():
    data = csv_bytes(["工号,姓名,部门,职称", "T0001,𠮷田,后勤处,工程师"], "gb18030")
    records, errors = normalize(read_table("staff.csv", data), STAFF_COLUMNS)
    assert errors == [] and records[0]["name"] == "𠮷田"


def test_xlsx_with_numeric_cells():
    data = xlsx_bytes(
        [
            ["学号", "姓名", "学系", "班级", "身份证号"],
            [2025001, "张三", "计算机系", 2501, ID1],  # numbers typed into "General" cells
            [2025002.0, "李四", "计算机系", 2501.0, ID_X],
            [2025003, "王五", "计算机系", 2501, 110105200603071000.0],  # what Excel keeps of an 18-digit ID
            [2025004, "赵六", "计算机系", 2501, 0.5],
        ]
    )
    table = read_table("名单.xlsx", data)
    assert table.sheet == "学生名单"
    assert [r["学号"] for r in table.rows] == ["2025001", "2025002", "2025003", "2025004"]
    assert table.rows[1]["班级"] == "2501"
    assert table.rows[2]["身份证号"] == "110105200603071000"
    records, errors = normalize(table, STUDENT_COLUMNS)
    assert [r["number"] for r in records] == ["2025001", "2025002"]
    assert errors == [
        RowError(
            4,
            "身份证号",
            "110105200603071000",
            "“身份证号”被 Excel 当作数字保存，超过 15 位的数字已丢失；请把该列设置为“文本”格式后重新填写",
        ),
        RowError(5, "身份证号", "0.5", "身份证号应为18位"),
    ]


def test_scientific_notation_in_a_csv_saved_from_excel():
    data = csv_bytes(["学号,姓名,学系,班级,身份证号", "2025CS00001,张三,计算机系,计科2501,1.10105E+17"], "gbk")
    _, errors = normalize(read_table("a.csv", data), STUDENT_COLUMNS)
    assert [(e.row, e.column) for e in errors] == [(2, "身份证号")] and "Excel" in errors[0].message


def test_xlsx_rows_are_numbered_as_in_excel():
    data = xlsx_bytes(
        [
            [],
            ["工号", "*姓名", "单位", "职务／职称"],  # header on row 2, a star marking required fields
            ["T0001", "张老师", "数学系", "教授"],
            [None, None, None, None],
            ["T0002", "", "数学系", "讲师"],
        ]
    )
    table = read_table("staff.xlsx", data)
    assert table.header_row == 2
    records, errors = normalize(table, STAFF_COLUMNS)
    assert records == [{"row": 3, "number": "T0001", "name": "张老师", "department": "数学系", "title": "教授"}]
    assert errors == [RowError(5, "*姓名", "", "“*姓名”不能为空")]


@pytest.mark.parametrize("header", ["职务", "职称", "职务职称", "职务/职称"])
def test_staff_title_aliases(header):
    data = csv_bytes([f"职工号,姓名,部门,{header}", "T0001,张老师,教务处,副处长"], "utf-8")
    records, errors = normalize(read_table("s.csv", data), STAFF_COLUMNS)
    assert errors == [] and records[0]["title"] == "副处长" and records[0]["number"] == "T0001"


def test_two_columns_for_one_field_are_reported():
    data = csv_bytes(["工号,姓名,部门,职务,职称", "T0001,张老师,教务处,副处长,副教授"], "utf-8")
    _, errors = normalize(read_table("s.csv", data), STAFF_COLUMNS)
    assert errors == [RowError(1, "职称", "", "“职务”和“职称”两列都表示“职务/职称”，请只保留一列")]


def test_missing_column_is_reported_once():
    lines = ["学号,姓名,学系,身份证号"] + [f"2025CS{i:05d},学生{i},计算机系,{ID1 if i == 0 else ID2}" for i in range(2)]
    records, errors = normalize(read_table("a.csv", csv_bytes(lines, "utf-8")), STUDENT_COLUMNS)
    assert errors == [RowError(1, "班级", "", "缺少必需的列“班级”（可用的列名：班级）")]
    assert len(records) == 2 and "class_name" not in records[0]


def test_duplicate_number_and_citizen_id():
    data = csv_bytes(
        [
            "学号,姓名,学系,班级,身份证号",
            f"2025CS00001,张三,计算机系,计科2501,{ID1}",
            f"2025CS00002,李四,计算机系,计科2501,{ID2}",
            f"2025CS00001,王五,计算机系,计科2501,{ID_X}",
            f"2025CS00004,赵六,计算机系,计科2501,{ID2}",
        ],
        "utf-8",
    )
    records, errors = normalize(read_table("a.csv", data), STUDENT_COLUMNS)
    assert [r["row"] for r in records] == [2, 3]
    assert errors == [
        RowError(4, "学号", "2025CS00001", "学号 2025CS00001 与第 2 行重复"),
        RowError(5, "身份证号", ID2, "身份证号与第 3 行重复"),
    ]


def test_bad_citizen_ids_get_separate_messages():
    bad_date = "110105" + "20060230" + "123"
    bad_date += citizen_id.check_char(bad_date)
    future = citizen_id.make("110105", date(2099, 1, 1), 1)
    rows = [
        wrong_check(ID1),
        bad_date,
        future,
        ID1[:17],
        "11010520060307123",
        ID1[:10] + "ABCDEFG" + ID1[17],
        chr(ord(ID2[0]) + 0xFEE0) + ID2[1:],
    ]  # a full-width digit is fine
    lines = ["学号,姓名,学系,班级,身份证号"] + [f"S{i},某某,物理系,物理2501,{v}" for i, v in enumerate(rows)]
    data = csv_bytes(lines, "utf-8")
    records, errors = normalize(read_table("a.csv", data), STUDENT_COLUMNS)
    assert [(e.row, e.message) for e in errors] == [
        (2, "身份证号校验位错误"),
        (3, "身份证号中的出生日期无效"),
        (4, "身份证号中的出生日期无效"),
        (5, "身份证号应为18位"),
        (6, "身份证号应为18位"),
        (7, "身份证号只能由数字组成，最后一位可以是 X"),
    ]
    assert all(e.column == "身份证号" for e in errors) and errors[0].value == wrong_check(ID1)
    assert records == [
        {"row": 8, "number": "S6", "name": "某某", "department": "物理系", "class_name": "物理2501", "citizen_id": ID2}
    ]


def test_files_that_are_not_tables():
    with pytest.raises(TableError, match="不支持的文件类型"):
        read_table("photo.jpg", b"\xff\xd8\xff")
    with pytest.raises(TableError, match="不是 Excel 工作簿"):
        read_table("list.xlsx", "学号,姓名\n".encode())
    with pytest.raises(TableError, match="无法读取 Excel"):
        read_table("list.xlsx", b"PK\x03\x04 broken")
    with pytest.raises(TableError, match="空"):
        read_table("list.csv", b"  \r\n")


def test_30000_rows_parse_and_validate_with_exactly_the_bad_row_reported(capsys):
    ids = [citizen_id.make("110105", date(2000, 1, 1) + timedelta(days=i % 3000), i // 3000) for i in range(30_000)]
    header = ["学号", "姓名", "学系", "班级", "身份证号"]
    body = [[f"2025CS{i:05d}", f"学生{i}", "计算机科学与技术系", f"计科25{i % 40:02d}", ids[i]] for i in range(30_000)]
    body[100][4] = wrong_check(body[100][4])
    files = {
        "名单.csv": csv_bytes([",".join(header)] + [",".join(r) for r in body], "gbk"),
        "名单.xlsx": xlsx_bytes([header] + [[int(r[0][6:]) if i % 2 else r[0], *r[1:]] for i, r in enumerate(body)]),
    }
    timings = {}
    for name, data in files.items():
        started = time.perf_counter()
        records, errors = normalize(read_table(name, data), STUDENT_COLUMNS)
        timings[name] = time.perf_counter() - started
        assert len(records) == 29_999
        assert [(e.row, e.message) for e in errors] == [(102, "身份证号校验位错误")]
    with capsys.disabled():
        print(
            "\n30,000 rows parsed + validated: "
            + ", ".join(
                f"{name} ({len(files[name]) // 1024} KB) {seconds * 1000:.0f} ms" for name, seconds in timings.items()
            )
        )
    # the speed goal (30,000 rows ≤ 5 s with validation) is `campuscard bench import`'s
