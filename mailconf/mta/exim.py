"""Exim 4: one exim4.conf (main section, ACLs, routers, transports, authenticators) and the lsearch lists it reads."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from mailconf.errors import MailconfError, Problem, RenderRefused
from mailconf.mta.common import mail_store_directories, pid_file_commands
from mailconf.render import Directory, RenderedFile, Rendering, Target, render_template
from mailconf.site import LoadedSite
from mailconf.site.views import (
    address_aliases,
    catch_alls,
    mailbox_path,
    smarthost_login,
    system_aliases,
)

ETC = "/etc/exim4"
CONF = f"{ETC}/exim4.conf"
PID_FILE = "/run/exim4/exim.pid"
SPOOL = "/var/spool/exim4"
BEGIN_ACL = "\nbegin acl\n"  # ends the main section
EXIM_USER = "Debian-exim"  # Debian's compiled-in exim_user
# Main options an override may not set: they decide who may relay, or where a name in the config points.
GUARDED_OPTIONS = {
    "acl_smtp_rcpt",
    "acl_smtp_connect",
    "acl_smtp_mail",
    "acl_smtp_predata",
    "acl_smtp_data",
    "percent_hack_domains",
    "allow_domain_literals",
    "recipient_unqualified_hosts",
    "auth_advertise_hosts",
    "spool_directory",
    "domainlist",  # named lists are not options: these would only break the file
    "hostlist",
    "addresslist",
    "localpartlist",
    "begin",
}


class Exim:
    name: ClassVar[str] = "exim"
    role: ClassVar[str] = "mta"
    refusals: ClassVar[dict[str, str]] = {
        "postmaster and abuse": "yes, but refused if they would go to root (Exim never delivers to root)",
        "submission and smtps with login": "yes, with Debian's exim4-daemon-heavy: the light daemon has no dovecot "
        "authenticator, so `exim4 -bV` (and apply) refuse the config",
    }
    # Dovecot puts a login socket here for Exim's dovecot authenticator (path, owner): in Exim's run directory,
    # as Postfix's is in its queue (Dovecot warns about absolute paths inside its own base_dir).
    sasl_socket: ClassVar[tuple[str, str]] = ("/run/exim4/dovecot-auth", EXIM_USER)

    def render(self, loaded: LoadedSite, target: Target, mta: object = None) -> Rendering:
        site = loaded.site
        if site.postmaster_target == "root":
            raise RenderRefused(
                [
                    Problem(
                        loaded.located.locate(("postmaster",)),
                        "postmaster mail would go to root, which Exim never delivers to "
                        "(root is in its compiled-in never_users)",
                        "set `postmaster:` to a user or an address",
                    )
                ]
            )
        p = target.path
        out = Rendering()

        def lsearch(name: str, purpose: str, entries: list[tuple[str, str]], secret: bool = False) -> str:
            """A list Exim reads as text (lsearch: key, colon, value); a secret one only Exim's group may read."""
            path = name if name.startswith("/") else f"{ETC}/{name}"
            body = render_template("exim/lsearch.j2", purpose=purpose, entries=entries)
            if secret:
                out.files.append(RenderedFile(path, body, mode=0o640, group=EXIM_USER, secret=True))
            else:
                out.files.append(RenderedFile(path, body))
            return p(path)

        aliases = lsearch(
            "/etc/aliases",
            "Local aliases, valid in every local domain: see aliases(5). Exim reads this file directly.",
            [(name, ", ".join(targets)) for name, targets in system_aliases(site).items()],
        )
        forwards = [(name, ", ".join(targets)) for name, targets in address_aliases(site).items()]
        forwards += [(f"*@{domain}", target) for domain, target in catch_alls(site).items()]
        virtual_aliases = ""
        if forwards:
            virtual_aliases = lsearch(
                "virtual_aliases", "Addresses forwarded elsewhere; *@DOMAIN catches what does not exist.", forwards
            )
        virtual_mailboxes = ""
        if site.virtual_users:
            virtual_mailboxes = lsearch(
                "virtual_mailboxes",
                f"Virtual mailboxes: address, and its Maildir under {site.mailbox.virtual_root}.",
                [(u.address, mailbox_path(site, u.address)) for u in site.virtual_users if u.address],
            )

        smarthost = None
        if site.smarthost:
            login = smarthost_login(loaded)
            login_file = ""
            if login:
                user, password = login
                login_file = lsearch(
                    "passwd.client",
                    "Our login at the smarthost (secret): read by Exim's smarthost_plain authenticator.",
                    [(site.smarthost.host, f'user="{_quote(user)}" password="{_quote(password)}"')],
                    secret=True,
                )
            smarthost = {
                "host": site.smarthost.host,
                "port": site.smarthost.port,
                "smtps": site.smarthost.port == 465,
                "login": login_file,
            }

        ports = site.host.ports
        submission_ports = [port for port in (ports.submission, ports.smtps) if port]
        check = f"exim4 {self._c(target)}-bV"
        settings = dict(
            check=check,
            host=site.host.name,
            local_domains=list(dict.fromkeys(["@", "localhost", *site.local_domains])),
            virtual_domains=site.virtual_domains,
            relay_to_domains=site.relay_domains,
            relay_from_hosts=site.trusted_networks,
            spool_directory=p(SPOOL),
            log_file_path=p("/var/log/exim4/%slog"),
            pid_file_path=p(PID_FILE),
            daemon_smtp_ports=[port for port in (ports.smtp, ports.submission, ports.smtps) if port],
            tls_on_connect_ports=[ports.smtps] if ports.smtps else [],
            local_interfaces=site.host.listen,
            message_size_limit=site.message_size_limit,
            tls=site.tls.enabled,
            tls_cert=p(site.tls.cert or ""),
            tls_key=p(site.tls.key or ""),
            submission_ports=submission_ports,
            smarthost=smarthost,
            virtual_aliases=virtual_aliases,
            system_aliases=aliases,
            virtual_mailboxes=virtual_mailboxes,
            catch_all=bool(catch_alls(site)),
            maildir=site.mailbox.maildir if site.mailbox.format == "maildir" else "",
            mail_spool=p(site.mailbox.spool),
            virtual_root=p(site.mailbox.virtual_root),
            virtual_uid=site.mailbox.virtual_uid,
            virtual_gid=site.mailbox.virtual_gid,
            sasl_socket=p(self.sasl_socket[0]) if submission_ports else "",
        )
        conf = _with_overrides(settings, _overrides(loaded))
        out.files.insert(0, RenderedFile(CONF, conf, check=check))

        out.directories += [
            Directory(SPOOL, owner=EXIM_USER, group=EXIM_USER, mode=0o750),
            Directory("/var/log/exim4", owner=EXIM_USER, group="adm", mode=0o2750),
            Directory("/run/exim4", owner=EXIM_USER, group=EXIM_USER, mode=0o755),
            *mail_store_directories(site),
        ]
        out.commands = {
            "check": [check],
            "start": [f"exim4 {self._c(target)}-bd -q30m"],
            **pid_file_commands("exim", p(PID_FILE)),
        }
        return out

    @staticmethod
    def _c(target: Target) -> str:
        """`-C FILE ` when the configuration is not in Exim's compiled-in place."""
        return f"-C {target.path(CONF)} " if target.root else ""


def _quote(value: str) -> str:
    """A value inside double quotes for Exim's ${extract{key}{...}} (backslash escapes); ^ doubled for PLAIN."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("^", "^^")


def _with_overrides(settings: dict[str, Any], overrides: dict[str, str]) -> str:
    """exim4.conf with the site's raw main options. Exim refuses an option set twice: an override of an option
    mailconf sets replaces that line; the others follow the main section."""
    plain = render_template("exim/exim4.conf.j2", overrides=[], **settings)
    ours = set(re.findall(r"^([a-z_]+) = ", plain.partition(BEGIN_ACL)[0], re.M))
    extra = [(name, value) for name, value in overrides.items() if name not in ours]
    main, begin, rest = render_template("exim/exim4.conf.j2", overrides=extra, **settings).partition(BEGIN_ACL)
    for name, value in overrides.items():
        if name in ours:
            main = re.sub(rf"^{name} = .*$", lambda _, line=f"{name} = {value}": line, main, count=1, flags=re.M)
    return main + begin + rest


def _overrides(loaded: LoadedSite) -> dict[str, str]:
    """The site's raw Exim main options; those that decide relaying stay mailconf's."""
    overrides = loaded.site.overrides.exim
    for name in overrides:
        if name in GUARDED_OPTIONS:
            raise MailconfError(
                [
                    Problem(
                        loaded.located.locate(("overrides", "exim", name)),
                        f"overrides.exim.{name} would change who may relay through Exim, which mailconf decides",
                        "describe the policy with trusted_networks, relay_domains and the submission ports",
                    )
                ]
            )
    return dict(overrides)
