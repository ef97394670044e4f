"""docs/rules.md stays true (issue 13, acceptance 3): one row per R-* id, every id the code cites
has a row, and every function and test a row names really exists."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "rules.md"
CODE_DIRS = ("ops", "readers", "streams", "dashboard")
# Only present on the development machine (CI clones the repository alone).
REQUIREMENTS = ROOT.parent / "shared" / "REQUIREMENTS.md"

RULE_ID = re.compile(r"\bR-(?:ROLE|CARD|FEE|USE|END|DEV|SEC|OPS)-\d+\b")
DOTTED = re.compile(r"^`([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+)`$")
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")
NOT_ENFORCED = "not enforced yet"
NO_TEST = "no test yet"


@dataclass
class Row:
    line: int
    rule_id: str
    function: str
    tests: str


def rows() -> list[Row]:
    found = []
    for number, line in enumerate(DOC.read_text(encoding="utf-8").splitlines(), start=1):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and RULE_ID.fullmatch(cells[0]):
            assert len(cells) == 5, f"docs/rules.md:{number}: expected 5 columns, got {len(cells)}: {line}"
            found.append(Row(number, cells[0], cells[2], cells[3]))
    return found


def cited_in_code() -> dict[str, str]:
    """Every R-* id cited in the code, with one place that cites it."""
    cited: dict[str, str] = {}
    for top in CODE_DIRS:
        for path in sorted((ROOT / top).rglob("*.py")):
            for rule_id in RULE_ID.findall(path.read_text(encoding="utf-8")):
                cited.setdefault(rule_id, str(path.relative_to(ROOT)))
    return cited


def resolve(dotted: str) -> Any:
    """Import the longest module prefix of ``dotted`` and getattr the rest."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ModuleNotFoundError(dotted)


def test_every_rule_has_exactly_one_row():
    ids = [row.rule_id for row in rows()]
    assert ids, "docs/rules.md has no table rows"
    twice = sorted({i for i in ids if ids.count(i) > 1})
    assert not twice, f"docs/rules.md has more than one row for {twice}"
    missing = {i: where for i, where in cited_in_code().items() if i not in ids}
    assert not missing, f"ids cited in the code but without a row in docs/rules.md: {missing}"
    if REQUIREMENTS.exists():
        required = set(RULE_ID.findall(REQUIREMENTS.read_text(encoding="utf-8")))
        assert set(ids) == required, (
            f"docs/rules.md vs {REQUIREMENTS}: missing {sorted(required - set(ids))}, "
            f"unknown {sorted(set(ids) - required)}"
        )


def test_every_named_function_exists():
    problems = []
    for row in rows():
        if row.function == NOT_ENFORCED:
            continue
        match = DOTTED.match(row.function)
        if match is None:
            problems.append(f"{row.rule_id}: enforcing function must be one `dotted.path` or '{NOT_ENFORCED}'")
            continue
        try:
            target = resolve(match.group(1))
        except (ImportError, AttributeError) as exc:
            problems.append(f"{row.rule_id}: {match.group(1)} does not exist ({exc})")
            continue
        if not callable(target):
            problems.append(f"{row.rule_id}: {match.group(1)} is not a function")
    assert not problems, "docs/rules.md, line by line:\n" + "\n".join(problems)


def test_every_named_test_exists():
    problems = []
    for row in rows():
        refs = TEST_REF.findall(row.tests)
        if not refs:
            if row.tests != NO_TEST:
                problems.append(f"{row.rule_id}: name tests as `tests/x.py::test_name` or write '{NO_TEST}'")
            continue
        for path, name in refs:
            file = ROOT / path
            if not file.is_file():
                problems.append(f"{row.rule_id}: {path} does not exist")
            elif not re.search(rf"^\s*(async\s+)?def {name}\(", file.read_text(encoding="utf-8"), re.MULTILINE):
                problems.append(f"{row.rule_id}: {path} has no test {name}")
    assert not problems, "docs/rules.md, line by line:\n" + "\n".join(problems)
