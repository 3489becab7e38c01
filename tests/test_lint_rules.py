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


def test_localhost_in_mydestination_is_no_wide_relay_domain_below_compatibility_level_2(tmp_path: Path) -> None:
    # relay_domains defaults to $mydestination there; localhost (RFC 6761) is local, not a top-level domain.
    main = "mydestination = $myhostname, localhost.$mydomain, localhost\nmynetworks = 127.0.0.0/8\n"
    assert findings_of("MC106", write(tmp_path / "local", {"main.cf": main}), "postfix") == []
    wide = write(tmp_path / "wide", {"main.cf": main.replace("localhost\n", "localhost, com\n")})
    assert [f.message.rsplit(": ", 1)[1] for f in findings_of("MC106", wide, "postfix")] == [
        "com matches every domain below it"
    ]


def test_a_master_cf_override_of_mynetworks_is_judged_too(tmp_path: Path) -> None:
    files = {
        "main.cf": "compatibility_level = 3.6\nmynetworks = 127.0.0.0/8\n",
        "master.cf": "smtp      inet  n       -       y       -       -       smtpd\n  -o mynetworks=0.0.0.0/0\n",
    }
    root = write(tmp_path, files)
    assert [(f.location.file, f.location.line) for f in findings_of("MC104", root, "postfix")] == [
        (str(root / "master.cf"), 2)
    ]


def test_any_verified_client_certificate_before_the_relay_guard_may_relay(tmp_path: Path) -> None:
    relay = "smtpd_relay_restrictions = permit_mynetworks, permit_tls_all_clientcerts, reject_unauth_destination\n"
    root = write(tmp_path, {"main.cf": f"compatibility_level = 3.6\n{relay}"})
    assert [f.message.rsplit(": ", 1)[1] for f in findings_of("MC103", root, "postfix")] == [
        "`permit_tls_all_clientcerts` in smtpd_relay_restrictions"
    ]
