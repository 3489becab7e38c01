"""Fetchmail's rc file checked by the real fetchmail, and POP3 under the real openbsd-inetd."""

from __future__ import annotations

import contextlib
import os
import poplib
import pwd
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import realprogs
from test_manage import self_signed

from mailconf.errors import MailconfError
from mailconf.manage.apply import apply, make_plan
from mailconf.site import load_site

INETD = Path("/usr/sbin/inetd")

SITE = """\
host:
  name: mail.fetch.test
  listen: [127.0.0.1]
  ports: {{smtp: {smtp}, submission: false, smtps: false, pop3: {pop3}, pop3s: false, imap: false, imaps: false}}
domains: [fetch.test]
users: [root]
tls:
  cert: /etc/ssl/t/cert.pem
  key: /etc/ssl/t/key.pem
{extra}"""

FETCHMAIL = """\
fetchmail:
  mailboxes:
    - server: pop.isp.example
      protocol: pop3
      user: joe@isp.example
      password_file: isp-password
      deliver_to: root
    - server: imap.other.example
      user: sue
      password_file: isp-password
      deliver_to: sue@fetch.test
      ssl: false
"""


@pytest.fixture
def base() -> Iterator[Path]:
    for program in ("postfix", "doveconf", "fetchmail"):
        realprogs.require(program)
    with realprogs.open_tmpdir("mailconf-fetch-") as path:
        (path / "root").mkdir()
        yield path


def write_site(base: Path, extra: str, smtp: int = 2525, pop3: int = 2110) -> Path:
    site = base / "site.yaml"
    site.write_text(SITE.format(smtp=smtp, pop3=pop3, extra=extra))
    return site


def test_fetchmailrc_is_installed_0600_and_accepted_by_real_fetchmail(base: Path) -> None:
    secret = base / "isp-password"
    secret.write_text("pa\\ss#word 'x'\n")
    secret.chmod(0o600)
    site = write_site(base, FETCHMAIL, smtp=2525)
    apply(load_site(site), {"mta": "postfix"}, base / "root", init="none", reload=False, say=lambda _: None)
    rc = base / "root/etc/fetchmailrc"
    assert rc.stat().st_mode & 0o777 == 0o600
    assert rc.stat().st_uid == pwd.getpwnam("fetchmail").pw_uid, "Debian's fetchmail daemon runs as `fetchmail`"
    dump = subprocess.run(
        ["runuser", "-u", "fetchmail", "--", "fetchmail", "-f", rc, "--configdump"], capture_output=True, text=True
    )
    assert dump.returncode == 0, dump.stderr
    assert '"pollname":"pop.isp.example"' in dump.stdout and '"protocol":"POP3"' in dump.stdout
    assert '"password":"pa\\\\ss#word \'x\'"' in dump.stdout, "backslash, # and quotes survive"
    assert dump.stdout.count('"smtphunt":["localhost/2525"]') == 2, "delivered to the local MTA's SMTP port"
    assert dump.stdout.count("'ssl':TRUE") == 1, "SSL on by default, off only where the site says so"
    assert '"smtpname":"sue@fetch.test"' in dump.stdout


def test_a_readable_password_file_is_refused(base: Path) -> None:
    secret = base / "isp-password"
    secret.write_text("secret\n")
    secret.chmod(0o644)
    site = write_site(base, FETCHMAIL)
    with pytest.raises(MailconfError, match="chmod 600"):
        make_plan(load_site(site), {"mta": "postfix"}, base / "root", "none")


def test_an_inline_password_is_not_accepted() -> None:
    result = subprocess.run([sys.executable, "-m", "mailconf", "schema"], capture_output=True, text=True, check=True)
    assert '"password_file"' in result.stdout and '"password":' not in result.stdout


# ------------------------------------------------------------------------------------------------ inetd


@pytest.fixture
def inetd_site(base: Path) -> Iterator[tuple[Path, int]]:
    if not INETD.exists():
        pytest.fail("openbsd-inetd is missing: apt-get install openbsd-inetd") if os.environ.get("CI") else (
            pytest.skip("openbsd-inetd is not installed")
        )
    realprogs.require("dovecot")
    pop3 = realprogs.free_port()
    site = write_site(base, "pop_imap:\n  protocols: [pop3]\n  mode: inetd\n", pop3=pop3)
    self_signed(base / "root/etc/ssl/t")
    apply(
        load_site(site),
        {"mta": "postfix", "pop_imap": "dovecot"},
        base / "root",
        init="none",
        reload=False,
        say=lambda _: None,
    )
    conf = base / "root/etc/dovecot/dovecot.conf"
    (base / "root/var/spool/postfix/private").mkdir(parents=True)  # where Dovecot offers Postfix its logins
    dovecot = realprogs.dovecot_start(conf)  # Dovecot's master serves the logins' authentication
    try:
        yield base / "root", pop3
    finally:
        realprogs.dovecot_stop(conf)
        realprogs.stop_pid(dovecot)


@pytest.fixture
def inetd(inetd_site: tuple[Path, int]) -> Iterator[tuple[subprocess.Popen[str], int]]:
    root, pop3 = inetd_site
    snippet = root / "etc/mailconf/inetd.conf"
    proc = subprocess.Popen([INETD, "-d", snippet], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert realprogs.wait_for_port("127.0.0.1", pop3), "inetd listens on the rendered port (Dovecot does not)"
        yield proc, pop3
    finally:
        realprogs.stop_pid(proc.pid)
        proc.wait()


def test_inetd_accepts_the_rendered_lines_and_starts_dovecots_login_per_connection(
    inetd: tuple[subprocess.Popen[str], int],
) -> None:
    proc, pop3 = inetd
    with contextlib.suppress(poplib.error_proto, OSError):  # the login process itself crashes: see the xfail
        poplib.POP3("127.0.0.1", pop3, timeout=5).quit()
    time.sleep(0.3)
    realprogs.stop_pid(proc.pid)
    log = proc.communicate()[0]
    assert f"ADD: 127.0.0.1:{pop3} proto=tcp" in log and "server=/usr/lib/dovecot/pop3-login" in log
    assert "execv /usr/lib/dovecot/pop3-login" in log


@pytest.mark.xfail(
    strict=True,
    reason="Dovecot 2.3.19 (Debian 12): pop3-login started by inetd dies with SIGSEGV before its greeting",
)
def test_a_pop3_greeting_comes_through_inetd(inetd: tuple[subprocess.Popen[str], int]) -> None:
    _, pop3 = inetd
    client = poplib.POP3("127.0.0.1", pop3, timeout=5)
    try:
        assert client.getwelcome().startswith(b"+OK")
    finally:
        client.quit()
