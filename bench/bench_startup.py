"""Benchmark: how long `mailconf --help` takes to start (not a test). Target: under 150 ms.

.venv/bin/python bench/bench_startup.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def main(runs: int = 15) -> None:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mailconf", "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    baseline = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline.append(time.perf_counter() - start)
    print(f"mailconf --help: median {statistics.median(times) * 1000:.0f} ms, best {min(times) * 1000:.0f} ms")
    print(f"python -c pass:  median {statistics.median(baseline) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
