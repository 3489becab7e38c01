"""Drive the real mail programs from the tests.

`scripts/install-mail-programs` installs Postfix, Dovecot, m4, ucspi-tcp, swaks and fetchmail with apt,
and unpacks Exim and Sendmail (whose Debian packages conflict with Postfix) under /opt/mailconf.

Exim and Sendmail run in a private mount and UTS namespace (``unshare``) in which an overlay puts the
unpacked ``usr/`` over ``/usr`` (so compiled-in paths such as /usr/sbin/exim4 work, including Exim's
re-exec of itself) and a small ``etc`` layer over ``/etc``: a hosts file naming the fully qualified host
name :data:`NS_HOSTNAME` (without it Sendmail stalls 60 s at start) and ``/etc/mail/service.switch``
(``hosts files``). Nothing on the host changes; a daemon keeps its namespace while it runs.

Every command wrapper returns a text-mode :class:`subprocess.CompletedProcess` and does not raise on a
non-zero exit unless ``check=True``. Daemon starters return the daemon's PID and raise
:class:`DaemonError` when it does not come up; stop every daemon you start (``*_stop`` or :func:`stop_pid`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

PROGRAMS_DIR = Path(os.environ.get("MAILCONF_PROGRAMS_DIR", "/opt/mailconf"))
EXIM_ROOT = PROGRAMS_DIR / "exim"  # exim4-daemon-light
EXIM_HEAVY_ROOT = PROGRAMS_DIR / "exim-heavy"  # exim4-daemon-heavy: + dovecot/cyrus_sasl authenticators, SPF, SQL
SENDMAIL_ROOT = PROGRAMS_DIR / "sendmail"
SENDMAIL_CF_DIR = SENDMAIL_ROOT / "usr/share/sendmail/cf"
NS_ETC = PROGRAMS_DIR / "ns-etc"

# Paths inside the namespace (the unpacked tree's usr/ is mounted over /usr there).
EXIM = "/usr/sbin/exim4"
SENDMAIL = "/usr/libexec/sendmail/sendmail"
MAKEMAP = "/usr/libexec/sendmail/makemap"

NS_HOSTNAME = "mta.mailconf.test"
NETNS_SERVER_ADDR = "198.18.0.1"  # RFC 2544 benchmark range: never routed anywhere
NETNS_CLIENT_ADDR = "198.18.0.2"
NETNS_SERVER_NAME = "server.mailconf.test"
NETNS_CLIENT_NAME = "client.mailconf.test"

DEFAULT_TIMEOUT = 60.0
INSTALL_HINT = "run `bash scripts/install-mail-programs` as root"

# Program name -> where it is on the host.
PROGRAMS: dict[str, Path] = {
    "postconf": Path("/usr/sbin/postconf"),
    "postfix": Path("/usr/sbin/postfix"),
    "dovecot": Path("/usr/sbin/dovecot"),
    "doveconf": Path("/usr/bin/doveconf"),
    "doveadm": Path("/usr/bin/doveadm"),
    "exim": EXIM_ROOT / EXIM.lstrip("/"),
    "exim-heavy": EXIM_HEAVY_ROOT / EXIM.lstrip("/"),
    "sendmail": SENDMAIL_ROOT / SENDMAIL.lstrip("/"),
    "makemap": SENDMAIL_ROOT / MAKEMAP.lstrip("/"),
    "sendmail-cf": SENDMAIL_CF_DIR / "m4/cf.m4",
    "m4": Path("/usr/bin/m4"),
    "tcprules": Path("/usr/bin/tcprules"),
    "tcprulescheck": Path("/usr/bin/tcprulescheck"),
    "tcpserver": Path("/usr/bin/tcpserver"),
    "cdbmake": Path("/usr/bin/cdbmake"),
    "cdbdump": Path("/usr/bin/cdbdump"),
    "cdbget": Path("/usr/bin/cdbget"),
    "fetchmail": Path("/usr/bin/fetchmail"),
    "swaks": Path("/usr/bin/swaks"),
    "svscan": Path("/usr/bin/svscan"),
    "openssl": Path("/usr/bin/openssl"),
    "script": Path("/usr/bin/script"),
    "unshare": Path("/usr/bin/unshare"),
    "ip": Path("/usr/bin/ip"),
    "ping": Path("/usr/bin/ping"),
}
# Programs that also need root and unshare (namespaces), or root and ip (network namespaces).
_NEEDS = {"exim": "unshare", "exim-heavy": "unshare", "sendmail": "unshare", "makemap": "unshare", "netns": "ip"}


class DaemonError(RuntimeError):
    """A daemon did not start (the message holds its output)."""


# --------------------------------------------------------------------------------------------- basics


def require(program: str) -> Path:
    """Return the program's path; skip the test if it is missing, or fail it when env CI is set.

    ``program`` is a key of :data:`PROGRAMS` or ``"netns"`` (root and iproute2).
    """
    if program not in PROGRAMS and program != "netns":
        raise ValueError(f"unknown program {program!r}; known: netns, {', '.join(sorted(PROGRAMS))}")
    path = PROGRAMS["ip" if program == "netns" else program]
    helper = PROGRAMS[_NEEDS[program]] if program in _NEEDS else None
    problem = None
    if not path.exists():
        problem = f"{program} is not installed ({path} is missing)"
    elif helper is not None and os.geteuid() != 0:
        problem = f"{program} needs root (namespaces)"
    elif helper is not None and not helper.exists():
        problem = f"{program} needs {helper}, which is missing"
    if problem:
        message = f"{problem}: {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output; raise CalledProcessError only when ``check``."""
    full_env = {**os.environ, **env} if env else None
    return subprocess.run(
        [os.fspath(a) for a in argv],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=check,
    )


def _prog(name: str) -> str:
    return os.fspath(PROGRAMS[name])


def _with_netns(argv: Sequence[str | os.PathLike[str]], netns: str | None) -> list[str]:
    prefix = [_prog("ip"), "netns", "exec", netns] if netns else []
    return [*prefix, *(os.fspath(a) for a in argv)]


def _tty_run(
    command: list[str], *, netns: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run under ``script`` so that programs that talk only to a tty (postfix check) print their errors."""
    cp = run(_with_netns([_prog("script"), "-qec", shlex.join(command), "/dev/null"], netns), timeout=timeout)
    cp.stdout = cp.stdout.replace("\r\n", "\n")
    return cp


@contextlib.contextmanager
def open_tmpdir(prefix: str = "mailconf-") -> Iterator[Path]:
    """A new directory that daemons' unprivileged users can traverse, removed afterwards.

    pytest's tmp_path sits under a mode 0700 directory, so e.g. Postfix's data_directory or Exim's spool
    there is unreachable for the postfix / Debian-exim users: put a running daemon's files in here instead.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def owned_dir(path: str | os.PathLike[str], user: str, mode: int = 0o700) -> Path:
    """Create ``path`` (and parents) and give it to ``user`` and that user's primary group."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    entry = pwd.getpwnam(user)
    os.chown(p, entry.pw_uid, entry.pw_gid)
    p.chmod(mode)
    return p


# --------------------------------------------------------------------------------------------- daemons


def is_running(pid: int) -> bool:
    """True while the process exists and is not a zombie (PID 1 here may reap late)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """Stop one process by PID: SIGTERM, wait, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if _wait(lambda: not is_running(pid), timeout):
            return
    raise DaemonError(f"process {pid} survived SIGKILL")


def _read_pid(pid_file: Path, timeout: float) -> int | None:
    def ready() -> bool:
        try:
            return is_running(int(pid_file.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            return False

    return int(pid_file.read_text().split()[0]) if _wait(ready, timeout) else None


def _start_daemon(argv: list[str], pid_file: Path, what: str, timeout: float) -> int:
    """Run a self-daemonizing command with output to a file (not pipes a daemon would hold open)."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False
        )
        pid = _read_pid(pid_file, timeout) if proc.returncode == 0 else None
        if pid is None:
            out.seek(0)
            raise DaemonError(f"{what} did not start (exit {proc.returncode}, no live PID in {pid_file}): {out.read()}")
    return pid


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, *, netns: str | None = None, timeout: float = 10.0) -> bool:
    """Wait until a TCP connect to host:port succeeds (inside ``netns`` if given)."""

    def connects() -> bool:
        if netns:
            code = f"import socket; socket.create_connection(({host!r}, {port}), 1).close()"
            return run(_with_netns([sys.executable, "-c", code], netns), timeout=5).returncode == 0
        try:
            socket.create_connection((host, port), timeout=1).close()
        except OSError:
            return False
        return True

    return _wait(connects, timeout)


# --------------------------------------------------------------------------------------------- Postfix


def _settle(config_dir: str | os.PathLike[str]) -> None:
    """Backdate a just-written main.cf/master.cf: Postfix waits ~2 s for files younger than 2 s to settle."""
    old = time.time() - 10
    for name in ("main.cf", "master.cf"):
        path = Path(config_dir) / name
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime > old:
                os.utime(path, (old, old))


def postconf_n(config_dir: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """``postconf -c DIR -n``: always exits 0; treat any ``warning:`` on stderr as a failure."""
    _settle(config_dir)
    return run([_prog("postconf"), "-c", config_dir, "-n"])


def _postfix_dirs(config_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Create the sandbox's queue_directory (root) and data_directory (postfix) if missing."""
    _settle(config_dir)
    cp = run([_prog("postconf"), "-c", config_dir, "-h", "queue_directory", "data_directory"], check=True)
    queue, data = (Path(line) for line in cp.stdout.split())
    queue.mkdir(parents=True, exist_ok=True)
    if not data.exists():
        owned_dir(data, "postfix")
    return queue, data


def postfix_check(config_dir: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """``postfix -c DIR check`` under a pseudo-tty (its only way to print errors); exit 1 on bad values."""
    _postfix_dirs(config_dir)
    return _tty_run([_prog("postfix"), "-c", os.fspath(config_dir), "check"])


def postfix_start(config_dir: str | os.PathLike[str], *, netns: str | None = None, timeout: float = 20.0) -> int:
    """``postfix -c DIR start``; return the master's PID (from queue_directory/pid/master.pid)."""
    queue, _ = _postfix_dirs(config_dir)
    cp = _tty_run([_prog("postfix"), "-c", os.fspath(config_dir), "start"], netns=netns, timeout=timeout)
    pid = _read_pid(queue / "pid/master.pid", 5.0) if cp.returncode == 0 else None
    if pid is None:
        raise DaemonError(f"postfix did not start (exit {cp.returncode}): {cp.stdout}{cp.stderr}")
    return pid


def postfix_stop(config_dir: str | os.PathLike[str], *, netns: str | None = None) -> subprocess.CompletedProcess[str]:
    """``postfix -c DIR stop``, then make sure the master (by PID) is gone."""
    queue, _ = _postfix_dirs(config_dir)
    pid = _read_pid(queue / "pid/master.pid", 0)
    cp = _tty_run([_prog("postfix"), "-c", os.fspath(config_dir), "stop"], netns=netns)
    if pid is not None and not _wait(lambda: not is_running(pid), 10.0):
        stop_pid(pid)
    return cp


# --------------------------------------------------------------------------------------------- Dovecot


def doveconf_n(conf_file: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """``doveconf -c FILE -n``: exit 89 on an unknown setting or a bad value (first error only)."""
    return run([_prog("doveconf"), "-c", conf_file, "-n"])


def _dovecot_pid_file(conf_file: str | os.PathLike[str]) -> Path:
    base_dir = run([_prog("doveconf"), "-c", conf_file, "-h", "base_dir"], check=True).stdout.strip()
    return Path(base_dir) / "master.pid"


def dovecot_start(conf_file: str | os.PathLike[str], *, netns: str | None = None, timeout: float = 10.0) -> int:
    """Start ``dovecot -c FILE``; return the master's PID (from base_dir/master.pid)."""
    argv = _with_netns([_prog("dovecot"), "-c", conf_file], netns)
    return _start_daemon(argv, _dovecot_pid_file(conf_file), "dovecot", timeout)


def dovecot_stop(conf_file: str | os.PathLike[str]) -> None:
    """Stop the Dovecot master by the PID in base_dir/master.pid (faster than ``doveadm stop``, same effect)."""
    pid = _read_pid(_dovecot_pid_file(conf_file), 0)
    if pid is not None:
        stop_pid(pid)


# --------------------------------------------------------------------------------------------- namespace


def _ns_etc() -> Path:
    """The /etc layer for the namespace: hosts with an FQDN host name, and Sendmail's service switch."""
    files = {
        "hosts": (
            f"127.0.0.1\tlocalhost\n127.0.1.1\t{NS_HOSTNAME} {NS_HOSTNAME.split('.', 1)[0]}\n"
            f"{NETNS_SERVER_ADDR}\t{NETNS_SERVER_NAME}\n{NETNS_CLIENT_ADDR}\t{NETNS_CLIENT_NAME}\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
        ),
        "mail/service.switch": "hosts\tfiles\naliases\tfiles\n",
    }
    for name, text in files.items():
        path = NS_ETC / name
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(text)
            tmp.replace(path)
    return NS_ETC


_NS_SCRIPT = (
    'set -e; mount -t overlay mailconf-usr -o "lowerdir=$1/usr:/usr" /usr; '
    'mount -t overlay mailconf-etc -o "lowerdir=$2:$1/etc:/etc" /etc; '
    'hostname "$3"; shift 3; exec "$@"'
)


def ns_argv(tree: str | os.PathLike[str], argv: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The command line that runs ``argv`` with ``tree``'s usr/ and etc/ overlaid on the host's."""
    ns = [_prog("unshare"), "--mount", "--uts", "--propagation", "private", "/bin/sh", "-c", _NS_SCRIPT, "mailconf-ns"]
    return [*ns, os.fspath(tree), os.fspath(_ns_etc()), NS_HOSTNAME, *(os.fspath(a) for a in argv)]


# --------------------------------------------------------------------------------------------- Exim


def exim(
    args: Sequence[str | os.PathLike[str]],
    stdin: str | None = None,
    *,
    tree: Path = EXIM_ROOT,
    netns: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run the real exim4 with ``args``, e.g. ``["-C", cfg, "-bV"]``, ``-bt ADDR`` or ``-bh IP`` + SMTP on stdin.

    Pass absolute paths to ``-C`` (Exim re-execs itself with them). ``tree=EXIM_HEAVY_ROOT`` runs the heavy build.
    """
    return run(_with_netns(ns_argv(tree, [EXIM, *args]), netns), stdin=stdin, timeout=timeout)


def exim_daemon_start(
    config: str | os.PathLike[str],
    pid_file: str | os.PathLike[str],
    *,
    queue_interval: str | None = "30s",
    tree: Path = EXIM_ROOT,
    netns: str | None = None,
    timeout: float = 10.0,
) -> int:
    """``exim4 -C CONFIG -bd [-qINTERVAL] -oP PIDFILE``; return the daemon's PID (stop with :func:`stop_pid`).

    The config chooses where it listens (``daemon_smtp_ports``, ``local_interfaces = 127.0.0.1``).
    """
    pid_path = Path(pid_file).absolute()
    pid_path.unlink(missing_ok=True)
    args = ["-C", Path(config).absolute(), "-bd", *([f"-q{queue_interval}"] if queue_interval else []), "-oP", pid_path]
    return _start_daemon(_with_netns(ns_argv(tree, [EXIM, *args]), netns), pid_path, "exim", timeout)


# --------------------------------------------------------------------------------------------- Sendmail


def m4_sendmail_cf(
    mc_path: str | os.PathLike[str], cf_path: str | os.PathLike[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Build sendmail.cf from a .mc with Sendmail's own cf macros; stdout is the .cf (also written to cf_path)."""
    cf_dir = f"{SENDMAIL_CF_DIR}/"
    cp = run([_prog("m4"), f"-D_CF_DIR_={cf_dir}", f"{cf_dir}m4/cf.m4", mc_path])
    if cf_path is not None and cp.returncode == 0:
        Path(cf_path).write_text(cp.stdout)
    return cp


def makemap(
    cf: str | os.PathLike[str], maptype: str, mapfile: str | os.PathLike[str]
) -> subprocess.CompletedProcess[str]:
    """``makemap -C CF MAPTYPE MAPFILE < MAPFILE``: builds e.g. access.db from the text file access."""
    argv = ns_argv(SENDMAIL_ROOT, [MAKEMAP, "-C", Path(cf).absolute(), maptype, Path(mapfile).absolute()])
    return run(argv, stdin=Path(mapfile).read_text())


def sendmail(
    args: Sequence[str | os.PathLike[str]],
    stdin: str | None = None,
    *,
    netns: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run the real sendmail with ``args``, e.g. ``["-C", cf, "-bt"]`` with rule-set tests on stdin."""
    return run(_with_netns(ns_argv(SENDMAIL_ROOT, [SENDMAIL, *args]), netns), stdin=stdin, timeout=timeout)


def sendmail_daemon_start(
    cf: str | os.PathLike[str],
    pid_file: str | os.PathLike[str],
    *,
    queue_interval: str | None = "1m",
    netns: str | None = None,
    timeout: float = 10.0,
) -> int:
    """``sendmail -C CF -bd [-qINTERVAL] -OPidFile=PIDFILE``; return the daemon's PID (stop with :func:`stop_pid`).

    The .cf chooses where it listens: ``DAEMON_OPTIONS(`Port=2525, Addr=127.0.0.1, Name=MTA')``.
    """
    pid_path = Path(pid_file).absolute()
    pid_path.unlink(missing_ok=True)
    args = ["-C", Path(cf).absolute(), "-bd", *([f"-q{queue_interval}"] if queue_interval else [])]
    argv = ns_argv(SENDMAIL_ROOT, [SENDMAIL, *args, f"-OPidFile={pid_path}"])
    return _start_daemon(_with_netns(argv, netns), pid_path, "sendmail", timeout)


# --------------------------------------------------------------------------------------------- qmail, fetchmail


def tcprules(rules_file: str | os.PathLike[str], cdb_out: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """``tcprules CDB CDB.tmp < RULES``: exit 100 on a malformed rule (a line without a colon passes)."""
    tmp = Path(f"{os.fspath(cdb_out)}.tmp")
    cp = run([_prog("tcprules"), cdb_out, tmp], stdin=Path(rules_file).read_text())
    tmp.unlink(missing_ok=True)
    return cp


def tcprulescheck(cdb: str | os.PathLike[str], ip: str) -> subprocess.CompletedProcess[str]:
    """``TCPREMOTEIP=IP tcprulescheck CDB``: prints the matching rule, variables set and allow/deny."""
    return run([_prog("tcprulescheck"), cdb], env={"TCPREMOTEIP": ip})


def fetchmail_configdump(rcfile: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """``fetchmail -f RC --configdump``: parses without polling (rc must be mode 0600; exit 5 on a syntax error)."""
    return run([_prog("fetchmail"), "-f", rcfile, "--configdump"])


# --------------------------------------------------------------------------------------------- network namespaces


@dataclass(frozen=True)
class NetnsPair:
    """Two network namespaces joined by a veth pair; the client is an outside host for the server."""

    server: str
    client: str
    server_addr: str
    client_addr: str
    prefix_len: int


_netns_counter = itertools.count()


@contextlib.contextmanager
def netns_pair(
    server_addr: str = NETNS_SERVER_ADDR, client_addr: str = NETNS_CLIENT_ADDR, prefix_len: int = 30
) -> Iterator[NetnsPair]:
    """Create server and client network namespaces (loopback up, veth between), delete them afterwards.

    Stop every process started inside them before leaving the block.
    """
    tag = f"mailconf-{os.getpid()}-{next(_netns_counter)}"
    pair = NetnsPair(f"{tag}-srv", f"{tag}-cli", server_addr, client_addr, prefix_len)
    made: list[str] = []
    try:
        for ns in (pair.server, pair.client):
            run([_prog("ip"), "netns", "add", ns], check=True)
            made.append(ns)
        veth = ["veth-srv", "netns", pair.server, "type", "veth", "peer", "name", "veth-cli", "netns", pair.client]
        run([_prog("ip"), "link", "add", *veth], check=True)
        for ns, dev, addr in ((pair.server, "veth-srv", server_addr), (pair.client, "veth-cli", client_addr)):
            run([_prog("ip"), "-n", ns, "addr", "add", f"{addr}/{prefix_len}", "dev", dev], check=True)
            run([_prog("ip"), "-n", ns, "link", "set", dev, "up"], check=True)
            run([_prog("ip"), "-n", ns, "link", "set", "lo", "up"], check=True)
        yield pair
    finally:
        for ns in made:
            run([_prog("ip"), "netns", "delete", ns])


def netns_run(
    netns: str,
    argv: Sequence[str | os.PathLike[str]],
    *,
    stdin: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run a command inside a network namespace (``ip netns exec``)."""
    return run(_with_netns(argv, netns), stdin=stdin, timeout=timeout)
