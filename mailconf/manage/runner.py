"""Run the native commands the backends render (shell command lines, as an admin would type them).

Some programs print their errors only to a terminal (`postfix check` otherwise logs to syslog), so every
command gets a pty as stdout and stderr. Daemons that keep the pty after the command exits do not block us.
`filter_bytes` runs a build filter (a file on stdin, the built file on stdout) without a terminal.
"""

from __future__ import annotations

import os
import pty
import select
import shlex
import subprocess
import sys
import time

SHELL = "/bin/sh"


def _shell(command: str) -> list[str]:
    """The argv that runs a command line; `mailconf ...` (check-qmail) runs this very installation."""
    if command.startswith("mailconf "):
        command = f"{shlex.quote(sys.executable)} -P -m {command}"  # -P: not from the current directory
    return [SHELL, "-c", command]


def _read(fd: int, chunks: list[bytes]) -> bool:
    """Read what is there; False at end of output (EIO once no process holds the terminal)."""
    try:
        data = os.read(fd, 65536)
    except OSError:
        return False
    chunks.append(data)
    return bool(data)


def run(command: str, timeout: float = 120.0) -> tuple[int, str]:
    """(exit status, output) of a shell command line."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(_shell(command), stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
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


def filter_bytes(command: str, data: bytes, timeout: float = 120.0) -> tuple[int, bytes, str]:
    """(exit status, stdout, stderr) of a shell command line fed `data` on stdin."""
    try:
        done = subprocess.run(_shell(command), input=data, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, b"", f"killed after {timeout:.0f} s"
    return done.returncode, done.stdout, done.stderr.decode("utf-8", "replace").strip()
