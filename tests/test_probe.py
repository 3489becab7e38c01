"""The live relay prober against real daemons: Postfix rendered by mailconf, hand-written Exim and Sendmail configs.

An outside client is either Postfix's XCLIENT (authorized for 127.0.0.1 in the test copy of main.cf only) or a
real one: the prober runs in a client network namespace and the daemon in a server namespace (198.18.0.0/30).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import mailtest
import pytest
import realprogs
import yaml

from mailconf.probe import CATALOGUE, NMAP, Outcome, ProbeReport, Verdict, probe, probe_many, run_cli
from mailconf.probe.output import UsageError, parse_target
from mailconf.probe.prober import TRICKS_PER_CONNECTION
from mailconf.probe.tricks import fill, tricks

OUTSIDE_IP = "203.0.113.5"  # TEST-NET-3, presented through XCLIENT
PORT_NAMES = ("smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps")
NETNS_PORT = 2525
CHECK_RELAY = [sys.executable, "-m", "mailconf", "check-relay"]
# Tricks an open relay takes (measured against these configs); the others are refused for their syntax
# (percent hack, source route, bang path, quoting) or are local recipients that do not exist.
POSTFIX_OPEN_TRICKS = {1, 2, 3, 4, 7, 9, 10, 11, 12, 13, 17, 18, 19, 20, 21, 22, 25, 26}
EXIM_OPEN_TRICKS = {1, 2, 3, 17, 19, 22, 26}  # Exim refuses domain-literal senders (nmap 4-16) at MAIL
SENDMAIL_OPEN_TRICKS = {1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 13, 14, 15, 16, 17, 20, 21, 22, 25, 26}


# ----------------------------------------------------------------------------------------------- daemons


@pytest.fixture(scope="module")
def tls_pair() -> Iterator[tuple[str, str]]:
    with realprogs.open_tmpdir() as tmp:
        cert, key = mailtest.self_signed(tmp, "mail.example.test", ec=True)
        yield cert.read_text(), key.read_text()


def render_postfix(
    root: Path, tls: tuple[str, str], *, listen: str = "127.0.0.1", extra: str = "", netns: str | None = None
) -> Path:
    """`mailconf render --mta postfix --root` of a one-domain site on high ports; returns the config dir.

    ``extra`` is appended to main.cf: test-only settings (XCLIENT authorization, a deliberate relay mistake).
    """
    site = {
        "host": {"name": "mail.example.test", "listen": [listen],
                 "ports": {name: realprogs.free_port() for name in PORT_NAMES}},
        "domains": ["example.test"],
        "users": ["joe"],
        "tls": {"cert": "/etc/ssl/mailconf/cert.pem", "key": "/etc/ssl/mailconf/key.pem"},
    }  # fmt: skip
    if listen != "127.0.0.1":
        site["host"]["ports"]["smtp"] = NETNS_PORT
    (root / "site.yaml").write_text(yaml.safe_dump(site))
    tree = root / "tree"
    argv = [sys.executable, "-m", "mailconf", "render", "--mta", "postfix", "--pop-imap", "none"]
    realprogs.run([*argv, "--root", tree, "-c", root / "site.yaml"], check=True)
    for name, text in zip(("cert.pem", "key.pem"), tls, strict=True):
        (tree / "etc/ssl/mailconf").mkdir(parents=True, exist_ok=True)
        (tree / "etc/ssl/mailconf" / name).write_text(text)
    config = tree / "etc/postfix"
    postalias = ["/usr/sbin/postalias", "-c", config, tree / "etc/aliases"]  # needs the listen address: in netns
    cp = realprogs.netns_run(netns, postalias) if netns else realprogs.run(postalias)
    assert cp.returncode == 0, cp.stderr
    with (config / "main.cf").open("a") as main_cf:
        main_cf.write(f"\n# test only\nmaillog_file = {root}/maillog\nmaillog_file_prefixes = {root}\n{extra}\n")
    return config


@contextlib.contextmanager
def running(start: Callable[[], int], stop: Callable[[], object]) -> Iterator[int]:
    pid = start()
    try:
        yield pid
    finally:
        stop()
        realprogs.stop_pid(pid)  # by PID, whatever stop() did


@contextlib.contextmanager
def postfix(
    tls: tuple[str, str], *, listen: str = "127.0.0.1", extra: str = "", netns: str | None = None
) -> Iterator[int]:
    """A running Postfix rendered by mailconf; yields its SMTP port."""
    realprogs.require("postfix")
    with realprogs.open_tmpdir() as root:
        config = render_postfix(root, tls, listen=listen, extra=extra, netns=netns)
        port = int(yaml.safe_load((root / "site.yaml").read_text())["host"]["ports"]["smtp"])
        stop = partial(realprogs.postfix_stop, config, netns=netns)
        with running(partial(realprogs.postfix_start, config, netns=netns), stop):
            assert realprogs.wait_for_port(listen, port, netns=netns)
            yield port


@pytest.fixture(scope="module")
def closed_postfix(tls_pair: tuple[str, str]) -> Iterator[int]:
    """mailconf's own Postfix config, default tarpit; XCLIENT authorized for 127.0.0.1 (test only)."""
    with postfix(tls_pair, extra="smtpd_authorized_xclient_hosts = 127.0.0.1") as port:
        yield port


@pytest.fixture(scope="module")
def open_postfix(tls_pair: tuple[str, str]) -> Iterator[int]:
    """A deliberate relay mistake: every address is a trusted network. No XCLIENT."""
    with postfix(tls_pair, extra="mynetworks = 0.0.0.0/0") as port:
        yield port


def exim_config(root: Path, addr: str, relay_from_hosts: str) -> Path:
    """configure.default's relay ACL in small; `relay_from_hosts = *` is the catalogue's Exim mistake."""
    acl = """\
  deny    local_parts = ^[.] : ^.*[@%!/|]
  accept  hosts = +relay_from_hosts
  require message = relay not permitted
          domains = +local_domains
  accept
"""
    extra = f"hostlist relay_from_hosts = {relay_from_hosts}"
    return mailtest.exim_sandbox(root, port=NETNS_PORT, interface=addr, extra=extra, acl=acl)


def sendmail_cf(root: Path, addr: str, feature: str) -> Path:
    """A sandboxed .mc (see notes/real-programs.md), built into sendmail.cf; `promiscuous_relay` opens it.

    accept_unresolvable_domains: there is no DNS in the namespaces (a sender check, not a relay one).
    """
    features = f"FEATURE(`accept_unresolvable_domains')dnl\n{feature}\n"
    mc = mailtest.sendmail_mc(root, port=NETNS_PORT, addr=addr, features=features)
    cf = root / "sendmail.cf"
    assert realprogs.m4_sendmail_cf(mc, cf).returncode == 0
    return cf


@contextlib.contextmanager
def netns_daemon(mta: str, is_open: bool, tls: tuple[str, str]) -> Iterator[realprogs.NetnsPair]:
    """Run one MTA in a server network namespace on 198.18.0.1:2525; yields the namespace pair."""
    realprogs.require("netns")
    realprogs.require(mta)
    with realprogs.netns_pair() as pair, realprogs.open_tmpdir() as root:
        addr, ns = pair.server_addr, pair.server
        if mta == "postfix":
            daemon = postfix(tls, listen=addr, netns=ns, extra="mynetworks = 0.0.0.0/0" if is_open else "")
        elif mta == "exim":
            conf = exim_config(root, addr, "*" if is_open else "127.0.0.1")
            daemon = running(partial(realprogs.exim_daemon_start, conf, root / "exim.pid", netns=ns), lambda: None)
        else:
            cf = sendmail_cf(root, addr, "FEATURE(`promiscuous_relay')dnl" if is_open else "")
            daemon = running(
                partial(realprogs.sendmail_daemon_start, cf, root / "sendmail.pid", netns=ns), lambda: None
            )
        with daemon:
            assert realprogs.wait_for_port(addr, NETNS_PORT, netns=pair.client)
            yield pair


def outcomes(report: ProbeReport) -> dict[Outcome, set[int]]:
    found: dict[Outcome, set[int]] = {}
    for result in report.results:
        found.setdefault(result.outcome, set()).add(result.trick)
    return found


# ----------------------------------------------------------------------------------------------- Postfix, XCLIENT


def test_rendered_postfix_refuses_every_trick_from_an_outside_client(closed_postfix: int) -> None:
    report = asyncio.run(probe("127.0.0.1", closed_postfix, xclient=OUTSIDE_IP, timeout=5))
    assert report.verdict is Verdict.CLOSED
    assert [r.trick for r in report.results] == list(range(1, len(CATALOGUE) + 1))
    assert len(CATALOGUE) == len(NMAP) + 10 == 26
    assert all(r.outcome is Outcome.REFUSED and r.code is not None and r.code // 100 == 5 for r in report.results)
    assert sum("Relay access denied" in r.reply for r in report.results) == 24  # 2 more: 501 bad address syntax
    assert report.tls is not None and report.tls.startswith("TLSv1.")  # STARTTLS offered, taken
    assert report.banner == "220 mail.example.test ESMTP"


def test_prober_stays_under_the_postfix_tarpit(closed_postfix: int) -> None:
    """Default smtpd_soft_error_limit 10 / smtpd_error_sleep_time 1s; one connection with all tricks takes ~30 s."""
    report = asyncio.run(probe("127.0.0.1", closed_postfix, xclient=OUTSIDE_IP, timeout=5))
    assert max(len([r for r in report.results if r.connection == n]) for n in range(1, 5)) == TRICKS_PER_CONNECTION
    assert report.seconds < 1.0, report.seconds  # the 10th error on a connection alone would wait 1 s


def test_loopback_is_trusted_so_without_xclient_the_rendered_postfix_relays(closed_postfix: int) -> None:
    """Why the tests need an outside client: 127.0.0.0/8 is in mynetworks."""
    report = asyncio.run(probe("127.0.0.1", closed_postfix, timeout=5))
    assert report.verdict is Verdict.OPEN


def test_open_postfix_is_reported_open_naming_the_tricks_that_relayed(
    open_postfix: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli([f"127.0.0.1:{open_postfix}"], timeout=5) == 1
    text = capsys.readouterr().out
    assert f"127.0.0.1:{open_postfix}: OPEN (26 tricks: " in text
    relayed = text.split("relayed by: ")[1].split("\n")[0].split("; ")
    assert {int(item.split()[0][1:]) for item in relayed} == POSTFIX_OPEN_TRICKS
    assert "#1 null sender" in relayed
    assert "#2 plain third-party relay" in relayed


def test_xclient_not_offered_is_never_probed_as_the_trusted_client(open_postfix: int) -> None:
    report = asyncio.run(probe("127.0.0.1", open_postfix, xclient=OUTSIDE_IP, timeout=5))
    assert report.verdict is Verdict.INCONCLUSIVE
    assert {r.outcome for r in report.results} == {Outcome.DROPPED}
    assert all(r.command == "session" and "XCLIENT is not offered" in r.reply for r in report.results)


def test_json_output_and_exit_0_for_a_closed_server(closed_postfix: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli([f"127.0.0.1:{closed_postfix}"], xclient=OUTSIDE_IP, fmt="json", timeout=5) == 0
    (server,) = json.loads(capsys.readouterr().out)["servers"]
    assert server["verdict"] == "closed"
    assert server["xclient"] == OUTSIDE_IP
    first = server["results"][0]
    assert first["mail_from"] == "<>"
    assert first["rcpt_to"] == "<relay-test@foreign.example>"
    assert first["command"] == "RCPT"
    assert first["code"] == 554
    assert first["outcome"] == "refused"


EXAMPLE_SITE = Path(__file__).parent.parent / "examples/site.yaml"
OPEN_POSTFIX_DIR = Path(__file__).parent / "lint_corpus/postfix/open/MC102-permit-first"


@pytest.mark.parametrize(
    ("static", "errors"),
    [(["-c", EXAMPLE_SITE], set()), (["--mta", "postfix", "--config-dir", OPEN_POSTFIX_DIR], {"MC102"})],
    ids=["site-closed", "config-dir-open"],
)
def test_static_check_and_probe_print_one_json_document_with_the_worse_exit_code(
    closed_postfix: int, static: list[str | Path], errors: set[str]
) -> None:
    """-c / --config-dir with --probe: one document, {"static": findings, "probe": {"servers": ...}}."""
    probe_args = ["--probe", f"127.0.0.1:{closed_postfix}", "--xclient", OUTSIDE_IP, "--timeout", "5"]
    cp = realprogs.run([*CHECK_RELAY, *static, "--format", "json", *probe_args])
    document = json.loads(cp.stdout)  # one document, not two printed one after the other
    assert set(document) == {"static", "probe"}
    (server,) = document["probe"]["servers"]
    assert (server["port"], server["verdict"]) == (closed_postfix, "closed")
    assert {f["rule"] for f in document["static"] if f["severity"] == "error"} == errors
    assert cp.returncode == (1 if errors else 0), cp.stderr  # the static check's 1 wins over the probe's 0


def test_static_check_with_a_bad_probe_target_prints_no_half_json_and_exits_2() -> None:
    cp = realprogs.run([*CHECK_RELAY, "-c", EXAMPLE_SITE, "--format", "json", "--probe", "127.0.0.1:smtp"])
    assert (cp.returncode, cp.stdout) == (2, "")
    assert "expected HOST:PORT with a port from 1 to 65535" in cp.stderr


def test_many_servers_are_probed_at_once_and_reported_in_order(closed_postfix: int, open_postfix: int) -> None:
    targets = [("127.0.0.1", closed_postfix), ("127.0.0.1", open_postfix)] * 5  # XCLIENT only on closed_postfix
    started = time.monotonic()
    reports = asyncio.run(probe_many(targets, xclient=OUTSIDE_IP, timeout=5, concurrency=20))
    elapsed = time.monotonic() - started
    assert [(r.port, r.verdict) for r in reports] == [(closed_postfix, Verdict.CLOSED),
                                                      (open_postfix, Verdict.INCONCLUSIVE)] * 5  # fmt: skip
    assert sum(r.connections for r in reports) == 10 * 4
    assert elapsed < 2.0, elapsed  # the budget for one server; measured ~0.2 s


# ----------------------------------------------------------------------------------------------- outside client, netns


@pytest.mark.parametrize("is_open", [False, True], ids=["closed", "open"])
@pytest.mark.parametrize("mta", ["postfix", "exim", "sendmail"])
def test_prober_in_a_client_namespace_sees_what_an_outside_client_sees(
    mta: str, is_open: bool, tls_pair: tuple[str, str]
) -> None:
    expected = {"postfix": POSTFIX_OPEN_TRICKS, "exim": EXIM_OPEN_TRICKS, "sendmail": SENDMAIL_OPEN_TRICKS}[mta]
    with netns_daemon(mta, is_open, tls_pair) as pair:
        target = f"{pair.server_addr}:{NETNS_PORT}"
        cp = realprogs.netns_run(pair.client, [*CHECK_RELAY, "--probe", target, "--format", "json", "--timeout", "5"])
    assert cp.returncode == (1 if is_open else 0), cp.stdout + cp.stderr
    (server,) = json.loads(cp.stdout)["servers"]
    accepted = {r["trick"] for r in server["results"] if r["outcome"] == "accepted"}
    refused = {r["trick"] for r in server["results"] if r["outcome"] == "refused"}
    assert accepted == (expected if is_open else set())
    assert accepted | refused == set(range(1, len(CATALOGUE) + 1)), server["results"]
    assert server["verdict"] == ("OPEN" if is_open else "closed")
    client_literal = next(r["mail_from"] for r in server["results"] if r["trick"] == 20)
    assert client_literal == f"<probe@[{pair.client_addr}]>"


# ----------------------------------------------------------------------------------------------- servers that fail


async def _against(handler: Callable[..., object], **options: object) -> ProbeReport:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        return await probe("127.0.0.1", port, **options)  # type: ignore[arg-type]


def test_a_server_that_never_answers_is_dropped_within_the_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the prober gives up and closes
        writer.close()

    report = asyncio.run(_against(silent, timeout=0.3))
    assert report.verdict is Verdict.INCONCLUSIVE
    assert outcomes(report) == {Outcome.DROPPED: set(range(1, len(CATALOGUE) + 1))}
    assert {r.reply for r in report.results} == {"no reply within 0.3 s"}
    assert report.seconds < 1.0  # the 4 connections wait at once: one after another would take 1.2 s
    by_connection = {n: {r.trick for r in report.results if r.connection == n} for n in range(1, 5)}
    assert sorted(map(len, by_connection.values())) == [5, 7, 7, 7]  # each trick names the connection it waited on


def test_a_server_that_hangs_up_at_mail_from_is_dropped() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 fake.example.test ESMTP\r\n")
        await reader.readline()
        writer.write(b"250-fake.example.test\r\n250 PIPELINING\r\n")
        await reader.readline()
        writer.close()

    report = asyncio.run(_against(hang_up, timeout=2))
    assert report.verdict is Verdict.INCONCLUSIVE
    assert {(r.outcome, r.reply) for r in report.results} == {(Outcome.DROPPED, "connection closed by the server")}
    assert report.results[2].mail_from == "<probe@fake.example.test>"  # the name came from the greeting


def test_a_port_nobody_listens_on_is_dropped() -> None:
    report = asyncio.run(probe("127.0.0.1", realprogs.free_port(), timeout=2))
    assert report.verdict is Verdict.INCONCLUSIVE
    assert all(r.outcome is Outcome.DROPPED and r.reply.startswith("connect: ") for r in report.results)


# ----------------------------------------------------------------------------------------------- tricks


def test_tricks_are_filled_in_per_server_with_address_literals_and_extra_sender_domains() -> None:
    catalogue = tricks(("example.test", "example.org"))
    assert [t.number for t in catalogue] == list(range(1, 29))
    assert catalogue[-1].name == "sender in example.org"
    attempt = fill(catalogue[4], "mx.example.net", "2001:db8::25", "2001:db8::99")  # 5: percent hack via literal
    assert (attempt.mail_from, attempt.rcpt_to) == (
        "<probe@[IPv6:2001:db8::25]>",
        "<relay-test%foreign.example@[IPv6:2001:db8::25]>",
    )
    assert fill(catalogue[25], "mx.example.net", "192.0.2.25", "198.51.100.7").mail_from == "<probe@example.net>"
    assert fill(catalogue[19], "mx.example.net", "192.0.2.25", "198.51.100.7").mail_from == "<probe@[198.51.100.7]>"
    assert fill(catalogue[26], "mx.example.net", "192.0.2.25", "198.51.100.7").mail_from == "<probe@example.test>"


# ----------------------------------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    ("text", "target"),
    [("mx.example.net:25", ("mx.example.net", 25)), ("192.0.2.1:2525", ("192.0.2.1", 2525)),
     ("[2001:db8::1]:587", ("2001:db8::1", 587)), ("mx.example.net", ("mx.example.net", 25)),
     ("[::1]", ("::1", 25))],
)  # fmt: skip
def test_targets_are_host_colon_port(text: str, target: tuple[str, int]) -> None:
    assert parse_target(text) == target


@pytest.mark.parametrize("text", ["mx.example.net:smtp", ":25", "host:0", "host:65536", "2001:db8::1", "[::1"])
def test_a_bad_target_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        parse_target(text)


@pytest.mark.parametrize(
    ("probes", "options", "message"),
    [(["mx:port"], {}, "expected HOST:PORT"), ([], {}, "at least one"),
     (["mx:25"], {"xclient": "outside"}, "--xclient 'outside'"), (["mx:25"], {"fmt": "xml"}, "--format 'xml'"),
     (["mx:25"], {"timeout": 0}, "--timeout 0")],
)  # fmt: skip
def test_usage_errors_exit_2_with_a_message_and_connect_nowhere(
    probes: list[str], options: dict[str, object], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(probes, **options) == 2  # type: ignore[arg-type]
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_check_relay_command_exits_2_on_a_bad_target_without_a_traceback() -> None:
    cp = realprogs.run([*CHECK_RELAY, "--probe", "mx.example.net:smtp"])
    assert cp.returncode == 2
    assert (
        cp.stderr.strip()
        == "check-relay: --probe 'mx.example.net:smtp': expected HOST:PORT with a port from 1 to 65535"
    )
