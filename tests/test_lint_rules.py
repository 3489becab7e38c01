"""Every lint rule flags the FAILING example in its docstring and passes the PASSING one."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailconf.lint.engine import lint
from mailconf.lint.rules import all_rules, markdown_table

RULES = all_rules()
README = Path(__file__).parent.parent / "README.md"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def findings_of(rule_id: str, root: Path, program: str) -> list:
    mta = None if program == "site" else program
    return [f for f in lint([str(root)], mta=mta) if f.rule == rule_id]


def test_every_rule_has_both_examples_an_id_a_hint_and_a_known_severity() -> None:
    assert len(RULES) >= 30
    assert len({r.id for r in RULES}) == len(RULES)
    for rule in RULES:
        assert rule.passing and rule.failing, rule.id
        assert rule.severity in ("error", "warning", "info") and rule.hint and rule.message, rule.id


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_flags_its_failing_example_at_a_line_of_it(rule, tmp_path: Path) -> None:
    root = write(tmp_path / "failing", rule.failing)
    found = findings_of(rule.id, root, rule.program)
    assert found, f"{rule.id} missed its failing example"
    for finding in found:
        assert finding.severity == rule.severity
        assert Path(finding.location.file).is_relative_to(root)


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_passes_its_passing_example(rule, tmp_path: Path) -> None:
    root = write(tmp_path / "passing", rule.passing)
    assert findings_of(rule.id, root, rule.program) == []


def test_readme_holds_exactly_the_generated_rules_table() -> None:
    text = README.read_text()
    start, end = "<!-- rules:start -->\n", "<!-- rules:end -->"
    assert text.count(start) == 1 and text.count(end) == 1
    assert text[text.index(start) + len(start) : text.index(end)] == markdown_table()
    assert all(f"| {rule.id} |" in markdown_table() for rule in RULES)
