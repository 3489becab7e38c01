"""Smoke tests for tests/realprogs.py: each wrapper drives the real program on a tiny hand-written config."""

from __future__ import annotations

import imaplib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import realprogs
from mailtest import exim_sandbox, sendmail_mc

OUTSIDE_IP = "203.0.113.5"  # TEST-NET-3: an outside client that must not relay


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """Like tmp_path, but reachable by the daemons' unprivileged users (postfix, Debian-exim, dovecot)."""
    with realprogs.open_tmpdir() as path:
        yield path


# ----------------------------------------------------------------------------------------------- Postfix

POSTFIX_MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
smtp      unix  - - n -  - smtp
relay     unix  - - n -  - smtp
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
local     unix  - n n -  - local
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def postfix_sandbox(root: Path, *, port: int = 2525, extra: str = "") -> Path:
    """A Postfix config dir whose queue, data and log live under root, listening on 127.0.0.1:port."""
    etc = root / "postfix"
    etc.mkdir()
    (etc / "main.cf").write_text(
        f"""\
compatibility_level = 3.6
myhostname = mail.example.test
mydomain = example.test
mydestination = example.test
mynetworks = 127.0.0.0/8
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
alias_maps =
alias_database =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_authorized_xclient_hosts = 127.0.0.1
smtpd_error_sleep_time = 0
{extra}"""
    )
    (etc / "master.cf").write_text(POSTFIX_MASTER_CF.format(listen=f"127.0.0.1:{port}"))
    return etc


def test_postconf_n_prints_a_tiny_main_cf_without_warnings(tmp_path: Path) -> None:
    realprogs.require("postconf")
    cp = realprogs.postconf_n(postfix_sandbox(tmp_path))
    assert cp.returncode == 0
    assert "warning:" not in cp.stderr
    assert "myhostname = mail.example.test" in cp.stdout.splitlines()


def test_postconf_n_warns_about_an_unknown_parameter(tmp_path: Path) -> None:
    realprogs.require("postconf")
    cp = realprogs.postconf_n(postfix_sandbox(tmp_path, extra="relay_evrything = yes\n"))
    assert "warning:" in cp.stderr
    assert "relay_evrything" in cp.stderr


def test_postfix_check_passes_on_a_valid_sandbox(tmp_path: Path) -> None:
    realprogs.require("postfix")
    cp = realprogs.postfix_check(postfix_sandbox(tmp_path))
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "fatal" not in cp.stdout
    assert (tmp_path / "queue/maildrop").is_dir()  # check made the queue


def test_postfix_check_rejects_a_bad_inet_protocols_value(tmp_path: Path) -> None:
    realprogs.require("postfix")
    cp = realprogs.postfix_check(postfix_sandbox(tmp_path, extra="inet_protocols = ipv5\n"))
    assert cp.returncode == 1
    assert "unknown inet_protocols value" in cp.stdout


def test_postfix_refuses_to_relay_for_an_outside_client(open_tmp: Path) -> None:
    realprogs.require("postfix")
    realprogs.require("swaks")
    port = realprogs.free_port()
    config = postfix_sandbox(open_tmp, port=port)
    pid = realprogs.postfix_start(config)
    try:
        assert realprogs.wait_for_port("127.0.0.1", port)
        swaks = ["swaks", "--timeout", "10", "--server", "127.0.0.1", "--port", str(port), "--from", "a@outside.test"]
        swaks += ["--xclient-addr", OUTSIDE_IP, "--quit-after", "RCPT"]
        outside = realprogs.run([*swaks, "--to", "victim@foreign.example"])
        local = realprogs.run([*swaks, "--to", "postmaster@example.test"])
    finally:
        realprogs.postfix_stop(config)
    assert outside.returncode == 24, outside.stdout
    assert "554 5.7.1 <victim@foreign.example>: Relay access denied" in outside.stdout
    assert local.returncode == 0, local.stdout
    assert not realprogs.is_running(pid)


# ----------------------------------------------------------------------------------------------- Dovecot


def dovecot_sandbox(root: Path, *, port: int = 10143, extra: str = "") -> Path:
    """A Dovecot config with base_dir, state_dir and log under root; IMAP on 127.0.0.1:port, user alice."""
    for name in ("base", "state"):
        (root / name).mkdir()
    (root / "users").write_text("alice:{PLAIN}secret:65534:65534::/nonexistent\n")
    conf = root / "dovecot.conf"
    conf.write_text(
        f"""\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/base
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 65534
auth_failure_delay = 0
mail_location = maildir:/nonexistent/Maildir
passdb {{
  driver = passwd-file
  args = {root}/users
}}
userdb {{
  driver = passwd-file
  args = {root}/users
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
{extra}"""
    )
    return conf


def test_doveconf_n_accepts_a_tiny_config(tmp_path: Path) -> None:
    realprogs.require("doveconf")
    cp = realprogs.doveconf_n(dovecot_sandbox(tmp_path))
    assert cp.returncode == 0, cp.stderr
    assert "protocols = imap" in cp.stdout


def test_doveconf_n_exits_89_on_an_unknown_setting(tmp_path: Path) -> None:
    realprogs.require("doveconf")
    cp = realprogs.doveconf_n(dovecot_sandbox(tmp_path, extra="mail_plugins_everywhere = yes\n"))
    assert cp.returncode == 89
    assert "Unknown setting: mail_plugins_everywhere" in cp.stderr


def test_dovecot_serves_an_imap_login(open_tmp: Path) -> None:
    realprogs.require("dovecot")
    port = realprogs.free_port()
    conf = dovecot_sandbox(open_tmp, port=port)
    pid = realprogs.dovecot_start(conf)
    try:
        assert realprogs.wait_for_port("127.0.0.1", port)
        with imaplib.IMAP4("127.0.0.1", port) as imap:
            assert imap.welcome.startswith(b"* OK")
            assert imap.login("alice", "secret")[0] == "OK"
        with imaplib.IMAP4("127.0.0.1", port) as imap, pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            imap.login("alice", "wrong")
    finally:
        realprogs.dovecot_stop(conf)
    assert not realprogs.is_running(pid)


# ----------------------------------------------------------------------------------------------- Exim


def test_exim_bv_accepts_a_minimal_config(open_tmp: Path) -> None:
    realprogs.require("exim")
    cp = realprogs.exim(["-C", exim_sandbox(open_tmp), "-bV"])
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert cp.stdout.startswith("Exim version 4.")
    assert f"Configuration file is {open_tmp}/exim.conf" in cp.stdout


def test_exim_bv_rejects_an_unknown_option(open_tmp: Path) -> None:
    realprogs.require("exim")
    cp = realprogs.exim(["-C", exim_sandbox(open_tmp, extra="relay_to_everyone = true"), "-bV"])
    assert cp.returncode == 1
    assert 'main option "relay_to_everyone" unknown' in cp.stdout + cp.stderr


def test_exim_bt_routes_local_and_not_foreign_addresses(open_tmp: Path) -> None:
    realprogs.require("exim")
    conf = exim_sandbox(open_tmp)
    local = realprogs.exim(["-C", conf, "-bt", "alice@example.test"])
    foreign = realprogs.exim(["-C", conf, "-bt", "victim@foreign.example"])
    assert local.returncode == 0, local.stdout + local.stderr
    assert "router = local_domain, transport = discard" in local.stdout
    assert foreign.returncode == 2
    assert "Unrouteable address" in foreign.stdout


SMTP_DIALOGUE = (
    "EHLO client.outside.test\r\n"
    "MAIL FROM:<a@outside.test>\r\n"
    "RCPT TO:<victim@foreign.example>\r\n"
    "RCPT TO:<alice@example.test>\r\n"
    "QUIT\r\n"
)


def test_exim_heavy_build_has_the_dovecot_authenticator(open_tmp: Path) -> None:
    realprogs.require("exim-heavy")
    cp = realprogs.exim(["-C", exim_sandbox(open_tmp), "-bV"], tree=realprogs.EXIM_HEAVY_ROOT)
    light = realprogs.exim(["-C", open_tmp / "exim.conf", "-bV"])
    authenticators = [line for line in cp.stdout.splitlines() if line.startswith("Authenticators:")]
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "dovecot" in authenticators[0].split()
    assert "dovecot" not in light.stdout


def test_exim_bh_refuses_to_relay_for_an_outside_client(open_tmp: Path) -> None:
    realprogs.require("exim")
    cp = realprogs.exim(["-C", exim_sandbox(open_tmp), "-bh", OUTSIDE_IP], stdin=SMTP_DIALOGUE)
    replies = [line for line in cp.stdout.splitlines() if line[:3].isdigit()]
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "550 relay not permitted" in replies
    assert "250 Accepted" in replies


def test_exim_daemon_greets_on_a_loopback_port(open_tmp: Path) -> None:
    realprogs.require("exim")
    port = realprogs.free_port()
    pid = realprogs.exim_daemon_start(exim_sandbox(open_tmp, port=port), open_tmp / "exim.pid")
    try:
        assert realprogs.wait_for_port("127.0.0.1", port)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            banner = conn.makefile("rb").readline().decode()
            conn.sendall(b"QUIT\r\n")
    finally:
        realprogs.stop_pid(pid)
    assert banner.startswith("220 mail.example.test ESMTP Exim 4.")
    assert not realprogs.is_running(pid)


# ----------------------------------------------------------------------------------------------- Sendmail


def sendmail_sandbox(root: Path, *, port: int = 2525) -> Path:
    """A .mc for a sandboxed Sendmail: local domain example.test, 127.0.0.1 may relay (access map)."""
    (root / "access").write_text("Connect:127.0.0.1\tRELAY\n")
    access_db = f"FEATURE(`access_db', `hash -T<TMPF> -o {root}/access')dnl\n"
    return sendmail_mc(root, port=port, addr="127.0.0.1", features=access_db)


def build_sendmail_cf(root: Path, **kwargs: int) -> Path:
    cf = root / "sendmail.cf"
    cp = realprogs.m4_sendmail_cf(sendmail_sandbox(root, **kwargs), cf)
    assert cp.returncode == 0, cp.stderr
    made = realprogs.makemap(cf, "hash", root / "access")
    assert made.returncode == 0, made.stderr
    return cf


def test_m4_builds_a_sendmail_cf_from_a_minimal_mc(tmp_path: Path) -> None:
    realprogs.require("m4")
    realprogs.require("sendmail-cf")
    cf = tmp_path / "sendmail.cf"
    cp = realprogs.m4_sendmail_cf(sendmail_sandbox(tmp_path), cf)
    assert cp.returncode == 0, cp.stderr
    assert "O DontBlameSendmail=TrustStickyBit" in cf.read_text().splitlines()
    assert cp.stdout == cf.read_text()


def test_m4_reports_an_unknown_feature(tmp_path: Path) -> None:
    realprogs.require("sendmail-cf")
    mc = tmp_path / "bad.mc"
    mc.write_text("OSTYPE(`linux')dnl\nFEATURE(`relay_everything')dnl\n")
    cp = realprogs.m4_sendmail_cf(mc)
    assert cp.returncode != 0
    assert "relay_everything" in cp.stderr


def test_makemap_builds_the_access_db(tmp_path: Path) -> None:
    realprogs.require("makemap")
    cf = tmp_path / "sendmail.cf"
    assert realprogs.m4_sendmail_cf(sendmail_sandbox(tmp_path), cf).returncode == 0
    cp = realprogs.makemap(cf, "hash", tmp_path / "access")
    assert cp.returncode == 0, cp.stderr
    assert (tmp_path / "access.db").stat().st_size > 0


def test_sendmail_bt_denies_relaying_for_an_outside_client(tmp_path: Path) -> None:
    realprogs.require("sendmail")
    cf = build_sendmail_cf(tmp_path)

    def check_rcpt(client: str, rcpt: str) -> str:
        cp = realprogs.sendmail(["-C", cf, "-bt"], stdin=f".D{{client_addr}}{client}\ncheck_rcpt <{rcpt}>\n")
        assert cp.returncode == 0, cp.stdout + cp.stderr
        return next(line for line in cp.stdout.splitlines() if line.startswith("check_rcpt       returns:"))

    assert "550 Relaying denied" in check_rcpt(OUTSIDE_IP, "victim@foreign.example")
    assert check_rcpt("127.0.0.1", "victim@foreign.example").endswith("returns: RELAY")  # access map
    assert check_rcpt(OUTSIDE_IP, "postmaster@example.test").endswith("returns: RELAY")  # local domain


def test_sendmail_daemon_greets_on_a_loopback_port(open_tmp: Path) -> None:
    realprogs.require("sendmail")
    port = realprogs.free_port()
    cf = build_sendmail_cf(open_tmp, port=port)
    pid = realprogs.sendmail_daemon_start(cf, open_tmp / "sendmail.pid")
    try:
        assert realprogs.wait_for_port("127.0.0.1", port)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            banner = conn.makefile("rb").readline().decode()
            conn.sendall(b"QUIT\r\n")
    finally:
        realprogs.stop_pid(pid)
    assert banner.startswith("220 mail.example.test ESMTP Sendmail 8.")
    assert not realprogs.is_running(pid)


# ----------------------------------------------------------------------------------------------- qmail, fetchmail


def test_tcprules_grants_relayclient_only_to_the_trusted_range(tmp_path: Path) -> None:
    realprogs.require("tcprules")
    realprogs.require("tcprulescheck")
    rules = tmp_path / "tcp.smtp"
    rules.write_text('127.:allow,RELAYCLIENT=""\n198.18.0.:allow,RELAYCLIENT=""\n:allow\n')
    cdb = tmp_path / "tcp.smtp.cdb"
    assert realprogs.tcprules(rules, cdb).returncode == 0
    trusted = realprogs.tcprulescheck(cdb, "198.18.0.2")
    outside = realprogs.tcprulescheck(cdb, OUTSIDE_IP)
    assert "set environment variable RELAYCLIENT=" in trusted.stdout
    assert "allow connection" in trusted.stdout
    assert "RELAYCLIENT" not in outside.stdout
    assert "allow connection" in outside.stdout


def test_tcprules_rejects_a_malformed_rule(tmp_path: Path) -> None:
    realprogs.require("tcprules")
    rules = tmp_path / "tcp.smtp"
    rules.write_text("127.:frobnicate\n")
    cp = realprogs.tcprules(rules, tmp_path / "tcp.smtp.cdb")
    assert cp.returncode == 100
    assert "unable to parse" in cp.stderr
    assert not (tmp_path / "tcp.smtp.cdb.tmp").exists()


def test_fetchmail_configdump_parses_a_tiny_rc(tmp_path: Path) -> None:
    realprogs.require("fetchmail")
    rc = tmp_path / "fetchmailrc"
    rc.write_text('poll pop.example.test protocol pop3 port 10110\n  user "alice" there with password "secret"\n')
    rc.chmod(0o600)
    cp = realprogs.fetchmail_configdump(rc)
    assert cp.returncode == 0, cp.stderr
    assert '"pollname":"pop.example.test"' in cp.stdout
    assert '"protocol":"POP3"' in cp.stdout


def test_fetchmail_configdump_exits_5_on_a_syntax_error(tmp_path: Path) -> None:
    realprogs.require("fetchmail")
    rc = tmp_path / "fetchmailrc"
    rc.write_text("poll pop.example.test protocol\n")
    rc.chmod(0o600)
    cp = realprogs.fetchmail_configdump(rc)
    assert cp.returncode == 5
    assert "syntax error" in cp.stderr


# ----------------------------------------------------------------------------------------------- netns

ECHO_PEER = """\
import socket, sys
srv = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
conn, peer = srv.accept()
conn.sendall(peer[0].encode())
conn.close()
"""


def test_netns_pair_connects_client_and_server_across_the_veth() -> None:
    realprogs.require("netns")
    realprogs.require("ping")
    with realprogs.netns_pair() as pair:
        ping = realprogs.netns_run(pair.client, ["ping", "-c", "1", "-W", "2", pair.server_addr])
        assert ping.returncode == 0, ping.stdout + ping.stderr
        # A TCP server in the server namespace sees the client's test address as its peer.
        server = subprocess.Popen(
            ["ip", "netns", "exec", pair.server, sys.executable, "-c", ECHO_PEER, pair.server_addr, "2525"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None and server.stdout.readline() == "listening\n"
            code = f"import socket; print(socket.create_connection(({pair.server_addr!r}, 2525), 5).recv(64).decode())"
            client = realprogs.netns_run(pair.client, [sys.executable, "-c", code], timeout=10)
        finally:
            realprogs.stop_pid(server.pid)
            server.wait()
        assert client.stdout.strip() == pair.client_addr
        # Not reachable from the host: the addresses exist only inside the namespaces.
        assert realprogs.run(["ip", "-o", "addr"]).stdout.count(pair.server_addr) == 0
    assert pair.server not in realprogs.run(["ip", "netns", "list"]).stdout


def test_exim_daemon_in_a_netns_refuses_to_relay_for_the_outside_client(open_tmp: Path) -> None:
    realprogs.require("exim")
    realprogs.require("swaks")
    realprogs.require("netns")
    with realprogs.netns_pair() as pair:
        conf = exim_sandbox(open_tmp, port=2525, interface=pair.server_addr)
        pid = realprogs.exim_daemon_start(conf, open_tmp / "exim.pid", netns=pair.server)
        try:
            assert realprogs.wait_for_port(pair.server_addr, 2525, netns=pair.client)
            swaks = ["swaks", "--timeout", "10", "--server", pair.server_addr, "--port", "2525"]
            swaks += ["--from", "a@outside.test", "--to", "victim@foreign.example", "--quit-after", "RCPT"]
            refused = realprogs.netns_run(pair.client, swaks)
        finally:
            realprogs.stop_pid(pid)
    assert refused.returncode == 24, refused.stdout
    assert "550 relay not permitted" in refused.stdout
    log = (open_tmp / "exim-spool/rejectlog").read_text()
    assert f"[{pair.client_addr}]" in log
