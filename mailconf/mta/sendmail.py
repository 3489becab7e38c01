"""Sendmail 8: sendmail.mc and the files and maps it names, from the site description.

sendmail.cf is built from the .mc with m4 and Sendmail's own cf macros, as admins do; the rendering lists the
command. Mailboxes are written by Dovecot's LDA (dovecot-lda), so mail lands exactly where Dovecot reads it:
unix users through Sendmail's local mailer (mbox spool or Maildir, as Dovecot's mail_location says), virtual
users through a `vmail` mailer running as the virtual uid. Sendmail itself has no virtual mailbox store.
"""

from __future__ import annotations

import base64
import ipaddress
import itertools
import re
from typing import ClassVar

from mailconf.errors import Location, MailconfError, Problem, RenderRefused
from mailconf.mta.common import mail_store_directories, pid_file_commands
from mailconf.render import Directory, RenderedFile, Rendering, Target, render_template
from mailconf.site import LoadedSite
from mailconf.site.views import address_aliases, addresses_by_domain, catch_alls, smarthost_login, system_aliases

ETC = "/etc/mail"
CF_DIR = "/usr/share/sendmail/cf"
DOVECOT_LDA = "/usr/lib/dovecot/dovecot-lda"
DOVECOT_CONF = "/etc/dovecot/dovecot.conf"  # where Dovecot (and so its LDA) reads its configuration
QUEUE_DIR = "/var/spool/mqueue"
PID_FILE = "/run/sendmail/mta/sendmail.pid"
SASLAUTHD_DIR = "/run/saslauthd"  # saslauthd's socket directory (-m); Debian's default
MAX_CONNECT_KEYS = 1024  # a trusted network expands to at most this many access-map keys

# Listeners: DAEMON_OPTIONS name and modifiers. a: AUTH required, E: no ETRN, s: TLS from the first byte.
SERVICES = {"smtp": ("MTA", ""), "submission": ("MSA", "Ea"), "smtps": ("SMTPS", "Eas")}

# .mc features and settings that open a relay or weaken the sender checks; refused in overrides too.
FORBIDDEN = (
    "promiscuous_relay",
    "relay_entire_domain",
    "relay_based_on_MX",
    "relay_local_from",
    "relay_mail_from",
    "loose_relay_check",
    "accept_unresolvable_domains",
    "accept_unqualified_senders",
    "confAUTH_OPTIONS",
)


class Sendmail:
    name: ClassVar[str] = "sendmail"
    role: ClassVar[str] = "mta"
    refusals: ClassVar[dict[str, str]] = {
        "trusted networks (IPv4)": "yes, but refused for a network that needs more than 1024 access entries",
        "trusted networks (IPv6)": "yes, but refused for a network that needs more than 1024 access entries",
    }

    def render(self, loaded: LoadedSite, target: Target, mta: object = None) -> Rendering:
        site = loaded.site
        p = target.path
        out = Rendering()
        cf = p(f"{ETC}/sendmail.cf")
        config = f"-C {cf} " if target.root else ""

        def text_file(name: str, template: str, mode: int = 0o644, **context: object) -> str:
            out.files.append(RenderedFile(f"{ETC}/{name}", render_template(f"sendmail/{template}", **context), mode))
            return p(f"{ETC}/{name}")

        def table(name: str, purpose: str, entries: list[tuple[str, str]], mode: int = 0o644) -> str:
            path = p(f"{ETC}/{name}")
            build = f"makemap {config}hash {path} < {path}"
            options = "-T<TMPF> " if name == "access" else ""  # lookup failures defer mail, never accept it
            body = render_template("sendmail/map.j2", purpose=purpose, build=build, entries=entries)
            product = (f"{ETC}/{name}.db",)
            out.files.append(
                RenderedFile(f"{ETC}/{name}", body, mode=mode, build=build, products=product, secret=mode != 0o644)
            )
            return f"hash {options}-o {path}"

        # Class w: the names we accept mail for. Virtual domains are in it too, so that virtusertable applies;
        # their unknown addresses are refused by an @domain entry there, never delivered to unix accounts.
        local_names = list(dict.fromkeys([site.host.name, *site.local_domains, *site.virtual_domains]))
        cw_file = text_file("local-host-names", "names.j2", names=local_names, purpose="Domains delivered here.")
        cr_file = text_file(
            "relay-domains", "names.j2", names=site.relay_domains, purpose="Domains we relay for (backup MX)."
        )
        access_entries = self._access(loaded)
        if site.smarthost:  # the smarthost only over TLS: the login must not cross the network in clear
            access_entries.append((f"TLS_Srv:{site.smarthost.host}", "ENCR:112"))
        access = table("access", "Clients that may relay (the trusted networks); TLS to the smarthost.", access_entries)

        aliases, virtuser = self._aliases(loaded)
        alias_file = p(f"{ETC}/aliases")
        alias_build = f"sendmail {config}-bi" if target.root else "newaliases"
        body = render_template("sendmail/aliases.j2", aliases=aliases, build=alias_build)
        out.files.append(RenderedFile(f"{ETC}/aliases", body, build=alias_build, products=(f"{ETC}/aliases.db",)))
        virtusertable = table("virtusertable", "Addresses by domain: aliases, catch-alls, unknown users.", virtuser)
        mailertable = table("mailertable", "Per-domain routes (none: mail goes by MX or the smarthost).", [])

        vmailbox = ""
        if site.virtual_users:
            addresses = [(u.address, u.address) for u in site.virtual_users if u.address]
            vmailbox = table("vmailbox", "Virtual mailboxes, delivered by Dovecot's LDA.", addresses)

        smart_host = authinfo = ""
        if site.smarthost:
            smart_host = f"relay:[{site.smarthost.host}]"
            credentials = smarthost_login(loaded)
            if credentials:
                user, password = credentials
                if '"' in user:
                    where = Location(str(loaded.path.parent / (site.smarthost.credentials_file or "")), 1, 1)
                    raise MailconfError([Problem(where, 'the smarthost user name contains `"`')])
                secret = base64.b64encode(password.encode()).decode()
                entry = f'"U:{user}" "P={secret}" "M:PLAIN LOGIN"'
                authinfo = table(
                    "authinfo",
                    "Smarthost login (secret; P= is base64).",
                    [(f"AuthInfo:{site.smarthost.host}", entry)],
                    mode=0o600,
                )

        lda_config = f"-c {p(DOVECOT_CONF)} " if target.root else ""
        mc = render_template(
            "sendmail/sendmail.mc.j2",
            m4=self._m4(target),
            host=site.host.name,
            sandbox=bool(target.root),
            cw_file=cw_file,
            cr_file=cr_file,
            alias_file=alias_file,
            queue_dir=p(QUEUE_DIR),
            pid_file=p(PID_FILE),
            access=access,
            virtusertable=virtusertable,
            mailertable=mailertable,
            authinfo=authinfo,
            smart_host=smart_host,
            smarthost_port=site.smarthost.port if site.smarthost else 0,
            message_size_limit=site.message_size_limit,
            daemons=self._daemons(loaded),
            tls=site.tls.enabled,
            tls_cert=p(site.tls.cert or ""),
            tls_key=p(site.tls.key or ""),
            lda=DOVECOT_LDA,
            lda_args=f"{DOVECOT_LDA} {lda_config}-d $u",  # argv[0] absolute: the LDA re-executes itself
            vmailbox=vmailbox,
            virtual_uid=site.mailbox.virtual_uid,
            virtual_gid=site.mailbox.virtual_gid,
            overrides=self._overrides(loaded),
        )
        built = {
            "build": self._m4(target),
            "products": (f"{ETC}/sendmail.cf",),
            "pipe": f"m4 {CF_DIR}/m4/cf.m4 -",
            "pipe_check": "sendmail -C {} -bt < /dev/null",  # reads the whole .cf: exit 70 on an error in it
        }
        out.files.insert(0, RenderedFile(f"{ETC}/sendmail.mc", mc, comment="dnl", **built))
        # Logins (AUTH) go through Cyrus SASL to saslauthd, which checks them against Dovecot's IMAP (rimap), so
        # unix and virtual users log in with the passwords Dovecot knows. Debian links /usr/lib/sasl2/Sendmail.conf
        # to this file. saslauthd asks Dovecot on an address Dovecot listens on (loopback unless the site lists
        # listen addresses without it); `-r` passes user@domain whole, as Dovecot's virtual users log in.
        mux_dir = p(SASLAUTHD_DIR)
        sasl_conf = render_template("sendmail/sasl.conf.j2", mux=f"{mux_dir}/mux")
        out.files.append(RenderedFile(f"{ETC}/sasl/Sendmail.conf.2", sasl_conf))
        imap = site.host.ports.imap or 143
        ipv4 = [a for a in site.host.listen if ":" not in a]
        imap_host = "127.0.0.1" if not ipv4 or "127.0.0.1" in ipv4 else ipv4[0]
        saslauthd = f"saslauthd -a rimap -r -m {mux_dir} -O {imap_host}{'' if imap == 143 else f'/{imap}'}"

        out.directories += [
            Directory(ETC),
            Directory(QUEUE_DIR, mode=0o700),
            Directory(PID_FILE.rpartition("/")[0], group="smmsp", mode=0o755),  # root: Sendmail refuses others
            Directory(SASLAUTHD_DIR, group="sasl", mode=0o710),  # as Debian's saslauthd makes it
            *mail_store_directories(site),
        ]
        logins = site.host.ports.submission or site.host.ports.smtps
        check = f"sendmail {config}-bv postmaster"
        daemon = f"/usr/sbin/sendmail {config}-bd -q15m"  # a full path: SIGHUP restarts by exec(argv)
        out.commands = {
            "build": [self._m4(target)] + [f.build for f in out.files[1:] if f.build],
            "check": [check],
            "start": [saslauthd, daemon] if logins else [daemon],
            **pid_file_commands("sendmail", p(PID_FILE)),
        }
        if logins:  # saslauthd was started with it
            out.commands["stop"].append(f"kill $(cat {mux_dir}/saslauthd.pid)")
        return out

    @staticmethod
    def _m4(target: Target) -> str:
        mc, cf = target.path(f"{ETC}/sendmail.mc"), target.path(f"{ETC}/sendmail.cf")
        return f"m4 {CF_DIR}/m4/cf.m4 {mc} > {cf}"

    @staticmethod
    def _daemons(loaded: LoadedSite) -> list[str]:
        """DAEMON_OPTIONS arguments: every enabled SMTP service on every listen address.

        Without listen addresses: one socket on all addresses. A host with IPv6 gets `::`, which on Linux also
        takes IPv4 (Sendmail then sees the plain IPv4 client address, so the access map still matches); a
        second 0.0.0.0 socket beside it would fail to bind."""
        host = loaded.site.host
        listens = host.listen or ["::" if host.ipv6 else "0.0.0.0"]
        daemons = []
        for service, (name, modifiers) in SERVICES.items():
            port = getattr(host.ports, service)
            if port is None:
                continue
            for i, address in enumerate(listens):
                family = "inet6" if ":" in address else "inet"
                options = [f"Family={family}", f"Addr={address}", f"Port={port}", f"Name={name}{i or ''}"]
                if modifiers:
                    options.append(f"M={modifiers}")
                daemons.append(", ".join(options))
        return daemons

    @staticmethod
    def _access(loaded: LoadedSite) -> list[tuple[str, str]]:
        """Connect: keys for the trusted networks. Sendmail matches whole octets (IPv4) or groups (IPv6), so a
        network whose prefix falls inside an octet or group is listed as the subnets it is made of."""
        entries = []
        for text in loaded.site.trusted_networks:
            network = ipaddress.ip_network(text, strict=False)
            step = 8 if network.version == 4 else 16
            prefix = -(-network.prefixlen // step) * step
            if 2 ** (prefix - network.prefixlen) > MAX_CONNECT_KEYS:
                raise RenderRefused(
                    [
                        Problem(
                            loaded.located.locate(("trusted_networks",)),
                            f"trusted network {text} needs more than {MAX_CONNECT_KEYS} sendmail access entries",
                            "split it into narrower networks (whole octets: /8, /16, /24)",
                        )
                    ]
                )
            for subnet in network.subnets(new_prefix=prefix):
                entries.append((f"Connect:{_connect_key(subnet, step)}", "RELAY"))
        return entries

    @staticmethod
    def _aliases(loaded: LoadedSite) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The aliases file, and virtusertable entries: address aliases (lists through a helper alias, since a
        virtusertable value is one address), catch-alls with the existing addresses shielded, and an error for
        unknown addresses in virtual domains."""
        site = loaded.site
        aliases = [(name, ", ".join(targets)) for name, targets in system_aliases(site).items()]
        virtuser: list[tuple[str, str]] = []
        taken_names = {name for name, _ in aliases} | {u.name for u in site.local_users}
        helpers = (f"virtual-alias-{n}" for n in itertools.count(1) if f"virtual-alias-{n}" not in taken_names)
        for address, targets in address_aliases(site).items():
            if len(targets) == 1:
                virtuser.append((address, targets[0]))
            else:
                helper = next(helpers)
                aliases.append((helper, ", ".join(targets)))
                virtuser.append((address, helper))
        taken = {address for address, _ in virtuser}
        existing = addresses_by_domain(site)
        catch_all = catch_alls(site)
        for domain in site.local_domains:
            if domain in catch_all:
                virtuser += [(a, a.partition("@")[0]) for a in existing[domain] if a not in taken]
        for domain, target in catch_all.items():
            virtuser.append((f"@{domain}", target))
        for domain in site.virtual_domains:
            if domain not in catch_all:
                virtuser.append((f"@{domain}", "error:5.1.1:550 User unknown"))
        return aliases, virtuser

    @staticmethod
    def _overrides(loaded: LoadedSite) -> list[str]:
        lines = loaded.site.overrides.sendmail
        for i, line in enumerate(lines):
            bad = [word for word in FORBIDDEN if re.search(rf"\b{word}\b", line)]
            if bad:
                raise MailconfError(
                    [
                        Problem(
                            loaded.located.locate(("overrides", "sendmail", i)),
                            f"{bad[0]} would weaken relay or login protection",
                            "mailconf sets relaying and AUTH options itself; drop this line",
                        )
                    ]
                )
        return lines


def _connect_key(network: ipaddress.IPv4Network | ipaddress.IPv6Network, step: int) -> str:
    """The access-map key of a network whose prefix is a whole number of octets or groups (Sendmail's form:
    dotted octets; IPv6 uncompressed groups without leading zeros, prefixed by IPv6:)."""
    count = network.prefixlen // step
    if network.version == 4:
        return ".".join(str(network.network_address).split(".")[:count])
    groups = [format(int(g, 16), "x") for g in network.network_address.exploded.split(":")][:count]
    return "IPv6:" + ":".join(groups)
