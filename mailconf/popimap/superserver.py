"""POP3/IMAP under inetd or xinetd (pop_imap.mode): the super-server's lines for Dovecot's login processes.

Dovecot's own listeners for the STARTTLS ports are off in these modes (the implicit-TLS ports stay with
Dovecot); its master still runs, serving authentication to the login processes the super-server starts.
openbsd-inetd reads only /etc/inetd.conf, so mailconf renders its lines as a file of its own,
/etc/mailconf/inetd.conf, and prints the command that merges them; xinetd reads /etc/xinetd.d/ itself.

Dovecot 2.3's login processes cannot take a connection on stdin ("nowait"): started outside Dovecot's master
they serve only listening sockets passed from fd 7 on, and with none they crash before their greeting (the SSL
module is never loaded). So both super-servers run "wait" services that start LOGIN_SCRIPT, which hands the
listening socket to the login process the way Dovecot's master does (templates/inetd/dovecot-login.sh.j2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mailconf.render import Directory, RenderedFile, Rendering, Target, render_template
from mailconf.site import LoadedSite

LOGIN_DIR = "/usr/lib/dovecot"  # {protocol}-login
LOGIN_SCRIPT = "/etc/mailconf/dovecot-login.sh"  # run by the super-server: `sh LOGIN_SCRIPT pop3|imap`
LOGIN_USER = "dovenull"  # Dovecot's default_login_user
LOGIN_LOG = "/var/log/dovecot-login-inetd.log"  # the login processes' stderr (standalone, they log nowhere else)
BASE_DIR = "/run/dovecot"  # Dovecot's base_dir, as the Dovecot backend renders it
INETD_SNIPPET = "/etc/mailconf/inetd.conf"
SHELL = "/bin/sh"


@dataclass(frozen=True)
class InetdLine:
    service: str  # [address:]port
    program: str
    argv: str


class SuperServer:
    name: ClassVar[str] = "superserver"

    def render(self, loaded: LoadedSite, target: Target) -> Rendering:
        site = loaded.site
        mode = site.pop_imap.mode
        out = Rendering()
        if mode == "standalone":
            return out
        ports = {"pop3": site.host.ports.pop3, "imap": site.host.ports.imap}
        served = [(proto, port) for proto, port in ports.items() if proto in site.pop_imap.protocols and port]
        script = target.path(LOGIN_SCRIPT)
        body = render_template(
            "inetd/dovecot-login.sh.j2",
            script=LOGIN_SCRIPT,
            login_dir=LOGIN_DIR,
            base_dir=target.path(BASE_DIR),
            login_user=LOGIN_USER,
            log=target.path(LOGIN_LOG),
        )
        out.files.append(RenderedFile(LOGIN_SCRIPT, body))
        out.directories.append(Directory(LOGIN_LOG.rsplit("/", 1)[0]))
        if mode == "inetd":
            lines = [
                InetdLine(f"{address}:{port}" if address else str(port), SHELL, f"sh {script} {proto}")
                for proto, port in served
                for address in site.host.listen or [""]
            ]
            merge = f"cat {INETD_SNIPPET} >> /etc/inetd.conf, then reload inetd"
            body = render_template("inetd/inetd.conf.j2", lines=lines, merge=merge, script=LOGIN_SCRIPT)
            out.files.append(RenderedFile(INETD_SNIPPET, body))
            out.commands = {"check": [], "start": [], "reload": [], "stop": []}
        else:
            addresses = site.host.listen or [""]
            for proto, port in served:
                for i, address in enumerate(addresses):
                    name = f"dovecot-{proto}" + (f"-{i + 1}" if i else "")  # one service per listen address
                    body = render_template(
                        "xinetd/service.j2",
                        service=name,
                        port=port,
                        bind=address,
                        program=SHELL,
                        args=f"{script} {proto}",
                        script=LOGIN_SCRIPT,
                    )
                    out.files.append(RenderedFile(f"/etc/xinetd.d/{name}", body))
        return out
