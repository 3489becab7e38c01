"""Fetchmail: remote POP3/IMAP mailboxes collected and handed to the local MTA over SMTP (/etc/fetchmailrc)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mailconf.errors import MailconfError, Problem
from mailconf.render import RenderedFile, Rendering, Target, render_template
from mailconf.site import LoadedSite
from mailconf.site.model import Host
from mailconf.site.types import CONTROL_CHARACTER

RC = "/etc/fetchmailrc"


@dataclass(frozen=True)
class Box:
    server: str
    protocol: str
    port: int | None
    user: str
    password: str  # quoted for the rc file
    local: str  # the local name fetchmail maps the mailbox to
    smtpname: str  # the full address to deliver to, when it is not a local user
    ssl: bool


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def smtp_host(host: Host) -> str:
    """fetchmail's `smtphost` (HOST/PORT): an address the MTA listens on, loopback first.

    No listen addresses: the MTA listens on all of them, so `localhost`. The SMTP port is on (checks.py).
    """
    listen = host.listen
    reaches = {"127.0.0.1": ("127.0.0.1", "0.0.0.0"), "::1": ("::1", "::")}  # a wildcard reaches loopback too
    loopback = next((address for address, via in reaches.items() if any(a in listen for a in via)), None)
    return f"{loopback or (listen[0] if listen else 'localhost')}/{host.ports.smtp}"


class Fetchmail:
    name: ClassVar[str] = "fetchmail"

    def render(self, loaded: LoadedSite, target: Target) -> Rendering:
        config = loaded.site.fetchmail
        out = Rendering()
        if config is None or not config.mailboxes:
            return out
        boxes = []
        for i, box in enumerate(config.mailboxes):
            password = loaded.read_secret(box.password_file).rstrip("\n")
            if not password or '"' in password or CONTROL_CHARACTER.search(password):
                where = loaded.located.locate(("fetchmail", "mailboxes", i, "password_file"))
                message = "the password file must hold one line: the password, without a double quote"
                raise MailconfError([Problem(where, message)])
            address = "@" in box.deliver_to
            local = box.deliver_to.split("@")[0] if address else box.deliver_to
            boxes.append(
                Box(
                    box.server,
                    box.protocol.upper(),
                    box.port,
                    box.user,
                    _quote(password),
                    local,
                    box.deliver_to if address else "",
                    box.ssl,
                )
            )
        host = loaded.site.host
        # RCPT TO domain: by default fetchmail uses the smtphost's name, which an address cannot be; the host's own
        # name is a local domain of every MTA here (Postfix $myhostname, Exim @, sendmail's w class, qmail locals).
        body = render_template(
            "fetchmail/fetchmailrc.j2",
            interval=config.poll_interval,
            mailboxes=boxes,
            smtp=smtp_host(host),
            smtpaddress=host.name,
        )
        # Read from stdin: fetchmail refuses an rc file its caller does not own, and the daemon's user owns it.
        check = f"sh -c 'fetchmail -f - --configdump < {target.path(RC)}'"
        # Debian's fetchmail daemon runs as the user `fetchmail`, which must own its rc file.
        out.files.append(RenderedFile(RC, body, mode=0o600, owner="fetchmail", check=check, secret=True))
        out.commands = {"check": [check]}
        return out
