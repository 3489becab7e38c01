"""The exact commands to enable, start, reload and check each service under each init system.

`none` means no init system: the programs' own commands, as the backends rendered them (sandboxes, tests).
Under daemontools and runit each service gets a run script in /etc/sv/NAME, linked into /etc/service.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from mailconf.errors import Location, MailconfError, Problem
from mailconf.render import RenderedFile, render_template

INITS = ("systemd", "sysvinit", "openrc", "daemontools", "runit", "none")
SERVICE_DIR = "/etc/service"  # scanned by svscan (daemontools) and runsvdir (runit)
SV_DIR = "/etc/sv"


@dataclass(frozen=True)
class Service:
    name: str  # unit / init script / service directory name
    run: str  # the foreground command a supervisor (daemontools, runit) runs


# Per program: its services. qmail is two: the queue and the SMTP listener under tcpserver.
SERVICES: dict[str, list[Service]] = {
    "postfix": [Service("postfix", "/usr/sbin/postfix start-fg")],
    "exim": [Service("exim4", "/usr/sbin/exim4 -bdf -q30m")],
    "sendmail": [Service("sendmail", "/usr/sbin/sendmail -bD -q30m")],
    "qmail": [
        Service("qmail-send", "env - PATH=/var/qmail/bin:/usr/bin:/bin qmail-start ./Maildir/ splogger qmail"),
        Service(
            "qmail-smtpd",
            'tcpserver -v -R -l 0 -x /etc/tcp.smtp.cdb -c 40 -u "$(id -u qmaild)" -g "$(id -g qmaild)" '
            "0 smtp /var/qmail/bin/qmail-smtpd",
        ),
    ],
    "dovecot": [Service("dovecot", "/usr/sbin/dovecot -F")],
    "fetchmail": [Service("fetchmail", "/usr/bin/fetchmail -f /etc/fetchmailrc --nodetach --daemon 300")],
    "inetd": [Service("openbsd-inetd", "/usr/sbin/inetd -d")],
    "xinetd": [Service("xinetd", "/usr/sbin/xinetd -dontfork")],
}

STAGES = ("enable", "start", "reload", "check")


@dataclass
class ServiceCommands:
    program: str
    commands: dict[str, list[str]] = field(default_factory=dict)  # stage -> commands
    files: list[RenderedFile] = field(default_factory=list)  # run scripts (daemontools, runit)
    note: str = ""


def _for_init(service: Service, init: str) -> dict[str, list[str]]:
    n = service.name
    table = {
        "systemd": (
            f"systemctl enable {n}",
            f"systemctl start {n}",
            f"systemctl reload {n}",
            f"systemctl is-active --quiet {n}",
        ),
        "sysvinit": (
            f"update-rc.d {n} defaults",
            f"/etc/init.d/{n} start",
            f"/etc/init.d/{n} reload",
            f"/etc/init.d/{n} status",
        ),
        "openrc": (
            f"rc-update add {n} default",
            f"rc-service {n} start",
            f"rc-service {n} reload",
            f"rc-service {n} status",
        ),
        "daemontools": (
            f"ln -sfn {SV_DIR}/{n} {SERVICE_DIR}/{n}",
            f"svc -u {SERVICE_DIR}/{n}",
            f"svc -h {SERVICE_DIR}/{n}",
            f"svok {SERVICE_DIR}/{n}",
        ),
        "runit": (f"ln -sfn {SV_DIR}/{n} {SERVICE_DIR}/{n}", f"sv up {n}", f"sv hup {n}", f"sv check {n}"),
    }[init]
    return {stage: [command] for stage, command in zip(STAGES, table, strict=True)}


def service_commands(program: str, init: str, rendered: dict[str, list[str]] | None = None) -> ServiceCommands:
    """Commands for one program under one init system. `rendered`: the backend's own start/reload/status
    commands (Rendering.commands), used for init `none`."""
    if init not in INITS:
        hint = f"one of: {', '.join(INITS)}"
        raise MailconfError([Problem(Location("--init"), f"unknown init system {init!r}", hint)])
    if program not in SERVICES:
        raise MailconfError([Problem(Location(program), f"no service commands known for {program!r}")])
    result = ServiceCommands(program)
    if init == "none":
        rendered = rendered or {}
        result.commands = {
            "start": rendered.get("start", []),
            "reload": rendered.get("reload", []),
            "check": rendered.get("status", []),
        }
        result.note = "no init system: the programs' own commands"
        return result
    for service in SERVICES[program]:
        for stage, commands in _for_init(service, init).items():
            result.commands.setdefault(stage, []).extend(commands)
        if init in ("daemontools", "runit"):
            body = render_template("services/run.j2", command=service.run, service=service.name)
            result.files.append(RenderedFile(f"{SV_DIR}/{service.name}/run", body, mode=0o755, comment=None))
    if init == "daemontools":
        result.note = f"svscan {SERVICE_DIR} must be running (Debian: the daemontools-run package starts it)"
    elif init == "runit":
        result.note = f"runsvdir {SERVICE_DIR} must be running (Debian: the runit package starts it)"
    return result


def detect_init(root: str = "/") -> str:
    """The init system of this machine; `none` for a sandbox (--root other than /)."""
    if root not in ("", "/"):
        return "none"
    if os.path.isdir("/run/systemd/system"):
        return "systemd"
    if os.path.exists("/sbin/openrc-run"):
        return "openrc"
    return "sysvinit"


def print_services(programs: list[str], init: str, say=print) -> None:
    """Print every program's service commands for an init system, run scripts included."""
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
        service = service_commands(program, init)
        say(f"# {program} ({init})" + (f": {service.note}" if service.note else ""))
        for stage in STAGES:
            for command in service.commands.get(stage, []):
                say(f"{stage:7} {command}")
        for file in service.files:
            say(f"\n# {file.path} (mode {file.mode:04o})\n{file.body}")
