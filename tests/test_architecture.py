"""The house's rules, held by tools rather than by convention (docs/architecture.md): every room
is named in the import contract and in the architecture page, the contract holds, no import
between the project's packages hides inside a function, every type-ignore comment names its error and says why."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ops", "dashboard", "streams", "readers", "bench")
NOT_ROOMS = {"ops.__init__", "ops.locale", "ops.templates"}

# Imports inside a function between the project's packages, each with the reason given in
# docs/architecture.md ("Imports inside functions"): file → module imported.
LAZY_ALLOWED = {
    ("ops/accounts/apps.py", "ops.accounts"),  # AppConfig.ready: signal hooks import models
    ("ops/backup/apps.py", "ops.backup.scheduled"),  # AppConfig.ready: the backup job joins the scheduler
    ("ops/backup/apps.py", "ops.pipeline.scheduled"),
    ("ops/reports/apps.py", "ops.reports.mailing"),  # AppConfig.ready: the report mailing joins the scheduler
    ("ops/reports/apps.py", "ops.pipeline.scheduled"),
    ("ops/registry/apps.py", "ops.registry"),  # AppConfig.ready: the event_refs delete hooks (issue 14)
    ("ops/registry/lifecycle/management/commands/enroll.py", "readers.sources.pcsc"),  # pyscard is optional
}


def _contract() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def _layer_modules() -> list[str]:
    layers = next(c for c in _contract()["contracts"] if c["type"] == "layers")["layers"]
    return [name.strip() for layer in layers for name in re.split(r"[|:]", layer)]


def _rooms() -> set[str]:
    """The top-level packages, and every package and module directly inside ops/."""
    rooms = {p for p in PACKAGES if p != "ops"}
    for child in (ROOT / "ops").iterdir():
        if child.name.startswith((".", "_")) and child.name != "__init__.py":
            continue
        if child.is_dir() and (child / "__init__.py").exists():
            rooms.add(f"ops.{child.name}")
        elif child.suffix == ".py":
            rooms.add(f"ops.{child.stem}")
    return rooms - NOT_ROOMS


def _sources() -> list[Path]:
    return [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "migrations" not in p.parts]


def test_every_room_is_a_layer_of_the_import_contract():
    named = _layer_modules()
    assert sorted(_rooms() - set(named)) == [], "rooms missing from [tool.importlinter] layers"
    assert sorted(set(named) - _rooms()) == [], "layers naming no room"
    assert len(named) == len(set(named)), "a room named twice"


def test_the_architecture_page_names_every_room():
    page = (ROOT / "docs" / "architecture.md").read_text()
    missing = [room for room in _rooms() if f"`{room.replace('.', '/')}" not in page]
    assert missing == [], f"docs/architecture.md does not show {sorted(missing)}"


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def _own(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in PACKAGES


def test_no_import_between_the_project_packages_hides_inside_a_function():
    found = set()
    for path in _sources():
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and _own(node.module):
                    found.add((path.relative_to(ROOT).as_posix(), node.module))
                elif isinstance(node, ast.Import):
                    found |= {(path.relative_to(ROOT).as_posix(), a.name) for a in node.names if _own(a.name)}
    assert sorted(found - LAZY_ALLOWED) == [], "move these imports to the top of their module"
    page = (ROOT / "docs" / "architecture.md").read_text()
    assert all(f"`{file}`" in page for file, _ in LAZY_ALLOWED), "document each allowed lazy import"


IGNORE = re.compile(r"#\s*type:\s*ignore(?P<codes>\[[^\]]+\])?(?P<rest>.*)$")


def test_every_type_ignore_names_its_error_and_says_why():
    bad = []
    for path in [*_sources(), *(ROOT / "tests").rglob("*.py")]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            match = IGNORE.search(line)
            if match and not (match["codes"] and re.match(r"\s*#\s*\S", match["rest"])):
                bad.append(f"{path.relative_to(ROOT)}:{n}")
    assert bad == [], "each `# type: ignore[code]  # reason`"


def test_the_checks_run_in_ci():
    ci = (ROOT / ".ci" / "run").read_text()
    for check in ("ruff check", "ruff format --check", "mypy", "lint-imports"):
        assert check in ci, f".ci/run does not run {check}"
