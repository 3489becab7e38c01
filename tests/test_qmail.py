"""qmail: rendered trees proven by ucspi-tcp's real tcprules, tcprulescheck and tcpserver, and by mailconf's own
checker of qmail's documented formats (qmail itself is not packaged in Debian 12, so it cannot run here)."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import realprogs
from corpus import EXAMPLES, all_sites
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailconf.errors import RenderRefused
from mailconf.mta.qmail import Qmail
from mailconf.mta.qmail_check import check_tree
from mailconf.render import Target, write_tree
from mailconf.site import load_site, parse_site

REPO = Path(__file__).parent.parent
CONTROL = "var/qmail/control"
# Corpus sites qmail refuses, and a word the refusal must name (anything else must render).
REFUSED = {"smarthost-with-login": "SMTP AUTH", "ports-moved-and-off": "IPv6"}


def render(site_file: Path, root: Path) -> Path:
    loaded = load_site(site_file)
    target = Target(root=str(root), site_name=site_file.name)
    write_tree(Qmail().render(loaded, target), root, target, {"mta": "qmail"})
    return root


def render_text(text: str, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    site = directory / "site.yaml"
    site.write_text(text)
    return render(site, directory / "root")


def entries(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def compile_rules(root: Path) -> Path:
    cdb = root / "etc/tcp.smtp.cdb"
    done = realprogs.tcprules(root / "etc/tcp.smtp", cdb)
    assert done.returncode == 0, done.stderr
    return cdb


def relayclient(cdb: Path, ip: str) -> bool:
    done = realprogs.tcprulescheck(cdb, ip)
    assert done.returncode == 0 and "allow connection" in done.stdout, done.stdout + done.stderr
    return "set environment variable RELAYCLIENT=" in done.stdout


def expected_rcpthosts(site_file: Path) -> set[str]:
    site = load_site(site_file).site
    return {site.host.name, *(d.name for d in site.domains), *site.relay_domains}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return all_sites(tmp_path_factory.mktemp("sites"))


# ------------------------------------------------------------------------------------------ the corpus


def test_every_corpus_site_renders_a_tree_the_qmail_checker_and_tcprules_accept_or_is_refused_by_name(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    realprogs.require("tcprules")
    rendered = 0
    for name, site_file in corpus.items():
        root = tmp_path / name.replace(":", "_").replace("/", "_")
        if name in REFUSED:
            with pytest.raises(RenderRefused) as refused:
                render(site_file, root)
            message = str(refused.value)
            assert "qmail" in message and REFUSED[name] in message, message
            assert f"{site_file}:" in message, f"{name}: the refusal is not located: {message}"
            continue
        render(site_file, root)
        assert check_tree(root) == [], name
        compile_rules(root)
        for script in [root / "var/qmail/rc", *root.glob("var/qmail/supervise/*/run")]:
            assert script.read_text().startswith("#!/bin/sh\n") and os.access(script, os.X_OK), script
            assert subprocess.run(["sh", "-n", str(script)]).returncode == 0, script
        rcpthosts = entries(root / CONTROL / "rcpthosts")
        assert rcpthosts and set(rcpthosts) == expected_rcpthosts(site_file), name
        assert len(rcpthosts) == len(set(rcpthosts)), name
        rendered += 1
    assert rendered >= 5  # the three examples and the varied sites qmail can express


def test_cli_renders_the_example_site_for_qmail_with_the_tcprules_build_in_the_manifest(tmp_path: Path) -> None:
    root = tmp_path / "root"
    done = subprocess.run(
        [sys.executable, "-m", "mailconf", "render", "--mta", "qmail", "--root", str(root), "-c", "examples/site.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    manifest = json.loads((root / "MANIFEST.json").read_text())
    files = {f["path"]: f for f in manifest["files"]}
    assert files["/etc/tcp.smtp"]["build"].startswith(f"tcprules {root}/etc/tcp.smtp.cdb ")
    assert files["/var/qmail/control/me"]["header"] is False  # qmail reads a header line there as the host name
    assert (root / CONTROL / "me").read_text() == "mail.example.org\n"
    assert check_tree(root) == []


# ------------------------------------------------------------------------------------------ relay rules

VARIED_NETWORKS = """
host: {name: mail.example.org}
domains: [example.org]
users: [joe]
trusted_networks: [192.168.10.64/26, 10.20.0.0/14, 172.16.0.0/12, 198.51.100.16/28, 192.0.2.7/32, "::1/128"]
"""


def test_tcprulescheck_gives_relayclient_inside_trusted_networks_only(tmp_path: Path) -> None:
    realprogs.require("tcprulescheck")
    cdb = compile_rules(render_text(VARIED_NETWORKS, tmp_path))
    trusted = [
        ipaddress.ip_network(n)
        for n in (
            "127.0.0.0/8",
            "192.168.10.64/26",
            "10.20.0.0/14",
            "172.16.0.0/12",
            "198.51.100.16/28",
            "192.0.2.7/32",
        )
    ]

    def is_trusted(ip: ipaddress.IPv4Address) -> bool:
        return any(ip in n for n in trusted)

    for network in trusted:
        for ip in (network.network_address, network.broadcast_address):
            assert relayclient(cdb, str(ip)), f"{ip} is inside {network}"
        for ip in (network.network_address - 1, network.broadcast_address + 1):
            assert relayclient(cdb, str(ip)) == is_trusted(ip), f"{ip} is just outside {network}"
    assert relayclient(cdb, "192.168.10.100") and not relayclient(cdb, "192.168.10.128")
    assert not relayclient(cdb, "192.168.10.63")
    assert not relayclient(cdb, "203.0.113.5")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    base=st.sampled_from(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]),
    prefix=st.integers(min_value=8, max_value=32),
    offset=st.integers(min_value=0, max_value=2**24),
)
def test_any_private_cidr_gets_relayclient_exactly_for_its_own_addresses(
    tmp_path: Path, base: str, prefix: int, offset: int
) -> None:
    realprogs.require("tcprulescheck")
    outer = ipaddress.ip_network(base)
    prefix = max(prefix, outer.prefixlen)
    start = int(outer.network_address) + offset % outer.num_addresses
    network = ipaddress.ip_network(f"{ipaddress.IPv4Address(start)}/{prefix}", strict=False)
    work = tmp_path / f"{network}".replace("/", "_")
    shutil.rmtree(work, ignore_errors=True)
    site = f"host: {{name: mail.example.org}}\ndomains: [example.org]\ntrusted_networks: [{network}]\n"
    cdb = compile_rules(render_text(site, work))
    for ip in (network.network_address, network.broadcast_address):
        assert relayclient(cdb, str(ip))
    for ip in (network.network_address - 1, network.broadcast_address + 1):
        assert relayclient(cdb, str(ip)) == ip.is_loopback, f"{ip} is outside {network}"


def test_tcpserver_passes_relayclient_to_a_trusted_client_and_not_to_an_outside_one(tmp_path: Path) -> None:
    """The real tcpserver with the rendered rules: 127.0.0.1 is trusted; a client in another network namespace
    (198.18.0.2, not trusted) connects to the same rules and gets no RELAYCLIENT."""
    tcpserver = realprogs.require("tcpserver")
    ip = realprogs.require("netns")
    cdb = compile_rules(render_text(VARIED_NETWORKS, tmp_path))
    read_env = "import socket,sys; s=socket.create_connection((sys.argv[1],int(sys.argv[2])),5); " + (
        "b=b''\nwhile (c:=s.recv(4096)): b+=c\nprint(b.decode())"
    )

    def serve(address: str, port: int, netns: str | None) -> subprocess.Popen[bytes]:
        argv = [str(tcpserver), "-R", "-H", "-x", str(cdb), address, str(port), "/usr/bin/env"]
        prefix = [str(ip), "netns", "exec", netns] if netns else []
        return subprocess.Popen([*prefix, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    port = realprogs.free_port()
    server = serve("127.0.0.1", port, None)
    try:
        assert realprogs.wait_for_port("127.0.0.1", port)
        with socket.create_connection(("127.0.0.1", port), 5) as s:
            env = b"".join(iter(lambda: s.recv(4096), b"")).decode()
        assert "TCPREMOTEIP=127.0.0.1" in env and "RELAYCLIENT=\n" in env
    finally:
        realprogs.stop_pid(server.pid)
        server.wait()

    with realprogs.netns_pair() as pair:
        server = serve(pair.server_addr, 2525, pair.server)
        try:
            assert realprogs.wait_for_port(pair.server_addr, 2525, netns=pair.client)
            done = realprogs.netns_run(pair.client, [sys.executable, "-c", read_env, pair.server_addr, "2525"])
            assert done.returncode == 0, done.stderr
            assert f"TCPREMOTEIP={pair.client_addr}" in done.stdout
            assert "RELAYCLIENT" not in done.stdout
        finally:
            realprogs.stop_pid(server.pid)
            server.wait()


# ------------------------------------------------------------------------------------------ what qmail reads


def test_rcpthosts_always_lists_our_domains_and_the_relay_domains(tmp_path: Path) -> None:
    site = """
host: {name: mx.example.net}
domains: [{name: v.example, type: virtual}]
users: [{address: ann@v.example, password_hash: "$6$abcdefgh$abcdefghijklmnop"}]
relay_domains: [backup.example]
"""
    root = render_text(site, tmp_path)
    assert entries(root / CONTROL / "rcpthosts") == ["mx.example.net", "v.example", "backup.example"]
    assert entries(root / CONTROL / "locals") == ["mx.example.net"]
    assert entries(root / CONTROL / "virtualdomains") == ["v.example:vmail-v.example"]
    assign = (root / "var/qmail/users/assign").read_text().splitlines()
    assert assign == [f"+vmail-v.example-:vmail:5000:5000:{root}/var/mail/vhosts/v.example:-::", "."]
    # The virtual mailbox is a Maildir where Dovecot reads it (virtual_root/DOMAIN/USER), made for uid 5000.
    assert entries(root / "var/mail/vhosts/v.example/.qmail-ann") == [f"{root}/var/mail/vhosts/v.example/ann/"]
    assert (root / "var/mail/vhosts/v.example/ann/new").is_dir()
    assert check_tree(root) == []


def test_aliases_become_dot_qmail_files_with_colons_for_dots_and_fully_qualified_forwards(tmp_path: Path) -> None:
    site = """
host: {name: mail.example.org}
domains: [example.org, {name: example.com, catch_all: joe}]
users: [joe]
aliases: {first.last: joe, sales@example.com: [joe, boss@elsewhere.example]}
mailbox: {format: mbox}
"""
    root = render_text(site, tmp_path)
    alias = root / "var/qmail/alias"
    assert entries(alias / ".qmail-first:last") == ["&joe@mail.example.org"]
    # example.com has per-address rules, so it is mapped away from locals to ~alias/.qmail-example:com-*.
    assert "example.com" not in entries(root / CONTROL / "locals")
    assert entries(root / CONTROL / "virtualdomains") == ["example.com:alias-example.com"]
    assert entries(alias / ".qmail-example:com-sales") == ["&joe@mail.example.org", "&boss@elsewhere.example"]
    assert entries(alias / ".qmail-example:com-joe") == ["&joe@mail.example.org"]
    assert entries(alias / ".qmail-example:com-default") == ["&joe@mail.example.org"]
    assert (root / CONTROL / "defaultdelivery").read_text() == "./Mailbox\n"
    assert check_tree(root) == []


@pytest.mark.parametrize(
    ("change", "feature"),
    [
        ('trusted_networks: ["2001:db8:1::/48"]', "IPv6 trusted network"),
        ('host: {name: mail.example.org, listen: ["2001:db8::25"]}', "IPv6 address"),
        ("smarthost: {host: smtp.example.net, credentials_file: secret}", "SMTP AUTH"),
        ("aliases: {default: joe}", "'default'"),
        ("aliases: {lists-default: joe}", "'lists-default'"),
    ],
)
def test_features_qmail_cannot_express_are_refused_naming_feature_and_place(
    tmp_path: Path, change: str, feature: str
) -> None:
    key = change.partition(":")[0]
    lines = {"host": "host: {name: mail.example.org}", "domains": "domains: [example.org]", "users": "users: [joe]"}
    lines[key] = change
    (tmp_path / "secret").write_text("user:pass\n")
    (tmp_path / "secret").chmod(0o600)
    text = "\n".join(lines.values()) + "\n"
    loaded = parse_site(text, tmp_path / "site.yaml")
    with pytest.raises(RenderRefused) as refused:
        Qmail().render(loaded, Target(root=str(tmp_path / "root")))
    message = str(refused.value)
    assert "qmail" in message and feature in message, message
    line = list(lines).index(key) + 1
    assert f"site.yaml:{line}:" in message, message


def test_loopback_ipv6_is_skipped_not_refused(tmp_path: Path) -> None:
    site = 'host: {name: mail.example.org, listen: ["::1"]}\ndomains: [example.org]\ntrusted_networks: ["::1/128"]\n'
    root = render_text(site, tmp_path)
    assert "::1" not in (root / "etc/tcp.smtp").read_text().replace("# ::1", "")
    assert " 127.0.0.1 25 " in (root / "var/qmail/supervise/qmail-smtpd/run").read_text()


def test_without_users_roots_mail_goes_to_the_alias_mailbox(tmp_path: Path) -> None:
    """postmaster is then root, whom qmail never delivers to: an empty ~alias/.qmail-root (0 bytes: the default
    delivery) puts root's mail in ~alias's Maildir."""
    root = render_text("host: {name: mail.example.org}\ndomains: [example.org]\n", tmp_path)
    alias = root / "var/qmail/alias"
    assert entries(alias / ".qmail-postmaster") == ["&root@mail.example.org"]
    assert (alias / ".qmail-root").read_bytes() == b"" and (alias / "Maildir/new").is_dir()


def test_one_smtpd_service_per_listening_address_and_none_when_smtp_is_off(tmp_path: Path) -> None:
    site = (
        "host: {name: mail.example.org, listen: [127.0.0.1, 192.0.2.25], ports: {smtp: 2525}}\ndomains: [a.example]\n"
    )
    root = render_text(site, tmp_path / "two")
    runs = {p.parent.name: p.read_text() for p in root.glob("var/qmail/supervise/qmail-smtpd*/run")}
    assert sorted(runs) == ["qmail-smtpd-127.0.0.1", "qmail-smtpd-192.0.2.25"]
    assert " 192.0.2.25 2525 " in runs["qmail-smtpd-192.0.2.25"]
    site = "host: {name: mail.example.org, ports: {smtp: false}}\ndomains: [a.example]\n"
    root = render_text(site, tmp_path / "off")
    assert not list(root.glob("var/qmail/supervise/qmail-smtpd*"))
    assert (root / "var/qmail/supervise/qmail-send/run").exists()


def test_qmail_is_rendered_without_submission_and_says_so(tmp_path: Path) -> None:
    root = render(EXAMPLES / "site.yaml", tmp_path / "root")
    runs = sorted(p.parent.name for p in (root / "var/qmail/supervise").glob("*/run"))
    assert runs == ["qmail-send", "qmail-smtpd"]
    readme = (root / "var/qmail/README.mailconf").read_text()
    assert "submission and smtps with login" in readme and "STARTTLS" in readme


# ------------------------------------------------------------------------------------------ the checker


@pytest.fixture
def good_tree(tmp_path: Path) -> Path:
    root = render(EXAMPLES / "virtual-hosting.yaml", tmp_path / "root")
    assert check_tree(root) == []
    return root


def only_problem(root: Path) -> tuple[str, str]:
    problems = check_tree(root)
    assert len(problems) == 1, problems
    return str(problems[0].location), problems[0].message


def test_checker_rejects_a_missing_rcpthosts_as_an_open_relay(good_tree: Path) -> None:
    (good_tree / CONTROL / "rcpthosts").unlink()
    where, message = only_problem(good_tree)
    assert where == str(good_tree / CONTROL / "rcpthosts") and "open relay" in message


def test_checker_rejects_an_rcpthosts_without_domains(good_tree: Path) -> None:
    (good_tree / CONTROL / "rcpthosts").write_text("# nothing here\n\n")
    where, message = only_problem(good_tree)
    assert where == str(good_tree / CONTROL / "rcpthosts") and "rejects all mail" in message


@pytest.mark.parametrize(
    ("name", "text", "line", "words"),
    [
        ("me", "# the host\nmx1.hosting.example\n", 1, "does not allow comments"),
        ("me", "mx1.hosting.example\nsecond.example\n", 2, "trailing junk"),
        ("defaultdomain", "hosting.example extra\n", 1, "is not a domain"),
        ("databytes", "25M\n", 1, "not a number"),
        ("databytes", "10240000\n# limit\n", 2, "trailing junk"),
        ("rcpthosts", "shop.example\n bad.example\n", 2, "leading blank"),
        ("virtualdomains", "shop.example: vmail\n", 1, "domain:prepend"),
        ("virtualdomains", "hosting.example:vmail-x\n", 1, "also in locals"),
        ("smtproutes", ":smtp.provider.example:99999\n", 1, "domain:relay"),
    ],
)
def test_checker_rejects_broken_control_files_at_their_line(
    good_tree: Path, name: str, text: str, line: int, words: str
) -> None:
    path = good_tree / CONTROL / name
    path.write_text(text)
    where, message = only_problem(good_tree)
    assert where.startswith(f"{path}:{line}") and words in message, (where, message)


def test_checker_rejects_the_percent_hack_and_a_stale_morercpthosts_cdb(good_tree: Path) -> None:
    hack = good_tree / CONTROL / "percenthack"
    hack.write_text("# relay trick\nshop.example\n")
    where, message = only_problem(good_tree)
    assert where == f"{hack}:2:1" and "user%elsewhere@shop.example" in message
    hack.unlink()
    more = good_tree / CONTROL / "morercpthosts"
    more.write_text("more.example\n")
    where, message = only_problem(good_tree)
    assert where == str(more) and "qmail-newmrh" in problem_hints(good_tree)[0]
    (good_tree / CONTROL / "morercpthosts.cdb").write_bytes(b"")
    os.utime(more, (1, 1))
    assert check_tree(good_tree) == []


def problem_hints(root: Path) -> list[str]:
    return [p.hint for p in check_tree(root)]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("&admin\n", 1, "not a fully qualified address"),
        ("& admin@mx1.hosting.example\n", 1, "not a fully qualified address"),
        ("# forward\n!admin@mx1.hosting.example\n", 2, "not a delivery instruction"),
        ("\n&admin@mx1.hosting.example\n", 1, "first line must not be blank"),
        ("./Maild ir/\n", 1, "blank inside"),
    ],
)
def test_checker_rejects_bad_dot_qmail_lines(good_tree: Path, text: str, line: int, words: str) -> None:
    path = good_tree / "var/qmail/alias/.qmail-postmaster"
    path.write_text(text)
    where, message = only_problem(good_tree)
    assert where == f"{path}:{line}:1" and words in message, (where, message)


def test_checker_rejects_dot_qmail_names_qmail_never_reads_and_world_writable_files(good_tree: Path) -> None:
    home = good_tree / "var/mail/vhosts/shop.example"
    os.rename(home / ".qmail-info", home / ".qmail-Info.Desk")
    where, message = only_problem(good_tree)
    assert where == str(home / ".qmail-Info.Desk") and "never reads" in message
    os.rename(home / ".qmail-Info.Desk", home / ".qmail-info")
    (home / ".qmail-info").chmod(0o666)
    where, message = only_problem(good_tree)
    assert where == str(home / ".qmail-info") and "world-writable" in message


def test_checker_rejects_a_broken_users_assign(good_tree: Path) -> None:
    assign = good_tree / "var/qmail/users/assign"
    lines = assign.read_text().splitlines()
    assign.write_text("\n".join(lines[:-1]) + "\n")  # no final dot
    where, message = only_problem(good_tree)
    assert where.startswith(f"{assign}:") and "single dot" in message
    assign.write_text("# virtual users\n" + "\n".join(lines) + "\n")
    where, message = only_problem(good_tree)
    assert where == f"{assign}:1:1" and "not an assignment" in message


def test_checker_rejects_tcp_rules_that_make_an_open_relay(good_tree: Path) -> None:
    rules = good_tree / "etc/tcp.smtp"
    text = rules.read_text()
    rules.write_text(text.replace(":allow\n", ':allow,RELAYCLIENT=""\n'))
    where, message = only_problem(good_tree)
    assert where.startswith(f"{rules}:") and "open relay" in message
    rules.write_text(text.replace(":allow\n", '1.:allow,RELAYCLIENT=""\n:allow\n'))
    where, message = only_problem(good_tree)
    assert "16777216 public addresses" in message
    rules.write_text(text + "10.0.0.1 allow\n")
    where, message = only_problem(good_tree)
    assert where == f"{rules}:{len(text.splitlines()) + 1}:1" and "ADDRESS:allow" in message


def test_checker_command_exits_1_on_problems_and_0_on_a_clean_tree(good_tree: Path) -> None:
    command = [sys.executable, "-m", "mailconf.mta.qmail_check", str(good_tree)]
    assert subprocess.run(command, capture_output=True, timeout=30).returncode == 0
    (good_tree / CONTROL / "databytes").write_text("lots\n")
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and f"{good_tree}/{CONTROL}/databytes:1:1: error:" in done.stdout
