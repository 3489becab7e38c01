"""Benchmark: `mailconf apply --no-reload` per MTA under a --root sandbox (not a test).

    .venv/bin/python bench/bench_apply.py [--sizes 10,1000,10000] [--mtas postfix,exim,sendmail,qmail]

Root, and the programs from scripts/install-mail-programs. For each MTA and site size (generated as in
bench_render.py: N addresses over N/10 domains), three applies into a fresh root: the first (render, build and
check in scratch, back up, install), one with nothing changed, and one after a one-line change of the site.
Exim and Sendmail run inside tests/realprogs.py's namespace, where their unpacked trees are /usr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import realprogs
from bench_render import generate

TREES = {"exim": realprogs.EXIM_HEAVY_ROOT, "sendmail": realprogs.SENDMAIL_ROOT}  # heavy: dovecot auth
POP_IMAP = {"postfix": "dovecot"}  # Postfix with Dovecot; the others alone


def apply(mta: str, site: Path, root: Path) -> float:
    argv = [sys.executable, "-m", "mailconf", "apply", "-c", str(site), "--mta", mta, "--root", str(root)]
    argv += ["--no-reload", "--pop-imap", POP_IMAP.get(mta, "none")]
    if mta in TREES:
        argv = realprogs.ns_argv(TREES[mta], argv)
    start = time.perf_counter()
    done = realprogs.run(argv, timeout=1800)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{mta}: apply failed:\n{done.stdout}{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--mtas", default="postfix,exim,sendmail,qmail")
    args = parser.parse_args()
    print(f"{'mta':9} {'addresses':>9} {'first':>8} {'no change':>10} {'one change':>11}")
    for mta in args.mtas.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            with realprogs.open_tmpdir("mailconf-bench-apply-") as base:
                site = generate(base, size)
                users = base / "users.txt"  # a unix account this host has (sendmail -bv postmaster looks it up)
                users.write_text(users.read_text().replace("admin\n", "nobody\n", 1))
                root = base / "root"
                root.mkdir()
                first = apply(mta, site, root)
                same = apply(mta, site, root)
                site.write_text(site.read_text().replace("mail.bench.example", "mx.bench.example"))
                changed = apply(mta, site, root)
                print(f"{mta:9} {size:>9} {first:>7.2f}s {same:>9.2f}s {changed:>10.2f}s", flush=True)


if __name__ == "__main__":
    main()
