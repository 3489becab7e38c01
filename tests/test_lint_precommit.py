"""The shipped .pre-commit-hooks.yaml works with pre-commit itself, in a throwaway repository, offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
OPEN = "compatibility_level = 3.6\nsmtpd_relay_restrictions = permit, reject_unauth_destination\n"
CLOSED = "compatibility_level = 3.6\n"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_pre_commit_hook_fails_on_an_open_relay_and_passes_once_fixed(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    pre_commit = shutil.which("pre-commit", path=str(bin_dir)) or shutil.which("pre-commit")
    if pre_commit is None or shutil.which("mailconf", path=str(bin_dir)) is None:
        if os.environ.get("CI"):
            pytest.fail("pre-commit and mailconf must be installed (pip install -e '.[test]')")
        pytest.skip("pre-commit is not installed")
    env = dict(
        os.environ,
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        HOME=str(tmp_path),
        PRE_COMMIT_HOME=str(tmp_path / "cache"),
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.org",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.org",
    )
    hooks = tmp_path / "hooks"  # a repository publishing only the hook definition
    hooks.mkdir()
    shutil.copy(ROOT / ".pre-commit-hooks.yaml", hooks)
    git(hooks, "init", "-q")
    git(hooks, "add", ".")
    git(hooks, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "hooks")
    rev = git(hooks, "rev-parse", "HEAD")

    consumer = tmp_path / "consumer"
    (consumer / "etc/postfix").mkdir(parents=True)
    (consumer / "etc/postfix/main.cf").write_text(OPEN)
    (consumer / "notes.txt").write_text("not a mail config\n")
    (consumer / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hooks}\n    rev: {rev}\n    hooks:\n      - id: mailconf-lint\n"
    )
    git(consumer, "init", "-q")
    git(consumer, "add", ".")

    def run() -> subprocess.CompletedProcess[str]:
        command = [pre_commit, "run", "--all-files", "--color", "never"]
        return subprocess.run(command, cwd=consumer, env=env, capture_output=True, text=True, timeout=60)

    failed = run()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Failed" in failed.stdout and "etc/postfix/main.cf:2: error: [MC102]" in failed.stdout

    (consumer / "etc/postfix/main.cf").write_text(CLOSED)
    passed = run()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout
