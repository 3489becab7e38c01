"""Relay grants by address range, judged by the site model's policy (mailconf.lint.core.range_width), and by
domain: a wildcard or a top-level domain."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from mailconf.errors import Location
from mailconf.lint.core import describe_width, range_width


def too_wide(grants: Iterable[tuple[str, Location]], widths: set[str]) -> Iterator[tuple[Location, str]]:
    """Grants whose width is one of `widths` ("everyone", "public", "private")."""
    for text, location in grants:
        width = range_width(text)
        if width in widths:
            yield location, f"{text} is {describe_width(width)}"


def tld_or_wildcard(name: str) -> bool:
    """A wildcard, or a top-level domain (a relay domain also covers every domain below it); localhost is local."""
    name = name.strip().lower()
    return bool(name) and name != "localhost" and ("*" in name or "." not in name.strip("."))
