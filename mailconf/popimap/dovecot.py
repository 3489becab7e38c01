"""Dovecot 2.3: POP3/IMAP over the mailboxes the MTA delivers to, and the login socket for submission."""

from __future__ import annotations

from typing import ClassVar

from mailconf.render import Directory, RenderedFile, Rendering, Target, render_template
from mailconf.site import LoadedSite

CONF = "/etc/dovecot/dovecot.conf"
USERS = "/etc/dovecot/users"


class Dovecot:
    name: ClassVar[str] = "dovecot"
    role: ClassVar[str] = "pop_imap"

    def render(self, loaded: LoadedSite, target: Target, mta: object = None) -> Rendering:
        site = loaded.site
        p = target.path
        out = Rendering()
        # The MTA says where it looks for the login socket; without one, Dovecot's own auth-client is enough.
        socket_path, socket_owner = getattr(mta, "sasl_socket", None) or ("/run/dovecot/auth-userdb-mta", "dovecot")

        ports = site.host.ports
        protocols = site.pop_imap.protocols

        def port(protocol: str, value: int | None, tls: bool = False) -> int:
            inetd = site.pop_imap.mode != "standalone" and not tls  # inetd serves the STARTTLS ports
            return value if protocol in protocols and value and not inetd else 0  # 0: listener off

        if site.mailbox.format == "maildir":
            mail_location = f"maildir:~/{site.mailbox.maildir}"
        else:
            inbox = getattr(mta, "mbox_inbox", None) or f"{p(site.mailbox.spool)}/%u"  # where the MTA puts mbox mail
            mail_location = f"mbox:~/mail:INBOX={inbox}"
        conf = render_template(
            "dovecot/dovecot.conf.j2",
            protocols=protocols,
            listen=site.host.listen or ["*", "::"],
            base_dir=p("/run/dovecot"),
            state_dir=p("/var/lib/dovecot"),
            tls_cert=p(site.tls.cert or ""),
            tls_key=p(site.tls.key or ""),
            mail_location=mail_location,
            passwd_file=p(USERS) if site.virtual_users else "",
            virtual_root=p(site.mailbox.virtual_root),
            virtual_uid=site.mailbox.virtual_uid,
            virtual_gid=site.mailbox.virtual_gid,
            system_users=bool(site.local_domains),
            ports={
                "imap": port("imap", ports.imap),
                "imaps": port("imap", ports.imaps, tls=True),
                "pop3": port("pop3", ports.pop3),
                "pop3s": port("pop3", ports.pop3s, tls=True),
            },
            auth_socket=p(socket_path),
            auth_socket_owner=socket_owner,
            overrides=site.overrides.dovecot,
        )
        check = f"doveconf -c {p(CONF)} -n"
        out.files.append(RenderedFile(CONF, conf, check=check))
        if site.virtual_users:
            users = [(u.address, u.password_hash) for u in site.virtual_users]
            body = render_template("dovecot/users.j2", users=users)
            out.files.append(RenderedFile(USERS, body, mode=0o640, group="dovecot", secret=True))
        out.directories += [Directory("/run/dovecot"), Directory("/var/lib/dovecot")]
        config = f"-c {p(CONF)} " if target.root else ""
        out.commands = {
            "check": [check],
            "start": [f"dovecot {config}".strip()],
            "reload": [f"doveadm {config}reload"],
            "status": [f"doveadm {config}service status"],
            "stop": [f"doveadm {config}stop"],
        }
        return out
