"""Sendmail 8: every site renders into a sendmail.mc that Sendmail's own m4 macros turn into sendmail.cf, and the
real `sendmail -bt` rule sets then make the relay decisions a closed server must make.

Address tests run check_rcpt with {client_addr} set, as the SMTP server does: an outside client (203.0.113.5)
may send to our own domains but every relay trick of ../shared/notes/relay-tricks.md is refused; a client in a
trusted network may relay. A trick that check_rcpt lets through as a local address must resolve (ruleset 0)
to a local mailer, never to one that sends mail out.

Live: the real sendmail daemon on loopback delivers (through Dovecot's LDA) to a virtual mailbox and to a unix
user's Maildir, both read back over IMAP from the real Dovecot; in network namespaces, an outside host's relay
tricks get 5xx from the running daemon, and on the submission port it must STARTTLS and log in (AUTH through
Cyrus SASL and saslauthd, which asks Dovecot's IMAP) before it may relay.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import realprogs
from corpus import VARIED, all_sites, write_site
from mailtest import read_imap, read_pop3, self_signed, sha512_crypt, unix_user
from relay_tricks import FOREIGN, USER, relay_tricks

from mailconf.backends import render_site
from mailconf.errors import MailconfError, RenderRefused
from mailconf.render import Rendering, Target, write_tree
from mailconf.site import LoadedSite, load_site

OUTSIDE = "203.0.113.5"
SERVER_IP = "127.0.0.1"  # an address of this machine: Sendmail counts [127.0.0.1] as itself
ACCEPTED = {"OK", "RELAY"}
OUTBOUND_MAILERS = {"smtp", "esmtp", "smtp8", "dsmtp", "relay"}
VENV_BIN = Path(sys.executable).parent


@dataclass
class Built:
    loaded: LoadedSite
    rendering: Rendering
    root: Path
    cf: Path


def build(site_file: Path, root: Path) -> Built:
    """Render with --root, build sendmail.cf with m4, the maps with makemap and the aliases with sendmail -bi."""
    loaded = load_site(site_file)
    target = Target(root=str(root), site_name=site_file.name)
    rendering = render_site(loaded, "sendmail", "dovecot", target)
    write_tree(rendering, root, target, {"mta": "sendmail", "pop_imap": "dovecot"})
    cf = root / "etc/mail/sendmail.cf"
    m4 = realprogs.m4_sendmail_cf(root / "etc/mail/sendmail.mc", cf)
    assert m4.returncode == 0 and not m4.stderr.strip(), m4.stderr
    for file in rendering.files:
        if file.build and file.build.startswith("makemap"):
            made = realprogs.makemap(cf, "hash", root / file.path.lstrip("/"))
            assert made.returncode == 0, f"{file.path}: {made.stderr}"
    aliases = realprogs.sendmail(["-C", cf, "-bi"])
    assert aliases.returncode == 0, aliases.stdout + aliases.stderr
    return Built(loaded, rendering, root, cf)


def client_addr(address: str) -> str:
    """{client_addr} as Sendmail sets it: dotted IPv4, or IPv6: and uncompressed groups."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return str(ip)
    return "IPv6:" + ":".join(format(int(g, 16), "x") for g in ip.exploded.split(":"))


def check_rcpt(cf: Path, client: str, tests: list[tuple[str, str]]) -> list[str]:
    """What check_rcpt returns for each (MAIL FROM, RCPT TO) from `client`, in one `sendmail -bt` session."""
    lines = [f".D{{client_addr}}{client_addr(client)}"]
    for sender, recipient in tests:
        lines += [f".D{{mail_from}}{sender}", f"check_rcpt {recipient}"]
    cp = realprogs.sendmail(["-C", cf, "-bt"], stdin="\n".join(lines) + "\n")
    results = re.findall(r"^check_rcpt\s+returns: (.*)$", cp.stdout, re.MULTILINE)
    assert len(results) == len(tests), cp.stdout[-2000:] + cp.stderr
    return results


def mailers(cf: Path, addresses: list[str]) -> list[str]:
    """The mailer ruleset 0 chooses for each envelope recipient (`/parse`): local, vmail, relay, *error*, ..."""
    stdin = "".join(f"/parse {a}\n" for a in addresses)
    cp = realprogs.sendmail(["-C", cf, "-bt"], stdin=stdin)
    results = re.findall(r"^mailer ([^,\s]+)", cp.stdout, re.MULTILINE)
    assert len(results) == len(addresses), cp.stdout[-2000:] + cp.stderr
    return results


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    for program in ("m4", "sendmail-cf", "sendmail", "makemap"):
        realprogs.require(program)
    base = tmp_path_factory.mktemp("sendmail")
    sites = all_sites(base / "sites")
    return {name: build(path, base / "out" / re.sub(r"\W", "_", name)) for name, path in sites.items()}


SITE_NAMES = [*VARIED, "example:site.yaml", "example:virtual-hosting.yaml", "example:bulk/site.yaml"]


def test_corpus_covers_every_shipped_example(corpus: dict[str, Built]) -> None:
    assert sorted(corpus) == sorted(SITE_NAMES)


@pytest.mark.parametrize("name", SITE_NAMES)
def test_m4_builds_a_sendmail_cf_that_names_the_rendered_files(corpus: dict[str, Built], name: str) -> None:
    built = corpus[name]
    cf = built.cf.read_text()
    etc = built.root / "etc/mail"
    for path in ("local-host-names", "relay-domains", "access", "virtusertable", "mailertable"):
        assert str(etc / path) in cf, path
        assert (etc / path).exists()
    assert (etc / "access.db").exists() and (etc / "aliases.db").exists()
    assert f"Dj{built.loaded.site.host.name}" in cf
    assert f"O MaxMessageSize={built.loaded.site.message_size_limit}" in cf
    assert re.search(r"^O AuthOptions=.*\bp\b", cf, re.MULTILINE), "plaintext logins must need TLS"
    for feature in ("promiscuous_relay", "relay_entire_domain", "relay_based_on_MX", "loose_relay_check"):
        assert feature not in (etc / "sendmail.mc").read_text()
    # The rendering's own check command: the configuration loads and postmaster resolves through the aliases
    # (to a unix account the site names, which need not exist on this test machine).
    assert f"sendmail -C {built.cf} -bv postmaster" in built.rendering.commands["check"]
    verified = realprogs.sendmail(["-C", built.cf, "-bv", "postmaster"])
    assert not verified.stderr.strip(), verified.stderr
    assert verified.stdout.startswith(f"{built.loaded.site.postmaster_target}... "), verified.stdout


@pytest.mark.parametrize("name", SITE_NAMES)
def test_outside_client_cannot_relay_through_sendmail(corpus: dict[str, Built], name: str) -> None:
    built = corpus[name]
    site = built.loaded.site
    tricks = relay_tricks(site.host.name, SERVER_IP, [d.name for d in site.domains])
    results = check_rcpt(built.cf, OUTSIDE, [(sender, rcpt) for _, sender, rcpt in tricks])
    accepted = [(trick, rcpt) for (trick, _, rcpt), result in zip(tricks, results, strict=True) if result in ACCEPTED]
    for (trick, _, _), result in zip(tricks, results, strict=True):
        assert result in ACCEPTED or "Relaying denied" in result or "$# error" in result, (trick, result)
    # A trick accepted as an address of ours must stay here: resolved to a local mailer, not sent out.
    routes = mailers(built.cf, [rcpt.strip("<>") for _, rcpt in accepted])
    for (trick, rcpt), mailer in zip(accepted, routes, strict=True):
        assert mailer not in OUTBOUND_MAILERS, f"{trick}: {rcpt} relayed through {mailer}"
    assert mailers(built.cf, [f"{USER}@{FOREIGN}"])[0] in OUTBOUND_MAILERS  # the oracle can see a relay


@pytest.mark.parametrize("name", SITE_NAMES)
def test_outside_client_can_send_to_every_domain_of_ours(corpus: dict[str, Built], name: str) -> None:
    site = corpus[name].loaded.site
    recipients = [f"<postmaster@{d.name}>" for d in site.domains] + [f"<x@{d}>" for d in site.relay_domains]
    recipients += [f"<{u.address}>" for u in site.virtual_users]
    results = check_rcpt(corpus[name].cf, OUTSIDE, [("<sender@outside.example>", r) for r in recipients])
    assert all(r in ACCEPTED for r in results), list(zip(recipients, results, strict=True))


@pytest.mark.parametrize("name", SITE_NAMES)
def test_trusted_networks_may_relay_and_their_neighbours_may_not(corpus: dict[str, Built], name: str) -> None:
    site = corpus[name].loaded.site
    networks = [ipaddress.ip_network(n) for n in site.trusted_networks]
    foreign = [("<joe@inside.example>", f"<{USER}@{FOREIGN}>")]
    for network in networks:
        inside = network[1] if network.num_addresses > 1 else network[0]
        assert check_rcpt(corpus[name].cf, str(inside), foreign) == ["RELAY"], network
        neighbour = network.broadcast_address + 1
        if not any(neighbour in n for n in networks):
            assert "Relaying denied" in check_rcpt(corpus[name].cf, str(neighbour), foreign)[0], network


@pytest.mark.parametrize("name", SITE_NAMES)
def test_mailconf_lint_finds_no_relay_error_in_the_rendered_sendmail_files(corpus: dict[str, Built], name: str) -> None:
    from mailconf.lint.engine import lint, load

    etc = str(corpus[name].root / "etc/mail")
    assert load([etc], "sendmail").get("sendmail"), "the linter must have read the rendered .mc"
    findings = lint([etc], "sendmail")
    # Warnings may remain where the site itself chose so (a wide private trusted range); errors may not.
    assert [f for f in findings if f.severity == "error"] == []
    site_networks = " ".join(corpus[name].loaded.site.trusted_networks)
    assert all(f.message.split(": ")[-1].split()[0] in site_networks for f in findings), findings


def test_relay_domain_is_exact_not_its_subdomains(corpus: dict[str, Built]) -> None:
    built = corpus["example:virtual-hosting.yaml"]
    tests = [("<a@outside.example>", "<x@partner.example>"), ("<a@outside.example>", "<x@sub.partner.example>")]
    exact, sub = check_rcpt(built.cf, OUTSIDE, tests)
    assert exact == "RELAY"
    assert "Relaying denied" in sub


def test_mail_is_routed_to_local_virtual_and_outbound_mailers(corpus: dict[str, Built]) -> None:
    built = corpus["example:virtual-hosting.yaml"]
    addresses = [
        "joe@club.example",  # virtual mailbox: Dovecot's LDA as the virtual uid
        "nobody@club.example",  # unknown in a virtual domain without catch-all
        "admin@club.example",  # a unix account's name in a virtual domain is not that account
        "whatever@shop.example",  # catch-all -> orders@shop.example, a virtual mailbox
        "admin@hosting.example",  # unix account
        "board@club.example",  # list alias through the aliases file
        f"{USER}@{FOREIGN}",  # outbound, through the smarthost
    ]
    assert mailers(built.cf, addresses) == ["vmail", "*error*", "*error*", "vmail", "local", "local", "relay"]
    cp = realprogs.sendmail(["-C", built.cf, "-bt"], stdin=f"/parse {USER}@{FOREIGN}\n")
    assert "host [smtp.provider.example]" in cp.stdout
    assert "A=/usr/lib/dovecot/dovecot-lda -c " in built.cf.read_text()


def test_catch_all_in_a_local_domain_keeps_existing_addresses(corpus: dict[str, Built]) -> None:
    built = corpus["mbox-and-catch-all"]
    cp = realprogs.sendmail(["-C", built.cf, "-bt"], stdin="/parse sue@example.org\n/parse nobody@example.org\n")
    users = re.findall(r"^mailer local, user (\S+)", cp.stdout, re.MULTILINE)
    assert users == ["sue", "joe"]


def test_smarthost_login_is_a_secret_map_with_base64_password(corpus: dict[str, Built]) -> None:
    built = corpus["smarthost-with-login"]
    authinfo = next(f for f in built.rendering.files if f.path == "/etc/mail/authinfo")
    assert authinfo.mode == 0o600 and authinfo.secret
    assert (built.root / "etc/mail/authinfo").stat().st_mode & 0o077 == 0
    assert "s3cret pass" not in authinfo.body
    assert f'"P={base64.b64encode(b"s3cret pass").decode()}"' in authinfo.body
    assert (built.root / "etc/mail/authinfo.db").exists()
    assert "TCP $h 2525" in built.cf.read_text()


def test_manifest_names_m4_and_makemap_builds(corpus: dict[str, Built]) -> None:
    built = corpus["example:virtual-hosting.yaml"]
    builds = built.rendering.commands["build"]
    assert builds[0].startswith("m4 /usr/share/sendmail/cf/m4/cf.m4 ")
    maps = {f.path for f in built.rendering.files if f.build and f.build.startswith("makemap")}
    assert maps == {f"/etc/mail/{m}" for m in ("access", "virtusertable", "mailertable", "vmailbox")}


def test_overrides_cannot_open_a_relay(tmp_path: Path) -> None:
    site = write_site("minimal", tmp_path)
    site.write_text(site.read_text() + 'overrides:\n  sendmail: ["FEATURE(`promiscuous_relay\')dnl"]\n')
    with pytest.raises(MailconfError, match="promiscuous_relay"):
        render_site(load_site(site), "sendmail", None, Target(root=str(tmp_path / "out")))


def test_trusted_network_sendmail_cannot_list_is_refused_by_name(tmp_path: Path) -> None:
    site = write_site("minimal", tmp_path)
    site.write_text(site.read_text() + 'trusted_networks: ["fd00::/17"]\n')
    with pytest.raises(RenderRefused, match=r"fd00::/17 needs more than \d+ sendmail access entries"):
        render_site(load_site(site), "sendmail", None, Target(root=str(tmp_path / "out")))


def test_override_lines_reach_sendmail_cf(tmp_path: Path) -> None:
    realprogs.require("m4")
    site = write_site("minimal", tmp_path)
    site.write_text(site.read_text() + "overrides:\n  sendmail: [\"define(`confMAX_RCPTS_PER_MESSAGE', `77')dnl\"]\n")
    built = build(site, tmp_path / "out")
    assert "O MaxRecipientsPerMessage=77" in built.cf.read_text()


def test_cli_renders_the_example_site_for_sendmail(tmp_path: Path) -> None:
    site = Path(__file__).parent.parent / "examples/site.yaml"
    cp = subprocess.run(
        [VENV_BIN / "mailconf", "render", "--mta", "sendmail", "--root", tmp_path, "-c", site],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cp.returncode == 0, cp.stderr
    assert (tmp_path / "etc/mail/sendmail.mc").exists()
    assert "Connect:192.168.10\tRELAY" in (tmp_path / "etc/mail/access").read_text()


# --------------------------------------------------------------------------------------------- end to end

E2E_USER = "mcsmjoe"  # a unix account of this test only
E2E_PASSWORD = "joe-Secret-3"
E2E_VIRTUAL = "ann@v.e2e.test"
E2E_VIRTUAL_PASSWORD = "ann-Secret-4"


def e2e_site(smtp: int, imap: int, pop3: int) -> str:
    password_hash = sha512_crypt(E2E_VIRTUAL_PASSWORD)
    return f"""
host:
  name: mail.e2e.test
  listen: [127.0.0.1]
  ports: {{smtp: {smtp}, submission: false, smtps: false, pop3: {pop3}, pop3s: false, imap: {imap}, imaps: false}}
domains:
  - e2e.test
  - {{name: v.e2e.test, type: virtual}}
users:
  - {E2E_USER}
  - {{address: {E2E_VIRTUAL}, password_hash: "{{SHA512-CRYPT}}{password_hash}"}}
aliases: {{info: {E2E_USER}}}
tls: {{cert: /etc/ssl/e2e/cert.pem, key: /etc/ssl/e2e/key.pem}}
"""


@pytest.fixture(scope="module")
def live_sendmail() -> Iterator[dict]:
    """The real sendmail daemon and Dovecot, both from one rendered --root sandbox, on loopback high ports."""
    for program in ("m4", "sendmail-cf", "sendmail", "makemap", "dovecot", "openssl"):
        realprogs.require(program)
    ports = {"smtp": realprogs.free_port(), "imap": realprogs.free_port(), "pop3": realprogs.free_port()}
    with realprogs.open_tmpdir("mailconf-sendmail-") as base:
        site = base / "site.yaml"
        site.write_text(e2e_site(**ports))
        _, key = self_signed(base / "root/etc/ssl/e2e")
        key.chmod(0o644)  # a throwaway test key; the LDA runs as the virtual uid and reads dovecot.conf
        built = build(site, base / "root")
        home = base / "home" / E2E_USER
        subprocess.run(["userdel", "-r", E2E_USER], capture_output=True)
        subprocess.run(["useradd", "-m", "-d", str(home), "-s", "/bin/false", E2E_USER], check=True)
        try:
            subprocess.run(["chpasswd"], input=f"{E2E_USER}:{E2E_PASSWORD}", text=True, check=True)
            conf = built.root / "etc/dovecot/dovecot.conf"
            realprogs.dovecot_start(conf)
            try:
                pid = realprogs.sendmail_daemon_start(built.cf, base / "sendmail.pid")
                try:
                    assert realprogs.wait_for_port("127.0.0.1", ports["smtp"])
                    assert realprogs.wait_for_port("127.0.0.1", ports["imap"])
                    yield {"root": built.root, "ports": ports, "home": home}
                finally:
                    realprogs.stop_pid(pid)
            finally:
                realprogs.dovecot_stop(conf)
        finally:
            subprocess.run(["userdel", "-r", E2E_USER], capture_output=True)


def smtp_send(port: int, recipient: str, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as smtp:
        smtp.ehlo("client.e2e.test")
        smtp.sendmail("sender@mail.e2e.test", [recipient], f"Subject: {subject}\r\nTo: {recipient}\r\n\r\nhello\r\n")


def rcpt_code(port: int, recipient: str) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as smtp:
        smtp.ehlo("client.e2e.test")
        assert smtp.docmd("MAIL", "FROM:<sender@mail.e2e.test>")[0] == 250
        code = smtp.docmd("RCPT", f"TO:<{recipient}>")[0]
        smtp.docmd("RSET")
        return code


def wait_for_message(directory: Path, subject: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if directory.is_dir() and any(subject.encode() in f.read_bytes() for f in directory.iterdir()):
            return
        time.sleep(0.1)
    raise AssertionError(f"no message {subject!r} in {directory}")


def test_sendmail_delivers_to_a_virtual_mailbox_that_dovecot_serves(live_sendmail: dict) -> None:
    smtp_send(live_sendmail["ports"]["smtp"], E2E_VIRTUAL, "to-the-virtual-mailbox")
    wait_for_message(live_sendmail["root"] / "var/mail/vhosts/v.e2e.test/ann/new", "to-the-virtual-mailbox")
    ports = live_sendmail["ports"]
    assert b"to-the-virtual-mailbox" in read_imap(ports["imap"], E2E_VIRTUAL, E2E_VIRTUAL_PASSWORD)
    assert b"to-the-virtual-mailbox" in read_pop3(ports["pop3"], E2E_VIRTUAL, E2E_VIRTUAL_PASSWORD)


def test_sendmail_delivers_to_a_local_users_maildir_through_an_alias(live_sendmail: dict) -> None:
    smtp_send(live_sendmail["ports"]["smtp"], "info@e2e.test", "to-the-local-alias")
    wait_for_message(live_sendmail["home"] / "Maildir/new", "to-the-local-alias")
    ports = live_sendmail["ports"]
    assert b"to-the-local-alias" in read_imap(ports["imap"], E2E_USER, E2E_PASSWORD)
    assert b"to-the-local-alias" in read_pop3(ports["pop3"], E2E_USER, E2E_PASSWORD)


def test_sendmail_refuses_unknown_recipients_at_rcpt(live_sendmail: dict) -> None:
    port = live_sendmail["ports"]["smtp"]
    assert rcpt_code(port, "no-such-user@e2e.test") == 550  # no unix account or alias of that name
    assert rcpt_code(port, "nobody@v.e2e.test") == 550  # no such virtual mailbox
    assert rcpt_code(port, f"{E2E_USER}@v.e2e.test") == 550  # a unix name is not a virtual address
    assert rcpt_code(port, E2E_VIRTUAL) == 250


RELAY_CLIENT = """
import json, smtplib, sys
host, port, tests = json.loads(sys.argv[1])
codes = []
for mail_from, rcpt_to in tests:  # a fresh connection per attempt: no error throttling in between
    with smtplib.SMTP(host, port, timeout=20) as smtp:
        smtp.ehlo("client.mailconf.test")
        code = smtp.docmd("MAIL", "FROM:" + mail_from)[0]
        codes.append(smtp.docmd("RCPT", "TO:" + rcpt_to)[0] if code < 400 else code)
print(json.dumps(codes))
"""


def test_outside_host_cannot_relay_through_the_running_sendmail(tmp_path: Path) -> None:
    """A real client in its own network namespace (an outside address) against the daemon in another."""
    for program in ("m4", "sendmail-cf", "sendmail", "makemap", "netns"):
        realprogs.require(program)
    server = realprogs.NETNS_SERVER_ADDR
    site = tmp_path / "site.yaml"
    site.write_text(
        f"host: {{name: mail.e2e.test, listen: [{server}], ports: {{smtp: 2525, submission: false, smtps: false}}}}\n"
        "domains: [e2e.test]\nusers: [joe]\n"
    )
    built = build(site, tmp_path / "root")
    tricks = relay_tricks("mail.e2e.test", server, ["e2e.test"])
    tests = [(sender, rcpt) for _, sender, rcpt in tricks] + [("<a@mail.e2e.test>", "<postmaster@e2e.test>")]
    with realprogs.netns_pair() as pair:
        pid = realprogs.sendmail_daemon_start(built.cf, tmp_path / "sendmail.pid", netns=pair.server)
        try:
            assert realprogs.wait_for_port(server, 2525, netns=pair.client)
            cp = realprogs.netns_run(
                pair.client, [sys.executable, "-c", RELAY_CLIENT, json.dumps([server, 2525, tests])]
            )
        finally:
            realprogs.stop_pid(pid)
    assert cp.returncode == 0, cp.stderr
    *trick_codes, local_code = json.loads(cp.stdout)
    relayed = {name: code for (name, _, _), code in zip(tricks, trick_codes, strict=True) if code < 400}
    assert not relayed, f"relayed for an outside client: {relayed}"
    assert all(code >= 500 for code in trick_codes), trick_codes  # refused outright, not merely deferred
    assert local_code == 250  # mail for our own domain is still accepted from outside


def test_all_addresses_socket_matches_ipv4_clients_in_the_access_map(tmp_path: Path) -> None:
    """No listen addresses on an IPv6 host: one `::` socket, and an IPv4 client still meets its Connect: entry."""
    for program in ("m4", "sendmail-cf", "sendmail", "makemap", "netns"):
        realprogs.require(program)
    client = realprogs.NETNS_CLIENT_ADDR
    site = tmp_path / "site.yaml"
    site.write_text(
        'host: {name: mail.e2e.test, ipv6: "2001:db8::25", ports: {smtp: 2525, submission: false, smtps: false}}\n'
        f"domains: [e2e.test]\nusers: [joe]\ntrusted_networks: [{client}/32]\n"
    )
    built = build(site, tmp_path / "root")
    assert "Family=inet6, Addr=::, Port=2525" in (built.root / "etc/mail/sendmail.mc").read_text()
    tests = [("<a@mail.e2e.test>", f"<{USER}@{FOREIGN}>")]
    with realprogs.netns_pair() as pair:
        pid = realprogs.sendmail_daemon_start(built.cf, tmp_path / "sendmail.pid", netns=pair.server)
        try:
            assert realprogs.wait_for_port(pair.server_addr, 2525, netns=pair.client)
            args = json.dumps([pair.server_addr, 2525, tests])
            cp = realprogs.netns_run(pair.client, [sys.executable, "-c", RELAY_CLIENT, args])
        finally:
            realprogs.stop_pid(pid)
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout) == [250]  # trusted by its IPv4 Connect: entry


# --------------------------------------------------------------------------------------------- submission logins

SASLAUTHD = Path("/usr/sbin/saslauthd")
SUBMISSION_PORTS = {"smtp": 2525, "submission": 2587, "imap": 2143}  # inside the test's own network namespace

SUBMISSION_CLIENT = """
import json, smtplib, ssl, sys
host, ports, users, foreign = json.loads(sys.argv[1])
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE  # the test's self-signed certificate
seen = {}


def session(port, tls=True):
    smtp = smtplib.SMTP(host, port, timeout=20)
    smtp.ehlo("client.mailconf.test")
    if tls:
        seen.setdefault("auth_before_tls", smtp.has_extn("auth"))
        smtp.starttls(context=context)
        smtp.ehlo("client.mailconf.test")
        seen["auth_after_tls"] = smtp.esmtp_features.get("auth", "")
    return smtp


def login(smtp, mechanism, user, password):
    smtp.user, smtp.password = user, password
    method = smtp.auth_plain if mechanism == "PLAIN" else smtp.auth_login
    try:
        return smtp.auth(mechanism, method, initial_response_ok=mechanism == "PLAIN")[0]
    except smtplib.SMTPAuthenticationError as error:
        return error.smtp_code


def relay(smtp):
    code = smtp.docmd("MAIL", "FROM:<sender@mail.e2e.test>")[0]
    return smtp.docmd("RCPT", "TO:<victim@" + foreign + ">")[0] if code < 400 else code


for name, (mechanism, user, password) in users.items():
    with session(ports["submission"]) as smtp:
        seen[name] = {"auth": login(smtp, mechanism, user, password), "relay": relay(smtp)}
with session(ports["submission"]) as smtp:
    seen["wrong_password"] = login(smtp, "PLAIN", users["unix"][1], "not-the-password")
with session(ports["submission"]) as smtp:
    seen["submission_without_login"] = relay(smtp)
with session(ports["smtp"], tls=False) as smtp:
    seen["smtp_without_login"] = relay(smtp)
print(json.dumps(seen))
"""


def submission_site(server: str) -> str:
    ports = SUBMISSION_PORTS
    password_hash = sha512_crypt(E2E_VIRTUAL_PASSWORD)
    return f"""
host:
  name: mail.e2e.test
  listen: [{server}]
  ports: {{smtp: {ports["smtp"]}, submission: {ports["submission"]}, smtps: false, pop3: false, pop3s: false,
          imap: {ports["imap"]}, imaps: false}}
domains:
  - e2e.test
  - {{name: v.e2e.test, type: virtual}}
users:
  - {E2E_USER}
  - {{address: {E2E_VIRTUAL}, password_hash: "{{SHA512-CRYPT}}{password_hash}"}}
pop_imap: {{protocols: [imap]}}
tls: {{cert: /etc/ssl/e2e/cert.pem, key: /etc/ssl/e2e/key.pem}}
"""


def sasl_tree(base: Path, sasl_conf: Path) -> Path:
    """Sendmail's unpacked tree plus /etc/sasl2/Sendmail.conf, a link to the rendered file: Cyrus SASL reads
    Sendmail.conf from its compiled-in path (Debian 12: /etc/sasl2:/etc/sasl:/usr/lib/x86_64-linux-gnu/sasl2:
    /usr/lib/sasl2), and the namespace's /etc is a read-only overlay of this tree's etc/ and the host's."""
    tree = base / "sendmail-tree"
    shutil.copytree(realprogs.SENDMAIL_ROOT / "etc", tree / "etc", symlinks=True)
    (tree / "usr").symlink_to(realprogs.SENDMAIL_ROOT / "usr")
    (tree / "etc/sasl2").mkdir()
    (tree / "etc/sasl2/Sendmail.conf").symlink_to(sasl_conf)
    return tree


def start_sendmail_in(tree: Path, cf: Path, pid_file: Path, netns: str) -> int:
    argv = [
        "ip",
        "netns",
        "exec",
        netns,
        *realprogs.ns_argv(tree, [realprogs.SENDMAIL, "-C", cf, "-bd", f"-OPidFile={pid_file}"]),
    ]
    started = realprogs.run(argv, timeout=30)
    assert started.returncode == 0, f"{argv}: {started.stdout}{started.stderr}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pid_file.read_text().split()[0])
            if realprogs.is_running(pid):
                return pid
        time.sleep(0.05)
    raise AssertionError(f"sendmail wrote no live PID to {pid_file}")


@pytest.fixture(scope="module")
def submission() -> Iterator[dict]:
    """Sendmail, saslauthd (rimap) and Dovecot in a server network namespace; the client dials from another."""
    for program in ("m4", "sendmail-cf", "sendmail", "makemap", "dovecot", "openssl", "netns"):
        realprogs.require(program)
    if not SASLAUTHD.exists():
        message = "saslauthd is missing: apt-get install sasl2-bin libsasl2-modules"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    server = realprogs.NETNS_SERVER_ADDR
    with realprogs.open_tmpdir("mailconf-submission-") as base:
        site = base / "site.yaml"
        site.write_text(submission_site(server))
        self_signed(base / "root/etc/ssl/e2e", ec=True)
        built = build(site, base / "root")
        saslauthd = shlex.split(next(c for c in built.rendering.commands["start"] if c.startswith("saslauthd")))
        mux_dir = Path(saslauthd[saslauthd.index("-m") + 1])
        mux_dir.mkdir(parents=True, exist_ok=True)
        tree = sasl_tree(base, built.root / "etc/mail/sasl/Sendmail.conf.2")
        with (
            unix_user(E2E_USER, E2E_PASSWORD, base / "home" / E2E_USER),
            realprogs.netns_pair() as pair,
            open(base / "saslauthd.log", "w") as log,
        ):
            conf = built.root / "etc/dovecot/dovecot.conf"
            realprogs.dovecot_start(conf, netns=pair.server)
            try:
                # In the foreground (-d), one process per request (-n 0): its PID is the one to stop. Its own
                # session: stopping, saslauthd signals its whole process group.
                auth = subprocess.Popen(
                    ["ip", "netns", "exec", pair.server, *saslauthd, "-d", "-n", "0"],
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
                try:
                    pid = start_sendmail_in(tree, built.cf, base / "sendmail.pid", pair.server)
                    try:
                        assert realprogs.wait_for_port(server, SUBMISSION_PORTS["submission"], netns=pair.client)
                        assert (mux_dir / "mux").is_socket(), "saslauthd listens where Sendmail.conf says"
                        yield {"pair": pair, "server": server, "log": base / "saslauthd.log"}
                    finally:
                        realprogs.stop_pid(pid)
                finally:
                    realprogs.stop_pid(auth.pid)
                    auth.wait()
            finally:
                realprogs.dovecot_stop(conf)


def test_submission_needs_starttls_and_a_dovecot_login_before_it_relays(submission: dict) -> None:
    users = {
        "unix": ("PLAIN", E2E_USER, E2E_PASSWORD),
        "virtual": ("LOGIN", E2E_VIRTUAL, E2E_VIRTUAL_PASSWORD),
    }
    args = json.dumps([submission["server"], SUBMISSION_PORTS, users, FOREIGN])
    cp = realprogs.netns_run(submission["pair"].client, [sys.executable, "-c", SUBMISSION_CLIENT, args])
    assert cp.returncode == 0, cp.stderr
    seen = json.loads(cp.stdout)
    log = submission["log"].read_text()[-3000:]
    assert seen["auth_before_tls"] is False, "no AUTH offered before STARTTLS (AUTH option p)"
    assert set(seen["auth_after_tls"].split()) == {"PLAIN", "LOGIN"}
    assert seen["unix"] == {"auth": 235, "relay": 250}, f"unix user over AUTH PLAIN; saslauthd: {log}"
    assert seen["virtual"] == {"auth": 235, "relay": 250}, f"virtual user over AUTH LOGIN; saslauthd: {log}"
    assert seen["wrong_password"] == 535
    assert seen["submission_without_login"] == 530, "submission (M=a) wants a login before MAIL"
    assert seen["smtp_without_login"] == 550, "port 25 without a login: relaying denied"
