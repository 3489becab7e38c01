"""`mailconf lint` and `mailconf check-relay` on the command line: exit codes, output formats, located errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from mailconf.cli import app
from mailconf.lint.rules import all_rules

CORPUS = Path(__file__).parent / "lint_corpus"
OPEN_POSTFIX = CORPUS / "postfix/open/MC102-permit-first"
CLOSED_POSTFIX = CORPUS / "postfix/closed/debian-defaults"
EXAMPLE = Path(__file__).parent.parent / "examples/site.yaml"
# The parts of the SARIF 2.1.0 schema (OASIS) that code-scanning uploads depend on, written from the spec.
SARIF_SCHEMA = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "version": {"const": "2.1.0"},
        "$schema": {"type": "string", "format": "uri"},
        "runs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["tool"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["id"],
                                            "properties": {
                                                "id": {"type": "string"},
                                                "shortDescription": {"$ref": "#/$defs/message"},
                                                "fullDescription": {"$ref": "#/$defs/message"},
                                                "defaultConfiguration": {
                                                    "type": "object",
                                                    "properties": {"level": {"$ref": "#/$defs/level"}},
                                                },
                                            },
                                        },
                                    },
                                },
                            }
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["message"],
                            "properties": {
                                "ruleId": {"type": "string"},
                                "ruleIndex": {"type": "integer", "minimum": -1},
                                "level": {"$ref": "#/$defs/level"},
                                "message": {"$ref": "#/$defs/message"},
                                "locations": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "physicalLocation": {
                                                "type": "object",
                                                "properties": {
                                                    "artifactLocation": {
                                                        "type": "object",
                                                        "properties": {"uri": {"type": "string"}},
                                                    },
                                                    "region": {
                                                        "type": "object",
                                                        "properties": {"startLine": {"type": "integer", "minimum": 1}},
                                                    },
                                                },
                                            }
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    "$defs": {
        "level": {"enum": ["none", "note", "warning", "error"]},
        "message": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
    },
}


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_lint_exits_1_on_an_open_relay_and_names_the_rule_at_file_and_line() -> None:
    result = run("lint", str(OPEN_POSTFIX))
    assert result.exit_code == 1
    assert f"{OPEN_POSTFIX}/main.cf:2: error: [MC102]" in result.stdout
    assert "hint:" in result.stdout


def test_lint_exits_0_on_a_closed_config() -> None:
    result = run("lint", str(CLOSED_POSTFIX))
    assert result.exit_code == 0 and "no findings" in result.stdout


def test_fail_on_decides_which_severity_fails(tmp_path: Path) -> None:
    write(tmp_path, {"main.cf": "compatibility_level = 3.6\nmynetworks = 127.0.0.0/8 10.0.0.0/8\n"})
    assert run("lint", str(tmp_path)).exit_code == 0  # a warning only
    assert run("lint", str(tmp_path), "--fail-on", "warning").exit_code == 1
    assert run("lint", str(tmp_path), "--fail-on", "info").exit_code == 1


@pytest.mark.parametrize(
    ("files", "where"),
    [
        ({"main.cf": "compatibility_level = 3.6\nthis is not a parameter\n"}, "main.cf:2"),
        ({"dovecot.conf": "protocols = imap\nservice imap {\n"}, "dovecot.conf:2"),
        ({"exim4.conf": "primary_hostname = a.example\n.ifdef X\n"}, "exim4.conf:2"),
        ({"sendmail.mc": "dnl\nFEATURE(`access_db'\n"}, "sendmail.mc:2"),
        ({"main.cf": "mynetworks = \xff\n"}, "main.cf:1"),  # not UTF-8
    ],
)
def test_unparseable_input_exits_2_with_file_and_line(files: dict[str, str], where: str, tmp_path: Path) -> None:
    for name, text in files.items():
        (tmp_path / name).write_bytes(text.encode("latin-1"))
    result = run("lint", str(tmp_path))
    assert result.exit_code == 2
    assert f"{tmp_path}/{where}: error:" in result.stderr
    assert "Traceback" not in result.output


def test_missing_path_and_a_directory_without_configs_exit_2(tmp_path: Path) -> None:
    assert run("lint", str(tmp_path / "nope")).exit_code == 2
    result = run("lint", str(tmp_path))
    assert result.exit_code == 2 and "no Postfix, Exim, Sendmail, qmail or Dovecot config found" in result.stderr


def test_mta_forces_the_program_of_a_file_lint_cannot_recognise(tmp_path: Path) -> None:
    write(tmp_path, {"relay.conf": "domainlist relay_to_domains = *\n"})
    assert run("lint", str(tmp_path / "relay.conf")).exit_code == 2
    result = run("lint", str(tmp_path / "relay.conf"), "--mta", "exim")
    assert result.exit_code == 1 and "[MC203]" in result.stdout


def test_bad_choices_are_usage_errors() -> None:
    assert run("lint", str(CLOSED_POSTFIX), "--format", "xml").exit_code == 2
    assert run("lint", str(CLOSED_POSTFIX), "--fail-on", "fatal").exit_code == 2
    assert run("lint", str(CLOSED_POSTFIX), "--mta", "smail").exit_code == 2


def test_json_lists_every_finding_with_rule_file_and_line() -> None:
    result = run("lint", str(CORPUS / "postfix/open"), "--format", "json")
    rows = json.loads(result.stdout)
    assert result.exit_code == 1
    assert {r["rule"] for r in rows} >= {"MC101", "MC102", "MC104", "MC106", "MC110"}
    assert all(r["line"] >= 1 and Path(r["file"]).exists() for r in rows if r["severity"] == "error")


def test_sarif_output_validates_and_matches_the_findings() -> None:
    sarif = json.loads(run("lint", str(CORPUS), "--format", "sarif").stdout)
    rows = json.loads(run("lint", str(CORPUS), "--format", "json").stdout)
    jsonschema.validate(sarif, SARIF_SCHEMA)
    run_ = sarif["runs"][0]
    assert [r["id"] for r in run_["tool"]["driver"]["rules"]] == [r.id for r in all_rules()]
    assert len(run_["results"]) == len(rows) > 20
    for result in run_["results"]:
        assert run_["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]


def test_github_format_prints_workflow_commands_for_each_finding() -> None:
    result = run("lint", str(OPEN_POSTFIX), "--format", "github")
    lines = result.stdout.splitlines()
    assert lines and result.exit_code == 1
    for line in lines:
        assert re.fullmatch(r"::(error|warning|notice) file=[^,]+,line=\d+,title=MC\d{3}::.+", line), line
    assert f"::error file={OPEN_POSTFIX}/main.cf,line=2,title=MC102::" in result.stdout


def test_tcp_rules_option_names_the_qmail_rules_file(tmp_path: Path) -> None:
    home = write(tmp_path / "qmail", {"control/me": "mail.example.org\n", "control/rcpthosts": "example.org\n"})
    rules = write(tmp_path, {"rules": ':allow,RELAYCLIENT=""\n'}) / "rules"
    assert run("lint", str(home)).exit_code == 0
    result = run("lint", str(home), "--tcp-rules", str(rules))
    assert result.exit_code == 1 and f"{rules}:1: error: [MC403]" in result.stdout


def test_a_built_binary_cdb_in_qmail_control_is_not_read_as_text(tmp_path: Path) -> None:
    files = {
        "control/me": "mail.example.org\n",
        "control/rcpthosts": "example.org\n",
        "control/morercpthosts": "x.net\n",
    }
    home = write(tmp_path, files)
    (home / "control/morercpthosts.cdb").write_bytes(b"\x00\x08\xff\xfe binary cdb")  # as qmail-newmrh builds it
    result = run("lint", str(home))
    assert result.exit_code == 0, result.output
    assert "MC406" not in result.stdout  # and its presence still counts as built


def test_check_relay_reads_a_native_config_dir() -> None:
    open_exim = CORPUS / "exim/open/MC202-split-conf-d"
    result = run("check-relay", "--mta", "exim", "--config-dir", str(open_exim))
    assert result.exit_code == 1 and "[MC202]" in result.stdout
    assert run("check-relay", "--mta", "postfix", "--config-dir", str(CLOSED_POSTFIX)).exit_code == 0


def test_check_relay_runs_only_the_relay_rules(tmp_path: Path) -> None:
    write(tmp_path, {"main.cf": "compatibility_level = 3.6\nsmtpd_sasl_auth_enable = yes\n"})  # MC109: no TLS
    assert run("lint", str(tmp_path)).exit_code == 1
    result = run("check-relay", "--config-dir", str(tmp_path))
    assert result.exit_code == 0 and "no findings" in result.stdout


def test_check_relay_renders_the_site_for_every_mta_in_memory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("check-relay", "-c", str(EXAMPLE), "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_check_relay_checks_the_other_mtas_when_one_cannot_express_the_site(tmp_path: Path) -> None:
    from corpus import write_site

    site = write_site("ports-moved-and-off", tmp_path)  # an IPv6 trusted network: qmail refuses it
    result = run("check-relay", "-c", str(site), "--format", "json")
    assert result.exit_code == 0, result.output
    assert "qmail: not checked: qmail cannot express the IPv6 trusted network" in result.stderr
    checked = {f["file"].split(" from ")[0].lstrip("<") for f in json.loads(result.stdout)}
    assert checked == {"postfix", "exim", "sendmail"}  # each warns about the wide private fd12:3456::/32
    assert run("check-relay", "-c", str(site), "--mta", "qmail").exit_code == 2  # asked for qmail: an error


def test_check_relay_with_a_bad_site_exits_2_located(tmp_path: Path) -> None:
    site = write(tmp_path, {"site.yaml": "host:\n  name: mail.example.org\ndomains: []\n"}) / "site.yaml"
    result = run("check-relay", "-c", str(site))
    assert result.exit_code == 2 and f"{site}:3" in result.stderr


def test_check_relay_hands_probes_to_the_prober(monkeypatch) -> None:
    calls = []

    def fake_run_cli(probes, *, xclient, fmt, timeout, parts):
        calls.append((list(probes), xclient, fmt, timeout, parts))
        return 1

    monkeypatch.setattr("mailconf.probe.run_cli", fake_run_cli)
    result = run("check-relay", "--probe", "127.0.0.1:2525", "--probe", "[::1]:25", "--xclient", "203.0.113.5")
    assert result.exit_code == 1
    assert calls == [(["127.0.0.1:2525", "[::1]:25"], "203.0.113.5", "text", 10.0, None)]


def test_check_relay_needs_something_to_check() -> None:
    assert run("check-relay").exit_code == 2


class LeakyPostfix:
    """A Postfix backend with a bug: it renders an open relay (check-relay -c must catch it)."""

    name = "postfix"
    role = "mta"

    def render(self, loaded, target, mta=None):
        from mailconf.mta.postfix import Postfix

        rendering = Postfix().render(loaded, target)
        main_cf = next(f for f in rendering.files if f.path == "/etc/postfix/main.cf")
        main_cf.body = re.sub(r"(?m)^smtpd_relay_restrictions = ", "smtpd_relay_restrictions = permit, ", main_cf.body)
        return rendering


def test_check_relay_catches_a_backend_that_renders_an_open_relay(monkeypatch) -> None:
    from mailconf import backends

    monkeypatch.setitem(backends.MTAS, "postfix", f"{__name__}:LeakyPostfix")
    result = run("check-relay", "-c", str(EXAMPLE))
    assert result.exit_code == 1
    assert re.search(
        rf"<postfix from {re.escape(str(EXAMPLE))}>/etc/postfix/main\.cf:\d+: error: \[MC102\]", result.stdout
    )
    assert "<exim from" not in result.stdout  # the other backends stay closed
