"""README.md keeps its promises: the test command CI runs is the one it shows, and the example renders."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).parent.parent
README = (REPO / "README.md").read_text()


def commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", README)


def test_readme_has_exactly_two_newcomer_commands() -> None:
    assert len(commands()) == 2, commands()


def test_ci_runs_the_test_command_the_readme_shows() -> None:
    ci_lines = [line for line in (REPO / ".ci/run").read_text().splitlines() if line and not line.startswith("#")]
    assert commands()[1] in ci_lines


def test_the_example_command_names_a_shipped_example() -> None:
    example = re.search(r"-c (\S+)", commands()[0])
    assert example and (REPO / example.group(1)).is_file()


def test_the_example_command_works_word_for_word() -> None:
    import shutil
    import subprocess

    out = REPO / "out"
    shutil.rmtree(out, ignore_errors=True)
    try:
        done = subprocess.run(["bash", "-c", commands()[0]], cwd=REPO, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        assert (out / "etc/postfix/main.cf").is_file() and (out / "MANIFEST.json").is_file()
    finally:
        shutil.rmtree(out, ignore_errors=True)
