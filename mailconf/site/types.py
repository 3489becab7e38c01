"""Validated strings. Everything that reaches a template passes one of these checks, so no value can carry
a newline, a control character or syntax that a native config would read as a new directive."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# A deliberately narrow local part: RFC 5321 allows $ { } ' ` & and more, which some MTA syntaxes would
# expand or interpret (Exim expansions, m4 quotes, qmail's .qmail names); real mailboxes rarely need them.
_LOCAL_PART = re.compile(r"^[a-z0-9_+=-]+(\.[a-z0-9_+=-]+)*$")
_UNIX_NAME = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_PATH = re.compile(r"^/[A-Za-z0-9._+@/-]*$")
# crypt(3) and Dovecot hashes: {SCHEME}... or $id$..., printable, no blanks, no ':' (passwd-file separator).
_PASSWORD_HASH = re.compile(r"^(\{[A-Z0-9.-]+\})?[A-Za-z0-9./$=+*,-]{8,}$")
_HASH_SCHEMES = {"SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT", "ARGON2I", "ARGON2ID", "CRYPT", "SSHA512", "PBKDF2"}


CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def _no_controls(value: str) -> str:
    if CONTROL_CHARACTER.search(value):
        raise ValueError("contains a newline or control character, which could inject a directive")
    return value


_ASCII_DOMAIN = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*")


@lru_cache(maxsize=65536)
def check_domain(value: str) -> str:
    """RFC 1123 host or domain name; IDN converted to punycode; lower-cased; no trailing dot."""
    if len(value) <= 253 and _ASCII_DOMAIN.fullmatch(value) and not value.rpartition(".")[2].isdigit():
        return value  # the common case: already a plain lower-case ASCII name
    value = _no_controls(str(value)).strip().rstrip(".").lower()
    if not value:
        raise ValueError("empty domain name")
    try:
        value = value.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{value!r} is not a valid domain name (IDN conversion failed)") from None
    labels = value.split(".")
    if len(value) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(
            f"{value!r} is not a valid domain name: labels of letters, digits and inner hyphens, "
            "1-63 characters each, 253 in all"
        )
    if labels[-1].isdigit():
        raise ValueError(f"{value!r} looks like an IP address, not a domain name")
    return value


def check_fqdn(value: str) -> str:
    value = check_domain(value)
    if "." not in value:
        raise ValueError(f"{value!r} is not fully qualified: use the full name, e.g. mail.example.org")
    return value


def check_local_part(value: str) -> str:
    value = _no_controls(str(value)).lower()
    if len(value) > 64 or not _LOCAL_PART.match(value):
        raise ValueError(
            f"{value!r} is not a valid mailbox name: letters, digits and . _ + = - (no leading, trailing or double"
            " dot), at most 64 characters"
        )
    return value


def check_address(value: str) -> str:
    value = _no_controls(str(value)).strip()
    local, at, domain = value.rpartition("@")
    if not at or not local:
        raise ValueError(f"{value!r} is not an e-mail address (user@domain)")
    return f"{check_local_part(local)}@{check_domain(domain)}"


def check_unix_name(value: str) -> str:
    value = _no_controls(str(value))
    if not _UNIX_NAME.match(value):
        raise ValueError(f"{value!r} is not a valid unix account name (lower-case letters, digits, _ . -)")
    return value


def check_path(value: str) -> str:
    value = _no_controls(str(value))
    if not _PATH.match(value) or "/../" in value + "/" or "//" in value:
        raise ValueError(f"{value!r} is not a plain absolute path (letters, digits and . _ + @ - / only, no ..)")
    return value


def check_folder(value: str) -> str:
    """A single directory name, such as a Maildir folder inside a home."""
    value = _no_controls(str(value))
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}", value):
        raise ValueError(f"{value!r} is not a plain folder name (letters, digits, . _ -)")
    return value


def check_password_hash(value: str) -> str:
    value = _no_controls(str(value))
    if not _PASSWORD_HASH.match(value):
        raise ValueError(
            "password must be a hash, e.g. '{SHA512-CRYPT}$6$...' from `doveadm pw -s SHA512-CRYPT`; "
            "plain-text passwords are refused"
        )
    scheme = value[1 : value.index("}")] if value.startswith("{") else ""
    if scheme and scheme not in _HASH_SCHEMES:
        raise ValueError(f"unknown or weak password scheme {scheme!r}: use one of {', '.join(sorted(_HASH_SCHEMES))}")
    if not scheme and not value.startswith("$"):
        raise ValueError("password must be a crypt(3) hash ($6$..., $2y$...) or carry a {SCHEME} prefix")
    return value


def _no_scope(value: str) -> str:
    """Python accepts an IPv6 zone (fe80::1%eth0) holding any character but `/`: none reaches a config."""
    if "%" in value:
        raise ValueError(f"{value!r}: an IPv6 zone (%...) cannot be used here; give the address without it")
    return value


def check_network(value: str) -> str:
    value = _no_scope(_no_controls(str(value)).strip())
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP network (e.g. 192.168.1.0/24 or 2001:db8::/48)") from None


def check_ip(value: str) -> str:
    value = _no_scope(_no_controls(str(value)).strip())
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def _string(value: object) -> object:
    """YAML turns `on`, 25 or 1.0 into other types: numbers become their text again (a label may be digits);
    booleans are passed on for pydantic to reject plainly as not a string."""
    if isinstance(value, bool | int | float):
        return str(value).lower() if not isinstance(value, bool) else value
    return value


Domain = Annotated[str, BeforeValidator(_string), AfterValidator(check_domain)]
Fqdn = Annotated[str, BeforeValidator(_string), AfterValidator(check_fqdn)]
LocalPart = Annotated[str, BeforeValidator(_string), AfterValidator(check_local_part)]
Address = Annotated[str, AfterValidator(check_address)]
UnixName = Annotated[str, AfterValidator(check_unix_name)]
AbsPath = Annotated[str, AfterValidator(check_path)]
PasswordHash = Annotated[str, AfterValidator(check_password_hash)]
Network = Annotated[str, AfterValidator(check_network)]
IPAddress = Annotated[str, AfterValidator(check_ip)]
