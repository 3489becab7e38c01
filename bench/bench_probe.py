"""Benchmark the live relay prober against a real Postfix rendered by mailconf, and nmap's smtp-open-relay.

    .venv/bin/python bench/bench_probe.py [--runs 5] [--servers 50] [--no-single-connection]

One Postfix (mailconf's rendered config, Postfix's default tarpit: after smtpd_soft_error_limit = 10 errors on a
connection every reply waits smtpd_error_sleep_time = 1 s) listens on 1 + N loopback ports. Its trusted networks
are narrowed to a TEST-NET address so that loopback is an outside client for both the prober and nmap (nmap has
no XCLIENT): every trick is refused, each one an error. Needs root, Postfix and nmap (`apt-get install nmap`).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import realprogs
from test_probe import render_postfix, self_signed

from mailconf.probe import ProbeReport, Verdict, probe, probe_many

HOST = "127.0.0.1"


def median_time(run: Callable[[], object], runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def rcpt_commands(report: ProbeReport) -> int:
    return sum(r.command == "RCPT" for r in report.results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--no-single-connection", action="store_true", help="skip the ~30 s tarpit demonstration")
    args = parser.parse_args()

    with realprogs.open_tmpdir() as root:
        (root / "tls").mkdir()
        config = render_postfix(root, self_signed(root / "tls"), extra="mynetworks = 192.0.2.1/32")
        port = int(re.search(r"^(\d+)\s+inet", (config / "master.cf").read_text(), re.M)[1])
        ports = [realprogs.free_port() for _ in range(args.servers)]
        with (config / "master.cf").open("a") as master_cf:
            master_cf.writelines(f"{p} inet n - n - - smtpd\n" for p in ports)
        pid = realprogs.postfix_start(config)
        try:
            assert realprogs.wait_for_port(HOST, port) and all(realprogs.wait_for_port(HOST, p) for p in ports)
            one, report = median_time(lambda: asyncio.run(probe(HOST, port)), args.runs)
            assert isinstance(report, ProbeReport) and report.verdict is Verdict.CLOSED, report
            print(f"prober, one server, {len(report.results)} tricks ({rcpt_commands(report)} reached RCPT) over "
                  f"{report.connections} connections, default tarpit: median {one:.3f} s of {args.runs}")  # fmt: skip

            targets = [(HOST, p) for p in ports]
            cold, _ = median_time(lambda: asyncio.run(probe_many(targets)), 1)
            many, reports = median_time(lambda: asyncio.run(probe_many(targets)), args.runs)
            assert isinstance(reports, list) and all(r.verdict is Verdict.CLOSED for r in reports)
            print(f"prober, {len(targets)} servers at once ({len(targets) * report.connections} connections): "
                  f"median {many:.3f} s ({many / one:.1f}x one server); first run, Postfix spawning its smtpd "
                  f"processes: {cold:.3f} s")  # fmt: skip

            if not args.no_single_connection:
                single, slow = median_time(lambda: asyncio.run(probe(HOST, port, per_connection=1000)), 1)
                assert isinstance(slow, ProbeReport)
                print(
                    f"prober with every trick on ONE connection (as nmap does): {single:.1f} s, verdict "
                    f"{slow.verdict}, {slow.connections} connections (Postfix hangs up after 20 errors)"
                )

            nmap = ["nmap", "-Pn", "-n", "-p", str(port), "--script", "+smtp-open-relay", "--script-trace", HOST]
            started = time.perf_counter()
            out = subprocess.run(nmap, capture_output=True, text=True, check=True).stdout
            nmap_time = time.perf_counter() - started
            tried = len(re.findall(r"RCPT TO:", out))
            verdict = re.search(r"smtp-open-relay: (.*)", out)
            print(f"nmap {' '.join(nmap[1:])}: {nmap_time:.1f} s, {tried} tricks reached RCPT "
                  f"({verdict[1] if verdict else 'no verdict'})")  # fmt: skip
            print(f"ratio nmap / prober: {nmap_time / one:.0f}x; tricks tried: prober {len(report.results)}, "
                  f"nmap {tried}")  # fmt: skip
        finally:
            realprogs.postfix_stop(config)
            realprogs.stop_pid(pid)


if __name__ == "__main__":
    main()
