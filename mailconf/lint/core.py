"""What readers and rules share: settings and findings with a location, where files come from, range policy."""

from __future__ import annotations

import ipaddress
import os
import posixpath
from dataclasses import dataclass, field
from typing import Protocol

from mailconf.errors import Location, MailconfError, Problem
from mailconf.site.model import LOOPBACK_RANGES, PRIVATE_RANGES, check_trusted_network

SEVERITIES = ("info", "warning", "error")  # in rising order
WIDE_PRIVATE_PREFIX = {4: 16, 6: 48}  # a private range wider than this is worth a warning


@dataclass(frozen=True)
class Setting:
    """One `name = value` as a program reads it, where it was written, and the section it sits in."""

    name: str
    value: str
    location: Location
    section: tuple[str, ...] = ()


@dataclass(frozen=True, order=True)
class Finding:
    location: Location
    rule: str
    severity: str
    message: str
    hint: str = ""
    relay: bool = field(default=False, compare=False)


def parse_error(file: str, line: int, message: str, hint: str = "") -> MailconfError:
    return MailconfError([Problem(Location(file, line), message, hint)])


class Source(Protocol):
    """Where config files come from: a disk, or a rendering held in memory."""

    def read(self, path: str) -> str | None:
        """The text of a file; None when it is not there. Undecodable files are located errors."""
        ...

    def is_dir(self, path: str) -> bool: ...

    def listdir(self, path: str) -> list[str]: ...


def decode(data: bytes, path: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise parse_error(
            path, line, "not UTF-8 text", "mail configs are text files: is this the right file?"
        ) from None
    if "\0" in text:
        raise parse_error(path, text[: text.index("\0")].count("\n") + 1, "binary data (NUL byte) in a config file")
    return text


class DiskSource:
    def read(self, path: str) -> str | None:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise parse_error(path, 0, f"cannot read: {exc.strerror}") from None
        return decode(data, path)

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except OSError:
            return []


class MemorySource:
    """Files held in memory, by absolute path (a rendering that is never written)."""

    def __init__(self, files: dict[str, str]):
        self.files = {posixpath.normpath(p): text for p, text in files.items()}

    def read(self, path: str) -> str | None:
        return self.files.get(posixpath.normpath(path))

    def is_dir(self, path: str) -> bool:
        prefix = posixpath.normpath(path).rstrip("/") + "/"
        return any(p.startswith(prefix) for p in self.files)

    def listdir(self, path: str) -> list[str]:
        prefix = posixpath.normpath(path).rstrip("/") + "/"
        return sorted({p[len(prefix) :].split("/")[0] for p in self.files if p.startswith(prefix)})


def glob_names(source: Source, directory: str, pattern: str) -> list[str]:
    """Sorted paths in `directory` matching a shell pattern (for include globs)."""
    import fnmatch

    return [posixpath.join(directory, n) for n in source.listdir(directory) if fnmatch.fnmatchcase(n, pattern)]


def range_width(text: str) -> str | None:
    """'everyone', 'public' (wider than the site model allows), 'private' (a wide private range) or None (fine).

    The policy is the site model's (check_trusted_network); anything that is not an address range is None."""
    try:
        network = ipaddress.ip_network(text.strip().strip("[]").replace("]/", "/"), strict=False)
    except ValueError:
        return None
    if network.prefixlen == 0:
        return "everyone"
    try:
        check_trusted_network(str(network))
    except ValueError:
        return "public"
    private = any(network.subnet_of(r) for r in PRIVATE_RANGES if r.version == network.version)
    loopback = any(network.subnet_of(r) for r in LOOPBACK_RANGES if r.version == network.version)
    if private and not loopback and network.prefixlen < WIDE_PRIVATE_PREFIX[network.version]:
        return "private"
    return None


def describe_width(width: str) -> str:
    return {
        "everyone": "every address on the Internet",
        "public": "a public range wider than /24 (IPv4) or /48 (IPv6)",
        "private": "a wide private range",
    }[width]


@dataclass(frozen=True)
class Aliases:
    """The local parts an aliases(5) file defines, and the file."""

    names: frozenset[str]
    file: str


def read_aliases(source: Source, path: str) -> Aliases | None:
    text = source.read(path)
    if text is None:
        return None
    names = {
        line.partition(":")[0].strip().strip('"').lower()
        for line in text.splitlines()
        if line.strip() and not line[0].isspace() and not line.startswith("#") and ":" in line
    }
    return Aliases(frozenset(names), path)


def under_etc(etc_dir: str, absolute: str) -> str | None:
    """Where a host path below /etc lives when `etc_dir` plays /etc (a checkout, a rendered tree)."""
    return posixpath.join(etc_dir, absolute.removeprefix("/etc/")) if absolute.startswith("/etc/") else None


@dataclass(frozen=True)
class Delivery:
    """Where a program puts (MTA) or looks for (Dovecot) local users' mail: maildir or mbox, and the path."""

    format: str
    path: str
    location: Location
