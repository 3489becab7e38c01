"""End to end: the real Postfix and Dovecot, started from a `mailconf render --root` sandbox on loopback.

Mail sent over SMTP to a local user and to a virtual user is read back over POP3 and IMAP with real logins;
relay tricks from an outside address (presented with XCLIENT, enabled only in this test's copy of the
config) are refused, and the trusted loopback network may relay.
"""

from __future__ import annotations

import imaplib
import json
import shlex
import smtplib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import realprogs
from mailtest import read_imap, read_pop3, self_signed, sha512_crypt, tls_context, unix_user
from relay_tricks import relay_tricks

from mailconf.backends import render_site
from mailconf.render import Target, write_tree
from mailconf.site import parse_site

LOCAL_USER = "mcjoe"
LOCAL_PASSWORD = "joe-Secret-1"
VIRTUAL_USER = "ann@v.e2e.test"
VIRTUAL_PASSWORD = "ann-Secret-2"
OUTSIDE = "203.0.113.5"


def site_text(ports: dict[str, int]) -> str:
    password_hash = sha512_crypt(VIRTUAL_PASSWORD)
    port_lines = "\n".join(f"    {name}: {port}" for name, port in ports.items())
    return f"""
host:
  name: mail.e2e.test
  listen: [127.0.0.1]
  ports:
{port_lines}
domains:
  - e2e.test
  - name: v.e2e.test
    type: virtual
users:
  - {LOCAL_USER}
  - address: {VIRTUAL_USER}
    password_hash: "{{SHA512-CRYPT}}{password_hash}"
aliases:
  info: {LOCAL_USER}
tls:
  cert: /etc/ssl/e2e/cert.pem
  key: /etc/ssl/e2e/key.pem
"""


@pytest.fixture(scope="module")
def mail_host() -> Iterator[dict]:
    for program in ("postfix", "dovecot", "openssl"):
        realprogs.require(program)
    names = ["smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps"]
    ports = {name: realprogs.free_port() for name in names}
    with realprogs.open_tmpdir("mailconf-e2e-") as base:
        root = base / "root"
        site_file = base / "site.yaml"
        site_file.write_text(site_text(ports))
        loaded = parse_site(site_file.read_text(), site_file)
        target = Target(root=str(root), site_name="site.yaml")
        write_tree(render_site(loaded, "postfix", "dovecot", target), root, target, {"mta": "postfix"})
        manifest = json.loads((root / "MANIFEST.json").read_text())

        self_signed(root / "etc/ssl/e2e")
        (root / "var/log").mkdir(parents=True)
        # Test-only additions: XCLIENT from loopback (to present an outside address), a log file to debug.
        with open(root / "etc/postfix/main.cf", "a") as main_cf:
            main_cf.write(
                f"smtpd_authorized_xclient_hosts = 127.0.0.1\nmaillog_file_prefixes = {root}\n"
                f"maillog_file = {root}/var/log/postfix.log\n"
            )
        for command in manifest["commands"]["build"]:
            built = subprocess.run(shlex.split(command), capture_output=True, text=True)
            assert built.returncode == 0, f"{command}: {built.stderr}"

        with unix_user(LOCAL_USER, LOCAL_PASSWORD, base / "home" / LOCAL_USER):
            postfix_dir = root / "etc/postfix"
            dovecot_conf = root / "etc/dovecot/dovecot.conf"
            realprogs.postfix_start(postfix_dir)
            try:
                realprogs.dovecot_start(dovecot_conf)
                try:
                    assert realprogs.wait_for_port("127.0.0.1", ports["smtp"])
                    assert realprogs.wait_for_port("127.0.0.1", ports["imap"])
                    yield {"root": root, "ports": ports, "home": base / "home" / LOCAL_USER}
                finally:
                    realprogs.dovecot_stop(dovecot_conf)
            finally:
                realprogs.postfix_stop(postfix_dir)


def send(port: int, recipient: str, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo("client.e2e.test")
        smtp.sendmail("sender@e2e.test", [recipient], f"Subject: {subject}\r\nTo: {recipient}\r\n\r\nhello\r\n")


def wait_for_file(directory: Path, log: Path, timeout: float = 15.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(directory.glob("*")) if directory.is_dir() else []
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no message arrived in {directory}; Postfix's log:\n{log.read_text()[-3000:]}")


def test_local_user_gets_mail_over_smtp_and_reads_it_over_pop3_and_imap(mail_host: dict) -> None:
    ports = mail_host["ports"]
    send(ports["smtp"], "info@e2e.test", "to-the-local-alias")
    wait_for_file(mail_host["home"] / "Maildir/new", mail_host["root"] / "var/log/postfix.log")
    assert b"to-the-local-alias" in read_imap(ports["imap"], LOCAL_USER, LOCAL_PASSWORD)
    assert b"to-the-local-alias" in read_pop3(ports["pop3"], LOCAL_USER, LOCAL_PASSWORD)


def test_virtual_user_gets_mail_over_smtp_and_reads_it_over_pop3_and_imap(mail_host: dict) -> None:
    ports = mail_host["ports"]
    send(ports["smtp"], VIRTUAL_USER, "to-the-virtual-mailbox")
    wait_for_file(mail_host["root"] / "var/mail/vhosts/v.e2e.test/ann/new", mail_host["root"] / "var/log/postfix.log")
    assert b"to-the-virtual-mailbox" in read_imap(ports["imap"], VIRTUAL_USER, VIRTUAL_PASSWORD)
    assert b"to-the-virtual-mailbox" in read_pop3(ports["pop3"], VIRTUAL_USER, VIRTUAL_PASSWORD)


def test_wrong_password_is_refused_over_imap(mail_host: dict) -> None:
    with pytest.raises(imaplib.IMAP4.error):
        read_imap(mail_host["ports"]["imap"], VIRTUAL_USER, "not-the-password")


def test_dovecot_refuses_logins_before_tls(mail_host: dict) -> None:
    # Dovecot counts loopback connections as secure, so read the running configuration instead of logging in.
    conf = mail_host["root"] / "etc/dovecot/dovecot.conf"
    settings = subprocess.run(
        ["doveconf", "-c", str(conf), "-h", "disable_plaintext_auth", "ssl"], capture_output=True, text=True
    ).stdout.split()
    assert settings == ["yes", "required"]


def rcpt_reply(port: int, mail_from: str, rcpt_to: str, client_addr: str | None) -> int:
    """One relay attempt on a fresh connection (so Postfix's error tarpit never kicks in); RCPT's reply code."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo("client.e2e.test")
        if client_addr:
            code, _ = smtp.docmd("XCLIENT", f"ADDR={client_addr} NAME=[UNAVAILABLE]")
            assert code == 220, "XCLIENT is only enabled in this test's configuration"
            smtp.ehlo("outside.example")
        code, _ = smtp.docmd("MAIL", f"FROM:{mail_from}")
        if code >= 400:
            return code
        code, _ = smtp.docmd("RCPT", f"TO:{rcpt_to}")
        smtp.docmd("RSET")
        return code


def test_outside_client_cannot_relay_through_postfix_with_any_trick(mail_host: dict) -> None:
    port = mail_host["ports"]["smtp"]
    results = {
        name: rcpt_reply(port, mail_from, rcpt_to, OUTSIDE)
        for name, mail_from, rcpt_to in relay_tricks("mail.e2e.test", "127.0.0.1", ["e2e.test", "v.e2e.test"])
    }
    relayed = {name: code for name, code in results.items() if code < 300}
    assert not relayed, f"relayed for an outside client: {relayed}"
    assert all(code >= 500 for code in results.values()), results


def test_outside_client_can_still_deliver_to_local_users(mail_host: dict) -> None:
    assert rcpt_reply(mail_host["ports"]["smtp"], "<a@outside.example>", f"<{LOCAL_USER}@e2e.test>", OUTSIDE) == 250
    assert rcpt_reply(mail_host["ports"]["smtp"], "<a@outside.example>", f"<{VIRTUAL_USER}>", OUTSIDE) == 250


def test_trusted_network_may_relay(mail_host: dict) -> None:
    # 127.0.0.1 is in the site's trusted networks (loopback is always trusted).
    assert rcpt_reply(mail_host["ports"]["smtp"], "<a@e2e.test>", "<victim@foreign.example>", None) == 250


def test_submission_requires_login_before_relaying(mail_host: dict) -> None:
    with smtplib.SMTP("127.0.0.1", mail_host["ports"]["submission"], timeout=10) as smtp:
        smtp.ehlo("client.e2e.test")
        assert "auth" not in smtp.esmtp_features, "AUTH must not be offered before TLS"
        smtp.starttls(context=tls_context())
        smtp.ehlo("client.e2e.test")
        assert "auth" in smtp.esmtp_features
        code, _ = smtp.docmd("MAIL", "FROM:<a@e2e.test>")
        rcpt, _ = smtp.docmd("RCPT", "TO:<victim@foreign.example>")
        assert code >= 500 or rcpt >= 500, "submission must refuse relaying without a login"


def test_submission_relays_for_a_logged_in_user(mail_host: dict) -> None:
    with smtplib.SMTP("127.0.0.1", mail_host["ports"]["submission"], timeout=10) as smtp:
        smtp.ehlo("client.e2e.test")
        smtp.starttls(context=tls_context())
        smtp.ehlo("client.e2e.test")
        smtp.login(VIRTUAL_USER, VIRTUAL_PASSWORD)
        assert smtp.docmd("MAIL", f"FROM:<{VIRTUAL_USER}>")[0] == 250
        assert smtp.docmd("RCPT", "TO:<victim@foreign.example>")[0] == 250
        smtp.docmd("RSET")
