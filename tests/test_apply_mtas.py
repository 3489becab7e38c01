"""apply / rollback for Exim, Sendmail and qmail under --root, with their real tools.

Exim and Sendmail are unpacked under /opt/mailconf (their packages conflict with Postfix), so `mailconf apply`
runs inside realprogs.ns_argv's namespace, where the unpacked usr/ is /usr: apply finds `exim4`, `sendmail`,
`makemap` and Sendmail's cf macros where a host that has them installed does. qmail is not packaged in Debian 12:
its apply runs tcprules and mailconf's own checker and users/cdb builder, without a reload (no qmail-send).
"""

from __future__ import annotations

import json
import shutil
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import realprogs

from mailconf.manage import files as fs

ORDERS_HASH = (
    "{SHA512-CRYPT}$6$TogXeqoGMJUwQ/4E$qDUz7qxTml/2caZ9fIfO0D8HXioV3IBvLWPTAFJpXE3F0DqDiJ964w6m3VDJW8CwQmptmgX0r5AD"
    ".nyGzkvGk."
)
TREES = {"exim": realprogs.EXIM_ROOT, "sendmail": realprogs.SENDMAIL_ROOT}


def site_yaml(smtp: int, host: str = "mail.apply.test", overrides: str = "", trusted: str = "192.168.7.0/24") -> str:
    return f"""\
host:
  name: {host}
  listen: [127.0.0.1]
  ports: {{smtp: {smtp}, submission: false, smtps: false, pop3: false, pop3s: false, imap: false, imaps: false}}
domains:
  - apply.test
  - name: shop.test
    type: virtual
users:
  - nobody
  - address: orders@shop.test
    password_hash: "{ORDERS_HASH}"
aliases:
  info: nobody
postmaster: nobody
trusted_networks: [{trusted}]
tls:
  cert: /etc/ssl/t/cert.pem
  key: /etc/ssl/t/key.pem
{overrides}"""


class Box:
    """A site file and a --root sandbox for one MTA; `apply` runs the real CLI where the MTA's tools are."""

    def __init__(self, base: Path, mta: str) -> None:
        self.mta, self.root, self.site = mta, base / "root", base / "site.yaml"
        self.root.mkdir()
        self.smtp = realprogs.free_port()
        self.pid_files: list[Path] = []

    def write(self, **kwargs: str) -> None:
        self.site.write_text(site_yaml(self.smtp, **kwargs))

    def cli(self, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "mailconf", command, "--root", str(self.root), *args]
        if command in ("apply", "diff"):
            argv += ["-c", str(self.site), "--mta", self.mta]
        if self.mta in TREES:
            argv = realprogs.ns_argv(TREES[self.mta], argv)
        return realprogs.run(argv, timeout=120)

    def file(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def snapshot(self) -> dict[str, bytes]:
        return {
            str(p.relative_to(self.root)): p.read_bytes()
            for p in self.root.rglob("*")
            if p.is_file() and not p.is_relative_to(self.root / fs.BACKUPS)
        }

    def daemon_pid(self, pid_file: str) -> int:
        path = self.file(pid_file)
        self.pid_files.append(path)
        return int(path.read_text().split()[0])

    def stop(self) -> None:
        for path in self.pid_files:
            if path.exists():
                realprogs.stop_pid(int(path.read_text().split()[0]))


@pytest.fixture
def box(request: pytest.FixtureRequest) -> Iterator[Box]:
    mta: str = request.param
    realprogs.require({"exim": "exim", "sendmail": "sendmail", "qmail": "tcprules"}[mta])
    with realprogs.open_tmpdir(f"mailconf-apply-{mta}-") as base:
        sandbox = Box(base, mta)
        try:
            yield sandbox
        finally:
            sandbox.stop()


def greeting(port: int) -> str:
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        code, text = client.ehlo("client.apply.test")
        assert code == 250
        return text.decode().split()[0]


# ------------------------------------------------------------------------------------------------ Exim


@pytest.mark.parametrize("box", ["exim"], indirect=True)
def test_exim_apply_starts_reloads_and_rolls_back_the_running_daemon(box: Box) -> None:
    box.write()
    done = box.cli("apply")
    assert done.returncode == 0, done.stderr
    assert "started exim" in done.stdout and "exim4 -C" in done.stdout
    pid = box.daemon_pid("/run/exim4/exim.pid")
    assert greeting(box.smtp) == "mail.apply.test"

    box.write(host="mx2.apply.test")
    done = box.cli("apply")
    assert done.returncode == 0 and "reloaded exim: kill -HUP" in done.stdout, done.stdout + done.stderr
    assert greeting(box.smtp) == "mx2.apply.test", "the running daemon serves the new exim4.conf"
    assert box.daemon_pid("/run/exim4/exim.pid") == pid, "reloaded (SIGHUP), not restarted"
    assert "nothing to change" in box.cli("apply").stdout

    done = box.cli("rollback")
    assert done.returncode == 0 and "reloaded exim" in done.stdout, done.stdout + done.stderr
    assert greeting(box.smtp) == "mail.apply.test"
    assert "primary_hostname = mail.apply.test" in box.file("/etc/exim4/exim4.conf").read_text()


@pytest.mark.parametrize("box", ["exim"], indirect=True)
def test_an_exim_config_exim_rejects_is_not_installed(box: Box) -> None:
    box.write()
    assert box.cli("apply", "--no-reload").returncode == 0
    before = box.snapshot()
    box.write(host="mx2.apply.test", overrides="overrides:\n  exim:\n    no_such_option: 'true'\n")
    done = box.cli("apply", "--no-reload")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "refused by `exim4 -C " in done.stderr and "-bV" in done.stderr and "no_such_option" in done.stderr
    assert "nothing was changed" in done.stderr
    assert box.snapshot() == before


# ------------------------------------------------------------------------------------------------ Sendmail


@pytest.mark.parametrize("box", ["sendmail"], indirect=True)
def test_sendmail_apply_builds_the_cf_and_maps_for_the_real_root_and_reloads(box: Box) -> None:
    box.write()
    done = box.cli("apply")
    assert done.returncode == 0, done.stdout + done.stderr
    cf = box.file("/etc/mail/sendmail.cf").read_text()
    assert f"O PidFile={box.root}/run/sendmail/mta/sendmail.pid" in cf, "m4 ran on the installed sendmail.mc"
    assert "mailconf-check-" not in cf, "no path of the scratch root leaked into the installed sendmail.cf"
    for db in ("access.db", "aliases.db", "virtusertable.db", "mailertable.db"):
        assert box.file(f"/etc/mail/{db}").stat().st_size > 0, db
    state = json.loads(box.file(fs.STATE).read_text())
    assert set(state["products"]) >= {"/etc/mail/sendmail.cf", "/etc/mail/access.db", "/etc/mail/aliases.db"}

    cf_path = str(box.file("/etc/mail/sendmail.cf"))
    verified = realprogs.sendmail(["-C", cf_path, "-bv", "info@apply.test", "orders@shop.test"]).stdout
    assert "nobody... deliverable: mailer local, user nobody" in verified, verified  # info: nobody, aliases.db
    assert "orders@shop.test... deliverable: mailer vmail" in verified, verified  # virtusertable.db
    pid = box.daemon_pid("/run/sendmail/mta/sendmail.pid")
    assert greeting(box.smtp) == "mail.apply.test"

    box.write(host="mx2.apply.test")
    done = box.cli("apply")
    assert done.returncode == 0 and "reloaded sendmail" in done.stdout, done.stdout + done.stderr
    assert greeting(box.smtp) == "mx2.apply.test"
    # Sendmail restarts on SIGHUP by exec'ing itself, and the new daemon forks: one daemon, a new PID.
    assert not realprogs.is_running(pid) and realprogs.is_running(box.daemon_pid("/run/sendmail/mta/sendmail.pid"))
    assert "nothing to change" in box.cli("apply").stdout


@pytest.mark.parametrize("box", ["sendmail"], indirect=True)
def test_a_sendmail_config_sendmail_rejects_is_not_installed(box: Box) -> None:
    box.write()
    assert box.cli("apply", "--no-reload").returncode == 0
    before = box.snapshot()
    box.write(overrides="overrides:\n  sendmail:\n    - 'O NoSuchOption=1'\n")
    done = box.cli("apply", "--no-reload")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "unknown option name NoSuchOption" in done.stderr and "nothing was changed" in done.stderr
    assert box.snapshot() == before


@pytest.mark.parametrize("box", ["sendmail"], indirect=True)
def test_a_hand_edited_sendmail_cf_is_kept_unless_forced(box: Box) -> None:
    box.write()
    assert box.cli("apply", "--no-reload").returncode == 0
    box.write(trusted="192.168.9.0/24")  # access and access.db change, sendmail.mc and sendmail.cf do not
    done = box.cli("apply", "--no-reload")
    assert done.returncode == 0 and "/etc/mail/access\n" in done.stdout and "sendmail.mc" not in done.stdout
    cf = box.file("/etc/mail/sendmail.cf")
    edited = cf.read_text() + "# my own change\n"
    cf.write_text(edited)  # Sendmail admins do edit sendmail.cf: mailconf never overwrites it silently
    box.write(host="mx2.apply.test", trusted="192.168.9.0/24")
    done = box.cli("apply", "--no-reload")
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "/etc/mail/sendmail.cf: edited by hand since the last apply (built from /etc/mail/sendmail.mc)" in done.stderr
    )
    assert cf.read_text() == edited
    assert box.cli("apply", "--no-reload", "--force").returncode == 0
    assert "# my own change" not in cf.read_text() and "Djmx2.apply.test" in cf.read_text()
    assert (fs.backups(box.root)[-1] / "files/etc/mail/sendmail.cf").read_text() == edited


def test_apply_without_the_mtas_tools_installed_changes_nothing(tmp_path: Path) -> None:
    """Outside the namespace this host has no Sendmail: apply stops at the first tool it cannot run."""
    realprogs.require("m4")
    if Path("/usr/share/sendmail/cf").exists() or shutil.which("makemap"):
        pytest.skip("Sendmail is installed on this host")
    root = tmp_path / "root"
    root.mkdir()
    site = tmp_path / "site.yaml"
    site.write_text(site_yaml(2525))
    argv = [sys.executable, "-m", "mailconf", "apply", "-c", str(site), "--mta", "sendmail", "--root", str(root)]
    done = realprogs.run(argv, timeout=120)
    assert done.returncode == 1 and "m4 /usr/share/sendmail/cf/m4/cf.m4" in done.stderr, done.stderr
    assert "nothing was changed" in done.stderr
    assert list(root.iterdir()) == []


# ------------------------------------------------------------------------------------------------ qmail


@pytest.mark.parametrize("box", ["qmail"], indirect=True)
def test_qmail_apply_installs_the_rules_cdb_and_users_cdb_built_for_the_real_root(box: Box) -> None:
    realprogs.require("cdbget")
    realprogs.require("tcprulescheck")
    box.write()
    done = box.cli("apply", "--no-reload")
    assert done.returncode == 0, done.stdout + done.stderr
    rules = box.file("/etc/tcp.smtp.cdb")
    assert "RELAYCLIENT" in realprogs.tcprulescheck(rules, "192.168.7.200").stdout
    assert "RELAYCLIENT" not in realprogs.tcprulescheck(rules, "192.168.8.1").stdout
    with box.file("/var/qmail/users/cdb").open("rb") as cdb:
        found = subprocess.run(["cdbget", "!vmail-shop.test-"], stdin=cdb, capture_output=True, check=True)
    fields = found.stdout.split(b"\0")
    assert fields[:3] == [b"vmail", b"5000", b"5000"]
    assert fields[3] == f"{box.root}/var/mail/vhosts/shop.test".encode(), "homes under the real root, not scratch"
    assert "nothing to change" in box.cli("apply", "--no-reload").stdout


@pytest.mark.parametrize("box", ["qmail"], indirect=True)
def test_a_hand_edited_qmail_control_file_is_kept_unless_forced(box: Box) -> None:
    box.write()
    assert box.cli("apply", "--no-reload").returncode == 0
    me = box.file("/var/qmail/control/me")
    box.write(host="mx2.apply.test")
    shown = box.cli("diff").stdout
    assert "-mail.apply.test\n+mx2.apply.test\n" in shown and "rendered /var/qmail/control/me (changed)" in shown
    me.write_text("edited.apply.test\n")  # control files hold no comment: drift is seen through the MANIFEST
    done = box.cli("apply", "--no-reload")
    assert done.returncode == 1 and "/var/qmail/control/me: edited by hand" in done.stderr, done.stderr
    assert me.read_text() == "edited.apply.test\n"
    assert box.cli("apply", "--no-reload", "--force").returncode == 0
    assert me.read_text() == "mx2.apply.test\n"


@pytest.mark.parametrize("box", ["qmail"], indirect=True)
def test_an_alias_removed_from_the_site_stops_working_and_rollback_brings_it_back(box: Box) -> None:
    extra = "aliases:\n  info: nobody\n  sales@shop.test: orders@shop.test\n"
    box.write()
    box.site.write_text(box.site.read_text().replace("aliases:\n  info: nobody\n", extra))
    assert box.cli("apply", "--no-reload").returncode == 0
    sales, info = box.file("/var/mail/vhosts/shop.test/.qmail-sales"), box.file("/var/qmail/alias/.qmail-info")
    assert sales.exists() and info.exists()
    state = json.loads(box.file(fs.STATE).read_text())
    assert state["readers"]["/var/mail/vhosts/shop.test/.qmail-sales"] == "qmail", "whom a deletion reloads"

    box.write()  # sales@ gone
    box.site.write_text(box.site.read_text().replace("aliases:\n  info: nobody\n", "aliases: {}\n"))  # info@ too
    assert "-&orders@shop.test" in box.cli("diff").stdout, "diff shows the deletion"
    done = box.cli("apply", "--no-reload")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "/var/mail/vhosts/shop.test/.qmail-sales (removed: no longer rendered)" in done.stdout
    assert not sales.exists() and not info.exists()
    state = json.loads(box.file(fs.STATE).read_text())
    assert not {"/var/mail/vhosts/shop.test/.qmail-sales", "/var/qmail/alias/.qmail-info"} & (
        {f["path"] for f in state["files"]} | set(state["products"]) | set(state["readers"])
    ), "the MANIFEST forgets what was deleted"
    assert "nothing to change" in box.cli("apply", "--no-reload").stdout

    assert box.cli("rollback", "--no-reload").returncode == 0
    assert sales.exists() and info.exists(), "rollback puts the deleted files back"


@pytest.mark.parametrize("box", ["qmail"], indirect=True)
def test_a_no_longer_rendered_file_edited_by_hand_is_not_deleted_without_force(box: Box) -> None:
    box.write()
    assert box.cli("apply", "--no-reload").returncode == 0
    info = box.file("/var/qmail/alias/.qmail-info")
    info.write_text(info.read_text() + "&someone@elsewhere.example\n")
    box.site.write_text(box.site.read_text().replace("aliases:\n  info: nobody\n", "aliases: {}\n"))
    done = box.cli("apply", "--no-reload")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "/var/qmail/alias/.qmail-info: edited by hand since the last apply (no longer rendered" in done.stderr
    assert info.exists()
    assert box.cli("apply", "--no-reload", "--force").returncode == 0 and not info.exists()


@pytest.mark.parametrize("box", ["qmail"], indirect=True)
def test_switching_programs_is_refused_without_force_and_a_dropped_secret_is_never_shown(box: Box) -> None:
    realprogs.require("doveconf")
    box.write()
    assert box.cli("apply", "--no-reload", "--pop-imap", "dovecot").returncode == 0
    users = box.file("/etc/dovecot/users")
    assert "{SHA512-CRYPT}" in users.read_text()

    done = box.cli("apply", "--no-reload")  # Dovecot left out: its files would go while it runs
    assert done.returncode == 1 and "the last apply installed qmail + dovecot, this one would install qmail" in (
        done.stderr
    )
    assert users.exists()

    shown = box.cli("diff").stdout  # without Dovecot, its users file (password hashes) is no longer rendered
    assert "/etc/dovecot/users (obsolete): secret file differs, content not shown" in shown
    assert "SHA512-CRYPT" not in shown and "-orders@shop.test" not in shown
    assert box.cli("apply", "--no-reload", "--force").returncode == 0
    assert not users.exists()


def test_an_interrupted_apply_whose_backup_set_is_gone_is_not_recovered_blindly(tmp_path: Path) -> None:
    from mailconf.manage.apply import ApplyFailed, rollback

    journal = tmp_path / fs.JOURNAL
    journal.parent.mkdir(parents=True)
    journal.write_text(json.dumps({"backup": "20260101T000000.000000Z", "paths": ["/etc/postfix/main.cf"]}))
    with pytest.raises(ApplyFailed, match=r"backup set .* is gone or incomplete.*/etc/postfix/main.cf"):
        rollback(tmp_path, say=lambda _: None)
    assert journal.exists(), "the journal stays until someone has looked"


def test_mailconfs_own_commands_never_run_code_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailconf.manage.runner import run

    planted = tmp_path / "mailconf"
    planted.mkdir()
    (planted / "__init__.py").write_text("")
    (planted / "__main__.py").write_text("open('PLANTED', 'w').close()\n")
    (tmp_path / "tree").mkdir()
    monkeypatch.chdir(tmp_path)
    status, output = run(f"mailconf check-qmail --root {tmp_path / 'tree'}")
    assert not (tmp_path / "PLANTED").exists()
    assert status == 1 and "rcpthosts" in output, output  # the real checker ran: an empty tree has no rcpthosts


@pytest.mark.parametrize("box", ["qmail"], indirect=True)
def test_services_that_would_change_under_the_running_ones_need_force(box: Box) -> None:
    box.write()
    assert box.cli("apply", "--no-reload").returncode == 0  # init none: qmail's own svc commands, no links
    done = box.cli("apply", "--no-reload", "--init", "daemontools")
    assert done.returncode == 1 and "the services would change" in done.stderr, done.stdout + done.stderr
    assert "qmail: was [], now ['ln -sfn /var/qmail/supervise/qmail-send /etc/service/qmail-send'" in done.stderr
    assert box.cli("apply", "--no-reload", "--init", "daemontools", "--force").returncode == 0

    # A second listen address: the one tcpserver service becomes one per address (the old one would keep the port).
    box.site.write_text(box.site.read_text().replace("listen: [127.0.0.1]", "listen: [127.0.0.1, 127.0.0.2]"))
    done = box.cli("apply", "--no-reload", "--init", "daemontools")
    assert done.returncode == 1 and "/etc/service/qmail-smtpd-127.0.0.2" in done.stderr, done.stdout + done.stderr
    assert box.cli("apply", "--no-reload", "--init", "daemontools", "--force").returncode == 0
