"""Helpers the end-to-end tests share: a self-signed certificate, a TLS client context, a real unix account,
POP3/IMAP readers, and small hand-written Exim and Sendmail configs for sandboxes.

Program wrappers (starting, stopping, checking the real daemons) live in tests/realprogs.py.
"""

from __future__ import annotations

import contextlib
import imaplib
import poplib
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import realprogs


def self_signed(directory: Path, common_name: str = "mail.e2e.test", *, ec: bool = False) -> tuple[Path, Path]:
    """cert.pem and key.pem in directory (created), valid 2 days; `ec`: a P-256 key (quicker than RSA)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    newkey = ["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] if ec else ["rsa:2048"]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", *newkey, "-nodes", "-days", "2", "-subj", f"/CN={common_name}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def sha512_crypt(password: str) -> str:
    """A SHA512-CRYPT hash ($6$...) made by openssl (Python's crypt module is going away)."""
    made = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password, capture_output=True, text=True)
    return made.stdout.strip()


def tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test's self-signed certificate
    return context


@contextlib.contextmanager
def unix_user(name: str, password: str, home: Path) -> Iterator[None]:
    """A real unix account (Postfix's local delivery and Dovecot's PAM need one), removed afterwards."""
    subprocess.run(["userdel", "-r", name], capture_output=True)
    subprocess.run(["useradd", "-m", "-d", str(home), "-s", "/bin/false", name], check=True)
    subprocess.run(["chpasswd"], input=f"{name}:{password}", text=True, check=True)
    try:
        yield
    finally:
        subprocess.run(["userdel", "-r", name], capture_output=True)


def read_pop3(port: int, user: str, password: str, host: str = "127.0.0.1") -> bytes:
    """The first message of the user's mailbox, over POP3 with STLS and a login."""
    pop = poplib.POP3(host, port, timeout=10)
    try:
        pop.stls(tls_context())
        pop.user(user)
        pop.pass_(password)
        count, _ = pop.stat()
        assert count >= 1
        return b"\n".join(pop.retr(1)[1])
    finally:
        pop.quit()


def read_imap(port: int, user: str, password: str) -> bytes:
    """The first message of the user's INBOX, over IMAP with STARTTLS and a login."""
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        imap.starttls(tls_context())
        imap.login(user, password)
        imap.select("INBOX")
        _, data = imap.search(None, "ALL")
        first = data[0].split()[0]
        _, fetched = imap.fetch(first, "(RFC822)")
        return fetched[0][1]
    finally:
        imap.logout()


EXIM_RELAY_ACL = """\
  accept domains = +local_domains
  deny message = relay not permitted
"""


def exim_sandbox(
    root: Path, *, port: int = 2525, interface: str = "127.0.0.1", extra: str = "", acl: str = EXIM_RELAY_ACL
) -> Path:
    """An Exim config that accepts mail for example.test (and discards it); spool and log under root.
    `acl`: the body of the rcpt ACL (default: relay for nobody); `extra`: more main options."""
    spool = realprogs.owned_dir(root / "exim-spool", "Debian-exim", 0o750)
    conf = root / "exim.conf"
    conf.write_text(
        f"""\
primary_hostname = mail.example.test
domainlist local_domains = example.test
spool_directory = {spool}
log_file_path = {spool}/%slog
keep_environment =
tls_advertise_hosts =
daemon_smtp_ports = {port}
local_interfaces = {interface}
acl_smtp_rcpt = acl_check_rcpt
{extra}
begin acl
acl_check_rcpt:
{acl}
begin routers
local_domain:
  driver = accept
  domains = +local_domains
  transport = discard

begin transports
discard:
  driver = appendfile
  file = /dev/null
  user = Debian-exim
"""
    )
    return conf


def sendmail_mc(root: Path, *, port: int, addr: str, features: str = "") -> Path:
    """A .mc for a sandboxed Sendmail (queue, aliases, local-host-names under root; local domain
    example.test) listening on addr:port; `features`: more .mc lines (FEATURE(...)dnl)."""
    (root / "mqueue").mkdir(mode=0o700)
    (root / "local-host-names").write_text("example.test\n")
    (root / "aliases").write_text("postmaster: root\n")
    mc = root / "sandbox.mc"
    mc.write_text(
        f"""\
divert(-1)
divert(0)dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `mail.example.test')dnl
define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl
define(`QUEUE_DIR', `{root}/mqueue')dnl
define(`STATUS_FILE', `{root}/sendmail.st')dnl
define(`ALIAS_FILE', `{root}/aliases')dnl
define(`confCW_FILE', `{root}/local-host-names')dnl
FEATURE(`use_cw_file')dnl
FEATURE(`no_default_msa')dnl
{features}DAEMON_OPTIONS(`Port={port}, Addr={addr}, Name=MTA')dnl
MAILER(`local')dnl
MAILER(`smtp')dnl
"""
    )
    return mc
