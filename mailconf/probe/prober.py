"""Try every relay trick against live SMTP servers, several connections and servers at once, never sending DATA.

The tricks are spread over several parallel connections of at most :data:`TRICKS_PER_CONNECTION` each: Postfix
answers every reply with a 1 s delay once a connection has made ``smtpd_soft_error_limit`` (10) errors, and each
refused trick is one error. Each connection: greeting, EHLO, STARTTLS when offered (then EHLO again),
``XCLIENT ADDR=...`` when asked (then EHLO again), then per trick MAIL FROM and RCPT TO with RSET between
tricks (RSET and the next MAIL FROM in one write when the server offers PIPELINING), and QUIT.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mailconf.probe.smtp import Connection, Dropped, Reply
from mailconf.probe.tricks import DEFAULT_RECIPIENT, Attempt, Trick, address_literal, fill, tricks

DEFAULT_TIMEOUT = 10.0  # seconds, for the connect and for each reply
DEFAULT_CONCURRENCY = 100  # connections open at once, over all servers
TRICKS_PER_CONNECTION = 7  # below Postfix's smtpd_soft_error_limit (10), with room to spare


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"  # 2yz to RCPT: the server took a recipient it should have refused
    REFUSED = "refused"  # 5yz to MAIL or RCPT
    TEMP_FAILED = "temp-failed"  # 4yz: maybe later, maybe never (Postfix's defer_unauth_destination)
    DROPPED = "dropped"  # no answer: the connection closed, timed out, or could not be set up


class Verdict(enum.StrEnum):
    OPEN = "OPEN"  # at least one trick accepted
    CLOSED = "closed"  # every trick refused
    INCONCLUSIVE = "inconclusive"  # neither: some trick temp-failed or was dropped


def classify(code: int) -> Outcome:
    """RFC 5321 4.2.1: the first digit of the reply code."""
    return {2: Outcome.ACCEPTED, 4: Outcome.TEMP_FAILED, 5: Outcome.REFUSED}.get(code // 100, Outcome.DROPPED)


@dataclass(frozen=True)
class Result:
    """One trick tried on one server: the reply that decided it (to RCPT, or to MAIL when MAIL failed)."""

    trick: int
    name: str
    mail_from: str
    rcpt_to: str
    command: str  # MAIL or RCPT; "session" when the connection failed before the trick
    code: int | None
    reply: str
    outcome: Outcome
    connection: int  # which of the report's connections (1, 2, ...)


@dataclass
class ProbeReport:
    host: str
    port: int
    xclient: str | None = None
    banner: str = ""
    tls: str | None = None  # the TLS version after STARTTLS, None when the session stayed in clear
    results: list[Result] = field(default_factory=list)
    connections: int = 0  # SMTP sessions opened
    seconds: float = 0.0

    @property
    def verdict(self) -> Verdict:
        outcomes = {r.outcome for r in self.results}
        if Outcome.ACCEPTED in outcomes:
            return Verdict.OPEN
        return Verdict.CLOSED if outcomes == {Outcome.REFUSED} else Verdict.INCONCLUSIVE

    @property
    def accepted(self) -> list[Result]:
        return [r for r in self.results if r.outcome is Outcome.ACCEPTED]

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "verdict": self.verdict.value, "seconds": round(self.seconds, 3)}


class SetupFailed(Exception):
    """The server answered, but not so that a trick could be tried (greeting, HELO or XCLIENT refused)."""

    def __init__(self, message: str, reply: Reply | None = None):
        super().__init__(message)
        self.reply = reply


@dataclass(frozen=True)
class Options:
    xclient: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    starttls: bool = True
    recipient: str = DEFAULT_RECIPIENT


async def _hello(conn: Connection) -> None:
    reply = await conn.ehlo(address_literal(conn.local_ip))
    if reply.code // 100 != 2:
        raise SetupFailed(f"HELO refused: {reply}", reply)


async def _session(host: str, port: int, options: Options) -> tuple[Connection, Reply]:
    """Connect and get to the point where MAIL FROM may be sent; return the connection and its greeting."""
    conn = await Connection.open(host, port, options.timeout)
    try:
        greeting = await conn.reply()
        if greeting.code != 220:
            raise SetupFailed(f"greeting: {greeting}", greeting)
        await _hello(conn)
        if options.starttls and "STARTTLS" in conn.extensions and (await conn.starttls()).code == 220:
            await _hello(conn)
        if options.xclient:
            if "XCLIENT" not in conn.extensions:
                raise SetupFailed("XCLIENT is not offered to this client (Postfix: smtpd_authorized_xclient_hosts)")
            addr = f"IPV6:{options.xclient}" if ":" in options.xclient else options.xclient  # Postfix's form
            reply = await conn.command(f"XCLIENT ADDR={addr}")
            if reply.code != 220:
                raise SetupFailed(f"XCLIENT ADDR={options.xclient}: {reply}", reply)
            await _hello(conn)
    except (Dropped, SetupFailed) as error:
        await conn.close(polite=isinstance(error, SetupFailed))
        raise
    return conn, greeting


def _server_name(greeting: Reply, host: str) -> str:
    """The name the server announces: the first word of its greeting (RFC 5321 4.3.1), if it looks like one."""
    words = greeting.lines[0].split()
    return words[0] if words and "." in words[0] else host


def _tried(attempt: Attempt, command: str, reply: Reply, connection: int) -> Result:
    trick = attempt.trick
    return Result(
        trick.number,
        trick.name,
        attempt.mail_from,
        attempt.rcpt_to,
        command,
        reply.code,
        str(reply),
        classify(reply.code),
        connection,
    )


def _not_tried(attempt: Attempt, connection: int, why: Exception) -> Result:
    """A trick the session never got to: the connection closed, timed out, or could not be set up."""
    trick, reply = attempt.trick, getattr(why, "reply", None)
    return Result(
        trick.number,
        trick.name,
        attempt.mail_from,
        attempt.rcpt_to,
        "session",
        reply.code if reply else None,
        str(why),
        Outcome.DROPPED,
        connection,
    )


async def _try(conn: Connection, attempt: Attempt, connection: int, *, reset: bool) -> Result:
    """MAIL FROM (after RSET, in the same write, when a transaction may be open), then RCPT TO if MAIL passed."""
    *_, reply = await conn.commands(["RSET"] * reset + [f"MAIL FROM:{attempt.mail_from}"])
    if reply.code // 100 != 2:
        return _tried(attempt, "MAIL", reply, connection)
    return _tried(attempt, "RCPT", await conn.command(f"RCPT TO:{attempt.rcpt_to}"), connection)


async def _one_connection(
    report: ProbeReport, tricks: Sequence[Trick], options: Options
) -> tuple[int, list[Result], list[Attempt], Exception | None]:
    """Try ``tricks`` in order on one new connection until done or dropped.

    Returns the connection's number, the results, every attempt (filled in for this server, or from the target
    name when the session failed before the greeting), and the error that stopped it, if any.
    """
    report.connections += 1
    number, xclient = report.connections, options.xclient
    try:
        conn, greeting = await _session(report.host, report.port, options)
    except (Dropped, SetupFailed) as error:
        return (
            number,
            [],
            [fill(t, report.host, report.host, xclient or "client", options.recipient) for t in tricks],
            error,
        )
    report.banner = report.banner or str(greeting)
    report.tls = report.tls or conn.tls
    name, client = _server_name(greeting, report.host), xclient or conn.local_ip
    attempts = [fill(t, name, conn.peer_ip, client, options.recipient) for t in tricks]
    results: list[Result] = []
    try:
        for attempt in attempts:
            results.append(await _try(conn, attempt, number, reset=bool(results)))
    except Dropped as error:
        await conn.close(polite=False)
        return number, results, attempts, error
    await conn.close()
    return number, results, attempts, None


async def _connections(
    report: ProbeReport, tricks: Sequence[Trick], options: Options, limit: asyncio.Semaphore
) -> list[Result]:
    """Try ``tricks`` over one connection, and over a new one each time the server hangs up after answering some
    (Exim does after 3 syntax errors); what no connection got to is reported as dropped, with the reason."""
    results: list[Result] = []
    async with limit:
        while len(results) < len(tricks):
            number, done, attempts, error = await _one_connection(report, tricks[len(results) :], options)
            results += done
            if error is not None and not done:  # (report.connections has moved on if other chunks connected since)
                return results + [_not_tried(a, number, error) for a in attempts]
    return results


async def probe(
    host: str,
    port: int = 25,
    *,
    xclient: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    starttls: bool = True,
    recipient: str = DEFAULT_RECIPIENT,
    sender_domains: tuple[str, ...] = (),
    per_connection: int = TRICKS_PER_CONNECTION,
    limit: asyncio.Semaphore | None = None,
) -> ProbeReport:
    """Try every trick against host:port and report each reply and the verdict.

    ``xclient``: present the session as coming from this client address (Postfix's XCLIENT; the server must
    authorize the prober in smtpd_authorized_xclient_hosts). ``sender_domains``: also try a sender in each.
    ``limit`` bounds the connections open at once (shared by :func:`probe_many`).
    """
    options = Options(xclient, timeout, starttls, recipient)
    report = ProbeReport(host, port, xclient)
    started = time.monotonic()
    catalogue = tricks(sender_domains)
    chunks = [catalogue[i : i + per_connection] for i in range(0, len(catalogue), per_connection)]
    limit = limit or asyncio.Semaphore(DEFAULT_CONCURRENCY)
    done = await asyncio.gather(*(_connections(report, chunk, options, limit) for chunk in chunks))
    report.results = [result for results in done for result in results]
    report.seconds = time.monotonic() - started
    return report


async def probe_many(
    targets: Sequence[tuple[str, int]], *, concurrency: int = DEFAULT_CONCURRENCY, **options: Any
) -> list[ProbeReport]:
    """:func:`probe` every (host, port) at once, with at most ``concurrency`` connections open; reports in order."""
    limit = asyncio.Semaphore(concurrency)
    return list(await asyncio.gather(*(probe(h, p, limit=limit, **options) for h, p in targets)))
