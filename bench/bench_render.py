"""Benchmark: render Postfix + Dovecot for generated sites of growing size (not a test).

    .venv/bin/python bench/bench_render.py [--sizes 1000,10000,100000]

For N addresses the site has N/10 domains (half local, half virtual), 90% of the addresses as virtual
mailboxes and 10% as aliases, kept in bulk files beside site.yaml. Each size is rendered by a fresh
`mailconf render` process; wall time (median of 3) and peak memory (max RSS) of the whole process are reported.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HASH = "{SHA512-CRYPT}$6$TogXeqoGMJUwQ/4E$qDUz7qxTml/2caZ9fIfO0D8HXioV3IBvLWPTAFJpXE3F0DqDiJ964w6m3VDJW8CwQmptmgX0r5AD.nyGzkvGk."


def generate(directory: Path, addresses: int) -> Path:
    domains = max(2, addresses // 10)
    local = [f"l{i}.example" for i in range(domains // 2)]
    virtual = [f"v{i}.example" for i in range(domains - len(local))]
    mailboxes = addresses * 9 // 10
    users = ["admin"] + [f"u{i}@{virtual[i % len(virtual)]}:{HASH}" for i in range(mailboxes)]
    aliases = [
        f"a{i}@{virtual[i % len(virtual)]}: u{i}@{virtual[i % len(virtual)]}" for i in range(addresses - mailboxes)
    ]
    (directory / "users.txt").write_text("\n".join(users) + "\n")
    (directory / "aliases.txt").write_text("\n".join(aliases) + "\n")
    domain_lines = [f"  - {{name: {d}, type: local}}" for d in local] + [
        f"  - {{name: {d}, type: virtual}}" for d in virtual
    ]
    site = directory / "site.yaml"
    site.write_text(
        "host: {name: mail.bench.example}\ndomains:\n"
        + "\n".join(domain_lines)
        + "\nusers_file: users.txt\naliases_file: aliases.txt\n"
    )
    return site


def measure(site: Path, out: Path) -> tuple[float, float]:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "mailconf", "render", "-c", str(site), "-o", str(out)],
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return statistics.median(times), peak_mb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    print(f"{'addresses':>10} {'domains':>8} {'seconds':>8} {'peak MB':>8} {'us/address':>10}")
    for size in sizes:
        with tempfile.TemporaryDirectory() as work:
            site = generate(Path(work), size)
            seconds, peak = measure(site, Path(work) / "out")
            print(f"{size:>10} {size // 10:>8} {seconds:>8.2f} {peak:>8.0f} {seconds / size * 1e6:>10.1f}")


if __name__ == "__main__":
    main()
