"""`mailconf check-relay --probe`: parse the targets, probe them all at once, print a rich table or JSON.

Exit codes: 0 every server closed (every trick refused); 1 any server OPEN or inconclusive (a trick temp-failed
or was dropped, so nobody can say it is closed); 2 usage error (a bad HOST:PORT, --xclient or --format).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from mailconf.probe.prober import DEFAULT_TIMEOUT, Outcome, ProbeReport, Verdict, probe_many

FORMATS = ("text", "json")
STYLES = {Outcome.ACCEPTED: "bold red", Outcome.REFUSED: "green", Outcome.TEMP_FAILED: "yellow",
          Outcome.DROPPED: "magenta", Verdict.OPEN: "bold red", Verdict.CLOSED: "bold green",
          Verdict.INCONCLUSIVE: "bold yellow"}  # fmt: skip


class UsageError(ValueError):
    pass


def parse_target(text: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT, or a bare HOST / [IPv6] for port 25."""
    host, port = text, "25"
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise UsageError(f"--probe {text!r}: write an IPv6 address as [ADDRESS]:PORT")
        port = rest[1:] or port
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif ":" in text:
        raise UsageError(f"--probe {text!r}: write an IPv6 address as [ADDRESS]:PORT")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--probe {text!r}: expected HOST:PORT with a port from 1 to 65535")
    return host, int(port)


def summary(report: ProbeReport) -> str:
    """One line: the verdict, what the tricks got, and how the session looked."""
    counts = Counter(r.outcome for r in report.results)
    tally = ", ".join(f"{n} {outcome}" for outcome, n in counts.items())
    how = [f"{report.connections} connections", report.tls or "no TLS"]
    how += [f"as {report.xclient} via XCLIENT"] if report.xclient else []
    line = f"{report.host}:{report.port}: {report.verdict} ({len(report.results)} tricks: {tally}; {', '.join(how)}"
    line += f"; {report.seconds:.2f} s)"
    if report.accepted:
        line += "\n  relayed by: " + "; ".join(f"#{r.trick} {r.name}" for r in report.accepted)
    return line


def print_text(reports: Sequence[ProbeReport]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text  # every cell is plain Text: addresses like [192.0.2.1] are not markup

    console = Console()
    if not console.is_terminal:
        console.width = 160  # a file or a pipe: do not fold addresses at 80 columns
    for report in reports:
        table = Table(title=Text(f"{report.host}:{report.port}  {report.banner}"), title_justify="left")
        for column in ("trick", "MAIL FROM", "RCPT TO", "reply", "outcome"):
            table.add_column(column, overflow="fold")
        for r in report.results:
            cells = (f"{r.trick} {r.name}", r.mail_from, r.rcpt_to, f"{r.command}: {r.reply}")
            table.add_row(*map(Text, cells), Text(r.outcome.value, style=STYLES[r.outcome]))
        console.print(table)
        console.print(Text(summary(report), style=STYLES[report.verdict]), soft_wrap=True)


def exit_code(reports: Sequence[ProbeReport]) -> int:
    return 0 if all(r.verdict is Verdict.CLOSED for r in reports) else 1


def run_cli(
    probes: Sequence[str],
    *,
    xclient: str | None = None,
    fmt: str = "text",
    timeout: float = DEFAULT_TIMEOUT,
    parts: dict[str, Any] | None = None,
) -> int:
    """Probe every HOST:PORT at once and print the result; return the exit code (see the module docstring).

    ``parts``: other checks' results for one JSON document; with --format json it prints
    ``{**parts, "probe": {"servers": [...]}}`` instead of ``{"servers": [...]}`` (nothing at all on a usage error).
    """
    try:
        targets = [parse_target(p) for p in probes]
        if not targets:
            raise UsageError("--probe: name at least one HOST:PORT")
        if xclient is not None:
            try:
                ipaddress.ip_address(xclient)
            except ValueError:
                raise UsageError(f"--xclient {xclient!r}: expected an IP address") from None
        if fmt not in FORMATS:
            raise UsageError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
        if not timeout > 0:
            raise UsageError(f"--timeout {timeout}: expected a number of seconds above 0")
    except UsageError as error:
        print(f"check-relay: {error}", file=sys.stderr)
        return 2
    reports = asyncio.run(probe_many(targets, xclient=xclient, timeout=timeout))
    if fmt == "json":
        document: dict[str, Any] = {"servers": [r.to_dict() for r in reports]}
        print(json.dumps(document if parts is None else {**parts, "probe": document}, indent=2))
    else:
        print_text(reports)
    return exit_code(reports)
