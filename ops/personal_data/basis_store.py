"""The written basis of a personal-data request (R-SEC-2): a PDF or a scan (JPEG/PNG), checked
by its content, at most ``MAX_BYTES``, stored content-addressed under the var directory
(``var/personal_data_basis/<aa>/<sha256>.<ext>``) and never served publicly — only through
the request's own page, to the people who handle the request, audited."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.utils.translation import gettext as _

from ops.paths import var_dir

MAX_BYTES = 10 * 1024 * 1024
# content type → (magic prefix, file name endings accepted)
TYPES = {
    "application/pdf": (b"%PDF-", (".pdf",), "pdf"),
    "image/jpeg": (b"\xff\xd8\xff", (".jpg", ".jpeg"), "jpg"),
    "image/png": (b"\x89PNG\r\n\x1a\n", (".png",), "png"),
}
_SHA = re.compile(r"^[0-9a-f]{64}$")


class BasisFileError(ValueError):
    """The file cannot serve as a written basis; the message says why, in the UI language."""


@dataclass(frozen=True)
class StoredBasis:
    name: str
    sha256: str
    content_type: str
    size: int


def basis_dir() -> Path:
    path = var_dir() / "personal_data_basis"
    path.mkdir(parents=True, exist_ok=True)
    return path


def check(name: str, data: bytes) -> str:
    """The content type of an acceptable basis file, or BasisFileError."""
    if not data:
        raise BasisFileError(_("请上传书面依据（PDF、JPG 或 PNG 文件）"))
    if len(data) > MAX_BYTES:
        raise BasisFileError(_("书面依据文件不能超过 %(mb)d MB") % {"mb": MAX_BYTES // (1024 * 1024)})
    lower = (name or "").lower()
    for content_type, (magic, endings, _ext) in TYPES.items():
        if data.startswith(magic) and lower.endswith(endings):
            return content_type
    raise BasisFileError(_("书面依据只接受 PDF、JPG 或 PNG 文件（按文件内容检查）"))


def save(name: str, data: bytes) -> StoredBasis:
    """Check and store the file (atomically; the same content is stored once)."""
    content_type = check(name, data)
    sha = hashlib.sha256(data).hexdigest()
    ext = TYPES[content_type][2]
    folder = basis_dir() / sha[:2]
    target = folder / f"{sha}.{ext}"
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    return StoredBasis(name=Path(name).name[:200], sha256=sha, content_type=content_type, size=len(data))


def path_for(sha256: str, content_type: str) -> Path | None:
    if not _SHA.match(sha256 or "") or content_type not in TYPES:
        return None
    path = basis_dir() / sha256[:2] / f"{sha256}.{TYPES[content_type][2]}"
    return path if path.is_file() else None
