"""Trusted networks written in IPv6 that hold IPv4 addresses (IPv4-mapped, NAT64, IPv4-compatible) are refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_site import MINIMAL, parse, problems

REFUSED = [
    ("::ffff:203.0.113.0/120", "::ffff:203.0.113.0/120 is IPv4-mapped: it stands for the IPv4 network 203.0.113.0/24. "
     "Write 203.0.113.0/24 instead"),
    ("::ffff:10.0.0.0/104", "is IPv4-mapped: it stands for the IPv4 network 10.0.0.0/8. Write 10.0.0.0/8 instead"),
    ("::ffff:203.0.0.0/104", "the IPv4 network 203.0.0.0/8, and 203.0.0.0/8 is a public range wider than /24"),
    ("::ffff:0:0/96", "the IPv4 network 0.0.0.0/0, and 0.0.0.0/0 trusts the whole Internet"),
    ("64:ff9b::/96", "is NAT64 (RFC 6052 well-known prefix): it stands for the IPv4 network 0.0.0.0/0, and"),
    ("64:ff9b::192.0.2.0/120", "64:ff9b::192.0.2.0/120 is NAT64 (RFC 6052 well-known prefix): it stands for the "
     "IPv4 network 192.0.2.0/24. Write 192.0.2.0/24 instead"),
    ("::192.0.2.1/128", "is IPv4-compatible (deprecated): it stands for the IPv4 network 192.0.2.1/32."),
    # Wider networks that hold a whole embedding: within the /48 rule, but every IPv4 address is in them.
    ("64:ff9b::/48", "64:ff9b::/48 contains 64:ff9b::/96, every IPv4 address in NAT64"),
    ("::/64", "::/64 contains ::ffff:0:0/96, every IPv4 address in IPv4-mapped form: that is an open relay"),
    ("::ffff:0:0/95", "contains ::ffff:0:0/96"),
]  # fmt: skip


@pytest.mark.parametrize(("network", "expected"), REFUSED, ids=[n for n, _ in REFUSED])
def test_a_trusted_network_holding_ipv4_addresses_is_refused_at_its_line_and_column(
    network: str, expected: str
) -> None:
    found = problems(MINIMAL + f"trusted_networks: ['{network}']\n")
    assert any(p.startswith("/nonexistent/site.yaml:5:20: error: ") and expected in p for p in found), found


@pytest.mark.parametrize(
    "network",
    ["::1/128", "2001:db8:1::/48", "fd00::/8", "2002:cb00:7100::/48", "203.0.113.0/24", "::ffff:1:0:0/96"],
    ids=["loopback", "public-48", "private", "6to4-site", "the-ipv4-itself", "next-to-mapped"],
)
def test_ipv6_networks_outside_the_ipv4_embeddings_are_still_judged_by_the_ipv6_rules(network: str) -> None:
    """6to4 stays an IPv6 network: a 6to4 /48 is one IPv4 host's own site, and 2002::/16 is wider than /48."""
    assert network in parse(MINIMAL + f"trusted_networks: ['{network}']\n").site.trusted_networks


def test_6to4_wider_than_one_site_is_refused_by_the_ipv6_width_rule() -> None:
    assert any(
        "5:20: error: 2002::/16 is a public range wider than /48" in p
        for p in problems(MINIMAL + "trusted_networks: ['2002::/16']\n")
    )


def test_mailconf_validate_exits_2_naming_the_list_item_and_the_ipv4_network_to_write(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(MINIMAL + "trusted_networks:\n  - 192.168.1.0/24\n  - '::ffff:203.0.113.0/120'\n")
    done = subprocess.run(
        [sys.executable, "-m", "mailconf", "validate", "-c", str(site)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert f"{site}:7:5: error: ::ffff:203.0.113.0/120 is IPv4-mapped" in done.stderr
    assert "Write 203.0.113.0/24 instead" in done.stderr and "Traceback" not in done.stderr


def test_a_postfix_override_cannot_trust_every_ipv4_client_through_a_mapped_network() -> None:
    site = MINIMAL + "overrides:\n  postfix:\n    main:\n      mynetworks: '[::ffff:0.0.0.0]/96'\n"
    assert any("stands for the IPv4 network 0.0.0.0/0" in p for p in problems(site))


@pytest.mark.parametrize(
    "key",
    ['host:\n  name: mail.example.org\n  listen: ["{value}"]\n', 'trusted_networks: ["{value}"]\n'],
    ids=["listen", "trusted_networks"],
)
def test_an_ipv6_zone_cannot_carry_text_into_a_config(key: str) -> None:
    """Python's ipaddress accepts fe80::1%ZONE with almost any ZONE; m4 would run `esyscmd` from a listen address."""
    value = "fe80::1%x')esyscmd(`touch PWNED')dnl"
    site = MINIMAL.replace("host:\n  name: mail.example.org\n", "") if key.startswith("host") else MINIMAL
    found = problems(site + key.format(value=value))
    assert any("an IPv6 zone (%...) cannot be used here" in p for p in found), found
