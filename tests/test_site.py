"""The site description: defaults, validation, and errors located at file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from corpus import HASH
from typer.testing import CliRunner

from mailconf.cli import app
from mailconf.errors import MailconfError
from mailconf.site import load_site, parse_site
from mailconf.site.views import address_aliases, system_aliases

EXAMPLES = Path(__file__).parent.parent / "examples"

MINIMAL = """\
host:
  name: mail.example.org
domains: [example.org]
users: [joe]
"""


def parse(text: str, tmp_path: Path | None = None):
    path = (tmp_path or Path("/nonexistent")) / "site.yaml"
    return parse_site(textwrap.dedent(text), path)


def problems(text: str, tmp_path: Path | None = None) -> list[str]:
    with pytest.raises(MailconfError) as caught:
        parse(text, tmp_path)
    return [str(p) for p in caught.value.problems]


def test_a_five_line_site_gets_safe_defaults() -> None:
    site = parse(MINIMAL).site
    assert site.trusted_networks == ["127.0.0.0/8", "::1/128"]
    assert site.tls.enabled and site.host.ports.submission == 587
    assert site.domains[0].type == "local"
    assert site.postmaster_target == "joe"
    assert site.tls.cert == "/etc/letsencrypt/live/mail.example.org/fullchain.pem"


@pytest.mark.parametrize("example", sorted(EXAMPLES.rglob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_example_validates(example: Path) -> None:
    assert load_site(example).site.domains


def test_international_domain_names_become_punycode() -> None:
    site = parse(MINIMAL.replace("[example.org]", "[bücher.example]")).site
    assert site.domains[0].name == "xn--bcher-kva.example"


def test_loopback_is_always_trusted_even_when_not_listed() -> None:
    site = parse(MINIMAL + "trusted_networks: [192.168.1.0/24]\n").site
    assert {"127.0.0.0/8", "::1/128", "192.168.1.0/24"} == set(site.trusted_networks)


BAD_ADDITIONS = [
    ("trusted_networks: [0.0.0.0/0]\n", "5:20: error: 0.0.0.0/0 trusts the whole Internet"),
    ("trusted_networks: ['::/0']\n", "5:20: error: ::/0 trusts the whole Internet"),
    ("trusted_networks: [81.0.0.0/8]\n", "5:20: error: 81.0.0.0/8 is a public range wider than /24"),
    ("trusted_networks: ['2001:db8::/32']\n", "5:20: error: 2001:db8::/32 is a public range wider than /48"),
    ("trusted_networks: [not-a-net]\n", "5:20: error: 'not-a-net' is not an IP network"),
    ("relay_domains: ['a..b']\n", "5:17: error: 'a..b' is not a valid domain name"),
    ("bogus: 1\n", "5:1: error: unknown key 'bogus'"),
    ("message_size_limit: lots\n", "5:21: error: 'lots' is not a size"),
    ("smarthost: {host: relay.example, password: x}\n", "5:34: error: unknown key 'password'"),
    ("host: {name: other.example}\n", "5:1: error: duplicate key 'host'"),
    ("users_file: 7\n", "5:13: error: Input should be a valid string"),
    ("tls: {enabled: false}\n", "5:16: error: TLS is off but password logins are on"),
]


@pytest.mark.parametrize(("addition", "expected"), BAD_ADDITIONS)
def test_bad_values_are_reported_at_their_line_and_column(addition: str, expected: str) -> None:
    found = problems(MINIMAL + addition)
    assert any(expected in p for p in found), found


def test_private_networks_of_any_size_and_small_public_ones_may_relay() -> None:
    site = parse(MINIMAL + "trusted_networks: [10.0.0.0/8, 203.0.113.0/24, 'fd00::/8', '2001:db8:1::/48']\n").site
    assert "10.0.0.0/8" in site.trusted_networks and "2001:db8:1::/48" in site.trusted_networks


def test_duplicate_yaml_keys_are_an_error_not_silently_merged() -> None:
    found = problems(MINIMAL + "host:\n  name: other.example.org\n")
    assert any("5:1: error: duplicate key 'host'" in p for p in found), found


def test_unknown_nested_key_names_the_allowed_ones() -> None:
    found = problems(MINIMAL.replace("  name: mail.example.org", "  name: mail.example.org\n  hostname: x"))
    assert any("3:3: error: unknown key 'hostname'" in p and "allowed here: name, ipv4" in p for p in found), found


@pytest.mark.parametrize(
    "injected",
    [
        'host:\n  name: "mail.example.org\\nmynetworks = 0.0.0.0/0"\ndomains: [example.org]\nusers: [joe]\n',
        'host:\n  name: mail.example.org\ndomains: ["example.org\\rrelay_domains = *"]\nusers: [joe]\n',
        'host:\n  name: mail.example.org\ndomains: [example.org]\nusers: ["joe\\nroot"]\n',
        MINIMAL + 'aliases:\n  "x\\ny": joe\n',
        MINIMAL + 'mailbox: {spool: "/var/mail\\nhome_mailbox = x"}\n',
        MINIMAL + 'tls: {cert: "/etc/c.pem\\u0000"}\n',
    ],
)
def test_newlines_and_control_characters_never_reach_a_config(injected: str) -> None:
    found = problems(injected)
    assert found and all(":" in p.split(" error:")[0] for p in found), found


def test_tls_cannot_be_turned_off_while_passwords_are_accepted() -> None:
    found = problems(MINIMAL + "tls: {enabled: false}\n")
    assert any("TLS is off but password logins are on" in p for p in found), found


def test_tls_may_be_off_when_no_service_takes_passwords() -> None:
    ports = "submission: false, smtps: false, pop3: false, pop3s: false, imap: false, imaps: false"
    text = MINIMAL.replace("  name: mail.example.org", f"  name: mail.example.org\n  ports: {{{ports}}}")
    assert not parse(text + "tls: {enabled: false}\n").site.tls.enabled


def test_virtual_users_need_a_password_hash_never_a_plain_password() -> None:
    base = MINIMAL.replace("users: [joe]", "users:\n  - joe\n  - address: ann@v.example\n    password_hash: PW")
    base = base.replace("[example.org]", "[example.org, {name: v.example, type: virtual}]")
    assert any("password must be a hash" in p for p in problems(base.replace("PW", "hunter2")))
    assert parse(base.replace("PW", f'"{HASH}"')).site.virtual_users[0].address == "ann@v.example"


def test_alias_loops_are_found() -> None:
    found = problems(MINIMAL + "aliases:\n  a: b\n  b: c\n  c: a\n")
    assert any("alias loop: a -> b -> c -> a" in p for p in found), found


def test_aliases_must_point_at_something_that_exists() -> None:
    found = problems(MINIMAL + "aliases:\n  sales: nobody\n  info: ghost@example.org\n")
    assert any("6:10: error: alias sales points at nobody" in p for p in found), found
    assert any("7:9: error: alias info points at ghost@example.org" in p for p in found), found


def test_aliases_may_point_outside_our_domains() -> None:
    site = parse(MINIMAL + "aliases:\n  sales: [joe, partner@elsewhere.example]\n").site
    assert system_aliases(site)["sales"] == ["joe", "partner@elsewhere.example"]


def test_postmaster_and_abuse_exist_in_every_domain() -> None:
    text = MINIMAL.replace("[example.org]", "[example.org, {name: v.example, type: virtual}]")
    site = parse(text).site
    assert system_aliases(site)["postmaster"] == ["joe"] and system_aliases(site)["abuse"] == ["joe"]
    assert address_aliases(site)["postmaster@v.example"] == ["joe"]


def test_duplicate_users_and_domains_are_refused() -> None:
    found = problems(MINIMAL.replace("[joe]", "[joe, joe]").replace("[example.org]", "[example.org, Example.ORG]"))
    assert any("domain example.org is listed twice" in p for p in found), found
    assert any("user joe is defined twice" in p for p in found), found


def test_a_virtual_user_must_be_in_a_virtual_domain() -> None:
    text = MINIMAL.replace(
        "users: [joe]", f'users:\n  - joe\n  - address: ann@example.org\n    password_hash: "{HASH}"'
    )
    found = problems(text)
    assert any("ann@example.org is not in a virtual domain" in p for p in found), found


def test_yaml_syntax_errors_are_located() -> None:
    found = problems("host:\n  name: [unclosed\n")
    assert found[0].startswith("/nonexistent/site.yaml:3:1: error: YAML syntax") or ":2:" in found[0], found


def test_bulk_files_load_and_their_errors_point_at_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "users.txt").write_text("# comment\nalice\nbob\n")
    (tmp_path / "aliases.txt").write_text("help: alice, bob\n")
    site = parse(MINIMAL + "users_file: users.txt\naliases_file: aliases.txt\n", tmp_path).site
    assert [u.name for u in site.users] == ["joe", "alice", "bob"]
    assert site.aliases["help"] == ["alice", "bob"]

    (tmp_path / "users.txt").write_text("alice\n\nbad user\ncarol@v.example\n")
    found = problems(MINIMAL + "users_file: users.txt\n", tmp_path)
    assert f"{tmp_path}/users.txt:3:1: error: 'bad user' is not a valid unix account name" in found[0], found
    assert any(f"{tmp_path}/users.txt:4:1: error: virtual user 'carol@v.example' needs a password" in p for p in found)


def test_a_bulk_alias_that_loops_is_located_in_its_file(tmp_path: Path) -> None:
    (tmp_path / "aliases.txt").write_text("a: b\nb: a\n")
    found = problems(MINIMAL + "aliases_file: aliases.txt\n", tmp_path)
    assert any(f"{tmp_path}/aliases.txt:1:1: error: alias loop" in p for p in found), found


def test_a_missing_bulk_file_is_reported_at_the_key_naming_it(tmp_path: Path) -> None:
    found = problems(MINIMAL + "users_file: nowhere.txt\n", tmp_path)
    assert any("5:13: error: cannot read users_file 'nowhere.txt'" in p for p in found), found


@pytest.mark.parametrize(("addition", "expected"), BAD_ADDITIONS)
def test_a_broken_site_renders_nothing_and_exits_2_with_its_location(
    addition: str, expected: str, tmp_path: Path
) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(MINIMAL + addition)
    result = CliRunner().invoke(app, ["render", "-c", str(site), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and f"{site}:{expected}" in result.output, result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "line",
    [
        "  -o smtpd_relay_restrictions=permit",
        "  -o { smtpd_relay_restrictions = permit_mynetworks, permit }",
        "  -o {mynetworks = 0.0.0.0/0}",
    ],
)
def test_a_master_cf_override_cannot_open_a_relay_in_either_option_syntax(line: str) -> None:
    site = MINIMAL + f"overrides:\n  postfix:\n    master:\n      - '{line}'\n"
    assert any("relay" in p or "Internet" in p for p in problems(site))


def test_a_relay_domain_cannot_be_a_whole_top_level_domain() -> None:
    assert any("top-level domain" in p for p in problems(MINIMAL + "relay_domains: [com]\n"))
    assert parse(MINIMAL + "relay_domains: [backup.example]\n").site.relay_domains == ["backup.example"]


def test_an_override_cannot_let_the_whole_internet_claim_a_trusted_address_with_xclient() -> None:
    site = MINIMAL + "overrides:\n  postfix:\n    main:\n      smtpd_authorized_xclient_hosts: 0.0.0.0/0\n"
    assert any("whole Internet" in p for p in problems(site))


def test_postmaster_as_a_bare_alias_is_refused_for_the_postmaster_key() -> None:
    # As an alias it would reach the local domains only; virtual domains, abuse@ and root would keep the default.
    found = problems(MINIMAL.replace("users: [joe]", "users: [joe, sue]") + "aliases: {postmaster: sue}\n")
    assert any("postmaster is set as an alias" in p and "`postmaster: TARGET`" in p for p in found)


@pytest.mark.parametrize(
    "main",
    [
        "{open: permit, smtpd_relay_restrictions: '$open, reject_unauth_destination'}",
        "{open: permit, smtpd_restriction_classes: open, smtpd_relay_restrictions: 'open reject_unauth_destination'}",
    ],
)
def test_a_relay_override_cannot_hide_a_permit_behind_a_parameter_or_class(main: str) -> None:
    site = MINIMAL + f"overrides:\n  postfix:\n    main: {main}\n"
    assert any("would let anyone relay" in p for p in problems(site))


def test_a_relay_override_may_name_a_parameter_that_keeps_the_guard() -> None:
    main = "{mine: permit_mynetworks, smtpd_relay_restrictions: '${mine}, reject_unauth_destination'}"
    assert parse(MINIMAL + f"overrides:\n  postfix:\n    main: {main}\n").site
