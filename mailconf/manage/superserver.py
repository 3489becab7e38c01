"""POP3/IMAP under inetd or xinetd (pop_imap.mode): the super-server's lines for Dovecot's login processes.

Dovecot's own listeners for the STARTTLS ports are off in these modes (the implicit-TLS ports stay with
Dovecot); its master still runs, serving authentication to the login processes the super-server starts.
openbsd-inetd reads only /etc/inetd.conf, so mailconf renders its lines as a file of its own,
/etc/mailconf/inetd.conf, and prints the command that merges them; xinetd reads /etc/xinetd.d/ itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mailconf.render import RenderedFile, Rendering, Target, render_template
from mailconf.site import LoadedSite

LOGIN = "/usr/lib/dovecot/{protocol}-login"
INETD_SNIPPET = "/etc/mailconf/inetd.conf"
DOVECOT_CONF = "/etc/dovecot/dovecot.conf"


@dataclass(frozen=True)
class InetdLine:
    service: str  # [address:]port
    program: str
    argv: str  # argv[0] must be the absolute path: the login process looks itself up by it


class SuperServer:
    name: ClassVar[str] = "superserver"

    def render(self, loaded: LoadedSite, target: Target) -> Rendering:
        site = loaded.site
        mode = site.pop_imap.mode
        out = Rendering()
        if mode == "standalone":
            return out
        config = f" -c {target.path(DOVECOT_CONF)}" if target.root else ""
        ports = {"pop3": site.host.ports.pop3, "imap": site.host.ports.imap}
        served = [(proto, port) for proto, port in ports.items() if proto in site.pop_imap.protocols and port]
        if mode == "inetd":
            lines = [
                InetdLine(
                    f"{address}:{port}" if address else str(port),
                    LOGIN.format(protocol=proto),
                    LOGIN.format(protocol=proto) + config,
                )
                for proto, port in served
                for address in site.host.listen or [""]
            ]
            merge = f"cat {INETD_SNIPPET} >> /etc/inetd.conf, then reload inetd"
            body = render_template("inetd/inetd.conf.j2", lines=lines, merge=merge)
            out.files.append(RenderedFile(INETD_SNIPPET, body))
            out.commands = {"check": [], "start": [], "reload": []}
        else:
            for proto, port in served:
                name = f"dovecot-{proto}"
                program = LOGIN.format(protocol=proto)
                body = render_template(
                    "xinetd/service.j2",
                    name=name,
                    port=port,
                    bind=(site.host.listen or [""])[0],
                    program=program,
                    args=config.strip(),
                )
                out.files.append(RenderedFile(f"/etc/xinetd.d/{name}", body))
        return out
