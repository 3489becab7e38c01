"""The relay tricks of ../shared/notes/relay-tricks.md as test data: (name, MAIL FROM, RCPT TO).

A relay attempt succeeds when RCPT gets a 2yz reply; every trick here must be refused by a closed server.
"""

from __future__ import annotations

USER = "victim"
FOREIGN = "foreign.example"
SENDER = "spamtest"


def relay_tricks(server_name: str, server_ip: str, own_domains: list[str]) -> list[tuple[str, str, str]]:
    u, d, f, srv, ip = USER, FOREIGN, SENDER, server_name, server_ip
    tricks = [
        ("null sender", "<>", f"<{u}@{d}>"),
        ("plain third-party relay", f"<{f}@{d}>", f"<{u}@{d}>"),
        ("sender forged as local", f"<{f}@{srv}>", f"<{u}@{d}>"),
        ("address-literal sender", f"<{f}@[{ip}]>", f"<{u}@{d}>"),
        ("percent hack via literal", f"<{f}@[{ip}]>", f"<{u}%{d}@[{ip}]>"),
        ("percent hack", f"<{f}@[{ip}]>", f"<{u}%{d}@{srv}>"),
        ("quoted local part", f"<{f}@[{ip}]>", f'<"{u}@{d}">'),
        ("quoted percent", f"<{f}@[{ip}]>", f'<"{u}%{d}">'),
        ("double @ via literal", f"<{f}@[{ip}]>", f"<{u}@{d}@[{ip}]>"),
        ("quoted, via literal", f"<{f}@[{ip}]>", f'<"{u}@{d}"@[{ip}]>'),
        ("double @", f"<{f}@[{ip}]>", f"<{u}@{d}@{srv}>"),
        ("source route via literal", f"<{f}@[{ip}]>", f"<@[{ip}]:{u}@{d}>"),
        ("source route", f"<{f}@[{ip}]>", f"<@{srv}:{u}@{d}>"),
        ("bang path", f"<{f}@[{ip}]>", f"<{d}!{u}>"),
        ("bang path via literal", f"<{f}@[{ip}]>", f"<{d}!{u}@[{ip}]>"),
        ("bang path via host", f"<{f}@[{ip}]>", f"<{d}!{u}@{srv}>"),
        ("recipient as literal", f"<{f}@[{ip}]>", f"<{u}@[{ip}]>"),
        ("target itself as sender", f"<{u}@{d}>", f"<{u}@{d}>"),
        ("unqualified sender", f"<{f}>", f"<{u}@{d}>"),
        ("localhost sender", f"<{f}@localhost>", f"<{u}@{d}>"),
        ("no angle brackets", f"<{f}@{srv}>", f"{u}@{d}"),
        ("percent with bracketed domain", f"<{f}@{srv}>", f"<{u}%[{d}]@>"),
        ("quoted, via host", f"<{f}@{srv}>", f'<"{u}@{d}"@{srv}>'),
    ]
    tricks += [(f"sender in own domain {dom}", f"<{f}@{dom}>", f"<{u}@{d}>") for dom in own_domains]
    return tricks
