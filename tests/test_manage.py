"""apply / diff / rollback under --root with the real Postfix and Dovecot tools, and the service commands.

Every apply here validates in a scratch root with postalias/postmap, `postfix check` and `doveconf -n`.
"""

from __future__ import annotations

import json
import poplib
import smtplib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import realprogs
from mailtest import self_signed

from mailconf.manage import files as fs
from mailconf.manage.apply import ApplyFailed, apply, make_plan, rollback
from mailconf.site import load_site

PROGRAMS = {"mta": "postfix", "pop_imap": "dovecot"}
MAILCONF = [sys.executable, "-m", "mailconf"]


def site_yaml(smtp: int = 2525, pop3: int = 2110, host: str = "mail.apply.test", overrides: str = "") -> str:
    return f"""\
host:
  name: {host}
  listen: [127.0.0.1]
  ports: {{smtp: {smtp}, submission: false, smtps: false, pop3: {pop3}, pop3s: false, imap: false, imaps: false}}
domains: [apply.test]
users: [root]
aliases:
  info: root
tls:
  cert: /etc/ssl/t/cert.pem
  key: /etc/ssl/t/key.pem
{overrides}"""


class Sandbox:
    """A site file and a --root directory that the daemons' users can reach."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.root.mkdir()
        self.site = base / "site.yaml"

    def write(self, **kwargs: object) -> Path:
        self.site.write_text(site_yaml(**kwargs))  # type: ignore[arg-type]
        return self.site

    def apply(self, **kwargs: object) -> bool:
        return apply(load_site(self.site), PROGRAMS, self.root, init="none", say=lambda _: None, **kwargs)

    def file(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def snapshot(self) -> dict[str, bytes]:
        return {str(p.relative_to(self.root)): p.read_bytes() for p in self.root.rglob("*") if p.is_file()}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [*MAILCONF, *args, "-c", str(self.site), "--root", str(self.root), "--pop-imap", "dovecot"]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120)


@pytest.fixture
def box() -> Iterator[Sandbox]:
    for program in ("postfix", "postconf", "doveconf"):
        realprogs.require(program)
    with realprogs.open_tmpdir("mailconf-manage-") as base:
        yield Sandbox(base)


def test_apply_installs_validated_files_and_a_second_apply_changes_nothing(box: Sandbox) -> None:
    box.write()
    assert box.apply(reload=False) is True
    main_cf = box.file("/etc/postfix/main.cf")
    assert "myhostname = mail.apply.test" in main_cf.read_text()
    assert box.file("/etc/aliases.db").exists(), "the alias map is built and installed with its source"
    assert oct(box.file("/etc/dovecot/dovecot.conf").stat().st_mode & 0o777) == oct(0o644)
    state = json.loads(box.file(fs.STATE).read_text())
    assert {f["path"] for f in state["files"]} >= {"/etc/postfix/main.cf", "/etc/postfix/master.cf", "/etc/aliases"}
    assert not box.file(fs.JOURNAL).exists()
    before, backups = box.snapshot(), fs.backups(box.root)
    assert len(backups) == 1

    assert box.apply(reload=False) is False
    assert box.snapshot() == before and fs.backups(box.root) == backups
    assert "nothing to change" in box.cli("apply", "--no-reload").stdout


def test_a_config_postfix_check_rejects_is_not_installed(box: Sandbox) -> None:
    box.write()
    box.apply(reload=False)
    before = box.snapshot()
    box.write(overrides="overrides:\n  postfix:\n    main:\n      inet_protocols: carrier-pigeon\n")
    with pytest.raises(ApplyFailed, match=r"refused by `post.*nothing was changed"):
        box.apply(reload=False)
    assert box.snapshot() == before
    result = box.cli("apply", "--no-reload")
    assert result.returncode == 1 and "inet_protocols" in result.stderr


def test_a_hand_edited_file_is_kept_unless_forced(box: Sandbox) -> None:
    box.write()
    box.apply(reload=False)
    main_cf = box.file("/etc/postfix/main.cf")
    edited = main_cf.read_text() + "smtpd_banner = hand edited\n"
    main_cf.write_text(edited)
    box.write(host="mx.apply.test")
    result = box.cli("apply", "--no-reload")
    assert result.returncode == 1
    assert "edited by hand" in result.stderr and "overrides" in result.stderr
    assert "-smtpd_banner = hand edited" in result.stderr, "the diff shows what would be lost"
    assert main_cf.read_text() == edited

    assert box.apply(reload=False, force=True) is True
    assert "mx.apply.test" in main_cf.read_text() and "hand edited" not in main_cf.read_text()
    saved = fs.backups(box.root)[-1] / "files/etc/postfix/main.cf"
    assert saved.read_text() == edited, "the hand-edited file is in the backup"


def test_a_file_mailconf_never_wrote_is_not_replaced_without_force(box: Sandbox) -> None:
    box.write()
    foreign = box.file("/etc/postfix/main.cf")
    foreign.parent.mkdir(parents=True)
    foreign.write_text("# the distribution's main.cf\n")
    with pytest.raises(ApplyFailed, match="not written by mailconf"):
        box.apply(reload=False)
    assert foreign.read_text() == "# the distribution's main.cf\n"
    assert not box.file("/etc/postfix/master.cf").exists(), "nothing else was installed either"


def fail_installing(
    monkeypatch: pytest.MonkeyPatch, path: Path, error: BaseException, *, once: bool = False
) -> list[Path]:
    """Make installing `path` raise `error` (KeyboardInterrupt: a crash; OSError: a full disk), every time or
    `once`; return the installs that failed."""
    real_install, failed = fs.install, []

    def install(dest: Path, *args: object, **kwargs: object) -> None:
        if dest == path and not (once and failed):
            failed.append(dest)
            raise error
        real_install(dest, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fs, "install", install)
    return failed


def test_a_crash_between_moves_is_undone_by_rollback_and_the_next_apply(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    box.write(smtp=2525)
    box.apply(reload=False)
    old = box.snapshot()
    fail_installing(monkeypatch, box.file("/etc/postfix/master.cf"), KeyboardInterrupt("power cut"))
    box.write(smtp=2526, host="mx.apply.test")
    with pytest.raises(KeyboardInterrupt):
        box.apply(reload=False)
    monkeypatch.undo()
    assert "mx.apply.test" in box.file("/etc/postfix/main.cf").read_text(), "main.cf was moved before the crash"
    assert "2525" in box.file("/etc/postfix/master.cf").read_text(), "master.cf was not: an inconsistent set"
    assert box.file(fs.JOURNAL).exists()

    rollback(box.root, reload=False, say=lambda _: None)
    assert not box.file(fs.JOURNAL).exists()
    current = box.snapshot()
    assert {k: current.get(k) for k in old if not k.startswith("var/backups")} == {
        k: v for k, v in old.items() if not k.startswith("var/backups")
    }, "rollback recovered the whole previous set"

    assert box.apply(reload=False) is True
    assert "mx.apply.test" in box.file("/etc/postfix/main.cf").read_text()
    assert "\n2526 " in box.file("/etc/postfix/master.cf").read_text()


def test_a_crash_in_the_middle_of_a_rollback_is_finished_by_the_next_run(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    box.write(smtp=2525)
    box.apply(reload=False)
    first = {k: v for k, v in box.snapshot().items() if k.startswith("etc/")}
    box.write(smtp=2526, host="mx.apply.test")
    box.apply(reload=False)
    fail_installing(monkeypatch, box.file("/etc/postfix/master.cf"), KeyboardInterrupt("power cut"))
    with pytest.raises(KeyboardInterrupt):
        rollback(box.root, reload=False, say=lambda _: None)
    monkeypatch.undo()
    assert box.file(fs.JOURNAL).exists(), "the half-done restore is journaled"
    messages: list[str] = []
    rollback(box.root, reload=False, say=messages.append)
    assert any(m.startswith("recovered from an interrupted apply") for m in messages)
    assert {k: v for k, v in box.snapshot().items() if k.startswith("etc/")} == first
    assert not box.file(fs.JOURNAL).exists()


def test_a_failed_move_puts_the_previous_set_back_at_once(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    box.write(smtp=2525)
    box.apply(reload=False)
    old = {k: v for k, v in box.snapshot().items() if not k.startswith("var/backups")}
    failed = fail_installing(
        monkeypatch, box.file("/etc/postfix/master.cf"), OSError(28, "No space left on device"), once=True
    )
    box.write(smtp=2526, host="mx.apply.test")
    with pytest.raises(ApplyFailed, match="No space left on device"):
        box.apply(reload=False)
    assert failed and not box.file(fs.JOURNAL).exists()
    assert {k: v for k, v in box.snapshot().items() if not k.startswith("var/backups")} == old


def test_rollback_restores_the_files_before_the_last_apply(box: Sandbox) -> None:
    box.write()
    box.apply(reload=False)
    first = box.file("/etc/postfix/main.cf").read_text()
    box.write(host="mx.apply.test")
    box.apply(reload=False)
    result = subprocess.run(
        [*MAILCONF, "rollback", "--root", str(box.root), "--no-reload"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert box.file("/etc/postfix/main.cf").read_text() == first
    assert make_plan(load_site(box.site), PROGRAMS, box.root, "none").changes, "the site now differs again"

    box.apply(reload=False)  # nothing runs: a rollback that reloads leaves the stopped services stopped
    messages: list[str] = []
    rollback(box.root, say=messages.append)
    assert "postfix is not running: left stopped" in messages and "dovecot is not running: left stopped" in messages
    assert not box.file("/var/spool/postfix/pid/master.pid").exists()


def test_diff_shows_an_override_and_hides_secrets(box: Sandbox) -> None:
    box.write()
    box.apply(reload=False)
    box.write(overrides="overrides:\n  postfix:\n    main:\n      smtpd_banner: $myhostname ready\n")
    result = box.cli("diff")
    assert result.returncode == 0
    assert "+smtpd_banner = $myhostname ready" in result.stdout
    assert "\033[" not in result.stdout, "no color when not on a terminal"
    box.apply(reload=False)
    conf = realprogs.postconf_n(box.file("/etc/postfix"))
    assert "smtpd_banner = $myhostname ready" in conf.stdout, "the override is the value Postfix uses"


def test_an_override_that_would_open_a_relay_is_refused(box: Sandbox) -> None:
    box.write(overrides="overrides:\n  postfix:\n    main:\n      smtpd_relay_restrictions: permit_mynetworks\n")
    result = box.cli("diff")
    assert result.returncode == 2 and "reject_unauth_destination" in result.stderr
    box.write(overrides="overrides:\n  postfix:\n    main:\n      mynetworks: 0.0.0.0/0\n")
    assert box.cli("diff").returncode == 2


# ------------------------------------------------------------------------------------------------ live


def banner(port: int) -> str:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        return smtp.ehlo()[1].decode().splitlines()[0]


def pop3_greeting(port: int) -> str:
    client = poplib.POP3("127.0.0.1", port, timeout=10)
    try:
        return client.getwelcome().decode()
    finally:
        client.quit()


def test_postfix_and_dovecot_reload_for_real_and_a_failed_reload_is_undone(box: Sandbox) -> None:
    realprogs.require("dovecot")
    smtp, pop3, busy = realprogs.free_port(), realprogs.free_port(), realprogs.free_port()
    self_signed(box.file("/etc/ssl/t"))
    pids: list[int] = []
    try:
        box.write(smtp=smtp, pop3=pop3)
        assert box.apply() is True
        pids += [
            int(box.file("/var/spool/postfix/pid/master.pid").read_text()),
            int(box.file("/run/dovecot/master.pid").read_text()),
        ]
        assert realprogs.wait_for_port("127.0.0.1", smtp) and realprogs.wait_for_port("127.0.0.1", pop3)
        assert "mail.apply.test" in banner(smtp)

        greeting = "overrides:\n  dovecot:\n    login_greeting: Second config ready\n"
        box.write(smtp=smtp, pop3=pop3, host="mx.apply.test", overrides=greeting)
        assert box.apply() is True
        assert "mx.apply.test" in banner(smtp), "the running Postfix serves the new host name"
        assert "Second config ready" in pop3_greeting(pop3), "the running Dovecot serves the new greeting"
        good = box.snapshot()

        with socket.create_server(("127.0.0.1", busy)):  # the new port is taken: the reloaded master dies
            box.write(smtp=busy, pop3=pop3, host="mx.apply.test", overrides=greeting)
            with pytest.raises(ApplyFailed, match=r"(?s)reload failed.*restored the previous files.*reloaded them: ok"):
                box.apply()
        after = box.snapshot()
        assert {k: after.get(k) for k in good if k.startswith("etc/")} == {
            k: v for k, v in good.items() if k.startswith("etc/")
        }
        assert realprogs.wait_for_port("127.0.0.1", smtp)
        assert "mx.apply.test" in banner(smtp), "Postfix runs again with the restored config"
        pids.append(int(box.file("/var/spool/postfix/pid/master.pid").read_text()))
    finally:  # every daemon this test started, including one started again after the restore
        for pid_file in ("/var/spool/postfix/pid/master.pid", "/run/dovecot/master.pid"):
            if box.file(pid_file).exists():
                pids.append(int(box.file(pid_file).read_text().split()[0]))
        for pid in set(pids):
            realprogs.stop_pid(pid)


def test_a_failed_first_apply_stops_the_daemons_it_started(box: Sandbox) -> None:
    realprogs.require("dovecot")
    smtp, pop3 = realprogs.free_port(), realprogs.free_port()
    self_signed(box.file("/etc/ssl/t"))
    box.write(smtp=smtp, pop3=pop3)
    messages: list[str] = []
    master_pid = box.file("/var/spool/postfix/pid/master.pid")
    started: list[int] = []

    def say(message: str) -> None:
        messages.append(message)
        if message.startswith("started postfix"):  # `postfix start` returns once the master is ready
            started.append(int(master_pid.read_text()))

    try:
        failed = pytest.raises(ApplyFailed, match=r"(?s)reload failed.*dovecot.*restored the previous files")
        with socket.create_server(("127.0.0.1", pop3)), failed:  # Dovecot cannot listen; Postfix was started
            apply(load_site(box.site), PROGRAMS, box.root, init="none", say=say)
        assert any(m.startswith("started postfix") for m in messages), messages
        assert any(m.startswith("stopped postfix again: postfix -c ") for m in messages), messages
        assert not box.file("/etc/postfix/main.cf").exists(), "the first apply's files are gone again"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", smtp), timeout=5).close()
        assert started and not realprogs.is_running(started[0]), "the Postfix master this apply started is gone"
    finally:
        for pid_file in (master_pid, box.file("/run/dovecot/master.pid")):
            if pid_file.exists():
                realprogs.stop_pid(int(pid_file.read_text().split()[0]))


# ------------------------------------------------------------------------------------------------ services


@pytest.mark.parametrize(
    ("mta", "init", "expected"),
    [
        ("postfix", "systemd", "reload  systemctl reload postfix"),
        ("postfix", "sysvinit", "reload  /etc/init.d/postfix reload"),
        ("postfix", "openrc", "enable  rc-update add postfix default"),
        ("postfix", "runit", "exec /usr/lib/postfix/sbin/master -d"),
        ("exim", "systemd", "stop    systemctl stop exim4"),
        ("exim", "systemd", "check   grep -qs exim /proc/$(head -n1 /run/exim4/exim.pid)/cmdline"),
        ("sendmail", "runit", "stop    sv down sendmail"),
        ("qmail", "daemontools", "reload  svc -t /etc/service/qmail-smtpd"),
        ("postfix", "systemd", "check   systemctl is-active --quiet postfix@-"),
        ("qmail", "daemontools", "enable  ln -sfn /var/qmail/supervise/qmail-smtpd /etc/service/qmail-smtpd"),
        ("qmail", "daemontools", "# /var/qmail/supervise/qmail-smtpd/run: rendered from the site description"),
    ],
)
def test_services_prints_the_commands_for_each_init_system(mta: str, init: str, expected: str) -> None:
    result = subprocess.run([*MAILCONF, "services", "--mta", mta, "--init", init], capture_output=True, text=True)
    assert result.returncode == 0 and expected in result.stdout


def test_qmail_has_no_init_script_service() -> None:
    result = subprocess.run(
        [*MAILCONF, "services", "--mta", "qmail", "--init", "systemd"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "qmail has no systemd service: it runs supervised" in result.stderr
    result = subprocess.run([*MAILCONF, "services", "--mta", "qmail"], capture_output=True, text=True)
    assert result.returncode == 0 and "# qmail (daemontools)" in result.stdout, "its default, whatever the host runs"


def test_services_rejects_an_unknown_init_system() -> None:
    result = subprocess.run([*MAILCONF, "services", "--init", "upstart"], capture_output=True, text=True)
    assert result.returncode == 2 and "systemd" in result.stderr


def test_run_scripts_are_valid_shell() -> None:
    from mailconf.manage.services import service_commands

    for program in ("postfix", "dovecot", "qmail", "fetchmail"):
        for file in service_commands(program, "runit").files:
            assert subprocess.run(["sh", "-n"], input=file.body, text=True).returncode == 0
            assert file.body.startswith("#!/bin/sh\n") and file.mode == 0o755


def test_qmail_services_run_the_scripts_the_qmail_backend_renders_from_the_site(tmp_path: Path) -> None:
    """One source of run scripts: apply links the backend's site-aware /var/qmail/supervise/* and writes none."""
    from mailconf.manage.services import service_commands
    from mailconf.mta.qmail import Qmail
    from mailconf.render import Target
    from mailconf.site import parse_site

    site = "host: {name: mail.example.org, listen: [127.0.0.1, 192.0.2.25]}\ndomains: [example.org]\n"
    rendering = Qmail().render(parse_site(site, tmp_path / "site.yaml"), Target())
    service = service_commands("qmail", "daemontools", rendering)
    assert service.files == []
    assert service.commands["enable"] == [
        f"ln -sfn /var/qmail/supervise/{name} /etc/service/{name}"
        for name in ("qmail-send", "qmail-smtpd-127.0.0.1", "qmail-smtpd-192.0.2.25")
    ]
    rendered = {f.path for f in rendering.files}
    assert set(service.backend_runs) <= rendered and len(service.backend_runs) == 3


def test_diff_judges_the_run_scripts_of_the_init_system_apply_used(box: Sandbox) -> None:
    box.write()
    assert box.cli("apply", "--no-reload", "--init", "daemontools").returncode == 0
    assert box.file("/etc/sv/postfix/run").exists()
    assert "no differences" in box.cli("diff", "--init", "daemontools").stdout
    assert "/etc/sv/postfix/run (obsolete)" in box.cli("diff", "--init", "none").stdout, "another init: not its files"
