"""The Exim backend, proven by the real Exim 4: -bV parses every rendered config, -bt routes, -bh runs the ACLs.

Exim runs in realprogs' mount namespace, with one more /etc layer of our own on top: a passwd file naming the
sites' unix users (homes in the sandbox), a hosts file for the smarthost, and for the daemon the rendered config
at Exim's compiled-in path (with -C, Exim gives up root and could not deliver).
"""

from __future__ import annotations

import base64
import functools
import grp
import ipaddress
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import corpus
import pytest
import realprogs
from mailtest import read_imap, read_pop3, self_signed, sha512_crypt, tls_context, unix_user
from relay_tricks import relay_tricks

from mailconf.backends import render_site
from mailconf.errors import MailconfError, RenderRefused
from mailconf.render import Target, write_tree
from mailconf.site import Site, load_site

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
OUTSIDE_IP = "203.0.113.5"  # TEST-NET-3: never one of ours
UNIX_USERS = {"joe": 2001, "sue": 2002, "admin": 2003, "alice": 2004, "bob": 2005}
SMARTHOST_ADDR = "192.0.2.99"

# Tricks of shared/notes/relay-tricks.md that tests/relay_tricks.py does not send: (what, MAIL FROM, RCPT TO).
MORE_TRICKS = [
    ("tester's own host as sender", "<spamtest@client.outside.test>", "<victim@foreign.example>"),
    ("literal domain then @", "<spamtest@outside.test>", "<victim@[foreign.example]@>"),
    ("quoted recipient from a local sender", "<spamtest@$SRV>", '<"victim@foreign.example">'),
]


# ------------------------------------------------------------------------------------------ running Exim


@functools.cache
def exim_tree() -> Path:
    """The unpacked Exim whose binary has the dovecot authenticator (Debian's exim4-daemon-heavy; light lacks it)."""
    realprogs.require("exim")
    for tree in (realprogs.EXIM_ROOT, realprogs.PROGRAMS_DIR / "exim-heavy"):
        if (tree / realprogs.EXIM.lstrip("/")).exists():
            version = realprogs.run(realprogs.ns_argv(tree, [realprogs.EXIM, "-bV"])).stdout
            if re.search(r"^Authenticators:.*\bdovecot\b", version, re.M):
                return tree
    message = "this Exim has no dovecot authenticator: unpack exim4-daemon-heavy (`scripts/install-mail-programs`)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


# Mount our /etc layer over the namespace's /etc, then run the command.
_LAYER = 'mount -t overlay mailconf-exim-etc -o "lowerdir=$1:/etc" /etc; shift; exec "$@"'


def exim_argv(layer: Path, args: list[str]) -> list[str]:
    return realprogs.ns_argv(exim_tree(), ["/bin/sh", "-c", _LAYER, "layer", layer, realprogs.EXIM, *args])


def exim(layer: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return realprogs.run(exim_argv(layer, list(args)), stdin=stdin, timeout=30)


def make_layer(path: Path, homes: Path, config: Path | None = None, smarthost: str = SMARTHOST_ADDR) -> Path:
    """passwd with the sites' unix users, hosts with the smarthost, and optionally exim4.conf at its own path."""
    path.mkdir(parents=True, exist_ok=True)
    users = "".join(f"{name}:x:{uid}:{uid}::{homes / name}:/bin/sh\n" for name, uid in UNIX_USERS.items())
    (path / "passwd").write_text(Path("/etc/passwd").read_text() + users)
    hosts = (realprogs.NS_ETC / "hosts").read_text() if (realprogs.NS_ETC / "hosts").exists() else ""
    (path / "hosts").write_text(f"{hosts}{smarthost}\tsmtp.relay.test\n127.0.0.1\tlocalhost\n")
    if config is not None:
        (path / "exim4").mkdir(exist_ok=True)
        shutil.copy(config, path / "exim4/exim4.conf")
    return path


# ------------------------------------------------------------------------------------------ sites


# Sites beyond tests/corpus.py's: a smarthost on port 465 with a password full of characters Exim's expansions
# or AUTH PLAIN could trip on, IPv6-only trust with a backup-MX domain, and a host without submission or TLS.
MORE_SITES: dict[str, str] = {
    "smarthost-smtps": """
host: {name: mail.out.test}
domains: [out.test]
users: [joe]
aliases: {help: joe}
smarthost: {host: smtp.relay.test, port: 465, credentials_file: relay.secret}
""",
    "ipv6-trusted": """
host: {name: mail.six.test, ipv6: "2001:db8:6::25"}
domains: [six.test]
users: [joe]
aliases: {info@six.test: joe}
trusted_networks: ["2001:db8:600::/48"]
relay_domains: [partner.test]
""",
    "no-submission": """
host:
  name: mail.plain.test
  ports: {submission: false, smtps: false, pop3: false, pop3s: false, imap: false, imaps: false}
domains: [plain.test]
users: [sue]
aliases: {contact: sue}
tls: {enabled: false}
""",
}
SMARTHOST_USER = "mailer@out.test"
SMARTHOST_PASSWORD = 'p^a"s\\s w:r;d$x{y}#'

# Per site: (a local user, a virtual user, an alias) that must route; None where the site has no such thing.
# A site not listed here (one added to the corpus later) routes the ones `addresses_to_route` picks.
ROUTES = {
    "minimal": ("joe@example.org", None, "postmaster@example.org"),
    "mbox-and-catch-all": ("sue@example.net", None, "sales@example.net"),
    "virtual-only": (None, "ann@other.example", "info@other.example"),
    "smarthost-with-login": ("joe@example.org", None, "postmaster@example.org"),
    "ports-moved-and-off": ("joe@example.org", None, "abuse@example.org"),
    "example:site.yaml": ("joe@example.org", None, "sales@example.com"),
    "example:virtual-hosting.yaml": ("admin@hosting.example", "joe@club.example", "info@shop.example"),
    "example:bulk/site.yaml": ("alice@bulk.example", "carol@members.example", "help@bulk.example"),
    "smarthost-smtps": ("joe@out.test", None, "help@out.test"),
    "ipv6-trusted": ("joe@six.test", None, "info@six.test"),
    "no-submission": ("sue@plain.test", None, "contact@plain.test"),
}


@dataclass
class Rendered:
    """One site rendered for Exim into its own --root sandbox."""

    root: Path
    site_file: Path
    layer: Path

    @functools.cached_property
    def site(self) -> Site:
        return load_site(self.site_file).site

    @property
    def conf(self) -> Path:
        return self.root / "etc/exim4/exim4.conf"

    def bh(self, ip: str, dialogue: list[str], *options: str) -> list[str]:
        """An `exim -bh IP` session: the final reply to each command of `dialogue`."""
        script = "".join(f"{line}\r\n" for line in ["EHLO client.outside.test", *dialogue, "QUIT"])
        cp = exim(self.layer, "-C", str(self.conf), "-bh", ip, *options, stdin=script)
        assert cp.returncode == 0, cp.stderr
        replies = [line for line in cp.stdout.splitlines() if re.match(r"\d{3} ", line)]
        assert len(replies) == len(dialogue) + 3, cp.stdout  # greeting, EHLO, dialogue, QUIT
        return replies[2:-1]

    def route(self, address: str) -> subprocess.CompletedProcess[str]:
        return exim(self.layer, "-C", str(self.conf), "-bt", address)


def render(site_file: Path, root: Path) -> None:
    loaded = load_site(site_file)
    target = Target(root=str(root), site_name=site_file.name)
    write_tree(render_site(loaded, "exim", "dovecot", target), root, target, {"mta": "exim", "pop_imap": "dovecot"})


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Path]:
    with realprogs.open_tmpdir("mailconf-exim-") as path:
        yield path


@pytest.fixture(scope="module")
def rendered(sandbox: Path) -> dict[str, Rendered]:
    sites = corpus.all_sites(sandbox / "sites")
    for name, text in MORE_SITES.items():
        folder = sandbox / "sites" / name
        folder.mkdir(parents=True)
        sites[name] = folder / "site.yaml"
        sites[name].write_text(text)
        secret = folder / "relay.secret"
        secret.write_text(f"{SMARTHOST_USER}:{SMARTHOST_PASSWORD}\n")
        secret.chmod(0o600)
    assert set(sites) == set(ALL_SITES), "tests/corpus.py names its examples differently now"
    layer = make_layer(sandbox / "layer", sandbox / "home")
    out = {}
    for name, site_file in sites.items():
        root = sandbox / "roots" / re.sub(r"[^a-z0-9.-]", "-", name)
        render(site_file, root)
        out[name] = Rendered(root, site_file, layer)
    return out


EXAMPLE_FILES = sorted(EXAMPLES.rglob("site.yaml")) + sorted(EXAMPLES.glob("*.yaml"))
ALL_SITES = list(
    dict.fromkeys([*corpus.VARIED, *(f"example:{f.relative_to(EXAMPLES)}" for f in EXAMPLE_FILES), *MORE_SITES])
)


def addresses_to_route(name: str, site: Site) -> tuple[str | None, str | None, str]:
    if name in ROUTES:
        return ROUTES[name]
    local = f"{site.local_users[0].name}@{site.local_domains[0]}" if site.local_users else None
    virtual = site.virtual_users[0].address if site.virtual_users else None
    return local, virtual, f"postmaster@{site.domains[0].name}"


# ------------------------------------------------------------------------------------------ -bV


@pytest.mark.parametrize("name", ALL_SITES)
def test_exim_accepts_every_rendered_config(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    cp = exim(r.layer, "-C", str(r.conf), "-bV")
    assert cp.returncode == 0, cp.stderr
    assert f"Configuration file is {r.conf}" in cp.stdout
    assert not re.search(r"error|warning", cp.stderr, re.I), cp.stderr


@pytest.mark.parametrize("name", ALL_SITES)
def test_every_file_the_exim_config_names_is_in_the_tree(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    text = r.conf.read_text()
    named = re.findall(r"lsearch\{([^}]+)\}", text) + re.findall(
        r"^(?:spool_directory|pid_file_path) = (.+)$", text, re.M
    )
    assert len(named) >= 3, "the config reads no lsearch list"
    for path in named:
        assert path.startswith(f"{r.root}/"), f"{path} escapes the --root sandbox"
        assert Path(path).parent.exists() if path.endswith(".pid") else Path(path).exists(), f"{path} is missing"


# ------------------------------------------------------------------------------------------ -bt


@pytest.mark.parametrize("name", ALL_SITES)
def test_exim_routes_local_users_virtual_users_and_aliases(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    local, virtual, alias = addresses_to_route(name, r.site)
    if local:
        cp = r.route(local)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        assert cp.stdout.startswith(f"{local}\n  router = local_user, transport = local_delivery"), cp.stdout
    if virtual:
        cp = r.route(virtual)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        assert cp.stdout.startswith(f"{virtual}\n  router = virtual_mailboxes, transport = virtual_delivery")
    cp = r.route(alias)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert f"    <-- {alias}\n" in cp.stdout and "transport = " in cp.stdout
    domain = alias.partition("@")[2]
    if not any(d.catch_all for d in r.site.domains if d.name == domain):
        unknown = r.route(f"nosuchuser@{domain}")
        assert unknown.returncode == 2, unknown.stdout  # 2: unrouteable


def test_exim_catch_all_takes_only_addresses_that_do_not_exist(rendered: dict[str, Rendered]) -> None:
    r = rendered["example:virtual-hosting.yaml"]
    caught = r.route("nosuchuser@shop.example")
    assert caught.stdout.startswith("orders@shop.example\n    <-- nosuchuser@shop.example\n"), caught.stdout
    own = r.route("orders@shop.example")
    assert own.stdout.startswith("orders@shop.example\n  router = virtual_mailboxes"), own.stdout
    postmaster = r.route("postmaster@shop.example")  # an alias in a catch-all domain stays an alias
    assert postmaster.stdout.startswith("admin@mx1.hosting.example\n    <-- postmaster@shop.example"), postmaster.stdout
    assert r.route("nosuchuser@club.example").returncode == 2  # no catch-all there


def test_exim_catch_all_of_a_local_domain_spares_unix_users(rendered: dict[str, Rendered]) -> None:
    r = rendered["mbox-and-catch-all"]
    assert r.route("nosuchuser@example.org").stdout.startswith("joe@mail.example.org\n    <-- nosuchuser@example.org")
    assert r.route("sue@example.org").stdout.startswith("sue@example.org\n  router = local_user")


def test_exim_sends_outbound_mail_through_the_smarthost(rendered: dict[str, Rendered]) -> None:
    cp = rendered["smarthost-smtps"].route("someone@elsewhere.test")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "router = smarthost, transport = smarthost_smtp" in cp.stdout
    assert f"smtp.relay.test [{SMARTHOST_ADDR}]" in cp.stdout


def test_smarthost_password_stays_out_of_exim4_conf(rendered: dict[str, Rendered]) -> None:
    r = rendered["smarthost-smtps"]
    assert "w:r;d" not in r.conf.read_text()
    secret = r.root / "etc/exim4/passwd.client"
    assert secret.stat().st_mode & 0o777 == 0o640
    assert secret.stat().st_gid == grp.getgrnam("Debian-exim").gr_gid
    # The real Exim reads the login back out of the file exactly as the site wrote it (^ doubled for PLAIN).
    for key, want in (("user", SMARTHOST_USER), ("password", SMARTHOST_PASSWORD.replace("^", "^^"))):
        expression = f"${{extract{{{key}}}{{${{lookup{{smtp.relay.test}}lsearch{{{secret}}}}}}}}}"
        cp = exim(r.layer, "-C", str(r.conf), "-be", expression)
        assert cp.returncode == 0 and cp.stdout == f"{want}\n", cp.stdout + cp.stderr


# ------------------------------------------------------------------------------------------ -bh: relaying


def relay_attempts(r: Rendered) -> list[tuple[str, str, str]]:
    """Every trick as the catalogue sends it, and again from a plain outside sender (so that a refused sender
    cannot hide an accepted recipient)."""
    site = r.site
    ip = site.host.ipv4 or "192.0.2.25"
    tricks = relay_tricks(site.host.name, ip, [d.name for d in site.domains])
    tricks += [(what, sender.replace("$SRV", site.host.name), rcpt) for what, sender, rcpt in MORE_TRICKS]
    plain = [(f"{what}, plain sender", "<someone@outside.test>", rcpt) for what, _, rcpt in tricks]
    return tricks + plain


@pytest.mark.parametrize("name", ALL_SITES)
def test_outside_client_cannot_relay_through_exim(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    local = next(address for address in addresses_to_route(name, r.site) if address)
    replies = r.bh(OUTSIDE_IP, ["MAIL FROM:<someone@outside.test>", f"RCPT TO:<{local}>"])
    assert replies[1].startswith("250"), f"local recipient {local} refused: {replies[1]}"
    # One session per attempt: Exim hangs up after three syntax errors in a session.
    attempts = relay_attempts(r)
    with ThreadPoolExecutor(4) as pool:
        sessions = list(pool.map(lambda a: r.bh(OUTSIDE_IP, [f"MAIL FROM:{a[1]}", f"RCPT TO:{a[2]}"]), attempts))
    rcpt = {what: replies[1] for (what, _, _), replies in zip(attempts, sessions, strict=True)}
    relayed = {what: reply for what, reply in rcpt.items() if not reply.startswith("5")}
    assert not relayed, f"not refused outright: {relayed}"
    assert rcpt["plain third-party relay"] == "550 relay not permitted"
    assert rcpt["percent hack, plain sender"] == "550 restricted characters in address"


@pytest.mark.parametrize("name", ALL_SITES)
def test_trusted_client_can_relay_through_exim(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    trusted = ["127.0.0.1", "::1"]
    trusted += [
        str(next(ipaddress.ip_network(n).hosts()))
        for n in r.site.trusted_networks
        if not ipaddress.ip_network(n).is_loopback
    ]
    for ip in trusted:
        replies = r.bh(ip, ["MAIL FROM:<joe@client.test>", "RCPT TO:<friend@foreign.example>"])
        assert replies[1].startswith("250"), f"trusted {ip} could not relay: {replies}"


def test_exim_trusts_the_ipv6_network_and_nothing_next_to_it(rendered: dict[str, Rendered]) -> None:
    r = rendered["ipv6-trusted"]
    dialogue = ["MAIL FROM:<a@client.test>", "RCPT TO:<friend@foreign.example>"]
    assert r.bh("2001:db8:600:ffff::7", dialogue)[1].startswith("250")
    assert r.bh("2001:db8:601::7", dialogue)[1] == "550 relay not permitted"
    assert r.bh("10.6.0.7", dialogue)[1] == "550 relay not permitted"


def test_exim_accepts_mail_for_relay_domains_from_anyone(rendered: dict[str, Rendered]) -> None:
    replies = rendered["ipv6-trusted"].bh(OUTSIDE_IP, ["MAIL FROM:<a@outside.test>", "RCPT TO:<anyone@partner.test>"])
    assert replies[1].startswith("250")


def test_exim_refuses_unknown_local_users_from_outside(rendered: dict[str, Rendered]) -> None:
    replies = rendered["minimal"].bh(OUTSIDE_IP, ["MAIL FROM:<a@outside.test>", "RCPT TO:<nosuchuser@example.org>"])
    assert replies[1] == "550 unknown user"


@pytest.mark.parametrize("name", ["example:site.yaml", "ports-moved-and-off"])
def test_exim_submission_ports_need_a_login_even_from_trusted_hosts(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    ports = r.site.host.ports
    dialogue = ["MAIL FROM:<joe@example.org>", "RCPT TO:<friend@foreign.example>"]
    for port in [p for p in (ports.submission, ports.smtps) if p]:
        assert r.bh("127.0.0.1", dialogue, "-oMi", f"127.0.0.1.{port}")[1] == "550 authentication required"
    # Port 25 from the same host relays: the port makes the difference, not the client.
    assert r.bh("127.0.0.1", dialogue, "-oMi", f"127.0.0.1.{ports.smtp}")[1].startswith("250")


def test_exim_offers_no_login_without_tls(rendered: dict[str, Rendered]) -> None:
    r = rendered["example:site.yaml"]
    script = "EHLO client.test\r\nAUTH PLAIN AGpvZQBzZWNyZXQ=\r\nQUIT\r\n"
    cp = exim(r.layer, "-C", str(r.conf), "-bh", "192.168.10.9", "-oMi", "192.0.2.25.587", stdin=script)
    assert "250-STARTTLS" in cp.stdout
    assert not re.search(r"^250.AUTH", cp.stdout, re.M), cp.stdout
    assert re.search(r"^503 AUTH command used when not advertised", cp.stdout, re.M), cp.stdout


# ------------------------------------------------------------------------------------------ refusals and CLI


def test_cli_renders_the_example_site_for_exim(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [REPO / ".venv/bin/mailconf", "render", "--mta", "exim", "--root", out, "-c", EXAMPLES / "site.yaml"]
    cp = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert (out / "etc/exim4/exim4.conf").is_file()
    assert f"exim4 -C {out}/etc/exim4/exim4.conf -bV" in cp.stdout


def test_dovecot_accepts_the_login_socket_it_places_for_exim(rendered: dict[str, Rendered]) -> None:
    realprogs.require("doveconf")
    r = rendered["example:site.yaml"]
    cp = realprogs.doveconf_n(r.root / "etc/dovecot/dovecot.conf")
    assert cp.returncode == 0, cp.stderr
    assert f"unix_listener {r.root}/run/exim4/dovecot-auth" in cp.stdout
    assert f"server_socket = {r.root}/run/exim4/dovecot-auth" in r.conf.read_text()


def write_site(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "site.yaml"
    path.write_text(text)
    return path


def test_exim_refuses_a_site_whose_postmaster_mail_goes_to_root(tmp_path: Path) -> None:
    site = write_site(tmp_path, "host: {name: mail.root.test}\ndomains: [root.test]\n")
    with pytest.raises(RenderRefused, match="Exim"):
        render(site, tmp_path / "out")


def test_exim_overrides_replace_or_follow_mailconfs_options(rendered: dict[str, Rendered], sandbox: Path) -> None:
    overrides = "overrides: {exim: {message_size_limit: 10M, smtp_accept_max: 50}}\n"
    site = write_site(sandbox / "overrides", "host: {name: mail.o.test}\ndomains: [o.test]\nusers: [joe]\n" + overrides)
    render(site, sandbox / "overrides/root")
    conf = sandbox / "overrides/root/etc/exim4/exim4.conf"
    assert len(re.findall(r"^message_size_limit = ", conf.read_text(), re.M)) == 1  # Exim refuses a second one
    cp = exim(rendered["minimal"].layer, "-C", str(conf), "-bP", "message_size_limit", "smtp_accept_max")
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout == "message_size_limit = 10M\nsmtp_accept_max = 50\n"


def test_exim_overrides_cannot_open_a_relay(tmp_path: Path) -> None:
    text = (
        "host: {name: mail.o.test}\ndomains: [o.test]\nusers: [joe]\noverrides: {exim: {percent_hack_domains: '*'}}\n"
    )
    with pytest.raises(MailconfError, match="percent_hack_domains"):
        render(write_site(tmp_path, text), tmp_path / "out")


# ------------------------------------------------------------------------------------------ end to end

VIRTUAL_USER = "ann@v.e2e.test"
VIRTUAL_PASSWORD = "ann-Secret-2"
LOCAL_USER = "mceximjoe"  # a real unix account for the end-to-end run: Dovecot checks its password with PAM
LOCAL_PASSWORD = "joe-Secret-3"


def e2e_site(ports: dict[str, int], mailbox: str, local_user: str = "joe") -> str:
    password_hash = sha512_crypt(VIRTUAL_PASSWORD)
    port_lines = ", ".join(f"{name}: {port}" for name, port in ports.items())
    return f"""
host: {{name: mail.e2e.test, listen: [127.0.0.1], ports: {{{port_lines}}}}}
domains: [e2e.test, {{name: v.e2e.test, type: virtual}}]
users: [{local_user}, {{address: {VIRTUAL_USER}, password_hash: "{{SHA512-CRYPT}}{password_hash}"}}]
aliases: {{staff: [{local_user}, {VIRTUAL_USER}]}}
mailbox: {{format: {mailbox}}}
tls: {{cert: /etc/ssl/e2e/cert.pem, key: /etc/ssl/e2e/key.pem}}
"""


def start_exim(base: Path, site_text: str, smarthost: str = SMARTHOST_ADDR) -> tuple[int, Path]:
    """Render the site under base/root and start the real Exim daemon on it; return (PID, root)."""
    root = base / "root"
    render(write_site(base, site_text), root)
    certs = root / "etc/ssl/e2e"
    self_signed(certs)
    os.chown(certs / "key.pem", 0, grp.getgrnam("Debian-exim").gr_gid)  # Exim reads it as Debian-exim
    (certs / "key.pem").chmod(0o640)
    home = base / "home/joe"
    home.mkdir(parents=True)
    os.chown(home, UNIX_USERS["joe"], UNIX_USERS["joe"])
    # Exim keeps root for deliveries only with its config at the compiled-in path: put it there, in our layer.
    layer = make_layer(base / "layer", base / "home", config=root / "etc/exim4/exim4.conf", smarthost=smarthost)
    started = realprogs.run(exim_argv(layer, ["-bd", "-q30s"]), timeout=20)
    assert started.returncode == 0, started.stderr
    pid_file = root / "run/exim4/exim.pid"  # the daemon runs as Debian-exim: the rendered pid_file_path
    deadline = time.monotonic() + 10
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return int(pid_file.read_text().split()[0]), root


def wait_for_mail(path: Path, log: Path, timeout: float = 15.0) -> str:
    """The text of the first message in a Maildir's new/ or in an mbox file, once it arrives."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.stat().st_size:
            return path.read_text()
        if path.is_dir() and any(path.iterdir()):
            return next(path.iterdir()).read_text()
        time.sleep(0.1)
    raise AssertionError(f"nothing arrived at {path}; Exim's log:\n{log.read_text()[-3000:] if log.exists() else ''}")


@pytest.fixture(scope="module")
def exim_host() -> Iterator[dict]:
    for program in ("dovecot", "openssl"):
        realprogs.require(program)
    ports = {name: realprogs.free_port() for name in ("smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps")}
    with (
        realprogs.open_tmpdir("mailconf-exim-e2e-") as base,
        unix_user(LOCAL_USER, LOCAL_PASSWORD, base / "home/local"),
    ):
        pid, root = start_exim(base, e2e_site(ports, "maildir", LOCAL_USER))
        try:
            dovecot_conf = root / "etc/dovecot/dovecot.conf"
            realprogs.dovecot_start(dovecot_conf)
            try:
                assert realprogs.wait_for_port("127.0.0.1", ports["smtp"]), "exim does not listen"
                assert realprogs.wait_for_port("127.0.0.1", ports["imap"]), "dovecot does not listen"
                yield {"root": root, "ports": ports, "home": base / "home/local"}
            finally:
                realprogs.dovecot_stop(dovecot_conf)
        finally:
            realprogs.stop_pid(pid)


def test_exim_delivers_where_dovecot_reads_over_pop3_and_imap(exim_host: dict) -> None:
    root, ports = exim_host["root"], exim_host["ports"]
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=20) as client:
        client.sendmail("someone@outside.test", ["staff@e2e.test"], "Subject: exim-e2e\r\n\r\nend to end\r\n")
    log = root / "var/log/exim4/mainlog"
    assert "exim-e2e" in wait_for_mail(exim_host["home"] / "Maildir/new", log)
    assert "exim-e2e" in wait_for_mail(root / "var/mail/vhosts/v.e2e.test/ann/new", log)
    ann = next((root / "var/mail/vhosts/v.e2e.test/ann/new").iterdir()).stat()
    assert (ann.st_uid, ann.st_gid) == (5000, 5000)
    for user, password in ((LOCAL_USER, LOCAL_PASSWORD), (VIRTUAL_USER, VIRTUAL_PASSWORD)):
        assert b"exim-e2e" in read_imap(ports["imap"], user, password)
        assert b"exim-e2e" in read_pop3(ports["pop3"], user, password)


def test_exim_submission_logs_in_through_dovecot_only_over_tls(exim_host: dict) -> None:
    with smtplib.SMTP("127.0.0.1", exim_host["ports"]["submission"], timeout=20) as client:
        client.ehlo("client.e2e.test")
        assert "auth" not in client.esmtp_features, "AUTH offered before TLS"
        client.starttls(context=tls_context())
        client.ehlo("client.e2e.test")
        assert "PLAIN" in client.esmtp_features["auth"]
        assert client.docmd("MAIL", "FROM:<ann@v.e2e.test>")[0] == 250
        assert client.docmd("RCPT", "TO:<friend@foreign.example>")[0] == 550  # no login yet
        client.docmd("RSET")
        client.login(VIRTUAL_USER, VIRTUAL_PASSWORD)
        assert client.docmd("MAIL", "FROM:<ann@v.e2e.test>")[0] == 250
        assert client.docmd("RCPT", "TO:<friend@foreign.example>")[0] == 250
        client.docmd("RSET")


def test_exim_submission_refuses_a_wrong_password(exim_host: dict) -> None:
    # From 127.0.0.2: Dovecot slows every later login from an address that failed one.
    port = exim_host["ports"]["submission"]
    with smtplib.SMTP("127.0.0.1", port, timeout=20, source_address=("127.0.0.2", 0)) as client:
        client.starttls(context=tls_context())
        client.ehlo("client.e2e.test")
        code, _ = client.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0{VIRTUAL_USER}\0wrong".encode()).decode())
        assert code == 535


def test_exim_smtps_port_speaks_tls_from_the_first_byte(exim_host: dict) -> None:
    port = exim_host["ports"]["smtps"]
    with smtplib.SMTP_SSL("127.0.0.1", port, timeout=20, context=tls_context()) as client:
        client.ehlo("client.e2e.test")
        client.login(VIRTUAL_USER, VIRTUAL_PASSWORD)
        assert client.docmd("MAIL", "FROM:<ann@v.e2e.test>")[0] == 250
        assert client.docmd("RCPT", "TO:<friend@foreign.example>")[0] == 250
        client.docmd("RSET")


def test_exim_delivers_local_users_mail_to_the_mbox_spool() -> None:
    ports = {"smtp": realprogs.free_port(), **dict.fromkeys(["submission", "smtps", "pop3", "pop3s"], "false")}
    with realprogs.open_tmpdir("mailconf-exim-mbox-") as base:
        pid, root = start_exim(base, e2e_site(ports, "mbox"))
        try:
            assert realprogs.wait_for_port("127.0.0.1", ports["smtp"]), "exim does not listen"
            with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=20) as client:
                client.sendmail("someone@outside.test", ["joe@e2e.test"], "Subject: exim-mbox\r\n\r\nspool\r\n")
            mbox = root / "var/mail/joe"
            text = wait_for_mail(mbox, root / "var/log/exim4/mainlog")
            assert text.startswith("From someone@outside.test ") and "exim-mbox" in text
            assert (mbox.stat().st_uid, mbox.stat().st_gid) == (UNIX_USERS["joe"], grp.getgrnam("mail").gr_gid)
        finally:
            realprogs.stop_pid(pid)


class FakeSmarthost(threading.Thread):
    """A smarthost on 127.0.0.2 that speaks just enough SMTP (STARTTLS, AUTH PLAIN) to record Exim's login."""

    def __init__(self, cert: Path, key: Path, mechanism: str) -> None:
        super().__init__(daemon=True)
        self.listener = socket.create_server(("127.0.0.2", 0))
        self.listener.settimeout(30)
        self.port = self.listener.getsockname()[1]
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.mechanism = mechanism.encode()
        self.auth: list[bytes] = []  # what the client sent to log in, decoded
        self.message = b""

    def run(self) -> None:
        with self.listener, self.listener.accept()[0] as raw:
            raw.settimeout(30)
            conn: socket.socket = raw
            reader = conn.makefile("rb")
            conn.sendall(b"220 smtp.relay.test ESMTP\r\n")
            while line := reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    tls = isinstance(conn, ssl.SSLSocket)
                    conn.sendall(
                        b"250-smtp.relay.test\r\n250 " + (b"AUTH " + self.mechanism if tls else b"STARTTLS") + b"\r\n"
                    )
                elif verb == b"STAR":
                    conn.sendall(b"220 go ahead\r\n")
                    conn = self.context.wrap_socket(raw, server_side=True)
                    reader = conn.makefile("rb")
                elif verb == b"AUTH" and self.mechanism == b"PLAIN":
                    self.auth = [base64.b64decode(line.split()[2])]
                    conn.sendall(b"235 ok\r\n")
                elif verb == b"AUTH":  # LOGIN: ask for the user name, then the password
                    for prompt in (b"VXNlcm5hbWU6", b"UGFzc3dvcmQ6"):
                        conn.sendall(b"334 " + prompt + b"\r\n")
                        self.auth.append(base64.b64decode(reader.readline().strip()))
                    conn.sendall(b"235 ok\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go on\r\n")
                    while (data := reader.readline()) not in (b".\r\n", b""):
                        self.message += data
                    conn.sendall(b"250 queued\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_exim_logs_in_to_the_smarthost_over_tls_with_the_password_from_its_file(mechanism: str) -> None:
    with realprogs.open_tmpdir("mailconf-exim-relay-") as base:
        cert, key = self_signed(base / "smarthost", "smtp.relay.test")
        smarthost = FakeSmarthost(cert, key, mechanism)
        smarthost.start()
        port = realprogs.free_port()
        (base / "relay.secret").write_text(f"{SMARTHOST_USER}:{SMARTHOST_PASSWORD}\n")
        (base / "relay.secret").chmod(0o600)
        off = dict.fromkeys(["submission", "smtps", "pop3", "pop3s", "imap", "imaps"], "false")
        site = e2e_site({"smtp": port, **off}, "maildir")
        site += f"smarthost: {{host: smtp.relay.test, port: {smarthost.port}, credentials_file: relay.secret}}\n"
        pid, root = start_exim(base, site, smarthost="127.0.0.2")
        try:
            assert realprogs.wait_for_port("127.0.0.1", port), "exim does not listen"
            with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
                client.sendmail("joe@e2e.test", ["friend@foreign.example"], "Subject: via-relay\r\n\r\nout\r\n")
            smarthost.join(20)
            log = root / "var/log/exim4/mainlog"
            assert not smarthost.is_alive(), f"Exim never finished with the smarthost: {log.read_text()[-2000:]}"
            login = (
                [f"\0{SMARTHOST_USER}\0{SMARTHOST_PASSWORD}"]
                if mechanism == "PLAIN"
                else [SMARTHOST_USER, SMARTHOST_PASSWORD]
            )
            assert smarthost.auth == [part.encode() for part in login]
            assert b"via-relay" in smarthost.message
        finally:
            realprogs.stop_pid(pid)
