"""DNS queries for the checks: dnspython's asyncio resolver; each (name, type) is asked once, however many
checks need it."""

from __future__ import annotations

import asyncio
import ipaddress

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdata
import dns.resolver
import dns.reversename

from mailconf.errors import fail


class DnsFailure(Exception):
    """No usable answer: the name server failed, refused or timed out (not the same as "no such record")."""


class DnsTimeout(DnsFailure):
    """The name server did not answer in time."""


def parse_nameserver(text: str) -> tuple[str, int]:
    """IP, IP:PORT, [IPv6] or [IPv6]:PORT -> (ip, port); ValueError otherwise."""
    host, port = text, "53"
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        host = host if bracket and rest[:1] in ("", ":") else text  # else not an address: refused below
        port = rest[1:] if rest else port
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{text!r} is not a name server address: IP, IP:PORT or [IPv6]:PORT") from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: the port must be 1-65535")
    return str(address), int(port)


class Lookup:
    def __init__(self, nameserver: str | None = None, port: int = 53, timeout: float = 3.0):
        self.timeout = timeout
        self.server = f"{nameserver}:{port}" if nameserver else "the system resolver"
        try:
            self._resolver = dns.asyncresolver.Resolver(configure=nameserver is None)
        except dns.resolver.NoResolverConfiguration:
            raise fail("/etc/resolv.conf", "no name server is configured", "give one: --nameserver IP") from None
        if nameserver:
            self._resolver.nameservers = [nameserver]
            self._resolver.port = port
        self._resolver.timeout = self._resolver.lifetime = timeout
        self._answers: dict[tuple[str, str], asyncio.Future[list[dns.rdata.Rdata]]] = {}

    async def records(self, name: str, rdtype: str) -> list[dns.rdata.Rdata]:
        """The records of one type at `name`; [] when the name or the type does not exist."""
        key = (name.lower().rstrip("."), rdtype)
        if key not in self._answers:
            self._answers[key] = asyncio.ensure_future(self._query(*key))
        return await self._answers[key]

    async def _query(self, name: str, rdtype: str) -> list[dns.rdata.Rdata]:
        try:
            answer = await self._resolver.resolve(dns.name.from_text(name), rdtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return []
        except dns.resolver.LifetimeTimeout:
            raise DnsTimeout(f"{self.server} did not answer for {name} {rdtype} within {self.timeout:g}s") from None
        except dns.resolver.NoNameservers:
            raise DnsFailure(f"{self.server} failed or refused to answer for {name} {rdtype}") from None
        except dns.exception.DNSException as exc:
            raise DnsFailure(f"{name} {rdtype}: {exc}") from None
        return list(answer.rrset or [])

    async def txt(self, name: str) -> list[str]:
        """TXT records, each one's strings joined (RFC 7208 3.3)."""
        return [b"".join(r.strings).decode("utf-8", "replace") for r in await self.records(name, "TXT")]

    async def addresses(self, name: str, version: int) -> list[str]:
        return [r.address for r in await self.records(name, "A" if version == 4 else "AAAA")]

    async def mx(self, name: str) -> list[str]:
        """Exchange names, most preferred first; "." is a null MX (RFC 7505)."""
        found = sorted(await self.records(name, "MX"), key=lambda r: r.preference)
        return [r.exchange.to_text(omit_final_dot=True).lower() for r in found]

    async def ptr(self, address: str) -> list[str]:
        reverse = dns.reversename.from_address(address).to_text(omit_final_dot=True)
        return [r.target.to_text(omit_final_dot=True).lower() for r in await self.records(reverse, "PTR")]
