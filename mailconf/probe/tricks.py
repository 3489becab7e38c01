"""The relay tricks of ../shared/notes/relay-tricks.md: nmap's 16 (smtp-open-relay.nse), then the extra ones.

Each trick is a MAIL FROM / RCPT TO pair of SMTP path arguments (with their angle brackets, or without them
where that is the trick) written with these placeholders:

    {f}    the sender's local part             {u}, {d}   the outside recipient's local part and domain
    {srv}  the host name the server announces  {lit}      the server's address as a literal: [192.0.2.1]
    {own}  the server's own domain (its name   {client}   the prober's address as the server sees it,
           without the first label)                       as a literal (the --xclient address if given)
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

SENDER_LOCAL_PART = "probe"
DEFAULT_RECIPIENT = "relay-test@foreign.example"  # RFC 2606: a domain that can never receive mail


@dataclass(frozen=True)
class Trick:
    number: int
    name: str
    mail_from: str
    rcpt_to: str


@dataclass(frozen=True)
class Attempt:
    """One trick with its placeholders filled in for one server."""

    trick: Trick
    mail_from: str
    rcpt_to: str


def _tricks(first: int, rows: list[tuple[str, str, str]]) -> tuple[Trick, ...]:
    return tuple(Trick(first + i, name, mail_from, rcpt_to) for i, (name, mail_from, rcpt_to) in enumerate(rows))


NMAP = _tricks(
    1,
    [
        ("null sender", "<>", "<{u}@{d}>"),
        ("plain third-party relay", "<{f}@{d}>", "<{u}@{d}>"),
        ("sender forged as local", "<{f}@{srv}>", "<{u}@{d}>"),
        ("address-literal sender", "<{f}@{lit}>", "<{u}@{d}>"),
        ("percent hack via literal", "<{f}@{lit}>", "<{u}%{d}@{lit}>"),
        ("percent hack", "<{f}@{lit}>", "<{u}%{d}@{srv}>"),
        ("quoted local part", "<{f}@{lit}>", '<"{u}@{d}">'),
        ("quoted percent", "<{f}@{lit}>", '<"{u}%{d}">'),
        ("double @ via literal", "<{f}@{lit}>", "<{u}@{d}@{lit}>"),
        ("quoted, via literal", "<{f}@{lit}>", '<"{u}@{d}"@{lit}>'),
        ("double @", "<{f}@{lit}>", "<{u}@{d}@{srv}>"),
        ("source route via literal", "<{f}@{lit}>", "<@{lit}:{u}@{d}>"),
        ("source route", "<{f}@{lit}>", "<@{srv}:{u}@{d}>"),
        ("bang path", "<{f}@{lit}>", "<{d}!{u}>"),
        ("bang path via literal", "<{f}@{lit}>", "<{d}!{u}@{lit}>"),
        ("bang path via host name", "<{f}@{lit}>", "<{d}!{u}@{srv}>"),
    ],
)

EXTRA = _tricks(
    len(NMAP) + 1,
    [
        ("recipient as sender", "<{u}@{d}>", "<{u}@{d}>"),
        ("unqualified sender", "<{f}>", "<{u}@{d}>"),
        ("localhost sender", "<{f}@localhost>", "<{u}@{d}>"),
        ("prober's own address as sender", "<{f}@{client}>", "<{u}@{d}>"),
        ("quoted recipient, local sender", "<{f}@{srv}>", '<"{u}@{d}">'),
        ("recipient without angle brackets", "<{f}@{srv}>", "{u}@{d}"),
        ("percent hack, bracketed domain", "<{f}@{srv}>", "<{u}%[{d}]@>"),
        ("double @, bracketed domain", "<{f}@{srv}>", "<{u}@[{d}]@>"),
        ("quoted, via host name", "<{f}@{srv}>", '<"{u}@{d}"@{srv}>'),
        ("sender in the server's own domain", "<{f}@{own}>", "<{u}@{d}>"),
    ],
)

CATALOGUE: tuple[Trick, ...] = NMAP + EXTRA


def address_literal(ip: str) -> str:
    """[192.0.2.1] or [IPv6:2001:db8::1] (RFC 5321 4.1.3); a name that is not an address is just bracketed."""
    try:
        version = ipaddress.ip_address(ip).version
    except ValueError:
        version = 4
    return f"[IPv6:{ip}]" if version == 6 else f"[{ip}]"


def tricks(sender_domains: tuple[str, ...] = ()) -> list[Trick]:
    """The catalogue, plus a sender in each of ``sender_domains`` (e.g. the site's own mail domains)."""
    own = EXTRA[-1]
    extra = [
        Trick(len(CATALOGUE) + i, f"sender in {d}", f"<{{f}}@{d}>", own.rcpt_to)
        for i, d in enumerate(sender_domains, 1)
    ]
    return [*CATALOGUE, *extra]


def fill(trick: Trick, server_name: str, server_ip: str, client_ip: str, recipient: str = DEFAULT_RECIPIENT) -> Attempt:
    """The trick's MAIL FROM and RCPT TO arguments for one server, as seen from one client address."""
    user, _, domain = recipient.rpartition("@")
    values = {
        "f": SENDER_LOCAL_PART,
        "u": user,
        "d": domain,
        "srv": server_name,
        "lit": address_literal(server_ip),
        "own": server_name.partition(".")[2] or server_name,
        "client": address_literal(client_ip),
    }
    return Attempt(trick, trick.mail_from.format(**values), trick.rcpt_to.format(**values))
