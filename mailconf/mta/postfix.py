"""Postfix: main.cf, master.cf, aliases and the lookup tables, from the site description."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mailconf.mta.common import mail_store_directories
from mailconf.render import Directory, RenderedFile, Rendering, Target, render_template
from mailconf.site import LoadedSite
from mailconf.site.views import (
    address_aliases,
    addresses_by_domain,
    catch_alls,
    mailbox_path,
    smarthost_login,
    system_aliases,
)

ETC = "/etc/postfix"
STANDARD_PORTS = {"smtp": 25, "submission": 587, "smtps": 465}

# Submission and smtps: TLS required, login required, and relaying only for logged-in clients.
AUTHENTICATED_SERVICE = [
    "smtpd_tls_security_level=encrypt",
    "smtpd_sasl_auth_enable=yes",
    "smtpd_tls_auth_only=yes",
    "smtpd_client_restrictions=permit_sasl_authenticated,reject",
    "smtpd_relay_restrictions=permit_sasl_authenticated,reject",
    "smtpd_recipient_restrictions=",
    "milter_macro_daemon_name=ORIGINATING",
]


@dataclass
class Listener:
    name: str  # service name or port in master.cf
    options: list[str]


class Postfix:
    name: ClassVar[str] = "postfix"
    role: ClassVar[str] = "mta"
    sasl_socket: ClassVar[tuple[str, str]] = ("/var/spool/postfix/private/auth", "postfix")  # path, owner

    def render(self, loaded: LoadedSite, target: Target, mta: object = None) -> Rendering:
        site = loaded.site
        p = target.path
        out = Rendering()

        def table(name: str, purpose: str, entries: list[tuple[str, str]], mode: int = 0o644) -> str:
            path = f"{ETC}/{name}"
            build = f"postmap {self._c(target)}{p(path)}"
            body = render_template("postfix/map.j2", purpose=purpose, build=build, entries=entries)
            out.files.append(
                RenderedFile(path, body, mode=mode, build=build, products=(f"{path}.db",), secret=mode != 0o644)
            )
            return f"hash:{p(path)}"

        aliases = system_aliases(site)
        alias_build = f"postalias {self._c(target)}{p('/etc/aliases')}"
        out.files.append(
            RenderedFile(
                "/etc/aliases",
                render_template("postfix/aliases.j2", aliases=sorted(aliases.items()), build=alias_build),
                build=alias_build,
                products=("/etc/aliases.db",),
            )
        )

        virtual_alias_maps = ""
        forwards = self._virtual_aliases(loaded)
        if forwards:
            virtual_alias_maps = table("virtual", "Addresses forwarded elsewhere: see virtual(5).", forwards)

        virtual_mailbox_maps = ""
        if site.virtual_domains:
            mailboxes = [(u.address, mailbox_path(site, u.address) + "/") for u in site.virtual_users if u.address]
            virtual_mailbox_maps = table(
                "vmailbox", "Virtual mailboxes (Maildir), under virtual_mailbox_base.", mailboxes
            )

        relayhost = smtp_sasl_password_maps = ""
        if site.smarthost:
            relayhost = f"[{site.smarthost.host}]:{site.smarthost.port}"
            login = smarthost_login(loaded)
            if login:
                user, password = login
                smtp_sasl_password_maps = table(
                    "sasl_passwd", "Smarthost login (secret).", [(relayhost, f"{user}:{password}")], mode=0o600
                )

        mydestination = ["$myhostname", "localhost", *site.local_domains]
        main_cf = render_template(
            "postfix/main.cf.j2",
            host=site.host.name,
            mydestination=list(dict.fromkeys(mydestination)),
            inet_interfaces=", ".join(site.host.listen) or "all",
            queue_directory=p("/var/spool/postfix"),
            data_directory=p("/var/lib/postfix"),
            mynetworks=[f"[{n.split('/')[0]}]/{n.split('/')[1]}" if ":" in n else n for n in site.trusted_networks],
            relay_domains=site.relay_domains,
            message_size_limit=site.message_size_limit,
            alias_maps=f"hash:{p('/etc/aliases')}",
            home_mailbox=f"{site.mailbox.maildir}/" if site.mailbox.format == "maildir" else "",
            mail_spool_directory=p(site.mailbox.spool),
            virtual_alias_maps=virtual_alias_maps,
            virtual_mailbox_domains=site.virtual_domains,
            virtual_mailbox_maps=virtual_mailbox_maps,
            virtual_mailbox_base=p(site.mailbox.virtual_root),
            virtual_uid=site.mailbox.virtual_uid,
            virtual_gid=site.mailbox.virtual_gid,
            relayhost=relayhost,
            smtp_sasl_password_maps=smtp_sasl_password_maps,
            smtp_tls_security_level="encrypt" if site.smarthost else "may",
            tls=site.tls.enabled,
            tls_cert=p(site.tls.cert or ""),
            tls_key=p(site.tls.key or ""),
            overrides=site.overrides.postfix.main,
        )
        check = f"postfix {self._c(target)}check"
        main_cf = _drop_overridden(main_cf, set(site.overrides.postfix.main))
        out.files.insert(0, RenderedFile(f"{ETC}/main.cf", main_cf, check=check))
        out.files.insert(1, RenderedFile(f"{ETC}/master.cf", self._master_cf(loaded), check=check))

        out.directories += [
            Directory("/var/spool/postfix"),
            Directory("/var/lib/postfix", owner="postfix", group="postfix", mode=0o700),
            *mail_store_directories(site),
        ]
        out.commands = {
            "build": [f.build for f in out.files if f.build],
            "check": [check],
            "start": [f"postfix {self._c(target)}start"],
            "reload": [f"postfix {self._c(target)}reload"],
            "status": [f"postfix {self._c(target)}status"],
            "stop": [f"postfix {self._c(target)}stop"],
        }
        return out

    @staticmethod
    def _c(target: Target) -> str:
        """`-c DIR ` when the configuration is not in Postfix's compiled-in place."""
        return f"-c {target.path(ETC)} " if target.root else ""

    def _master_cf(self, loaded: LoadedSite) -> str:
        ports = loaded.site.host.ports
        listeners = []
        for service, port in (("smtp", ports.smtp), ("submission", ports.submission), ("smtps", ports.smtps)):
            if port is None:
                continue
            name = service if STANDARD_PORTS[service] == port else str(port)
            options = [f"syslog_name=postfix/{service}"]
            if service != "smtp":
                options += AUTHENTICATED_SERVICE
            if service == "smtps":
                options.append("smtpd_tls_wrappermode=yes")
            listeners.append(Listener(name, options))
        extra = loaded.site.overrides.postfix.master
        return render_template("postfix/master.cf.j2", listeners=listeners, overrides=extra)

    @staticmethod
    def _virtual_aliases(loaded: LoadedSite) -> list[tuple[str, str]]:
        """virtual(5) entries: address aliases, and per catch-all domain an identity entry for every address
        that exists there (Postfix tries user@domain before @domain, so these keep real mailboxes reachable)."""
        site = loaded.site
        entries = [(name, ", ".join(targets)) for name, targets in address_aliases(site).items()]
        catch_all = catch_alls(site)
        if catch_all:
            taken = {name for name, _ in entries}
            existing = addresses_by_domain(site)
            for domain, target in catch_all.items():
                entries += [(a, a) for a in existing[domain] if a not in taken]
                entries.append((f"@{domain}", target))
        return entries


OVERRIDES_MARK = "# Overrides from the site description"


def _drop_overridden(main_cf: str, names: set[str]) -> str:
    """Postfix warns about a parameter set twice: the rendered line of an overridden parameter (and its
    continuation lines) gives way to the override at the end."""
    if not names:
        return main_cf
    head, mark, tail = main_cf.partition(OVERRIDES_MARK)
    kept, skipping = [], False
    for line in head.splitlines(keepends=True):
        if skipping and line[:1] in " \t" and line.strip():
            continue
        skipping = "=" in line and line[:1] not in "# \t" and line.split("=", 1)[0].strip() in names
        if not skipping:
            kept.append(line)
    return "".join(kept) + mark + tail
