"""The command line: init, validate, schema, and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parent.parent


def mailconf(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mailconf", *args], capture_output=True, text=True, cwd=cwd, input=stdin, timeout=60
    )


def test_init_writes_a_commented_site_that_validates(tmp_path: Path) -> None:
    done = mailconf("init", "--yes", "--host", "mx.Bücher.example", "--user", "joe", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "site.yaml").read_text()
    assert "mx.xn--bcher-kva.example" in text and "# " in text
    assert mailconf("validate", cwd=tmp_path).returncode == 0


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text("mine\n")
    done = mailconf("init", "--yes", cwd=tmp_path)
    assert done.returncode == 1 and (tmp_path / "site.yaml").read_text() == "mine\n"
    assert mailconf("init", "--yes", "--force", cwd=tmp_path).returncode == 0


def test_init_refuses_a_bad_host_name_with_exit_2(tmp_path: Path) -> None:
    done = mailconf("init", "--yes", "--host", "not a host", cwd=tmp_path)
    assert done.returncode == 2 and "--host: error:" in done.stderr
    assert not (tmp_path / "site.yaml").exists()


def test_init_into_a_missing_directory_is_exit_2_not_a_traceback(tmp_path: Path) -> None:
    done = mailconf("init", "--yes", "-c", str(tmp_path / "nodir" / "site.yaml"))
    assert done.returncode == 2 and "cannot write the site file" in done.stderr and "Traceback" not in done.stderr


def test_render_onto_a_file_is_exit_2_not_a_traceback(tmp_path: Path) -> None:
    assert mailconf("init", "--yes", cwd=tmp_path).returncode == 0
    (tmp_path / "afile").write_text("")
    done = mailconf("render", "-o", "afile", cwd=tmp_path)
    assert done.returncode == 2 and "cannot write the output tree" in done.stderr and "Traceback" not in done.stderr


def test_render_refuses_root_slash_which_would_overwrite_the_host(tmp_path: Path) -> None:
    # No site file: were --root / not refused first, the run would stop at the missing file, never touching /.
    done = mailconf("render", "--root", "/", "-c", str(tmp_path / "missing.yaml"))
    assert done.returncode == 2 and "mailconf apply" in done.stderr


def test_a_root_whose_path_would_break_a_command_line_is_exit_2_and_nothing_is_written(tmp_path: Path) -> None:
    assert mailconf("init", "--yes", cwd=tmp_path).returncode == 0
    root = tmp_path / "my root;touch x"
    root.mkdir()
    for command in ("render", "apply", "diff"):
        done = mailconf(command, "--root", str(root), cwd=tmp_path)
        assert done.returncode == 2, (command, done.stderr)
        assert "--root: error:" in done.stderr and "letters, digits" in done.stderr and "Traceback" not in done.stderr
    assert list(root.iterdir()) == [] and not (tmp_path / "x").exists()


def test_validate_reports_a_missing_file_with_exit_2(tmp_path: Path) -> None:
    done = mailconf("validate", "-c", str(tmp_path / "nope.yaml"))
    assert done.returncode == 2 and "cannot read site file" in done.stderr and "Traceback" not in done.stderr


def test_schema_is_a_json_schema_that_names_every_top_level_key() -> None:
    done = mailconf("schema")
    schema = json.loads(done.stdout)
    assert schema["additionalProperties"] is False
    assert {"host", "domains", "users", "aliases", "trusted_networks", "smarthost", "tls"} <= set(schema["properties"])
    assert schema["required"] == ["host", "domains"]


def test_a_usage_error_exits_2() -> None:
    assert mailconf("render", "--no-such-option").returncode == 2
    assert mailconf("render", "-c", str(REPO / "examples/site.yaml")).returncode == 2  # neither -o nor --root
