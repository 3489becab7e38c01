"""Run a native command and capture what it says, on a pseudo-terminal.

Some programs print their errors only to a terminal (`postfix check` otherwise logs to syslog), so every
command gets a pty as stdout and stderr. Daemons that keep the pty after the command exits do not block us.
"""

from __future__ import annotations

import os
import pty
import select
import shlex
import subprocess
import time


def _read(fd: int, chunks: list[bytes]) -> bool:
    """Read what is there; False at end of output (EIO once no process holds the terminal)."""
    try:
        data = os.read(fd, 65536)
    except OSError:
        return False
    chunks.append(data)
    return bool(data)


def run(command: str, timeout: float = 120.0) -> tuple[int, str]:
    """(exit status, output) of a command line (split like a shell would, but run without one)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(shlex.split(command), stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    except OSError as exc:
        os.close(master)
        return 127, f"{command}: {exc.strerror}"
    finally:
        os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        open_ = True
        while proc.poll() is None and open_:
            if time.monotonic() > deadline:
                proc.kill()
                chunks.append(f"\n(killed after {timeout:.0f} s)".encode())
                break
            if select.select([master], [], [], 0.05)[0]:
                open_ = _read(master, chunks)
        proc.wait(timeout=max(deadline - time.monotonic(), 1.0))
        while open_ and select.select([master], [], [], 0)[0]:
            open_ = _read(master, chunks)
    finally:
        os.close(master)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n").strip()
