"""Property-based: whatever the YAML, `mailconf render` ends in exit 0 with a full tree, or exit 2 with a
message located at file:line[:col] and nothing written; never a traceback, never a partial tree."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mailconf.cli import app

EXAMPLES = Path(__file__).parent.parent / "examples"
EXAMPLE_TEXTS = [p.read_text() for p in sorted(EXAMPLES.glob("*.yaml"))]
KEYS = [
    "host",
    "name",
    "domains",
    "users",
    "aliases",
    "type",
    "local",
    "virtual",
    "address",
    "password_hash",
    "trusted_networks",
    "relay_domains",
    "smarthost",
    "port",
    "ports",
    "smtp",
    "listen",
    "mailbox",
    "format",
    "tls",
    "enabled",
    "cert",
    "key",
    "pop_imap",
    "protocols",
    "catch_all",
    "postmaster",
    "message_size_limit",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 70000),
    st.sampled_from(KEYS),
    st.sampled_from(["mail.example.org", "example.org", "0.0.0.0/0", "10.0.0.0/8", "joe", "a@b.example", "50M"]),
    st.text(max_size=20),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.sampled_from(KEYS), children, max_size=5)
    ),
    max_leaves=25,
)
LOCATED = re.compile(r"^\S+:\d+(:\d+)?: error: ", re.MULTILINE)
runner = CliRunner()


def check_render(text: str) -> None:
    with tempfile.TemporaryDirectory() as work:
        site = Path(work) / "site.yaml"
        site.write_text(text, encoding="utf-8", errors="surrogatepass")
        out = Path(work) / "out"
        result = runner.invoke(app, ["render", "-c", str(site), "-o", str(out)])
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.exit_code in (0, 2), result.output
        if result.exit_code == 0:
            assert (out / "MANIFEST.json").is_file() and (out / "etc/postfix/main.cf").is_file()
        else:
            assert LOCATED.search(result.output), result.output
            assert not out.exists(), "a failed render must not leave files behind"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS)
def test_random_yaml_documents_give_exit_0_or_a_located_exit_2(document: object) -> None:
    check_render(yaml.safe_dump(document, allow_unicode=True))


@st.composite
def mutated_examples(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(EXAMPLE_TEXTS))
    for _ in range(draw(st.integers(1, 3))):
        lines = text.split("\n")
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["delete", "duplicate", "replace-char", "insert-text", "truncate"]))
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "replace-char" and lines[i]:
            j = draw(st.integers(0, len(lines[i]) - 1))
            char = draw(st.sampled_from(["\n", "\t", "\x00", ":", "-", " ", "#", "[", "'", '"', "\\", "é", "0"]))
            lines[i] = lines[i][:j] + char + lines[i][j + 1 :]
        elif kind == "insert-text":
            lines[i] += draw(st.sampled_from([" 0.0.0.0/0", "\\nrelay_domains = *", " x", ": y", "  - z"]))
        else:
            lines = lines[: i + 1]
        text = "\n".join(lines)
    return text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_examples())
def test_mutated_examples_give_exit_0_or_a_located_exit_2(text: str) -> None:
    check_render(text)
