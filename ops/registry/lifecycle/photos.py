"""Card photo checks (R-CARD-8: blue background, 295×421 pixels, 300 dpi).

A photo that misses the standard is rejected with a reason the operator can act on: each
problem is a :class:`PhotoProblem` with a stable ``code`` (for programs) and a translated
``message`` (for people; msgids in Chinese, English via Django i18n).

Only JPEG and PNG are opened (``Image.open(..., formats=...)``): that is what card printers take,
it skips probing every Pillow plugin, and keeps exotic decoders (EPS → Ghostscript, …) out of
reach of an uploaded file.

Speed: JPEGs are decoded at 1/8 scale (``Image.draft``: the decoder keeps only the DC
coefficients), the background test runs on a few hundred pixels with lookup tables and
``ImageStat`` (no per-pixel Python), and :func:`check_many` spreads large sets over a process
pool. The pure part (:func:`_inspect`) returns codes and numbers only, so worker processes never
touch Django; messages are built in the calling process, in its active language.
"""

from __future__ import annotations

import colorsys
import io
import math
import multiprocessing
import os
import random
import zipfile
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, TypeAlias

from django.conf import settings
from django.utils.translation import gettext as _
from PIL import Image, ImageChops, ImageDraw, ImageStat

# R-CARD-8
REQUIRED_SIZE = (295, 421)  # width × height, pixels
REQUIRED_DPI = 300
DPI_TOLERANCE = 1.5  # PNG stores pixels per metre: 300 dpi comes back as 299.9994

ALLOWED_FORMATS = ("JPEG", "PNG")
# what _inspect finds: a problem's code and its numbers (or a word, or nothing)
Finding: TypeAlias = tuple[str, tuple[Any, ...] | str | None]
PHOTO_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})
MAX_PHOTO_BYTES = 10 * 1024 * 1024  # a 295×421 photo is tens of KB; anything this big is a mistake

# Background test (R-CARD-8 "blue background"), in HSV. Hue in degrees. Typical ID-photo blues:
# (67,142,219) → 210°, S 0.69; (0,191,243) → 193°, S 1.0; (60,120,200) → 214°, S 0.70.
BLUE_HUE = (185.0, 250.0)
BLUE_MIN_SATURATION = 0.25
BLUE_MIN_VALUE = 0.25
BLUE_MIN_SHARE = 0.6  # share of the sampled border that must be blue
# Where a portrait's background is: the top band, and the left/right edges above the shoulders.
TOP_BAND = 0.06  # of the height
SIDE_STRIP = 0.12  # of the width
SIDE_DEPTH = 0.45  # of the height, from the top
SAMPLE_MAX_SIDE = 96  # the border is judged on an image at most this big


@dataclass(frozen=True)
class PhotoProblem:
    code: str  # "unreadable", "size", "dpi", "background"
    message: str


@dataclass(frozen=True)
class SkippedFile:
    name: str  # path inside the folder or the zip, as the operator sees it
    reason: str


@dataclass
class PhotoSet:
    """Photos keyed by student/staff number (the file stem), and the files that were not taken."""

    photos: dict[str, bytes] = field(default_factory=dict)
    skipped: list[SkippedFile] = field(default_factory=list)


class PhotoSetError(ValueError):
    """The path is neither a folder nor a readable .zip."""


# ---------------------------------------------------------------- single photo


def check_photo(data: bytes) -> list[PhotoProblem]:
    """Problems with one photo against R-CARD-8; an empty list means the photo is accepted."""
    return [_describe(code, params) for code, params in _inspect(data)]


def _inspect(data: bytes) -> list[Finding]:
    """The pure check: ``[(code, params), ...]``. Picklable, no Django: runs in worker processes."""
    findings: list[Finding] = []
    try:
        im = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        size = im.size
        if size != REQUIRED_SIZE:
            findings.append(("size", size))
        dpi = im.info.get("dpi")
        if not dpi:
            findings.append(("dpi", None))
        elif any(abs(float(v) - REQUIRED_DPI) > DPI_TOLERANCE for v in dpi[:2]):
            findings.append(("dpi", (round(float(dpi[0])), round(float(dpi[1])))))
        background = _background(im)
    except Image.DecompressionBombError:
        return [("unreadable", "too_large")]
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, Image.UnidentifiedImageError):
        # Pillow reports broken files with any of these (UnidentifiedImageError is an OSError).
        return [("unreadable", None)]
    if background is not None:
        findings.append(("background", background))
    return findings


def _background(im: Image.Image) -> tuple | None:
    """None if the border of the photo is blue, else (colour name key, blue share)."""
    width, height = im.size
    if im.format == "JPEG":
        # DCT scaling: decode at 1/2, 1/4 or 1/8, whichever still gives at least this size.
        im.draft("RGB", (max(1, width // 8), max(1, height // 8)))
    im.load()
    if im.mode != "RGB":
        im = im.convert("RGB")
    if max(im.size) > SAMPLE_MAX_SIDE:
        scale = SAMPLE_MAX_SIDE / max(im.size)
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.BOX)
    region = _border_mask(im.size)
    hue, sat, val = im.convert("HSV").split()
    luts = _hsv_luts()
    blue = ImageChops.multiply(ImageChops.multiply(hue.point(luts[0]), sat.point(luts[1])), val.point(luts[2]))
    share = ImageStat.Stat(blue, region).mean[0] / 255.0
    if share >= BLUE_MIN_SHARE:
        return None
    median = tuple(int(v) for v in ImageStat.Stat(im, region).median)
    return (_colour_name(median), round(share * 100))


@lru_cache(maxsize=1)
def _hsv_luts() -> tuple[list[int], list[int], list[int]]:
    # Pillow's HSV bands are 0–255 for 0–360° / 0–1 / 0–1; each LUT maps a band to 0 or 255.
    lo, hi = (h / 360.0 * 255.0 for h in BLUE_HUE)
    hue = [255 if lo <= i <= hi else 0 for i in range(256)]
    sat = [255 if i >= BLUE_MIN_SATURATION * 255 else 0 for i in range(256)]
    val = [255 if i >= BLUE_MIN_VALUE * 255 else 0 for i in range(256)]
    return hue, sat, val


@lru_cache(maxsize=64)
def _border_mask(size: tuple[int, int]) -> Image.Image:
    width, height = size
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    band = max(1, round(height * TOP_BAND))
    strip = max(1, round(width * SIDE_STRIP))
    depth = max(band, round(height * SIDE_DEPTH))
    draw.rectangle((0, 0, width - 1, band - 1), fill=255)
    draw.rectangle((0, 0, strip - 1, depth - 1), fill=255)
    draw.rectangle((width - strip, 0, width - 1, depth - 1), fill=255)
    return mask


def _colour_name(rgb: tuple[int, ...]) -> str:
    """A key for the colour the operator would call it (see :func:`_describe`)."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255.0 for c in rgb[:3]))
    hue = h * 360.0
    if v < 0.2:
        return "black"
    if s < 0.15:
        return "white" if v > 0.85 else "grey"
    if BLUE_HUE[0] <= hue <= BLUE_HUE[1]:
        return "pale_blue" if s < BLUE_MIN_SATURATION else "dark_blue" if v < BLUE_MIN_VALUE else "blue"
    if hue < 15 or hue >= 345:
        return "red"
    if hue < 45:
        return "orange"
    if hue < 70:
        return "yellow"
    if hue < 170:
        return "green"
    if hue < BLUE_HUE[0]:
        return "cyan"
    if hue < 290:
        return "purple"
    return "pink"


def _colour_label(key: str) -> str:
    return {
        "black": _("黑色"),
        "white": _("白色"),
        "grey": _("灰色"),
        "pale_blue": _("很浅的蓝色（接近白色）"),
        "dark_blue": _("很深的蓝色（接近黑色）"),
        "blue": _("蓝色"),
        "red": _("红色"),
        "orange": _("橙色"),
        "yellow": _("黄色"),
        "green": _("绿色"),
        "cyan": _("青绿色"),
        "purple": _("紫色"),
        "pink": _("粉红色"),
    }.get(key, key)


def _describe(code: str, params) -> PhotoProblem:
    if code == "unreadable":
        if params == "too_large":
            message = _("照片文件像素过多，无法读取；请上传 295×421 像素的证件照")
        else:
            message = _("无法读取照片文件（不是有效的 JPEG 或 PNG 图片），请重新导出照片")
    elif code == "size":
        width, height = params
        message = _("照片尺寸为 %(width)d×%(height)d 像素，应为 %(req_width)d×%(req_height)d 像素（宽×高）") % {
            "width": width,
            "height": height,
            "req_width": REQUIRED_SIZE[0],
            "req_height": REQUIRED_SIZE[1],
        }
        if (width, height) == REQUIRED_SIZE[::-1]:
            message += _("；宽高颠倒，照片可能被横置了")
    elif code == "dpi":
        if params is None:
            message = _("照片未记录分辨率，应为 %(dpi)d dpi；请在图片软件中设置为 %(dpi)d dpi 后重新保存") % {
                "dpi": REQUIRED_DPI
            }
        else:
            x, y = params
            shown = str(x) if x == y else f"{x}×{y}"
            message = _("照片分辨率为 %(shown)s dpi，应为 %(dpi)d dpi") % {"shown": shown, "dpi": REQUIRED_DPI}
    elif code == "background":
        colour, share = params
        if colour == "blue":
            message = _("照片背景不是均匀的蓝色（边缘只有 %(share)d%% 为蓝色），请使用纯蓝底证件照") % {"share": share}
        else:
            message = _("照片背景不是蓝色（检测到的主色接近%(colour)s），请使用蓝底证件照") % {
                "colour": _colour_label(colour)
            }
    else:  # pragma: no cover - every code above is produced by _inspect
        message = code
    return PhotoProblem(code, message)


# ---------------------------------------------------------------- many photos

POOL_THRESHOLD = 200  # below this a process pool costs more than it saves
_CHUNKS_PER_WORKER = 4


def _inspect_chunk(chunk: list[bytes]) -> list[list[Finding]]:
    return [_inspect(data) for data in chunk]


def check_many(items: Iterable[tuple[str, bytes]], workers: int | None = None) -> dict[str, list[PhotoProblem]]:
    """:func:`check_photo` for each ``(name, data)``; returns ``{name: problems}`` (empty = OK).

    Large sets (≥ ``POOL_THRESHOLD``) are spread over ``workers`` processes (default: the CPUs
    this process may use); small sets, or ``workers=1``, run in this process. The pool uses
    ``fork`` where the platform has it (≈10 ms to start; ``spawn``/``forkserver`` re-import
    ``__main__``). The workers only run Pillow code: no Django, no database connection.
    """
    items = list(items)
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = max(1, min(workers, len(items) // 50 or 1))
    if workers == 1 or len(items) < POOL_THRESHOLD:
        found = [_inspect(data) for _name, data in items]
    else:
        size = math.ceil(len(items) / (workers * _CHUNKS_PER_WORKER))
        chunks = [[data for _name, data in items[i : i + size]] for i in range(0, len(items), size)]
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            found = [result for chunk in pool.map(_inspect_chunk, chunks) for result in chunk]
    return {
        name: [_describe(code, params) for code, params in findings]
        for (name, _data), findings in zip(items, found, strict=True)
    }


# ---------------------------------------------------------------- photo sets

_IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini"})


def _ignored(parts: tuple[str, ...]) -> bool:
    """Hidden files, macOS resource forks and Windows thumbnails are left out silently."""
    return any(part.startswith(".") or part == "__MACOSX" for part in parts) or parts[-1].lower() in _IGNORED_NAMES


def load_photo_set(path: Path) -> PhotoSet:
    """Photos from a folder (searched recursively) or a .zip, named by student/staff number
    (``2025CS00001.jpg`` → key ``2025CS00001``), for R-CARD-4/R-CARD-5 imports.

    Files that are not photos (by extension), too big, or whose number was already taken by
    another file are listed in ``skipped`` with the reason; dot-files, ``__MACOSX`` and
    Thumbs.db/desktop.ini are ignored. Raises :class:`PhotoSetError` if ``path`` is neither a
    folder nor a readable zip.
    """
    path = Path(path)
    result = PhotoSet()
    seen: dict[str, str] = {}

    take = _taker(result, seen)

    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            relative = file.relative_to(path)
            take(relative.as_posix(), relative.parts, file.stat().st_size, file.read_bytes)
    elif path.is_file() and zipfile.is_zipfile(path):
        _take_zip(path, path.name, take)
    else:
        raise PhotoSetError(_("%(name)s 不是文件夹，也不是 .zip 压缩包") % {"name": path.name})
    return result


@dataclass(frozen=True)
class ZipLimits:
    """What one photo ZIP may hold (issue 20, item 4: a 1 MB ZIP of 100 × 10 MiB of zeros took
    the web server from 196 MB to 1.2 GB). Settings ``PHOTO_ZIP_MAX_*``."""

    file_bytes: int
    unpacked_bytes: int
    entries: int

    @classmethod
    def from_settings(cls) -> ZipLimits:
        return cls(
            file_bytes=settings.PHOTO_ZIP_MAX_BYTES,
            unpacked_bytes=settings.PHOTO_ZIP_MAX_UNPACKED_BYTES,
            entries=settings.PHOTO_ZIP_MAX_ENTRIES,
        )


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.0f}" if size >= 1024 * 1024 else f"{size / (1024 * 1024):.2f}"


def _take_zip(source: Any, label: str, take, limits: ZipLimits | None = None) -> None:
    """Each photo of the ZIP ``source`` (a path or an open file) through ``take``. Refused before
    anything is unpacked when it has more entries, or declares more unpacked bytes, than
    ``limits`` allow; a declared size cannot be exceeded (Python's reader stops at it and then
    checks the CRC), and each photo is read on its own, at most MAX_PHOTO_BYTES."""
    limits = limits or ZipLimits.from_settings()
    try:
        with zipfile.ZipFile(source) as archive:
            infos = archive.infolist()
            if len(infos) > limits.entries:
                raise PhotoSetError(
                    _("压缩包 %(name)s 有 %(n)d 个文件，超过上限 %(max)d 个；请分批上传")
                    % {"name": label, "n": len(infos), "max": limits.entries}
                )
            unpacked = sum(i.file_size for i in infos)
            if unpacked > limits.unpacked_bytes:
                raise PhotoSetError(
                    _("压缩包 %(name)s 解压后共 %(size)s MB，超过上限 %(max)s MB；请分批上传")
                    % {"name": label, "size": _mb(unpacked), "max": _mb(limits.unpacked_bytes)}
                )
            for info in sorted(infos, key=lambda i: i.filename):
                if info.is_dir():
                    continue
                name = _zip_name(info)
                parts = tuple(p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", "/"))
                if not parts:
                    continue
                take(name, parts, info.file_size, lambda info=info: archive.read(info))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise PhotoSetError(_("无法读取压缩包 %(name)s：%(error)s") % {"name": label, "error": exc}) from exc


def _taker(result: PhotoSet, seen: dict[str, str]):
    """What each file of a folder or a ZIP goes through: photos into ``result``, the rest listed."""

    def take(name: str, parts: tuple[str, ...], size: int, read) -> None:
        if _ignored(parts):
            return
        stem, suffix = _split_name(parts[-1])
        if suffix not in PHOTO_EXTENSIONS:
            result.skipped.append(SkippedFile(name, _("不是照片文件（只接受 .jpg、.jpeg、.png）")))
        elif not stem:
            result.skipped.append(SkippedFile(name, _("文件名中没有学号或工号")))
        elif size > MAX_PHOTO_BYTES:
            result.skipped.append(
                SkippedFile(name, _("文件过大（超过 %(mb)d MB）") % {"mb": MAX_PHOTO_BYTES // (1024 * 1024)})
            )
        elif stem in seen:
            result.skipped.append(
                SkippedFile(name, _("编号 %(number)s 与 %(other)s 重复") % {"number": stem, "other": seen[stem]})
            )
        else:
            try:
                data = read()
            except (RuntimeError, NotImplementedError, zipfile.BadZipFile, OSError, EOFError):
                # encrypted entry, unsupported compression, bad CRC, unreadable file
                result.skipped.append(SkippedFile(name, _("无法读取该文件（可能已加密或已损坏）")))
                return
            seen[stem] = name
            result.photos[stem] = data

    return take


def _split_name(filename: str) -> tuple[str, str]:
    stem, dot, suffix = filename.strip().rpartition(".")
    if not dot:
        return filename.strip(), ""
    return stem.strip(), "." + suffix.lower()


def _zip_name(info: zipfile.ZipInfo) -> str:
    """Zips made on Chinese Windows store names in GBK without the UTF-8 flag; Python reads them
    as CP437. Decode them back (ASCII names are the same either way)."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gb18030")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


# ---------------------------------------------------------------- test photos


def make_test_photo(
    color: tuple[int, int, int] = (67, 142, 219),
    size: tuple[int, int] = REQUIRED_SIZE,
    dpi: int | None = REQUIRED_DPI,
    fmt: str = "JPEG",
    *,
    noise: int = 8,
    seed: int = 0,
) -> bytes:
    """A synthetic ID photo: ``color`` background, a darker head-and-shoulders in the middle,
    and a little sensor-like noise (``noise`` = ± amplitude; 8 gives JPEGs of ~30 KB like real
    photos). ``dpi=None`` stores no resolution. Deterministic for a given ``seed``."""
    width, height = size
    image = Image.new("RGB", size, tuple(color))
    draw = ImageDraw.Draw(image)
    draw.ellipse((0.08 * width, 0.72 * height, 0.92 * width, 1.35 * height), fill=(35, 35, 45))  # shoulders
    draw.ellipse((0.30 * width, 0.18 * height, 0.70 * width, 0.62 * height), fill=(150, 110, 90))  # head
    if noise:
        rng = random.Random(seed)
        grain = Image.frombytes("L", size, rng.randbytes(width * height))
        grain = grain.point([128 + round((i - 127.5) * noise / 127.5) for i in range(256)]).convert("RGB")
        image = ImageChops.add(image, grain, 1.0, -128)
    out = io.BytesIO()
    options: dict = {"quality": 90} if fmt.upper() in ("JPEG", "JPG") else {}
    if dpi is not None:
        options["dpi"] = (dpi, dpi)
    image.save(out, "JPEG" if fmt.upper() == "JPG" else fmt, **options)
    return out.getvalue()


def load_photo_set_from_bytes(data: bytes) -> PhotoSet:
    """A zip of photos in memory: same rules as :func:`load_photo_set_from_upload`."""
    return _photo_set_from_zip(io.BytesIO(data), len(data), "photos.zip")


def load_photo_set_from_upload(upload: Any) -> PhotoSet:
    """An uploaded zip of photos (the web import and the API): refused by its size before it
    is opened, then read from where Django keeps it (its temporary file, for a large one) —
    never copied whole into memory (issue 20, item 4)."""
    path = getattr(upload, "temporary_file_path", None)
    source = path() if path else upload.file
    return _photo_set_from_zip(source, upload.size, upload.name or "photos.zip")


def _photo_set_from_zip(source: Any, size: int, label: str) -> PhotoSet:
    limits = ZipLimits.from_settings()
    if size > limits.file_bytes:
        raise PhotoSetError(
            _("照片包 %(name)s 过大（%(size)s MB，上限 %(max)s MB）；请分批上传")
            % {"name": label, "size": _mb(size), "max": _mb(limits.file_bytes)}
        )
    result = PhotoSet()
    seen: dict[str, str] = {}
    _take_zip(source, label, _taker(result, seen), limits)
    return result
