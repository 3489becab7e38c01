"""The exact commands to enable, start, reload and check each service under each init system.

`none` means no init system: the programs' own commands, as the backends rendered them (sandboxes, tests).
Under daemontools and runit each service gets a run script in /etc/sv/NAME, linked into /etc/service; a backend
that renders its own service directories (qmail: /var/qmail/supervise/*, from the site) has them linked instead.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from dataclasses import dataclass, field

from mailconf.errors import Location, MailconfError, Problem
from mailconf.mta.common import pid_file_commands, svstat_up
from mailconf.mta.exim import PID_FILE as EXIM_PID_FILE
from mailconf.mta.qmail import SEND_SERVICE, SMTPD_SERVICE
from mailconf.mta.sendmail import PID_FILE as SENDMAIL_PID_FILE
from mailconf.render import RenderedFile, Rendering, render_template

INITS = ("systemd", "sysvinit", "openrc", "daemontools", "runit", "none")
SERVICE_DIR = "/etc/service"  # scanned by svscan (daemontools) and runsvdir (runit)
SV_DIR = "/etc/sv"


@dataclass(frozen=True)
class Service:
    name: str  # unit / init script / service directory name
    run: str | None = None  # the foreground command a supervisor (daemontools, runit) runs; None: see directory
    directory: str = ""  # a service directory whose run script the backend renders (default: /etc/sv/NAME)
    unit: str = ""  # its systemd unit, when not NAME
    reload_signal: str = "h"  # under a supervisor: svc -h (SIGHUP: reload), or -t (restart: qmail rereads all)
    reload: str = ""  # under a supervisor: the program's own reload instead of a signal
    # Whether it runs, for an init script's service: systemd's units generated from init scripts "remain after
    # exit", so `systemctl is-active` stays true when the daemon died (Exim's and Sendmail's on Debian 12).
    running: str = ""

    @property
    def home(self) -> str:
        return self.directory or f"{SV_DIR}/{self.name}"


def _pid_check(name: str, pid_file: str) -> str:
    return pid_file_commands(name, pid_file)["status"][0]


# Per program: its services. qmail is two: the queue and the SMTP listener under tcpserver, whose run scripts
# the qmail backend renders from the site (one listener per listening address; the rendering names them all).
SERVICES: dict[str, list[Service]] = {
    # Debian's postfix.service is a oneshot wrapper, always "active": the instance unit runs the master.
    # `postfix start-fg` keeps its shell as the supervised process unless it is PID 1 (SIGHUP would not reach the
    # master): the master itself runs in the foreground with -d.
    # `postfix reload` waits until main.cf is 2 s old first; a bare SIGHUP right after the install is not seen.
    "postfix": [Service("postfix", "/usr/lib/postfix/sbin/master -d", unit="postfix@-", reload="postfix reload")],
    "exim": [Service("exim4", "/usr/sbin/exim4 -bdf -q30m", running=_pid_check("exim", EXIM_PID_FILE))],
    "sendmail": [
        Service("sendmail", "/usr/sbin/sendmail -bD -q30m", running=_pid_check("sendmail", SENDMAIL_PID_FILE))
    ],
    "qmail": [
        Service("qmail-send", directory=SEND_SERVICE, reload_signal="t"),
        Service("qmail-smtpd", directory=SMTPD_SERVICE, reload_signal="t"),
    ],
    "dovecot": [Service("dovecot", "/usr/sbin/dovecot -F")],
    "fetchmail": [Service("fetchmail", "/usr/bin/fetchmail -f /etc/fetchmailrc --nodetach --daemon 300")],
    "inetd": [Service("openbsd-inetd", "/usr/sbin/inetd -d")],
    "xinetd": [Service("xinetd", "/usr/sbin/xinetd -dontfork")],
}

STAGES = ("enable", "start", "reload", "check", "stop")


@dataclass
class ServiceCommands:
    program: str
    commands: dict[str, list[str]] = field(default_factory=dict)  # stage -> commands
    files: list[RenderedFile] = field(default_factory=list)  # run scripts (daemontools, runit)
    backend_runs: list[str] = field(default_factory=list)  # run scripts the program's backend renders instead
    note: str = ""


def _for_init(service: Service, init: str) -> dict[str, list[str]]:
    n, unit, supervised = service.name, service.unit or service.name, f"{SERVICE_DIR}/{service.name}"
    wait = "for i in 1 2 3 4 5 6 7 8 9 10; do {} && break; sleep 1; done; "  # svscan/runsvdir look every 5 s
    table = {
        "systemd": (
            f"systemctl enable {unit}",
            f"systemctl start {unit}",
            f"systemctl reload {unit}",
            service.running or f"systemctl is-active --quiet {unit}",
            f"systemctl stop {unit}",
        ),
        "sysvinit": (
            f"update-rc.d {n} defaults",
            f"/etc/init.d/{n} start",
            f"/etc/init.d/{n} reload",
            service.running or f"/etc/init.d/{n} status",
            f"/etc/init.d/{n} stop",
        ),
        "openrc": (
            f"rc-update add {n} default",
            f"rc-service {n} start",
            f"rc-service {n} reload",
            service.running or f"rc-service {n} status",
            f"rc-service {n} stop",
        ),
        "daemontools": (
            f"ln -sfn {service.home} {supervised}",
            wait.format(f"svok {supervised}") + f"svc -u {supervised}",
            service.reload or f"svc -{service.reload_signal} {supervised}",
            svstat_up(supervised),
            f"svc -d {supervised}",
        ),
        "runit": (
            f"ln -sfn {service.home} {supervised}",
            wait.format(f"sv status {n} >/dev/null") + f"sv up {n}",
            service.reload or f"sv {'hup' if service.reload_signal == 'h' else 'term'} {n}",
            f"sv status {n} | grep -q '^run:'",
            f"sv down {n}",
        ),
    }[init]
    return {stage: [command] for stage, command in zip(STAGES, table, strict=True)}


def service_commands(program: str, init: str, rendering: Rendering | None = None) -> ServiceCommands:
    """Commands for one program under one init system. `rendering`: the program's rendering, whose own
    start/reload/status commands serve init `none` and whose service directories (if any) name the services."""
    if init not in INITS:
        hint = f"one of: {', '.join(INITS)}"
        raise MailconfError([Problem(Location("--init"), f"unknown init system {init!r}", hint)])
    if program not in SERVICES:
        raise MailconfError([Problem(Location(program), f"no service commands known for {program!r}")])
    if program in SUPERVISED_ONLY and init not in ("daemontools", "runit", "none"):
        hint = "use --init daemontools or --init runit (or leave --init out)"
        raise MailconfError([Problem(Location("--init"), f"{program} has no {init} service: it runs supervised", hint)])
    result = ServiceCommands(program)
    if init == "none":
        rendered = rendering.commands if rendering else {}
        result.commands = {
            "start": rendered.get("start", []),
            "reload": rendered.get("reload", []),
            "check": rendered.get("status", []),
            "stop": rendered.get("stop", []),
        }
        result.note = "no init system: the programs' own commands"
        return result
    services = SERVICES[program]
    if rendering and rendering.services:
        services = [Service(posixpath.basename(d), directory=d, reload_signal="t") for d in rendering.services]
    for service in services:
        for stage, commands in _for_init(service, init).items():
            result.commands.setdefault(stage, []).extend(commands)
        if init not in ("daemontools", "runit"):
            continue
        if service.run is None:
            result.backend_runs.append(f"{service.home}/run")
            continue
        body = render_template("services/run.j2", command=service.run, service=service.name)
        result.files.append(RenderedFile(f"{service.home}/run", body, mode=0o755, comment=None))
    if init == "daemontools":
        result.note = f"svscan {SERVICE_DIR} must be running (Debian: the daemontools-run package starts it)"
    elif init == "runit":
        result.note = f"runsvdir {SERVICE_DIR} must be running (Debian: the runit package starts it)"
    return result


SUPERVISED_ONLY = {"qmail"}  # run under daemontools or runit whatever the init system is (no units, no scripts)


def detect_init(root: str = "/", program: str = "") -> str:
    """The init system of this machine that runs `program`; `none` for a sandbox (--root other than /)."""
    if root not in ("", "/"):
        return "none"
    if program in SUPERVISED_ONLY:
        return "runit" if shutil.which("sv") and not shutil.which("svc") else "daemontools"
    if os.path.isdir("/run/systemd/system"):
        return "systemd"
    if os.path.exists("/sbin/openrc-run"):
        return "openrc"
    return "sysvinit"


def print_services(programs: list[str], init: str | None, say=print) -> None:
    """Print every program's service commands for an init system (None: this host's, per program), run scripts
    included."""
    if init == "none":
        raise MailconfError(
            [
                Problem(
                    Location("--init"),
                    "`none` has no service commands of its own",
                    "the programs' own commands are printed by `mailconf render`",
                )
            ]
        )
    for program in programs:
        chosen = init or detect_init("/", program)
        service = service_commands(program, chosen)
        say(f"# {program} ({chosen})" + (f": {service.note}" if service.note else ""))
        for stage in STAGES:
            for command in service.commands.get(stage, []):
                say(f"{stage:7} {command}")
        for file in service.files:
            say(f"\n# {file.path} (mode {file.mode:04o})\n{file.body}")
        for run in service.backend_runs:
            say(f"# {run}: rendered from the site description by `mailconf render --mta {program}`")
