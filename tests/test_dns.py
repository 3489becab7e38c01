"""DNS records and live checks, proved against a real authoritative server (NSD) on 127.0.0.1.

Each scenario writes a site, takes the zones `dns-records` prints for it (optionally with one mistake), serves
them with NSD (started in ~0.1 s, stopped by PID) and runs `check-dns` against that server.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.zone
import pytest
from typer.testing import CliRunner

from mailconf.cli import app
from mailconf.dns import dkim
from mailconf.dns.lookup import parse_nameserver
from mailconf.dns.records import TXT_CHUNK, txt_rdata
from mailconf.dns.spf import parse_spf
from mailconf.site import load_site

REPO = Path(__file__).resolve().parent.parent
NSD = shutil.which("nsd") or shutil.which("nsd", path="/usr/sbin")
SOA = "@ 300 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n@ 300 IN NS ns.test.\n"


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


# ---------------------------------------------------------------- the real name server


def blocks(zone_text: str) -> dict[str, str]:
    """The $ORIGIN blocks of `dns-records` output: origin -> block."""
    parts = re.split(r"(?m)^(?=\$ORIGIN )", zone_text)
    return {p.split()[1].rstrip("."): p for p in parts if p.startswith("$ORIGIN ")}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        return udp.getsockname()[1]


def answers_soa(port: int, origin: str) -> bool:
    try:
        reply = dns.query.udp(dns.message.make_query(origin, "SOA"), "127.0.0.1", port=port, timeout=0.2)
    except (dns.exception.Timeout, OSError):
        return False
    return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)


@contextmanager
def nsd(workdir: Path, zones: dict[str, str]) -> Iterator[str]:
    """Serve `zones` (origin -> records) with NSD on 127.0.0.1; yield "127.0.0.1:PORT"; stop it by PID."""
    if NSD is None:  # fail, not skip: without the real server these tests prove nothing
        pytest.fail("NSD is not installed: run scripts/install-dns-server (as root)")
    workdir.mkdir(exist_ok=True)
    port = free_port()
    config = [
        "server:",
        "    ip-address: 127.0.0.1",
        f"    port: {port}",
        '    username: ""',
        '    chroot: ""',
        '    database: ""',
        f'    zonesdir: "{workdir}"',
        f'    zonelistfile: "{workdir}/zone.list"',
        f'    xfrdfile: "{workdir}/xfrd.state"',
        f'    pidfile: "{workdir}/nsd.pid"',
        f'    logfile: "{workdir}/nsd.log"',
        "    server-count: 1",
        "    do-ip6: no",
        "remote-control:",
        "    control-enable: no",
    ]
    for i, (origin, records) in enumerate(zones.items()):
        (workdir / f"{i}.zone").write_text(f"$ORIGIN {origin}.\n{SOA}{records}")
        config += ["zone:", f'    name: "{origin}"', f'    zonefile: "{i}.zone"']
    (workdir / "nsd.conf").write_text("\n".join(config) + "\n")
    server = subprocess.Popen([NSD, "-d", "-c", str(workdir / "nsd.conf")], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        waiting = set(zones)
        while waiting and time.monotonic() < deadline and server.poll() is None:
            waiting = {origin for origin in waiting if not answers_soa(port, origin)}
        log = (workdir / "nsd.log").read_text() if (workdir / "nsd.log").exists() else ""
        assert not waiting, f"NSD does not serve {sorted(waiting)}:\n{log}"
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def check_dns(site: Path, server: str, *more: str) -> tuple[int, list[dict]]:
    code, out, err = cli("check-dns", "-c", str(site), "--nameserver", server, "--format", "json", *more)
    assert code in (0, 1), err
    return code, json.loads(out)["findings"]


def errors(findings: list[dict]) -> set[str]:
    return {f["check"] for f in findings if f["severity"] == "error"}


# ---------------------------------------------------------------- scenarios


def write_site(directory: Path, name: str, n: int, extra: str = "") -> Path:
    """A one-domain site NAME.test whose host mail.NAME.test has 192.0.2.N and 2001:db8::N."""
    directory.mkdir(parents=True, exist_ok=True)
    site = directory / "site.yaml"
    site.write_text(
        f'host:\n  name: mail.{name}.test\n  ipv4: 192.0.2.{n}\n  ipv6: "2001:db8::{n}"\n'
        f"domains: [{name}.test]\nusers: [joe]\n{extra}"
    )
    return site


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> dkim.KeyFiles:
    """One RSA key made once, copied into each scenario (keygen costs ~0.2 s)."""
    directory = tmp_path_factory.mktemp("key")
    files = dkim.KeyFiles(directory / "k.key", directory / "k.pub")
    assert dkim.generate(files)
    return files


def install_key(site: Path, key_pair: dkim.KeyFiles) -> None:
    loaded = load_site(site)
    for domain in loaded.site.domains:
        files = dkim.key_files(loaded, "mail", domain.name)
        files.private.parent.mkdir(mode=0o700, exist_ok=True)
        shutil.copy2(key_pair.private, files.private)
        shutil.copy2(key_pair.public, files.public)


def records_of(site: Path) -> str:
    code, out, err = cli("dns-records", "-c", str(site))
    assert code == 0, err
    return out


Mistake = Callable[[str, str], str]  # (zone text, domain) -> zone text with the mistake


def run_scenario(tmp_path: Path, key_pair: dkim.KeyFiles, mistake: Mistake | None, n: int) -> list[dict]:
    site = write_site(tmp_path / "site", "shop", n)
    install_key(site, key_pair)
    text = records_of(site)
    if mistake:
        changed = mistake(text, "shop.test")
        assert changed != text, "the mistake must change the zones"
        text = changed
    with nsd(tmp_path / "nsd", blocks(text)) as server:
        code, findings = check_dns(site, server)
    assert code == (1 if errors(findings) else 0)
    return findings


def test_site_with_every_record_right_passes_every_check(tmp_path: Path, key_pair: dkim.KeyFiles) -> None:
    findings = run_scenario(tmp_path, key_pair, None, 10)
    assert [f for f in findings if f["severity"] != "ok"] == []
    checks = {f["check"] for f in findings}
    assert checks == {"address", "ptr", "mx", "spf", "dmarc", "dkim", "mta-sts", "tls-rpt"}
    assert {f["subject"] for f in findings if f["check"] == "ptr"} == {"192.0.2.10", "2001:db8::10"}


def _drop_mx(text: str, domain: str) -> str:
    return re.sub(r"(?m)^@\s+\d+ IN MX .*\n", "", text)


def _wrong_a(text: str, domain: str) -> str:
    return re.sub(r"(IN A\s+)192\.0\.2\.\d+", r"\g<1>192.0.2.250", text)


def _wrong_ptr(text: str, domain: str) -> str:
    return re.sub(r"(IN PTR\s+)\S+", r"\g<1>dynamic-10.isp.example.", text)


def _spf_without_host(text: str, domain: str) -> str:
    return re.sub(r'"v=spf1 [^"]*"', '"v=spf1 ip4:198.51.100.1 -all"', text)


def _spf_over_ten_lookups(text: str, domain: str) -> str:
    """mx a + 4 includes of `a mx` each: 2 + 4 + 4 * 2 = 14 lookups."""
    includes = " ".join(f"include:_spf{i}.{domain}" for i in range(4))
    text = re.sub(r'"v=spf1 [^"]*"', f'"v=spf1 mx a {includes} -all"', text)
    nested = "".join(f'_spf{i} 300 IN TXT "v=spf1 a mx -all"\n' for i in range(4))
    return text.replace(f"$ORIGIN {domain}.\n", f"$ORIGIN {domain}.\n{nested}")


def _broken_dmarc(text: str, domain: str) -> str:
    return text.replace("p=quarantine", "p=bogus")


def _stale_mta_sts_id(text: str, domain: str) -> str:
    return re.sub(r"v=STSv1; id=\w+", "v=STSv1; id=20240101", text)


@pytest.mark.parametrize(
    ("mistake", "caught_by"),
    [
        (_drop_mx, {"mx"}),
        (_wrong_a, {"address", "ptr"}),  # a wrong A also breaks forward-confirmed reverse DNS
        (_wrong_ptr, {"ptr"}),
        (_spf_without_host, {"spf"}),
        (_spf_over_ten_lookups, {"spf"}),
        (_broken_dmarc, {"dmarc"}),
        (_stale_mta_sts_id, {"mta-sts"}),
    ],
    ids=[
        "missing-mx",
        "wrong-a",
        "ptr-mismatch",
        "spf-missing-host",
        "spf-over-10-lookups",
        "broken-dmarc",
        "stale-mta-sts-id",
    ],
)
def test_each_dns_mistake_is_an_error_of_the_right_check_only(
    tmp_path: Path, key_pair: dkim.KeyFiles, mistake: Mistake, caught_by: set[str]
) -> None:
    findings = run_scenario(tmp_path, key_pair, mistake, 11)
    assert errors(findings) == caught_by
    assert all(f["fix"] for f in findings if f["severity"] != "ok")


def test_spf_over_ten_lookups_reports_the_count(tmp_path: Path, key_pair: dkim.KeyFiles) -> None:
    findings = run_scenario(tmp_path, key_pair, _spf_over_ten_lookups, 12)
    assert [f["message"] for f in findings if f["severity"] == "error"] == [
        "SPF needs 14 DNS lookups; receivers stop at 10 (permerror)"
    ]


def _weaker_but_working(text: str, domain: str) -> str:
    """DMARC that only monitors, and no TLS reports: mail flows, but the site asked for more."""
    return re.sub(r"(?m)^_smtp\._tls .*\n", "", text.replace("p=quarantine", "p=none"))


def test_weaker_records_are_warnings_and_exit_zero(tmp_path: Path, key_pair: dkim.KeyFiles) -> None:
    findings = run_scenario(tmp_path, key_pair, _weaker_but_working, 21)  # asserts exit 0 when no errors
    assert errors(findings) == set()
    assert {f["check"] for f in findings if f["severity"] == "warning"} == {"dmarc", "tls-rpt"}


def test_stale_dkim_key_in_dns_is_an_error_of_the_dkim_check(tmp_path: Path, key_pair: dkim.KeyFiles) -> None:
    site = write_site(tmp_path / "site", "shop", 13)
    install_key(site, key_pair)
    published = records_of(site)  # the old key goes into DNS ...
    code, out, err = cli("dkim-keygen", "-c", str(site), "--force")  # ... then the key is replaced locally
    assert code == 0 and out.startswith("wrote "), err
    with nsd(tmp_path / "nsd", blocks(published)) as server:
        code, findings = check_dns(site, server)
    assert code == 1
    assert errors(findings) == {"dkim"}
    assert "stale" in next(f["message"] for f in findings if f["severity"] == "error")


def test_example_site_records_load_into_nsd_and_pass_check_dns(tmp_path: Path) -> None:
    """What mailconf says to publish is what mailconf checks for."""
    site = tmp_path / "site.yaml"
    shutil.copy(REPO / "examples/site.yaml", site)
    code, out, err = cli("dkim-keygen", "-c", str(site))
    assert code == 0 and out.count("wrote ") == 2, err  # one key per domain
    policy = tmp_path / "mta-sts.txt"
    code, text, err = cli("dns-records", "-c", str(site), "--mta-sts-policy", str(policy))
    assert code == 0, err
    assert set(blocks(text)) == {"example.org", "example.com", "25.2.0.192.in-addr.arpa"}
    assert policy.read_bytes() == b"version: STSv1\r\nmode: testing\r\nmx: mail.example.org\r\nmax_age: 604800\r\n"
    with nsd(tmp_path / "nsd", blocks(text)) as server:
        code, findings = check_dns(site, server)
    assert [f for f in findings if f["severity"] != "ok"] == []
    assert code == 0
    assert {f["subject"] for f in findings if f["check"] == "dkim"} == {
        "mail._domainkey.example.org",
        "mail._domainkey.example.com",
    }


def test_silent_name_server_gives_one_clear_error(tmp_path: Path) -> None:
    site = write_site(tmp_path, "shop", 14)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, never answers
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        started = time.monotonic()
        code, findings = check_dns(site, f"127.0.0.1:{port}", "--timeout", "0.5")
    assert time.monotonic() - started < 5
    assert code == 1
    assert [(f["check"], f["severity"]) for f in findings] == [("nameserver", "error")]
    assert "did not answer" in findings[0]["message"]


def test_check_dns_text_report_gives_a_fix_for_each_problem(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site", "shop", 22)  # no DKIM key here: a warning
    text = _drop_mx(records_of(site), "shop.test")
    with nsd(tmp_path / "nsd", blocks(text)) as server:
        code, out, err = cli("check-dns", "-c", str(site), "--nameserver", server)
    assert (code, err) == (1, "")
    lines = out.splitlines()
    mx = lines.index("error    mx       shop.test: no MX record: senders fall back to the domain's own address")
    assert lines[mx + 1].strip() == "fix: publish shop.test. MX 10 mail.shop.test. (see `mailconf dns-records`)"
    assert lines[-1] == "1 error(s), 1 warning(s), 8 ok"


@pytest.mark.parametrize(
    "args",
    [
        ["check-dns", "--nameserver", "ns.example.org"],
        ["check-dns", "--nameserver", "127.0.0.1:0"],
        ["check-dns", "--format", "xml"],
        ["dns-records", "--format", "bind"],
    ],
)
def test_bad_dns_command_options_exit_2(tmp_path: Path, args: list[str]) -> None:
    site = write_site(tmp_path, "shop", 23)
    code, out, err = cli(*args, "-c", str(site))
    assert code == 2
    assert err.strip() and out == ""


@pytest.mark.parametrize(
    ("text", "server"),
    [("192.0.2.53", ("192.0.2.53", 53)), ("192.0.2.53:5353", ("192.0.2.53", 5353)), ("::1", ("::1", 53)),
     ("[::1]", ("::1", 53)), ("[::1]:5353", ("::1", 5353))],
)  # fmt: skip
def test_nameserver_is_an_address_with_an_optional_port(text: str, server: tuple[str, int]) -> None:
    assert parse_nameserver(text) == server


@pytest.mark.parametrize("text", ["ns.example.org", "[::1]x", "[::1", "[::1]:", "127.0.0.1:0"])
def test_a_nameserver_that_is_no_address_and_port_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_nameserver(text)


def test_mta_sts_policy_file_is_refused_when_mta_sts_is_off(tmp_path: Path) -> None:
    site = write_site(tmp_path, "shop", 24, "dns:\n  mta_sts: off\n")
    code, out, err = cli("dns-records", "-c", str(site), "--mta-sts-policy", str(tmp_path / "policy.txt"))
    assert code == 2 and "mta_sts is off" in err and out == ""
    assert not (tmp_path / "policy.txt").exists()


# ---------------------------------------------------------------- dns-records without a server


def test_dns_records_parse_as_zone_files_before_any_dkim_key(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    shutil.copy(REPO / "examples/virtual-hosting.yaml", site)
    text = records_of(site)
    zones = {origin: dns.zone.from_text(block, check_origin=False) for origin, block in blocks(text).items()}
    assert set(zones) == {
        "hosting.example",
        "shop.example",
        "club.example",
        "7.100.51.198.in-addr.arpa",
        "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.7.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
    }
    assert "_domainkey" not in text
    shop = zones["shop.example"]
    assert shop.find_rdataset("@", "MX").to_text() == "3600 IN MX 10 mx1.hosting.example."
    spf = b"".join(shop.find_rdataset("@", "TXT")[0].strings).decode()
    assert spf == "v=spf1 mx a ip4:198.51.100.7 ip6:2001:db8:7::25 -all"
    host = zones["hosting.example"]
    assert host.find_rdataset("mx1", "AAAA")[0].address == "2001:db8:7::25"
    assert "mx1" not in {n.to_text() for n in shop.nodes}  # the host's addresses live in its own zone only
    reverse = zones["7.100.51.198.in-addr.arpa"]
    assert reverse.find_rdataset("@", "PTR")[0].target.to_text() == "mx1.hosting.example."


def test_srv_records_follow_the_sites_ports_and_protocols(tmp_path: Path) -> None:
    site = write_site(tmp_path, "shop", 15, "host_ports_placeholder")
    site.write_text(
        site.read_text()
        .replace("host_ports_placeholder", "pop_imap:\n  protocols: [imap]\n")
        .replace('ipv6: "2001:db8::15"\n', 'ipv6: "2001:db8::15"\n  ports:\n    imaps: 1993\n    smtps: false\n')
    )
    zone = dns.zone.from_text(blocks(records_of(site))["shop.test"], check_origin=False)

    def srv(name: str) -> str:
        return zone.find_rdataset(name, "SRV")[0].to_text(origin=zone.origin, relativize=False)

    assert srv("_imaps._tcp") == "0 1 1993 mail.shop.test."
    assert srv("_submission._tcp") == "10 1 587 mail.shop.test."
    assert srv("_submissions._tcp") == "0 0 0 ."  # smtps is off
    assert srv("_pop3s._tcp") == "0 0 0 ."  # POP3 is not offered
    assert zone.find_rdataset("autoconfig", "CNAME")[0].target.derelativize(zone.origin).to_text() == "mail.shop.test."


def test_long_txt_is_split_into_255_byte_strings_and_quotes_are_escaped() -> None:
    text = 'v=x; a="b\\c"; ' + "k" * 600
    rdata = txt_rdata(text)
    record = dns.zone.from_text(f"$ORIGIN t.\n@ 60 IN TXT {rdata}\n", check_origin=False).find_rdataset("@", "TXT")[0]
    assert [len(s) for s in record.strings] == [TXT_CHUNK, TXT_CHUNK, len(text.encode()) - 2 * TXT_CHUNK]
    assert b"".join(record.strings).decode() == text


def test_dns_records_json_lists_the_same_records(tmp_path: Path) -> None:
    site = write_site(tmp_path, "shop", 16)
    code, out, err = cli("dns-records", "-c", str(site), "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    shop = next(z for z in document["zones"] if z["origin"] == "shop.test")
    types = {(r["name"], r["type"]) for r in shop["records"]}
    assert {
        ("shop.test", "MX"),
        ("mail.shop.test", "A"),
        ("mail.shop.test", "AAAA"),
        ("_dmarc.shop.test", "TXT"),
    } <= types
    assert document["mta_sts_policy"].startswith("version: STSv1\r\n")


def test_site_spf_policy_and_dmarc_settings_are_published(tmp_path: Path) -> None:
    extra = "dns:\n  spf: v=spf1 ip4:192.0.2.17 include:_spf.provider.example ~all\n  dmarc_policy: reject\n"
    extra += "  reports: dmarc@elsewhere.example\n  mta_sts: off\n"
    text = records_of(write_site(tmp_path, "shop", 17, extra))
    assert '"v=spf1 ip4:192.0.2.17 include:_spf.provider.example ~all"' in text
    assert '"v=DMARC1; p=reject; rua=mailto:dmarc@elsewhere.example"' in text
    assert "elsewhere.example must publish shop.test._report._dmarc.elsewhere.example." in text
    assert "_mta-sts" not in text


@pytest.mark.parametrize(
    ("dns_yaml", "message"),
    [
        ("  spf: v=spf1 ip4:300.1.1.1 -all", "not an IPv4 address"),
        ('  spf: "v=spf1 mx\\n-all"', "printable ASCII"),
        ('  spf: "v=spf1 bogus -all"', "unknown mechanism"),
        ("  dkim_selectors: [Mail_1]", "not a DKIM selector"),
        ("  dmarc_policy: strict", "none"),
        ("  dkim_keys: ../../etc", "not a plain directory"),
    ],
)
def test_bad_dns_settings_are_located_errors(tmp_path: Path, dns_yaml: str, message: str) -> None:
    site = write_site(tmp_path, "shop", 18, f"dns:\n{dns_yaml}\n")
    code, out, err = cli("dns-records", "-c", str(site))
    assert code == 2
    assert f"{site}:8:" in err
    assert message in err
    assert out == ""


# ---------------------------------------------------------------- dkim-keygen


def test_dkim_keygen_writes_a_0600_private_key_and_never_overwrites_it(tmp_path: Path) -> None:
    site = write_site(tmp_path, "shop", 19)
    code, out, err = cli("dkim-keygen", "-c", str(site))
    assert code == 0, err
    private, public = tmp_path / "dkim/mail.shop.test.key", tmp_path / "dkim/mail.shop.test.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(private.parent.stat().st_mode) == 0o700
    assert b"BEGIN PRIVATE KEY" in private.read_bytes()
    modulus = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(public), "-text", "-noout"], capture_output=True)
    assert b"Public-Key: (2048 bit)" in modulus.stdout
    before = private.read_bytes()
    code, out, err = cli("dkim-keygen", "-c", str(site))
    assert code == 0 and "kept" in out
    assert private.read_bytes() == before
    code, out, err = cli("dkim-keygen", "-c", str(site), "--force")
    assert code == 0 and private.read_bytes() != before
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = dkim.public_key(load_site(site), "mail", "shop.test")
    assert f"p={key}" in "".join(re.findall(r'"([^"]*)"', records_of(site)))


def test_dkim_keygen_refuses_a_selector_the_site_does_not_list(tmp_path: Path) -> None:
    site = write_site(tmp_path, "shop", 20)
    code, out, err = cli("dkim-keygen", "-c", str(site), "--selector", "other")
    assert code == 2 and out == ""
    assert "dkim_selectors" in err
    assert not (tmp_path / "dkim").exists()


# ---------------------------------------------------------------- SPF grammar


@pytest.mark.parametrize(
    "record",
    [
        "v=spf1 -all",
        "v=spf1 a:mail.example.org/24//64 mx/28 ip6:2001:db8::/32 include:_spf.example.net ?all",
        "v=spf1 exists:%{i}._spf.example.org redirect=_spf.example.org",
    ],
)
def test_valid_spf_records_parse(record: str) -> None:
    parse_spf(record)


@pytest.mark.parametrize(
    "record",
    ["v=spf2 -all", "v=spf1 ip4:10.0.0.0/33", "v=spf1 include", "v=spf1 all:x", "v=spf1 redirect=a redirect=b"],
)
def test_invalid_spf_records_are_refused(record: str) -> None:
    with pytest.raises(ValueError):
        parse_spf(record)
