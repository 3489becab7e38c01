"""Bulk users and aliases in plain line-based files beside site.yaml: fast to load, errors at file:line.

users file, one per line:    joe                         (a local unix account)
                             ann@example.net:{SHA512-CRYPT}$6$...   (a virtual mailbox: address:hash)
aliases file, one per line:  webmaster: joe, ann@example.net
Blank lines and lines starting with # are ignored.
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location, MailconfError, Problem
from mailconf.site.model import User, check_alias_name, check_target
from mailconf.site.types import check_address, check_password_hash, check_unix_name

MAX_PROBLEMS = 50


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, line


def _collect(file: str, rows: Iterator[tuple[int, str]], parse):
    """Parse every row; gather up to MAX_PROBLEMS located errors instead of stopping at the first."""
    results, problems = [], []
    for number, line in rows:
        try:
            results.append((number, parse(line)))
        except ValueError as exc:
            problems.append(Problem(Location(file, number, 1), str(exc)))
            if len(problems) >= MAX_PROBLEMS:
                break
    if problems:
        raise MailconfError(problems)
    return results


def _checked_user(name: str | None, address: str | None, password_hash: str | None) -> User:
    """A User whose fields went through the model's own checks already, built without pydantic's
    per-object validation cost (what model_construct does, minus its default handling)."""
    user = object.__new__(User)
    fields = {"name": name, "address": address, "password_hash": password_hash}
    object.__setattr__(user, "__dict__", fields)
    object.__setattr__(user, "__pydantic_fields_set__", {"name"} if name else {"address", "password_hash"})
    object.__setattr__(user, "__pydantic_extra__", None)
    object.__setattr__(user, "__pydantic_private__", None)
    return user


def _user(line: str) -> User:
    line = line.strip()
    if ":" in line:
        address, _, password_hash = line.partition(":")
        return _checked_user(None, check_address(address), check_password_hash(password_hash.strip()))
    if "@" in line:
        raise ValueError(f"virtual user {line!r} needs a password hash: `{line}:{{SHA512-CRYPT}}$6$...`")
    return _checked_user(check_unix_name(line), None, None)


def parse_users(text: str, file: str) -> list[tuple[int, User]]:
    return _collect(file, _lines(text), _user)


def _alias(line: str) -> tuple[str, list[str]]:
    name, colon, targets = line.partition(":")
    if not colon:
        raise ValueError("an alias line reads `name: target, target`")
    parsed = [check_target(t.strip()) for t in targets.split(",") if t.strip()]
    if not parsed:
        raise ValueError(f"alias {name.strip()!r} has no target")
    return check_alias_name(name.strip()), parsed


def parse_aliases(text: str, file: str) -> list[tuple[int, tuple[str, list[str]]]]:
    return _collect(file, _lines(text), _alias)
