"""The site description: pydantic models with safe defaults. Unknown keys are rejected everywhere."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from mailconf.site.types import (
    CONTROL_CHARACTER,
    AbsPath,
    Address,
    Domain,
    Fqdn,
    IPAddress,
    Network,
    PasswordHash,
    UnixName,
    check_address,
    check_folder,
    check_local_part,
    check_unix_name,
)

LOOPBACK = ["127.0.0.0/8", "::1/128"]
# Trusted (relaying) networks: private ranges may be any size; public ones at most this wide.
PRIVATE_RANGES = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")]
LOOPBACK_RANGES = [ipaddress.ip_network(n) for n in LOOPBACK]
MAX_PUBLIC_PREFIX = {4: 24, 6: 48}
# IPv6 ranges whose last 32 bits are an IPv4 address: judged as that IPv4 network, never by the /48 rule.
# 6to4 (2002::/16) is not here: a 6to4 /48 is one IPv4 host's own IPv6 site, its clients are IPv6 ones.
IPV4_EMBEDDINGS = {  # the range, its name, how its addresses are written with the IPv4 part dotted
    ipaddress.IPv6Network("::ffff:0:0/96"): ("IPv4-mapped", "::ffff:"),
    ipaddress.IPv6Network("64:ff9b::/96"): ("NAT64 (RFC 6052 well-known prefix)", "64:ff9b::"),
    ipaddress.IPv6Network("::/96"): ("IPv4-compatible (deprecated)", "::"),
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


def _off_is_none(value: object) -> object:
    return None if value is False else value


Port = Annotated[Annotated[int, Field(ge=1, le=65535)] | None, BeforeValidator(_off_is_none)]


def _size(value: object) -> object:
    """Accept 52428800, "50M", "512K", "1G"."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)B?\s*", value, re.IGNORECASE)
        if not match:
            raise ValueError(f"{value!r} is not a size: write bytes (10240000) or 50M, 512K, 1G")
        return int(match[1]) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[match[2].upper()]
    return value


class Ports(Strict):
    """Listening ports; `false` turns a service off."""

    smtp: Port = 25
    submission: Port = 587
    smtps: Port = 465
    pop3: Port = 110
    pop3s: Port = 995
    imap: Port = 143
    imaps: Port = 993

    @model_validator(mode="after")
    def _distinct(self) -> Ports:
        used = [p for p in self.model_dump().values() if p is not None]
        if len(used) != len(set(used)):
            raise ValueError("two services share one port: give each its own")
        return self


class Host(Strict):
    name: Fqdn = Field(description="Fully qualified host name: myhostname, SMTP greeting and HELO name.")
    ipv4: IPAddress | None = Field(None, description="Public IPv4 address (for DNS records).")
    ipv6: IPAddress | None = Field(None, description="Public IPv6 address (for DNS records).")
    listen: list[IPAddress] = Field(default_factory=list, description="Addresses to listen on; empty: all.")
    ports: Ports = Field(default_factory=Ports)

    @field_validator("ipv4")
    @classmethod
    def _v4(cls, value: str | None) -> str | None:
        if value is not None and ipaddress.ip_address(value).version != 4:
            raise ValueError(f"{value} is not an IPv4 address")
        return value

    @field_validator("ipv6")
    @classmethod
    def _v6(cls, value: str | None) -> str | None:
        if value is not None and ipaddress.ip_address(value).version != 6:
            raise ValueError(f"{value} is not an IPv6 address")
        return value


def _name_to_mapping(key: str):
    def convert(value: object) -> object:
        return {key: value} if isinstance(value, str) else value

    return convert


class MailDomain(Strict):
    """`local`: unix accounts, joe gets mail as joe@ every local domain. `virtual`: mailboxes of their own."""

    name: Domain
    type: Literal["local", "virtual"] = "local"
    catch_all: str | None = Field(None, description="Where mail for unknown addresses in this domain goes.")

    @field_validator("catch_all")
    @classmethod
    def _target(cls, value: str | None) -> str | None:
        return None if value is None else check_target(value)


class User(Strict):
    """A local user (`name`: a unix account) or a virtual one (`address` + `password_hash`)."""

    name: UnixName | None = None
    address: Address | None = None
    password_hash: PasswordHash | None = Field(
        None, description="Virtual users: a crypt hash Dovecot knows, e.g. from `doveadm pw -s SHA512-CRYPT`."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> User:
        if (self.name is None) == (self.address is None):
            raise ValueError("a user has either `name` (a unix account) or `address` (a virtual mailbox)")
        if self.address and not self.password_hash:
            raise ValueError("a virtual user needs `password_hash` (make one with `doveadm pw -s SHA512-CRYPT`)")
        if self.name and self.password_hash:
            raise ValueError("a local user logs in with the unix account's password: drop `password_hash`")
        return self

    @property
    def key(self) -> str:
        return self.address or self.name or ""


def check_target(value: str) -> str:
    """An alias target: a local user or alias name, or an e-mail address."""
    value = str(value)
    return check_address(value) if "@" in value else check_unix_name(value)


def check_alias_name(value: str) -> str:
    """A local part (applies to every local domain) or a full address."""
    value = str(value)
    return check_address(value) if "@" in value else check_local_part(value)


AliasName = Annotated[str, BeforeValidator(str), BeforeValidator(check_alias_name)]
Target = Annotated[str, BeforeValidator(check_target)]


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


Targets = Annotated[list[Target], BeforeValidator(_one_or_many), Field(min_length=1)]


class Smarthost(Strict):
    host: Domain = Field(description="Relay host for all outbound mail.")
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    credentials_file: str | None = Field(
        None,
        description="File holding `username:password` (mode 0600), relative to the site file. Never inline.",
    )


class Mailbox(Strict):
    format: Literal["maildir", "mbox"] = "maildir"
    spool: AbsPath = Field("/var/mail", description="mbox spool of local users (/var/mail/USER).")
    maildir: Annotated[str, AfterValidator(check_folder)] = Field(
        "Maildir", description="Maildir folder inside a local user's home."
    )
    virtual_root: AbsPath = Field("/var/mail/vhosts", description="Virtual mailboxes: ROOT/DOMAIN/USER.")
    virtual_uid: Annotated[int, Field(ge=100, le=2**31)] = 5000
    virtual_gid: Annotated[int, Field(ge=100, le=2**31)] = 5000


class Tls(Strict):
    enabled: bool = True
    cert: AbsPath | None = Field(None, description="Default: /etc/letsencrypt/live/HOST/fullchain.pem")
    key: AbsPath | None = Field(None, description="Default: /etc/letsencrypt/live/HOST/privkey.pem")


class PopImap(Strict):
    protocols: list[Literal["imap", "pop3"]] = Field(default_factory=lambda: ["imap", "pop3"])
    mode: Literal["standalone", "inetd", "xinetd"] = Field(
        "standalone", description="standalone: Dovecot listens itself; inetd/xinetd: the super-server does."
    )


def _setting_value(value: object) -> object:
    """One line of a native config: YAML's yes/no and numbers are written as the programs spell them."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and CONTROL_CHARACTER.search(value):
        raise ValueError("a native setting is one line without control characters")
    return value


def _setting_name(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
        raise ValueError(f"{value!r} is not a plain parameter name (lower-case letters, digits and _)")
    return value


SettingName = Annotated[str, AfterValidator(_setting_name)]
SettingValue = Annotated[str, BeforeValidator(_setting_value), AfterValidator(str.strip)]
RELAY_GUARDS = {"reject_unauth_destination", "defer_unauth_destination", "reject"}


def _restrictions(value: str, parameters: dict[str, str], depth: int = 0) -> list[str]:
    """A restriction list with `$name` references and restriction classes defined in `parameters` expanded."""
    items = []
    for item in (item for item in re.split(r"[\s,]+", value) if item):
        reference = re.fullmatch(r"\$?(?:\{([a-z0-9_]+)\}|\(([a-z0-9_]+)\)|([a-z0-9_]+))", item)
        name = reference and next(group for group in reference.groups() if group)
        if name in parameters and depth < 10:
            items += _restrictions(parameters[name], parameters, depth + 1)
        else:
            items.append(item)
    return items


def check_postfix_relay_setting(name: str, value: str, parameters: dict[str, str] | None = None) -> None:
    """An override must not open a relay silently: the relay restrictions keep a guard, mynetworks stays narrow.
    `parameters`: the other main.cf overrides, which a `$name` or a restriction class in the value may name."""
    items = [item for item in re.split(r"[\s,]+", value) if item]
    if name == "smtpd_relay_restrictions":
        items = _restrictions(value, parameters or {})
        guard = next((i for i, item in enumerate(items) if item in RELAY_GUARDS), None)
        if guard is None or "permit" in items[:guard]:
            raise ValueError(
                f"smtpd_relay_restrictions = {value!r} would let anyone relay: end it with "
                "reject_unauth_destination (and put no bare `permit` before it)"
            )
    elif name in ("mynetworks", "smtpd_authorized_xclient_hosts"):  # an XCLIENT host may claim to be trusted
        for item in items:
            check_trusted_network(item.strip("[]").replace("]/", "/"))
    elif name == "mynetworks_style" and value != "host":
        raise ValueError("mynetworks_style other than `host` trusts whole networks: list trusted_networks instead")


class PostfixOverrides(Strict):
    main: dict[SettingName, SettingValue] = Field(
        default_factory=dict, description="main.cf parameters, written last so they win."
    )
    master: list[SettingValue] = Field(default_factory=list, description="Extra master.cf lines (services, -o ...).")

    @model_validator(mode="after")
    def _keeps_relay_guard(self) -> PostfixOverrides:
        for name, value in self.main.items():
            check_postfix_relay_setting(name, value, self.main)
        for line in self.master:
            for match in _MASTER_OPTION.finditer(line):
                name, value = (match[1], match[2]) if match[1] else (match[3], match[4])
                check_postfix_relay_setting(name, value, self.main)
        return self


# A master.cf `-o name=value`, or Postfix 3's `-o { name = value with spaces }`.
_MASTER_OPTION = re.compile(r"-o\s*(?:\{\s*([a-z_0-9]+)\s*=\s*([^}]*?)\s*\}|([a-z_0-9]+)=(\S*))")


class Overrides(Strict):
    """Raw native settings per program, validated and placed where the program reads them."""

    postfix: PostfixOverrides = Field(default_factory=PostfixOverrides)
    dovecot: dict[SettingName, SettingValue] = Field(default_factory=dict, description="dovecot.conf settings.")
    exim: dict[SettingName, SettingValue] = Field(default_factory=dict, description="Exim main-section options.")
    sendmail: list[SettingValue] = Field(default_factory=list, description="Extra sendmail.mc lines.")


def check_remote_user(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._%+=@-]{1,128}", value):
        raise ValueError(f"{value!r} is not a plain login name (letters, digits and . _ % + = @ -)")
    return value


class FetchmailMailbox(Strict):
    """A remote mailbox fetchmail collects and hands to the local MTA over SMTP."""

    server: Domain
    protocol: Literal["pop3", "imap"] = "imap"
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    user: Annotated[str, AfterValidator(check_remote_user)]
    password_file: str = Field(description="File holding the password (mode 0600), relative to the site file.")
    ssl: bool = Field(
        True,
        description="TLS from the first byte (pop3s/imaps), certificate checked; false: the plain port, where "
        "fetchmail 6.4 still asks for STARTTLS",
    )
    deliver_to: Target = Field(description="Local user or address that receives the mail.")


class Fetchmail(Strict):
    poll_interval: Annotated[int, Field(ge=30)] = 300
    mailboxes: list[FetchmailMailbox] = Field(default_factory=list)


_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_KEY_DIR = re.compile(r"[A-Za-z0-9._+@/-]+")


class Dns(Strict):
    """What `mailconf dns-records` says to publish and `mailconf check-dns` expects to find."""

    ttl: Annotated[int, Field(ge=60, le=604800)] = 3600
    spf: str | None = Field(None, description="Your own SPF record. Default: v=spf1 mx a ip4:HOST ip6:HOST -all")
    dmarc_policy: Literal["none", "quarantine", "reject"] = "quarantine"
    reports: Address | None = Field(None, description="Where DMARC and TLS reports go. Default: postmaster@DOMAIN.")
    dkim_selectors: list[str] = Field(default_factory=lambda: ["mail"], description="DKIM selectors to publish.")
    dkim_keys: str = Field("dkim", description="Directory of DKIM keys (SELECTOR.DOMAIN.key), beside the site file.")
    mta_sts: Literal["off", "none", "testing", "enforce"] = Field(
        "testing", description="MTA-STS policy mode; `off` publishes no MTA-STS records."
    )

    @field_validator("mta_sts", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        return "off" if value is False else value  # YAML reads a bare `off` as false

    @field_validator("spf")
    @classmethod
    def _spf(cls, value: str | None) -> str | None:
        from mailconf.dns.spf import parse_spf  # the SPF grammar lives with the DNS code

        if value is not None:
            parse_spf(value)  # raises ValueError with the reason
        return value

    @field_validator("dkim_selectors")
    @classmethod
    def _selectors(cls, value: list[str]) -> list[str]:
        for selector in value:
            if not _DNS_LABEL.fullmatch(selector):
                raise ValueError(f"{selector!r} is not a DKIM selector: lower-case letters, digits, inner hyphens")
        if len(set(value)) != len(value):
            raise ValueError("a DKIM selector is listed twice")
        return value

    @field_validator("dkim_keys")
    @classmethod
    def _key_dir(cls, value: str) -> str:
        if not _KEY_DIR.fullmatch(value) or ".." in value.split("/"):
            raise ValueError(f"{value!r} is not a plain directory path (letters, digits and . _ + @ - / only, no ..)")
        return value


def _not_a_top_level_domain(value: str) -> str:
    if "." not in value:
        raise ValueError(
            f"{value!r} is a top-level domain: relaying for it (Postfix matches subdomains too) would relay mail "
            "for every domain below it. List each domain you are a backup MX for, fully"
        )
    return value


RelayDomain = Annotated[Domain, AfterValidator(_not_a_top_level_domain)]


class Site(Strict):
    """One mail host: its names, domains, users, aliases and relay policy."""

    host: Host
    domains: Annotated[list[Annotated[MailDomain, BeforeValidator(_name_to_mapping("name"))]], Field(min_length=1)]
    users: list[Annotated[User, BeforeValidator(_name_to_mapping("name"))]] = Field(default_factory=list)
    aliases: dict[AliasName, Targets] = Field(default_factory=dict)
    users_file: str | None = Field(None, description="Bulk users, one per line: `name` or `address:hash`.")
    aliases_file: str | None = Field(None, description="Bulk aliases, one per line: `name: target, target`.")
    postmaster: Target | None = Field(None, description="Who gets postmaster@ mail. Default: the first user.")
    abuse: Target | None = Field(None, description="Who gets abuse@ mail. Default: the postmaster.")
    trusted_networks: list[TrustedNetwork] = Field(
        default_factory=lambda: list(LOOPBACK),
        description="Clients that may relay without logging in. Loopback is always trusted.",
    )
    relay_domains: list[RelayDomain] = Field(default_factory=list, description="Domains we are backup MX for.")
    smarthost: Smarthost | None = None
    mailbox: Mailbox = Field(default_factory=Mailbox)
    message_size_limit: Annotated[int, BeforeValidator(_size), Field(ge=1024)] = 52428800
    tls: Tls = Field(default_factory=Tls)
    pop_imap: PopImap = Field(default_factory=PopImap)
    overrides: Overrides = Field(default_factory=Overrides)
    fetchmail: Fetchmail | None = None
    dns: Dns = Field(default_factory=Dns)

    @field_validator("trusted_networks")
    @classmethod
    def _with_loopback(cls, networks: list[str]) -> list[str]:
        return sorted(set(networks) | set(LOOPBACK), key=lambda n: (":" in n, n))

    @model_validator(mode="after")
    def _default_certificate(self) -> Site:
        if self.tls.cert is None:
            self.tls.cert = f"/etc/letsencrypt/live/{self.host.name}/fullchain.pem"
        if self.tls.key is None:
            self.tls.key = f"/etc/letsencrypt/live/{self.host.name}/privkey.pem"
        return self

    # Views the backends share, so no backend recomputes them.
    @property
    def local_domains(self) -> list[str]:
        return [d.name for d in self.domains if d.type == "local"]

    @property
    def virtual_domains(self) -> list[str]:
        return [d.name for d in self.domains if d.type == "virtual"]

    @property
    def local_users(self) -> list[User]:
        return [u for u in self.users if u.name]

    @property
    def virtual_users(self) -> list[User]:
        return [u for u in self.users if u.address]

    @property
    def postmaster_target(self) -> str:
        if self.postmaster:
            return self.postmaster
        return self.users[0].key if self.users else "root"

    @property
    def abuse_target(self) -> str:
        return self.abuse or self.postmaster_target


def check_trusted_network(text: str) -> str:
    network = ipaddress.ip_network(text, strict=False)
    if network.prefixlen == 0:
        raise ValueError(f"{text} trusts the whole Internet: that is an open relay")
    if isinstance(network, ipaddress.IPv6Network) and not network.subnet_of(LOOPBACK_RANGES[1]):
        _refuse_embedded_ipv4(text, network)  # ::1 lies in ::/96 but is loopback
    if any(network.subnet_of(r) for r in PRIVATE_RANGES + LOOPBACK_RANGES if r.version == network.version):
        return text
    widest = MAX_PUBLIC_PREFIX[network.version]
    if network.prefixlen < widest:
        raise ValueError(
            f"{text} is a public range wider than /{widest}: every host in it could relay through you. "
            f"List the exact networks of your own clients (at most /{widest} each), or use submission with a login"
        )
    return text


TrustedNetwork = Annotated[Network, AfterValidator(check_trusted_network)]


def _refuse_embedded_ipv4(text: str, network: ipaddress.IPv6Network) -> None:
    """An IPv6 network that holds IPv4 addresses (::ffff:203.0.113.0/120) is refused: write the IPv4 one."""
    for embedding, (kind, prefix) in IPV4_EMBEDDINGS.items():
        if network.subnet_of(embedding):
            ipv4 = ipaddress.IPv4Network((int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96))
            shown = f"{prefix}{ipv4.network_address}/{network.prefixlen}"
            what = f"{shown} is {kind}: it stands for the IPv4 network {ipv4}"
            try:
                check_trusted_network(str(ipv4))
            except ValueError as refused:
                raise ValueError(f"{what}, and {refused}") from None
            raise ValueError(f"{what}. Write {ipv4} instead")
        if network.supernet_of(embedding):
            raise ValueError(
                f"{text} contains {embedding}, every IPv4 address in {kind} form: that is an open relay. "
                f"Trust narrower IPv6 networks that leave {embedding} out, and write IPv4 networks as IPv4"
            )
