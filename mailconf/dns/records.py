"""The records a site needs in DNS, computed once: `dns-records` prints them and `check-dns` expects them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import dns.reversename

from mailconf.dns.dkim import dkim_text, public_key
from mailconf.site import LoadedSite
from mailconf.site.model import Site

MTA_STS_MAX_AGE = 604800  # one week (RFC 8461 suggests weeks once the policy is stable)
TXT_CHUNK = 255  # bytes per character-string (RFC 1035 3.3)


@dataclass(frozen=True)
class Record:
    name: str  # absolute, no final dot
    type: str
    data: str  # TXT: the text itself; other types: zone-file rdata
    comment: str = ""

    @property
    def rdata(self) -> str:
        return txt_rdata(self.data) if self.type == "TXT" else self.data


@dataclass
class Zone:
    """One `$ORIGIN` block: the records to add to one zone."""

    origin: str
    comment: str
    records: list[Record] = field(default_factory=list)


@dataclass
class Publication:
    zones: list[Zone]
    mta_sts_policy: str | None


def txt_rdata(text: str) -> str:
    """Quoted character-strings of at most 255 bytes each; quotes, backslashes and non-printables escaped."""
    data = text.encode("utf-8")
    chunks = [data[i : i + TXT_CHUNK] for i in range(0, len(data), TXT_CHUNK)] or [b""]
    return " ".join(f'"{_escape(chunk)}"' for chunk in chunks)


def _escape(chunk: bytes) -> str:
    return "".join("\\" + chr(b) if b in b'"\\' else chr(b) if 0x20 <= b < 0x7F else f"\\{b:03d}" for b in chunk)


def host_addresses(site: Site) -> list[str]:
    return [a for a in (site.host.ipv4, site.host.ipv6) if a]


def spf_text(site: Site) -> str:
    if site.dns.spf:
        return site.dns.spf
    ips = [f"ip{4 if ':' not in a else 6}:{a}" for a in host_addresses(site)]
    return " ".join(["v=spf1", "mx", "a", *ips, "-all"])


def report_address(site: Site, domain: str) -> str:
    return site.dns.reports or f"postmaster@{domain}"


def dmarc_text(site: Site, domain: str) -> str:
    return f"v=DMARC1; p={site.dns.dmarc_policy}; rua=mailto:{report_address(site, domain)}"


def tls_rpt_text(site: Site, domain: str) -> str:
    return f"v=TLSRPTv1; rua=mailto:{report_address(site, domain)}"


def mta_sts_policy(site: Site) -> str | None:
    """The policy served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt (one for every domain: same MX)."""
    if site.dns.mta_sts == "off":
        return None
    lines = ["version: STSv1", f"mode: {site.dns.mta_sts}", f"mx: {site.host.name}", f"max_age: {MTA_STS_MAX_AGE}"]
    return "".join(f"{line}\r\n" for line in lines)


def mta_sts_id(policy: str) -> str:
    """Changes exactly when the policy does, so senders refetch it then and only then."""
    return hashlib.sha256(policy.encode()).hexdigest()[:20]


def mta_sts_text(policy: str) -> str:
    return f"v=STSv1; id={mta_sts_id(policy)}"


def publication(loaded: LoadedSite) -> Publication:
    site = loaded.site
    policy = mta_sts_policy(site)
    zones = {d.name: Zone(d.name, f"add to the zone of {d.name}") for d in site.domains}
    host = site.host.name
    home = _zone_of(host, list(zones))
    if home:
        zones[home].records += _address_records(site)
    for name, zone in zones.items():
        zone.records += _domain_records(loaded, name, policy)
        if not any(r.name.endswith(f"._domainkey.{name}") for r in zone.records) and site.dns.dkim_selectors:
            zone.comment += "; no DKIM key yet: make one with `mailconf dkim-keygen`"
    first = next(iter(zones.values()))
    if not home:
        first.comment += f"; {host} is in none of these zones: its own zone needs its A/AAAA records"
    reports = site.dns.reports
    if reports:
        _authorise_reports(site, reports.partition("@")[2], zones, first)
    if not host_addresses(site):
        first.comment += "; the site gives no host.ipv4 or host.ipv6, so no A/AAAA or PTR records"
    reverse = [_reverse_zone(address, host) for address in host_addresses(site)]
    return Publication([*zones.values(), *reverse], policy)


def _reverse_zone(address: str, host: str) -> Zone:
    name = dns.reversename.from_address(address).to_text(omit_final_dot=True)
    return Zone(
        name, f"reverse DNS of {address}: the provider of that address sets it", [Record(name, "PTR", f"{host}.")]
    )


def _zone_of(name: str, origins: list[str]) -> str | None:
    inside = [o for o in origins if name == o or name.endswith(f".{o}")]
    return max(inside, key=len) if inside else None


def _address_records(site: Site) -> list[Record]:
    host = site.host.name
    return [Record(host, "A" if ":" not in a else "AAAA", a, "the mail host") for a in host_addresses(site)]


def _domain_records(loaded: LoadedSite, domain: str, policy: str | None) -> list[Record]:
    site = loaded.site
    host = f"{site.host.name}."
    records = [
        Record(domain, "MX", f"10 {host}", "mail for the domain goes to the host"),
        Record(domain, "TXT", spf_text(site), "SPF: who may send as the domain"),
        Record(f"_dmarc.{domain}", "TXT", dmarc_text(site, domain)),
    ]
    for selector in site.dns.dkim_selectors:
        key = public_key(loaded, selector, domain)
        if key:
            records.append(Record(f"{selector}._domainkey.{domain}", "TXT", dkim_text(key), "DKIM public key"))
    if policy:
        records += [
            Record(f"_mta-sts.{domain}", "TXT", mta_sts_text(policy), "MTA-STS: the id changes with the policy"),
            _alias(site, f"mta-sts.{domain}", f"serves https://mta-sts.{domain}/.well-known/mta-sts.txt"),
        ]
    records.append(Record(f"_smtp._tls.{domain}", "TXT", tls_rpt_text(site, domain), "TLS-RPT"))
    records += _client_records(site, domain)
    return [r for r in records if r.type != "CNAME" or r.name != site.host.name]


def _alias(site: Site, name: str, comment: str) -> Record:
    return Record(name, "CNAME", f"{site.host.name}.", comment)


def _client_records(site: Site, domain: str) -> list[Record]:
    """Mail client autoconfiguration: SRV records (RFC 6186, 8314), "0 0 0 ." where a service is off."""
    ports, protocols = site.host.ports, site.pop_imap.protocols
    services = [
        ("submissions", ports.smtps, True, 0),
        ("submission", ports.submission, True, 10),
        ("imaps", ports.imaps, "imap" in protocols, 0),
        ("imap", ports.imap, "imap" in protocols, 10),
        ("pop3s", ports.pop3s, "pop3" in protocols, 0),
        ("pop3", ports.pop3, "pop3" in protocols, 10),
    ]
    records = [
        Record(f"_{name}._tcp.{domain}", "SRV", f"{priority} 1 {port} {site.host.name}." if port and on else "0 0 0 .")
        for name, port, on, priority in services
    ]
    records.append(_alias(site, f"autoconfig.{domain}", "Thunderbird autoconfig"))
    records.append(_alias(site, f"autodiscover.{domain}", "Outlook autodiscover"))
    return records


def _authorise_reports(site: Site, target: str, zones: dict[str, Zone], first: Zone) -> None:
    """RFC 7489 7.1: a report address outside a domain must agree to take that domain's reports."""
    for domain in zones:
        if domain == target or domain.endswith(f".{target}") or target.endswith(f".{domain}"):
            continue
        record = Record(f"{domain}._report._dmarc.{target}", "TXT", "v=DMARC1", f"{target} takes {domain}'s reports")
        if target in zones:
            zones[target].records.append(record)
        else:
            first.comment += f'; {target} must publish {record.name}. TXT "v=DMARC1"'


def zone_text(publication: Publication, ttl: int) -> str:
    blocks = []
    for zone in publication.zones:
        lines = [f"$ORIGIN {zone.origin}.", f"; {zone.comment}"]
        for r in zone.records:
            line = f"{_relative(r.name, zone.origin):<24} {ttl} IN {r.type:<5} {r.rdata}"
            lines.append(f"{line} ; {r.comment}" if r.comment else line)
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _relative(name: str, origin: str) -> str:
    if name == origin:
        return "@"
    return name.removesuffix(f".{origin}") if name.endswith(f".{origin}") else f"{name}."


def json_text(publication: Publication, ttl: int) -> str:
    zones = [
        {"origin": z.origin, "comment": z.comment, "records": [asdict(r) | {"ttl": ttl} for r in z.records]}
        for z in publication.zones
    ]
    return json.dumps({"zones": zones, "mta_sts_policy": publication.mta_sts_policy}, indent=2)
