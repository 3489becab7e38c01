"""Fetchmail's rc file checked by the real fetchmail, and POP3 logins under the real openbsd-inetd and xinetd."""

from __future__ import annotations

import contextlib
import os
import poplib
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import realprogs
from mailtest import read_pop3, self_signed, tls_context, unix_user

from mailconf.errors import MailconfError
from mailconf.fetchmail import Fetchmail
from mailconf.manage.apply import apply, make_plan
from mailconf.render import Target
from mailconf.site import load_site

INETD = Path("/usr/sbin/inetd")
# xinetd conflicts with openbsd-inetd in Debian: scripts/install-mail-programs unpacks it (dpkg -x) instead.
XINETD = next(
    (p for p in (realprogs.PROGRAMS_DIR / "xinetd/usr/sbin/xinetd", Path("/usr/sbin/xinetd")) if p.exists()),
    realprogs.PROGRAMS_DIR / "xinetd/usr/sbin/xinetd",
)

SITE = """\
host:
  name: mail.fetch.test
  listen: [127.0.0.1]
  ports: {{smtp: {smtp}, submission: false, smtps: false, pop3: {pop3}, pop3s: false, imap: false, imaps: false}}
domains: [fetch.test]
users: [{users}]
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


def write_site(base: Path, extra: str, smtp: int = 2525, pop3: int = 2110, users: str = "root") -> Path:
    site = base / "site.yaml"
    site.write_text(SITE.format(smtp=smtp, pop3=pop3, extra=extra, users=users))
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
    assert dump.stdout.count('"smtphunt":["127.0.0.1/2525"]') == 2, "delivered to the local MTA's SMTP port"
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


def test_xinetd_listens_on_every_listen_address(tmp_path: Path) -> None:
    from mailconf.popimap.superserver import SuperServer
    from mailconf.render import Target

    site = write_site(tmp_path, "pop_imap: {mode: xinetd}\n").read_text()
    site = site.replace("listen: [127.0.0.1]", "listen: [127.0.0.1, 192.0.2.10]")
    (tmp_path / "site.yaml").write_text(site)
    files = SuperServer().render(load_site(tmp_path / "site.yaml"), Target()).files
    binds = sorted(line.split("=")[1].strip() for f in files for line in f.body.splitlines() if "bind" in line)
    assert binds == ["127.0.0.1", "192.0.2.10"]
    assert len({f.path for f in files}) == len(files)


def render_rc(base: Path, site_text: str) -> Path:
    """The fetchmailrc of `site_text` (with FETCHMAIL's password file), written 0600 beside it."""
    secret = base / "isp-password"
    secret.write_text("secret\n")
    secret.chmod(0o600)
    (base / "site.yaml").write_text(site_text)
    (rc,) = Fetchmail().render(load_site(base / "site.yaml"), Target()).files
    path = base / "fetchmailrc"
    path.write_text(rc.body)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("listen", "smtphost"),
    [
        ("[192.0.2.10]", "192.0.2.10/2525"),
        ("['2001:db8::10', 192.0.2.10]", "2001:db8::10/2525"),
        ("[192.0.2.10, '::1']", "::1/2525"),
        ("[192.0.2.10, '::1', 127.0.0.1]", "127.0.0.1/2525"),
        ("[0.0.0.0]", "127.0.0.1/2525"),
        ("[]", "localhost/2525"),
    ],
)
def test_fetchmail_delivers_to_an_address_the_mta_listens_on(tmp_path: Path, listen: str, smtphost: str) -> None:
    realprogs.require("fetchmail")
    site = SITE.format(smtp=2525, pop3=2110, extra=FETCHMAIL, users="root").replace("[127.0.0.1]", listen)
    dump = realprogs.fetchmail_configdump(render_rc(tmp_path, site))
    assert dump.returncode == 0, dump.stderr
    assert dump.stdout.count(f'"smtphunt":["{smtphost}"]') == 2, dump.stdout
    # A numeric smtphost would be fetchmail's RCPT TO domain: the host's own name, local to every MTA, is given.
    assert dump.stdout.count('"smtpaddress":"mail.fetch.test"') == 2


def test_fetchmail_with_the_smtp_port_off_is_refused_located(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(SITE.format(smtp="false", pop3=2110, extra=FETCHMAIL, users="root"))
    done = subprocess.run([sys.executable, "-m", "mailconf", "validate", "-c", site], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{site}:4:17: error: fetchmail hands the mail it collects to the MTA over SMTP" in done.stderr
    assert "hint: turn `smtp` on" in done.stderr


# fetchmail's `--plugin`: a POP3 server on stdin/stdout (so it runs in any network namespace) holding one message;
# it appends the commands it gets to the file named by its first argument.
FAKE_POP3 = r"""
import sys
message = b"From: a@isp.example\r\nSubject: fetched\r\n\r\nhello\r\n"
size = b"%d" % len(message)
replies = {b"CAPA": b"+OK\r\nUSER\r\nUIDL\r\n.", b"STAT": b"+OK 1 " + size, b"LIST": b"+OK\r\n1 " + size + b"\r\n.",
           b"UIDL": b"+OK\r\n1 fetched-1\r\n.", b"RETR": b"+OK\r\n" + message + b"."}
replies[b"TOP"] = replies[b"RETR"]  # fetchmail reads the message with TOP 1 99999999
out = sys.stdout.buffer
out.write(b"+OK fake POP3\r\n"); out.flush()
with open(sys.argv[1], "ab") as log:
    for line in sys.stdin.buffer:
        log.write(line); log.flush()
        words = line.split() or [b""]
        reply = b"+OK 1 " + size if words[:1] == [b"LIST"] and len(words) > 1 else replies.get(words[0].upper())
        out.write((reply or (b"+OK" if words[0].upper() in (b"USER", b"PASS", b"DELE", b"QUIT") else b"-ERR")) + b"\r\n")
        out.flush()
        if words[0].upper() == b"QUIT":
            break
"""


@contextlib.contextmanager
def namespace(listen: str) -> Iterator[realprogs.NetnsPair | None]:
    """`::1` on this host; any other address in a server network namespace that has it."""
    if listen == "::1":
        yield None
        return
    realprogs.require("netns")
    with realprogs.netns_pair(server_addr=listen) as pair:
        yield pair


@pytest.mark.parametrize("listen", ["::1", "198.18.0.1"], ids=["loopback-v6", "one-public-address"])
def test_real_fetchmail_hands_a_message_to_a_real_postfix_listening_on_one_address(tmp_path: Path, listen: str) -> None:
    """Postfix rendered by mailconf listens on `listen` only; fetchmail, on the same host, reaches it there and its
    RCPT TO is a local address (not `joe@198.18.0.1`, which Postfix would refuse as relaying)."""
    from test_probe import NETNS_PORT, postfix

    realprogs.require("fetchmail")
    (tmp_path / "pop3.py").write_text(FAKE_POP3)
    mailbox = "{server: localhost, protocol: pop3, user: joe, password_file: isp-password, ssl: false, "
    site = f"""\
host: {{name: mail.example.test, listen: ['{listen}'], ports: {{smtp: {NETNS_PORT}}}}}
domains: [example.test]
users: [joe]
fetchmail:
  mailboxes:
    - {mailbox}deliver_to: root}}
"""
    rc = render_rc(tmp_path, site)
    assert f'smtphost "{listen}/{NETNS_PORT}"' in rc.read_text()
    with realprogs.open_tmpdir() as keys:
        cert, key = self_signed(keys, "mail.example.test", ec=True)
        tls = cert.read_text(), key.read_text()
    # --sslproto '': the fake server has no STLS, which fetchmail tries anyway; -d0: one poll, in the foreground.
    plugin = f"{sys.executable} {tmp_path / 'pop3.py'} {tmp_path / 'commands'}"
    argv = ["env", f"FETCHMAILHOME={tmp_path}", "fetchmail", "-f", rc, "-d0", "-v", "--nosyslog", "--sslproto", ""]
    argv += ["--plugin", plugin]
    with namespace(listen) as pair:
        netns = pair.server if pair else None
        with postfix(tls, listen=listen, netns=netns):
            done = realprogs.netns_run(netns, argv) if netns else realprogs.run(argv)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output  # 0: mail was retrieved and delivered
    assert f"Trying to connect to {listen}/{NETNS_PORT}...connected" in output
    assert "SMTP> RCPT TO:<root@mail.example.test>" in output and "SMTP< 250 2.1.5 Ok" in output
    assert b"DELE 1" in (tmp_path / "commands").read_bytes(), "deleted at the server once the MTA took it"


# ------------------------------------------------------------------------------------------------ inetd

POP_USER = "mcinetd"
POP_PASSWORD = "inetd-Secret-3"


def require_superserver(path: Path, hint: str) -> None:
    if not path.exists():
        message = f"{path} is missing: {hint}"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)


@contextlib.contextmanager
def served_site(base: Path, mode: str, listen: str) -> Iterator[tuple[Path, int]]:
    """A site whose POP3 the super-server serves (`mode`) on `listen`, applied under base/root, with Dovecot's
    master running and a unix user whose Maildir holds one message."""
    realprogs.require("dovecot")
    pop3 = realprogs.free_port()  # free on 127.0.0.1, and so on ::1 as far as anything here goes
    site = write_site(base, f"pop_imap:\n  protocols: [pop3]\n  mode: {mode}\n", pop3=pop3, users=POP_USER)
    site.write_text(site.read_text().replace("listen: [127.0.0.1]", f"listen: ['{listen}']"))
    self_signed(base / "root/etc/ssl/t", ec=True)
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
    home = base / "home" / POP_USER
    with unix_user(POP_USER, POP_PASSWORD, home):
        maildir = realprogs.owned_dir(home / "Maildir", POP_USER)
        for sub in ("cur", "new", "tmp"):
            realprogs.owned_dir(maildir / sub, POP_USER)
        message = maildir / "new/1700000000.M1P1.mail.fetch.test"
        message.write_text("From: a@fetch.test\nSubject: through-inetd\n\nhello over inetd\n")
        os.chown(message, pwd.getpwnam(POP_USER).pw_uid, pwd.getpwnam(POP_USER).pw_gid)
        dovecot = realprogs.dovecot_start(conf)  # Dovecot's master: authentication, post-login pop3 processes
        try:
            yield base / "root", pop3
        finally:
            realprogs.dovecot_stop(conf)
            realprogs.stop_pid(dovecot)


@contextlib.contextmanager
def running(argv: list[str | Path], listen: str, pop3: int) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert realprogs.wait_for_port(listen, pop3), "the super-server listens on the rendered address and port"
        yield proc
    finally:
        realprogs.stop_pid(proc.pid)
        proc.wait()


@pytest.fixture(params=["127.0.0.1", "::1"])
def listen(request: pytest.FixtureRequest) -> str:
    """The one address the super-server listens on: IPv4 and IPv6 alike."""
    return request.param


@pytest.fixture
def inetd(base: Path, listen: str) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    require_superserver(INETD, "apt-get install openbsd-inetd")
    with (
        served_site(base, "inetd", listen) as (root, pop3),
        running([INETD, "-d", root / "etc/mailconf/inetd.conf"], listen, pop3) as proc,
    ):
        yield proc, pop3, root


@pytest.fixture
def xinetd(base: Path, listen: str) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    require_superserver(XINETD, f"apt-get download xinetd; dpkg -x xinetd_*.deb {realprogs.PROGRAMS_DIR}/xinetd")
    with served_site(base, "xinetd", listen) as (root, pop3):
        conf = base / "xinetd.conf"
        conf.write_text(f"defaults\n{{\n}}\nincludedir {root}/etc/xinetd.d\n")
        argv = [XINETD, "-f", conf, "-dontfork", "-stayalive", "-pidfile", base / "xinetd.pid"]
        with running(argv, listen, pop3) as proc:
            yield proc, pop3, root


def test_inetd_accepts_the_rendered_lines_and_starts_dovecots_login_per_connection(
    inetd: tuple[subprocess.Popen[str], int, Path], listen: str
) -> None:
    proc, pop3, root = inetd
    poplib.POP3(listen, pop3, timeout=5).quit()
    realprogs.stop_pid(proc.pid)
    log = proc.communicate()[0]
    proto = "tcp6" if ":" in listen else "tcp"  # openbsd-inetd takes the IP version from the address
    assert f"ADD: {listen}:{pop3} proto={proto}, wait" in log and "server=/bin/sh" in log, log
    assert "execv /bin/sh" in log and "reaped, status 0" in log, log
    script = (root / "etc/mailconf/inetd.conf").read_text()
    assert f"sh {root}/etc/mailconf/dovecot-login.sh pop3" in script


def login_and_read(listen: str, pop3: int, root: Path) -> None:
    """Clients side by side (one held open), a real login that reads the message, a wrong password refused."""
    greeter = poplib.POP3(listen, pop3, timeout=5)  # held open: the next clients are served meanwhile
    try:
        assert greeter.getwelcome().startswith(b"+OK"), "Dovecot's pop3-login greets through the super-server"
        assert b"through-inetd" in read_pop3(pop3, POP_USER, POP_PASSWORD, listen), "STLS, USER/PASS, RETR"
        client = poplib.POP3(listen, pop3, timeout=5)
        try:
            client.stls(tls_context())
            client.user(POP_USER)
            with pytest.raises(poplib.error_proto, match="-ERR"):
                client.pass_("not-the-password")
        finally:
            client.quit()
    finally:
        greeter.quit()
    log = root / "var/log/dovecot-login-inetd.log"
    logins = log.read_text()
    assert f"Login: user=<{POP_USER}>" in logins, "the login processes' log is where the script says"
    assert f"lip={listen}," in logins, "the client came in on the address the super-server listens on"


def test_a_pop3_login_through_inetd_reads_the_mailbox(
    inetd: tuple[subprocess.Popen[str], int, Path], listen: str
) -> None:
    _, pop3, root = inetd
    login_and_read(listen, pop3, root)


def test_a_pop3_login_through_xinetd_reads_the_mailbox(
    xinetd: tuple[subprocess.Popen[str], int, Path], listen: str
) -> None:
    _, pop3, root = xinetd
    login_and_read(listen, pop3, root)
