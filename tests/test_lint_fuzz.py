"""Property-based: whatever the bytes in a mail config, `mailconf lint` ends in exit 0, 1 or 2, and exit 2 comes with
a message located at file[:line]; never a traceback, never a hang. Seeds: the corpus and the rules' examples."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mailconf.cli import app
from mailconf.lint.rules import all_rules

CORPUS = Path(__file__).parent / "lint_corpus"
PROGRAMS = ["postfix", "exim", "sendmail", "qmail", "dovecot"]
DOVECOT_SEED = {
    "dovecot.conf": "protocols = imap pop3\n!include conf.d/*.conf\n!include_try local.conf\n",
    "conf.d/10-auth.conf": "disable_plaintext_auth = yes\nauth_mechanisms = plain\n!include auth-system.conf.ext\n",
    "conf.d/auth-system.conf.ext": "passdb {\n  driver = pam\n}\nuserdb {\n  driver = passwd\n}\n",
    "conf.d/10-master.conf": "service imap-login {\n  inet_listener imaps {\n    port = 993\n    ssl = yes\n  }\n}\n",
}
# Fragments that matter to the readers' grammars, to splice into real files.
SPECIALS = [
    "{", "}", "(", ")", "`", "'", "\\", "#", "dnl", ".ifdef X", ".ifndef X", ".else", ".endif", ".include x",
    "!include nowhere", "!include_try *", "begin acl", "acl_check_rcpt:", "accept", "require", "  -o a=b", "-o",
    "  continued", "=", ":", "::", "<;", "FEATURE(", "include(`/etc/mail/x')", "X = X X", "$x", "${x}", "RELAY",
    "Connect:", ":allow,RELAYCLIENT=\"\"", "\t", "\x00", "\ufeff", "é",
]  # fmt: skip


def seeds(program: str) -> list[dict[str, str]]:
    found = [
        {str(f.relative_to(case)): f.read_text() for f in case.rglob("*") if f.is_file()}
        for case in sorted(CORPUS.glob(f"{program}/*/*"))
    ]
    found += [examples for rule in all_rules() if rule.program == program for examples in (rule.passing, rule.failing)]
    return [*found, DOVECOT_SEED] if program == "dovecot" else found


def mutate(text: str, data: st.DataObject) -> bytes:
    kind = data.draw(st.sampled_from(["bytes", "truncate", "lines"]))
    if kind == "bytes":
        return data.draw(st.binary(max_size=400))
    if kind == "truncate":
        return text.encode()[: data.draw(st.integers(0, len(text.encode())))]
    lines = text.splitlines()
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(lines)))
        op = data.draw(st.sampled_from(["insert", "delete", "duplicate", "splice"]))
        if op == "insert":
            lines.insert(at, data.draw(st.sampled_from(SPECIALS)) + data.draw(st.text(max_size=12)))
        elif lines and op == "delete":
            del lines[min(at, len(lines) - 1)]
        elif lines and op == "duplicate":
            lines.insert(at, lines[min(at, len(lines) - 1)])
        elif lines:
            line = lines[min(at, len(lines) - 1)]
            cut = data.draw(st.integers(0, len(line)))
            lines[min(at, len(lines) - 1)] = line[:cut] + data.draw(st.sampled_from(SPECIALS)) + line[cut:]
    return "\n".join(lines).encode("utf-8", "surrogatepass")


LOCATED = re.compile(r"^(\S.*?)(:\d+)?: error: ", re.MULTILINE)


@pytest.mark.parametrize("program", PROGRAMS)
@settings(max_examples=120, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_lint_never_crashes_or_hangs_on_mutated_configs(program: str, data: st.DataObject) -> None:
    files = data.draw(st.sampled_from(seeds(program)))
    target = data.draw(st.sampled_from(sorted(files)))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(mutate(text, data) if name == target else text.encode())
        result = CliRunner().invoke(app, ["lint", tmp, "--mta", program])
    event(f"exit {result.exit_code}")
    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 2:
        assert LOCATED.search(result.stderr), result.stderr
        assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("\\\n\n", 0),
        ("a = b \\\n", 0),
        (".ifdef\n.endif\n", 0),
        ("X = X X X X\nY = X\n", 2),
        (".endif\n", 2),
        ("EMPTY =\nEMPTY\n", 0),  # a line that a macro expands to nothing
    ],
)
def test_exim_reader_edge_cases_end_cleanly(text: str, code: int, tmp_path: Path) -> None:
    (tmp_path / "exim4.conf").write_text(text)
    result = CliRunner().invoke(app, ["lint", str(tmp_path)])
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if code == 2:
        assert f"{tmp_path}/exim4.conf:" in result.stderr
