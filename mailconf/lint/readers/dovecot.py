"""Dovecot: dovecot.conf with its sections and `!include` / `!include_try` files (globs, relative paths)."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from mailconf.errors import Location
from mailconf.lint.core import Delivery, Setting, Source, glob_names, parse_error

SECTION = re.compile(r"^([\w-]+)(?:\s+(.*?))?\s*\{$")
MAX_INCLUDES = 200


@dataclass
class DovecotConfig:
    file: str
    settings: list[Setting]

    def get(self, name: str) -> Setting | None:
        """The global value: the last one outside any section."""
        found = [s for s in self.settings if s.name == name and not s.section]
        return found[-1] if found else None

    def delivery(self) -> Delivery | None:
        """Where Dovecot looks for local users' mail (mail_location); None: it detects it by itself."""
        setting = self.get("mail_location")
        kind, _, rest = setting.value.partition(":") if setting else ("", "", "")
        parts = rest.split(":")
        if kind == "maildir":
            return Delivery("maildir", parts[0].rstrip("/"), setting.location)  # type: ignore[union-attr]
        if kind == "mbox":
            inbox = next((p.removeprefix("INBOX=") for p in parts if p.startswith("INBOX=")), parts[0])
            path = posixpath.dirname(inbox) if "%" in inbox else inbox
            return Delivery("mbox", path.rstrip("/"), setting.location)  # type: ignore[union-attr]
        return None

    def all(self, name: str) -> list[Setting]:
        return [s for s in self.settings if s.name == name]


class _Parser:
    def __init__(self, source: Source):
        self.source = source
        self.settings: list[Setting] = []
        self.files = 0

    def file(self, path: str, stack: list[str], opened_at: Location | None) -> None:
        self.files += 1
        if self.files > MAX_INCLUDES:
            assert opened_at is not None
            raise parse_error(opened_at.file, opened_at.line, "too many included files (an include loop?)")
        text = self.source.read(path)
        if text is None:
            where = opened_at or Location(path)
            raise parse_error(where.file, where.line, f"cannot read {path}", "use !include_try for optional files")
        depth = len(stack)
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            here = Location(path, number)
            if line.startswith("!include"):
                self.include(line, path, stack, here)
            elif line == "}":
                if len(stack) == depth:
                    raise parse_error(path, number, "`}` closes no section")
                stack.pop()
            elif (match := SECTION.match(line)) and "=" not in (match[2] or ""):
                stack.append(f"{match[1]} {match[2] or ''}".strip())
            elif "=" in line:
                name, _, value = line.partition("=")
                value = re.sub(r"\s+#.*$", "", value).strip()
                self.settings.append(Setting(name.strip(), value.strip('"'), here, tuple(stack)))
            else:
                raise parse_error(path, number, f"expected `name = value`, a section or !include: {line[:60]!r}")
        if len(stack) != depth:
            raise parse_error(path, len(text.splitlines()), f"section {stack[-1]!r} is not closed", "add `}`")

    def include(self, line: str, path: str, stack: list[str], here: Location) -> None:
        keyword, _, target = line.partition(" ")
        target = target.strip().strip('"')
        if keyword not in ("!include", "!include_try") or not target:
            raise parse_error(here.file, here.line, f"bad include: {line[:60]!r}")
        target = posixpath.join(posixpath.dirname(path), target)
        if any(c in target for c in "*?["):
            matches = glob_names(self.source, posixpath.dirname(target), posixpath.basename(target))
        else:
            matches = [target] if keyword == "!include" or self.source.read(target) is not None else []
        for match in matches:
            self.file(match, stack, here)


def read(source: Source, path: str, options: object = None) -> DovecotConfig:
    parser = _Parser(source)
    parser.file(path, [], None)
    return DovecotConfig(path, parser.settings)


def detect(source: Source, path: str) -> str | None:
    if posixpath.basename(path) == "dovecot.conf" and not source.is_dir(path):
        return path
    candidate = posixpath.join(path, "dovecot.conf")
    return candidate if source.read(candidate) is not None else None
