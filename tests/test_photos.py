"""R-CARD-8 photo checks on real JPEG/PNG files made by Pillow, and photo sets from real folders
and zips."""

from __future__ import annotations

import time
import zipfile

import pytest
from django.utils import translation

from ops.registry.lifecycle.photos import (
    PhotoProblem,
    PhotoSetError,
    check_many,
    check_photo,
    load_photo_set,
    make_test_photo,
)


@pytest.fixture(autouse=True)
def chinese():
    with translation.override("zh-hans"):
        yield


def codes(problems: list[PhotoProblem]) -> list[str]:
    return [p.code for p in problems]


@pytest.mark.parametrize("color", [(67, 142, 219), (0, 191, 243), (60, 120, 200)])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_standard_photo_passes(color, fmt):
    assert check_photo(make_test_photo(color=color, fmt=fmt)) == []


def test_a_typical_test_photo_is_the_size_of_a_real_one():
    assert 20_000 <= len(make_test_photo()) <= 45_000


def test_wrong_size_is_reported_with_both_sizes():
    assert check_photo(make_test_photo(size=(300, 400))) == [
        PhotoProblem("size", "照片尺寸为 300×400 像素，应为 295×421 像素（宽×高）")
    ]


def test_a_photo_on_its_side_is_told_so():
    (problem,) = check_photo(make_test_photo(size=(421, 295)))
    assert problem.code == "size" and "横置" in problem.message


@pytest.mark.parametrize(
    ("color", "name"),
    [((128, 128, 128), "灰色"), ((255, 255, 255), "白色"), ((200, 30, 30), "红色"), ((236, 241, 250), "白色")],
)
def test_a_background_that_is_not_blue_is_rejected_naming_its_colour(color, name):
    assert check_photo(make_test_photo(color=color)) == [
        PhotoProblem("background", f"照片背景不是蓝色（检测到的主色接近{name}），请使用蓝底证件照")
    ]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_72_dpi_is_rejected(fmt):
    assert check_photo(make_test_photo(dpi=72, fmt=fmt)) == [PhotoProblem("dpi", "照片分辨率为 72 dpi，应为 300 dpi")]


def test_a_photo_without_a_resolution_is_rejected():
    assert codes(check_photo(make_test_photo(dpi=None))) == ["dpi"]


def test_every_problem_of_a_photo_is_reported():
    assert codes(check_photo(make_test_photo(color=(128, 128, 128), size=(300, 400), dpi=96))) == [
        "size",
        "dpi",
        "background",
    ]


@pytest.mark.parametrize(
    "data",
    [b"garbage", b"", make_test_photo()[:4000], make_test_photo(fmt="GIF")],
    ids=["garbage", "empty", "truncated", "gif"],
)
def test_unreadable_files(data):
    (problem,) = check_photo(data)
    assert problem.code == "unreadable" and "无法读取照片文件" in problem.message


def test_a_folder_loads_keyed_by_number(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "2025CS00001.jpg").write_bytes(make_test_photo())
    (tmp_path / "sub" / "2025CS00002.PNG").write_bytes(make_test_photo(fmt="PNG"))
    (tmp_path / "2025CS00001.png").write_bytes(make_test_photo(fmt="PNG"))
    (tmp_path / "名单.xlsx").write_bytes(b"not a photo")
    (tmp_path / ".DS_Store").write_bytes(b"x")
    (tmp_path / "Thumbs.db").write_bytes(b"x")
    loaded = load_photo_set(tmp_path)
    assert sorted(loaded.photos) == ["2025CS00001", "2025CS00002"]
    assert loaded.photos["2025CS00001"] == make_test_photo()
    assert {s.name: s.reason for s in loaded.skipped} == {
        "2025CS00001.png": "编号 2025CS00001 与 2025CS00001.jpg 重复",
        "名单.xlsx": "不是照片文件（只接受 .jpg、.jpeg、.png）",
    }


def test_a_zip_loads_keyed_by_number(tmp_path):
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("照片/2025CS00001.jpg", make_test_photo())
        archive.writestr("照片/2025CS00002.jpeg", make_test_photo(dpi=72))
        archive.writestr("__MACOSX/照片/._2025CS00001.jpg", b"resource fork")
        archive.writestr("照片/.hidden.jpg", b"x")
        archive.writestr("照片/说明.txt", "请核对")
    loaded = load_photo_set(path)
    assert sorted(loaded.photos) == ["2025CS00001", "2025CS00002"]
    assert [s.name for s in loaded.skipped] == ["照片/说明.txt"]
    assert check_many(loaded.photos.items()) == {
        "2025CS00001": [],
        "2025CS00002": [PhotoProblem("dpi", "照片分辨率为 72 dpi，应为 300 dpi")],
    }


def test_a_zip_with_gbk_names_from_chinese_windows(tmp_path):
    # Windows' built-in zip stores names in GBK without the UTF-8 flag. Write ASCII placeholders
    # of the same byte length, then put the GBK bytes in their place (names are not checksummed).
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("QQQQ/2025CS00009.jpg", make_test_photo())
        archive.writestr("QQQQ/WWWW.txt", "x")
    raw = path.read_bytes().replace(b"QQQQ", "照片".encode("gbk")).replace(b"WWWW", "说明".encode("gbk"))
    path.write_bytes(raw)
    loaded = load_photo_set(path)
    assert list(loaded.photos) == ["2025CS00009"]
    assert [s.name for s in loaded.skipped] == ["照片/说明.txt"]


def test_a_corrupt_entry_is_skipped_not_fatal(tmp_path):
    path = tmp_path / "photos.zip"
    good, damaged = make_test_photo(), make_test_photo(seed=1)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("2025CS00001.jpg", good)
        archive.writestr("2025CS00002.jpg", damaged)
    raw = bytearray(path.read_bytes())
    at = raw.find(damaged) + 1000
    raw[at] ^= 0xFF  # one flipped byte: the CRC no longer matches
    path.write_bytes(bytes(raw))
    loaded = load_photo_set(path)
    assert list(loaded.photos) == ["2025CS00001"]
    assert [(s.name, s.reason) for s in loaded.skipped] == [("2025CS00002.jpg", "无法读取该文件（可能已加密或已损坏）")]


def test_something_that_is_not_a_photo_set(tmp_path):
    (tmp_path / "list.csv").write_text("学号\n")
    with pytest.raises(PhotoSetError):
        load_photo_set(tmp_path / "list.csv")
    with pytest.raises(PhotoSetError):
        load_photo_set(tmp_path / "missing")


def test_check_many_over_2000_photos_reports_exactly_the_bad_ones(capsys):
    good = [make_test_photo(color=(67 + i % 5, 142, 219 - i % 7), seed=i) for i in range(40)]
    bad = {
        "size": make_test_photo(size=(300, 400)),
        "dpi": make_test_photo(dpi=72),
        "background": make_test_photo(color=(128, 128, 128)),
        "unreadable": b"\xff\xd8\xff not really a jpeg",
    }
    items, expected = [], {}
    for i in range(2000):
        name = f"2025CS{i:05d}"
        if i % 97 == 13:
            code = list(bad)[i % len(bad)]
            items.append((name, bad[code]))
            expected[name] = [code]
        else:
            items.append((name, good[i % len(good)]))
    rates = {}
    for workers in (2, 1):
        started = time.perf_counter()
        result = check_many(items, workers=workers)
        rates[workers] = len(items) / (time.perf_counter() - started)
        assert len(result) == 2000
        assert {name: codes(problems) for name, problems in result.items() if problems} == expected
    with capsys.disabled():
        print(
            f"\ncheck_many: {rates[2]:.0f} photos/s with 2 workers, {rates[1]:.0f} photos/s with 1 "
            f"(~{len(good[0]) // 1024} KB JPEGs)"
        )
    # the speed goal (≥ 500 photos/s) is checked by `campuscard bench import`, not here
