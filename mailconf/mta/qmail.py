"""qmail (1.03 / netqmail): control files, .qmail delivery files, users/assign and the tcpserver relay rules.

How the site maps onto qmail:
- local domains go into control/locals: joe@ each of them is the unix account joe (qmail-getpw), and a
  bare alias NAME is ~alias/.qmail-NAME. A local domain that needs per-address rules (an alias of a full
  address, or a catch-all) cannot stay in locals, where qmail ignores the domain part: it is mapped through
  control/virtualdomains to the alias user instead, with one .qmail file per address that exists there.
- virtual domains are mapped through virtualdomains to a wildcard entry in users/assign that delivers, with
  the site's virtual uid/gid, into Maildirs under mailbox.virtual_root: where Dovecot reads them.
- control/rcpthosts always lists every domain we accept mail for (it must exist: without it qmail-smtpd
  relays for anyone), and RELAYCLIENT comes from /etc/tcp.smtp for the trusted networks only.
"""

from __future__ import annotations

import ipaddress
import shlex
import sys
from dataclasses import dataclass
from typing import ClassVar

from mailconf.errors import Location, Problem, RenderRefused
from mailconf.mta.common import svstat_up
from mailconf.render import HEADER, Directory, RenderedFile, Rendering, Target, render_template
from mailconf.site import LoadedSite
from mailconf.site.model import Site
from mailconf.site.views import address_aliases, addresses_by_domain, catch_alls, mailbox_path, system_aliases

QMAIL = "/var/qmail"
CONTROL = f"{QMAIL}/control"
ALIAS_HOME = f"{QMAIL}/alias"
ASSIGN = f"{QMAIL}/users/assign"
USERS_CDB = f"{QMAIL}/users/cdb"
SUPERVISE = f"{QMAIL}/supervise"
SEND_SERVICE = f"{SUPERVISE}/qmail-send"  # daemontools service directories (run scripts inside)
SMTPD_SERVICE = f"{SUPERVISE}/qmail-smtpd"  # one per listening address: qmail-smtpd-ADDRESS when several
TCP_SMTP = "/etc/tcp.smtp"
TCP_CDB = "/etc/tcp.smtp.cdb"
VIRTUAL_ACCOUNT = "vmail"  # the name qmail-local reports for virtual deliveries; uid/gid come from the site
SMTPD_CONCURRENCY = 40

# What stock qmail cannot do. Submission is on by default in the site model, so refusing it would make qmail
# unusable with defaults: qmail is rendered without it, and the rendered tree's README.mailconf says so.
LIMITATIONS: dict[str, str] = {
    "submission and smtps with login": "qmail-smtpd has no SMTP AUTH, so no submission (587) or smtps (465) service is "
    "rendered; users outside the trusted networks need another MTA (or an AUTH-patched qmail) to send",
    "STARTTLS on port 25": "qmail-smtpd has no TLS: port 25 runs without STARTTLS (tls.cert/key serve Dovecot only)",
}


@dataclass(frozen=True)
class DotQmail:
    """One .qmail file: `home`/.qmail-`ext`, delivering mail for `address`."""

    home: str
    ext: str
    address: str
    lines: tuple[str, ...]

    @property
    def path(self) -> str:
        return f"{self.home}/{dot_qmail_name(self.ext)}"


class Qmail:
    name: ClassVar[str] = "qmail"
    role: ClassVar[str] = "mta"
    limitations: ClassVar[dict[str, str]] = LIMITATIONS
    refusals: ClassVar[dict[str, str]] = {
        "trusted networks (IPv6)": "refused: tcpserver (ucspi-tcp 0.88) has no IPv6 (::1 is skipped)",
        "IPv6 listen addresses": "refused: tcpserver (ucspi-tcp 0.88) has no IPv6",
        "smarthost login": "refused: qmail-remote has no SMTP AUTH",
    }
    mbox_inbox: ClassVar[str] = "~/Mailbox"  # where defaultdelivery ./Mailbox puts local mbox mail

    def render(self, loaded: LoadedSite, target: Target, mta: object = None) -> Rendering:
        site = loaded.site
        p = target.path
        _refuse_what_qmail_cannot_express(loaded)
        out = Rendering()

        mapped = _mapped_local_domains(site)
        virtual_lines = [f"{d}:{_alias_prefix(d)}" for d in mapped]
        virtual_lines += [f"{d}:{_virtual_prefix(d)}" for d in site.virtual_domains]

        def control(name: str, value: str | int) -> None:
            out.files.append(
                RenderedFile(f"{CONTROL}/{name}", render_template("qmail/control-value.j2", value=value), comment=None)
            )

        def control_list(name: str, purpose: str, lines: list[str]) -> None:
            body = render_template("qmail/control-list.j2", purpose=purpose, lines=lines)
            out.files.append(RenderedFile(f"{CONTROL}/{name}", body))

        host = site.host.name
        control("me", host)
        control("defaultdomain", host.partition(".")[2])
        control("plusdomain", host.partition(".")[2])
        control_list(
            "locals",
            "Domains delivered to unix accounts and ~alias (qmail-send); joe@ each of them is the account joe.",
            _unique([host, *(d for d in site.local_domains if d not in mapped)]),
        )
        control_list(
            "rcpthosts",
            "Every domain qmail-smtpd accepts mail for from anyone. It must exist: without it, qmail relays for all.",
            rcpthosts(site),
        )
        if virtual_lines:
            control_list(
                "virtualdomains", "Domains whose addresses are delivered one by one (qmail-send).", virtual_lines
            )
        if site.smarthost:
            # Backup-MX domains go to their own MX (empty relay), everything else to the smarthost.
            routes = [f"{d}:" for d in site.relay_domains] + [f":{site.smarthost.host}:{site.smarthost.port}"]
            control_list("smtproutes", "Outbound routes (qmail-remote): domain:relay:port.", routes)
        control("databytes", site.message_size_limit)
        defaultdelivery = f"./{site.mailbox.maildir}/" if site.mailbox.format == "maildir" else "./Mailbox"
        control("defaultdelivery", defaultdelivery)

        deliveries = self._deliveries(site, target, mapped)
        _refuse_colliding_files(deliveries)
        for d in deliveries:
            body = render_template("qmail/dot-qmail.j2", address=d.address, lines=d.lines) if d.lines else ""
            out.files.append(RenderedFile(d.path, body, comment="#" if d.lines else None))

        assign = _assignments(site, target)
        newu = f"{QMAIL}/bin/qmail-newu"
        if assign:
            body = render_template("qmail/assign.j2", lines=assign)
            # qmail-newu has compiled-in paths: mailconf's own (mailconf/mta/qmail_users.py) builds any root's cdb.
            newu_pipe = f"{shlex.quote(sys.executable)} -P -m mailconf.mta.qmail_users"  # -P: never from the cwd
            out.files.append(
                RenderedFile(ASSIGN, body, comment=None, build=newu, products=(USERS_CDB,), pipe=newu_pipe)
            )

        build_rules = f"tcprules {p(TCP_CDB)} {p(TCP_SMTP)}.tmp < {p(TCP_SMTP)}"
        rules = [(tcprules_prefix(n), n) for n in site.trusted_networks if _v4(n)]
        out.files.append(
            RenderedFile(
                TCP_SMTP,
                render_template("qmail/tcp.smtp.j2", rules=rules, build=build_rules),
                build=build_rules,
                products=(TCP_CDB,),
            )
        )
        services = self._services(site, target, out, defaultdelivery=p(f"{CONTROL}/defaultdelivery"))
        out.files.append(
            RenderedFile(
                f"{QMAIL}/README.mailconf",
                render_template(
                    "qmail/README.mailconf.j2",
                    trusted=[n for n in site.trusted_networks if _v4(n)],
                    tcprules=build_rules,
                    limitations=sorted(LIMITATIONS.items()),
                    steps=_steps(site, assign=bool(assign), build_rules=build_rules, newu=newu),
                ),
            )
        )
        out.directories += self._directories(site, services)
        check = f"mailconf check-qmail{f' --root {target.root}' if target.root else ''}"
        out.commands = {
            "build": [f.build for f in out.files if f.build],
            "check": [check],
            "start": [f"svc -u {' '.join(p(s) for s in services)}"],
            # qmail-send rereads only locals and virtualdomains on HUP; a restart rereads everything (me, rc, ...)
            "reload": [f"svc -t {' '.join(p(s) for s in services)}"],
            "status": [svstat_up(p(s)) for s in services],
            "stop": [f"svc -d {' '.join(p(s) for s in services)}"],
        }
        out.services = services
        return out

    @staticmethod
    def _deliveries(site: Site, target: Target, mapped: list[str]) -> list[DotQmail]:
        """Every .qmail file: ~alias for bare aliases and mapped local domains, domain homes for virtual ones."""
        host = site.host.name

        def forward(target_: str) -> str:
            # dot-qmail(5): a forward needs a fully qualified address; bare names are ours, at the host name.
            return f"&{target_}" if "@" in target_ else f"&{target_}@{host}"

        files: list[DotQmail] = []
        aliases = system_aliases(site)
        for name, targets in aliases.items():
            files.append(DotQmail(ALIAS_HOME, name, f"{name}@{host}", tuple(forward(t) for t in targets)))
        if "root" not in aliases:
            # qmail never delivers to uid 0: an empty ~alias/.qmail-root sends root's mail to ~alias's mailbox.
            files.append(DotQmail(ALIAS_HOME, "root", f"root@{host}", ()))

        by_address = address_aliases(site)
        existing = addresses_by_domain(site)
        catch_all = catch_alls(site)
        for domain in mapped:
            tag = _tag(domain)
            for address in existing[domain]:
                local = address.rpartition("@")[0]
                lines = by_address.get(address, [local])
                files.append(DotQmail(ALIAS_HOME, f"{tag}-{local}", address, tuple(forward(t) for t in lines)))
            if domain in catch_all:
                files.append(DotQmail(ALIAS_HOME, f"{tag}-default", f"@{domain}", (forward(catch_all[domain]),)))

        mailboxes = {u.address for u in site.virtual_users if u.address}
        for domain in site.virtual_domains:
            home = f"{site.mailbox.virtual_root}/{domain}"
            for address in existing[domain]:
                local = address.rpartition("@")[0]
                if address in mailboxes:
                    maildir = f"{target.path(site.mailbox.virtual_root)}/{mailbox_path(site, address)}/"
                    files.append(DotQmail(home, local, address, (maildir,)))
                else:
                    files.append(DotQmail(home, local, address, tuple(forward(t) for t in by_address[address])))
            if domain in catch_all:
                files.append(DotQmail(home, "default", f"@{domain}", (forward(catch_all[domain]),)))
        return files

    @staticmethod
    def _services(site: Site, target: Target, out: Rendering, defaultdelivery: str) -> list[str]:
        """daemontools service directories: qmail-send, and one qmail-smtpd per listening address."""
        p = target.path
        generated = HEADER.format(site=target.site_name).strip()

        def script(path: str, template: str, **context: object) -> None:
            # The shebang must come first, so the template carries the generated line instead of a header.
            body = render_template(template, generated=generated, **context)
            out.files.append(RenderedFile(path, body, mode=0o755, comment=None))

        script(f"{QMAIL}/rc", "qmail/rc.j2", defaultdelivery=defaultdelivery)
        script(f"{SEND_SERVICE}/run", "qmail/run-send.j2", rc=p(f"{QMAIL}/rc"))
        services = [SEND_SERVICE]
        port = site.host.ports.smtp
        addresses = _listen_addresses(site)
        if port is None:
            return services
        for address in addresses:
            service = SMTPD_SERVICE + (f"-{address}" if len(addresses) > 1 else "")
            script(
                f"{service}/run",
                "qmail/run-smtpd.j2",
                address=address,
                port=port,
                host=site.host.name,
                rules=p(TCP_CDB),
                concurrency=SMTPD_CONCURRENCY,
            )
            services.append(service)
        return services

    @staticmethod
    def _directories(site: Site, services: list[str]) -> list[Directory]:
        dirs = [Directory(CONTROL), Directory(f"{QMAIL}/users"), Directory(SUPERVISE)]
        dirs += [Directory(s) for s in services]
        # ~alias must not be writable by others (qmail-local defers) and holds root's and postmaster's mail.
        dirs.append(Directory(ALIAS_HOME, owner="alias", group="qmail", mode=0o2755))
        if site.mailbox.format == "maildir":
            dirs += _maildir(f"{ALIAS_HOME}/{site.mailbox.maildir}", "alias", "qmail")
        if site.virtual_domains:
            uid, gid = str(site.mailbox.virtual_uid), str(site.mailbox.virtual_gid)
            dirs.append(Directory(site.mailbox.virtual_root, owner=uid, group=gid, mode=0o770))
            for domain in site.virtual_domains:
                dirs.append(Directory(f"{site.mailbox.virtual_root}/{domain}", owner=uid, group=gid, mode=0o750))
            for user in site.virtual_users:
                if user.address:
                    dirs += _maildir(f"{site.mailbox.virtual_root}/{mailbox_path(site, user.address)}", uid, gid)
        return dirs


def rcpthosts(site: Site) -> list[str]:
    """Every domain we accept mail for: the host name, local, virtual and relay (backup MX) domains."""
    return _unique([site.host.name, *site.local_domains, *site.virtual_domains, *site.relay_domains])


def tcprules_prefix(network: str) -> str:
    """An IPv4 network as the address prefix tcprules(1) matches: 127.0.0.0/8 -> `127.`, 192.168.10.64/26 ->
    `192.168.10.64-127`, 172.16.0.0/12 -> `172.16-31.` (tcprules expands a range in any octet)."""
    net = ipaddress.IPv4Network(network, strict=False)
    octets = str(net.network_address).split(".")
    whole, bits = divmod(net.prefixlen, 8)
    if bits:
        first = int(octets[whole])
        octets = [*octets[:whole], f"{first}-{first + 2 ** (8 - bits) - 1}"]
        whole += 1
    else:
        octets = octets[:whole]
    return ".".join(octets) + ("" if whole == 4 else ".")


def dot_qmail_name(ext: str) -> str:
    """dot-qmail(5): qmail-local lower-cases the extension and turns its dots into colons."""
    return f".qmail-{ext.lower().replace('.', ':')}"


def _mapped_local_domains(site: Site) -> list[str]:
    """Local domains with per-address rules (a full-address alias or a catch-all), which locals cannot hold."""
    special = {name.rpartition("@")[2] for name in site.aliases if "@" in name} | set(catch_alls(site))
    return [d for d in site.local_domains if d in special]


def _tag(domain: str) -> str:
    """A domain inside an address prefix: its hyphens become underscores, so the dash that follows is the only one
    and no two domains' prefixes overlap (qmail splits local parts at dashes)."""
    return domain.replace("-", "_")


def _alias_prefix(domain: str) -> str:
    return f"alias-{_tag(domain)}"  # qmail-getpw: no account alias-..., so ~alias/.qmail-TAG-LOCAL


def _virtual_prefix(domain: str) -> str:
    return f"{VIRTUAL_ACCOUNT}-{_tag(domain)}"


def _assignments(site: Site, target: Target) -> list[str]:
    """qmail-users(5) wildcards: mail for PREFIX-LOCAL is delivered by the virtual uid/gid as HOME/.qmail-LOCAL."""
    uid, gid = site.mailbox.virtual_uid, site.mailbox.virtual_gid
    return [
        f"+{_virtual_prefix(d)}-:{VIRTUAL_ACCOUNT}:{uid}:{gid}:{target.path(f'{site.mailbox.virtual_root}/{d}')}:-::"
        for d in site.virtual_domains
    ]


def _maildir(path: str, owner: str, group: str) -> list[Directory]:
    subs = ("", "/new", "/cur", "/tmp")
    return [Directory(f"{path}{sub}", owner=owner, group=group, mode=0o700, mailbox=True) for sub in subs]


def _steps(site: Site, assign: bool, build_rules: str, newu: str) -> list[str]:
    steps = [
        "create qmail's accounts (alias, qmaild, qmaill, qmailp, qmailq, qmailr, qmails) as qmail's INSTALL says",
        f"build the relay rules: {build_rules}",
    ]
    if assign:
        steps.append(f"build users/cdb from users/assign: {newu}")
    if site.mailbox.format == "maildir":
        steps.append(f"qmail does not create Maildirs: run `maildirmake ~/{site.mailbox.maildir}` as each local user")
    else:
        steps.append("local mbox mail goes to ~/Mailbox (qmail's ./Mailbox): point Dovecot's INBOX there")
    steps.append(f"link {SUPERVISE}/* into /etc/service (daemontools, runit) to start qmail-send and qmail-smtpd")
    return steps


def _listen_addresses(site: Site) -> list[str]:
    """tcpserver's addresses: 0 is every IPv4 address; ::1 becomes 127.0.0.1 (the same loopback clients)."""
    if not site.host.listen:
        return ["0"]
    addresses = [a if a != "::1" else "127.0.0.1" for a in site.host.listen]
    return _unique(addresses)


def _v4(network: str) -> bool:
    return ipaddress.ip_network(network, strict=False).version == 4


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _refuse(loaded: LoadedSite, where: tuple, feature: str, why: str, hint: str) -> RenderRefused:
    return RenderRefused([Problem(loaded.located.locate(where), f"qmail cannot express {feature}: {why}", hint)])


def _refuse_what_qmail_cannot_express(loaded: LoadedSite) -> None:
    site = loaded.site
    for network in site.trusted_networks:
        # tcpserver (ucspi-tcp 0.88) listens on IPv4 only. ::1 can simply be skipped: no IPv6 client can
        # connect at all, and local programs reach qmail through 127.0.0.1 or qmail-inject. Any other IPv6
        # network is refused, so the admin knows those clients cannot relay through qmail.
        if not _v4(network) and network != "::1/128":
            raise _refuse(
                loaded,
                ("trusted_networks",),
                f"the IPv6 trusted network {network}",
                "tcpserver (ucspi-tcp 0.88) has no IPv6",
                "drop it, or choose postfix, exim or sendmail",
            )
    for i, address in enumerate(site.host.listen):
        if ipaddress.ip_address(address).version != 4 and address != "::1":
            raise _refuse(
                loaded,
                ("host", "listen", i),
                f"listening on the IPv6 address {address}",
                "tcpserver (ucspi-tcp 0.88) has no IPv6",
                "listen on IPv4 addresses only with qmail",
            )
    if site.smarthost and site.smarthost.credentials_file:
        raise _refuse(
            loaded,
            ("smarthost", "credentials_file"),
            "a smarthost login (SMTP AUTH to the smarthost)",
            "qmail-remote has no SMTP AUTH",
            "use a smarthost that accepts this host by address, or another MTA",
        )
    names = {*system_aliases(site), *(a.rpartition("@")[0] for a in address_aliases(site))}
    names |= {u.address.rpartition("@")[0] for u in site.virtual_users if u.address}
    names |= {u.name for u in site.local_users if u.name}
    for name in sorted(names):
        if name == "default" or name.endswith("-default"):
            raise _refuse(
                loaded,
                ("aliases", name) if name in site.aliases else ("users",),
                f"the address name {name!r}",
                "qmail reads .qmail-default files as catch-alls, so this name would catch other addresses' mail",
                "rename it",
            )
    mapped = _mapped_local_domains(site)
    if site.host.name in mapped:
        raise _refuse(
            loaded,
            ("domains",),
            f"full-address aliases or a catch-all in {site.host.name}",
            "it is also the host name, which must stay in control/locals (bare names are delivered there)",
            "use a host name of its own (e.g. mail.DOMAIN), or alias the bare local part",
        )


def _refuse_colliding_files(deliveries: list[DotQmail]) -> None:
    seen: dict[str, str] = {}
    for d in deliveries:
        if d.path in seen and seen[d.path] != d.address:
            raise RenderRefused(
                [
                    Problem(
                        Location(d.path),
                        f"qmail cannot tell {seen[d.path]} from {d.address}: both need {d.path}",
                        "rename one of them",
                    )
                ]
            )
        seen[d.path] = d.address
