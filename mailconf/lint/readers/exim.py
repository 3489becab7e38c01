"""Exim: exim4.conf, exim.conf, exim4.conf.template or Debian's split conf.d/ (read in update-exim4.conf's
order), with macros, `.include`, `.ifdef`/`.ifndef`, continuation lines and Exim's list syntax."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from mailconf.errors import Location
from mailconf.lint.core import Aliases, Setting, Source, parse_error, read_aliases

MAIN_FILES = ("exim4.conf", "exim.conf", "exim4.conf.template", "configure")
SPLIT_ORDER = ("main", "acl", "router", "transport", "retry", "rewrite", "auth")
VERBS = {"accept", "deny", "require", "defer", "discard", "drop", "warn"}
MACRO = re.compile(r"^([A-Z][A-Za-z0-9_]*)\s*==?\s*(.*)$")
MACRO_NAME = re.compile(r"\b[A-Z][A-Za-z0-9_]*\b")
LIST_KINDS = ("domainlist", "hostlist", "addresslist", "localpartlist")
MAX_FILES = 300
MAX_LINE = 100_000  # macros that expand into themselves must not eat the machine


@dataclass
class Statement:
    verb: str
    location: Location
    conditions: list[Setting] = field(default_factory=list)

    def get(self, name: str) -> list[Setting]:
        return [c for c in self.conditions if c.name == name]


@dataclass
class Driver:
    name: str
    location: Location
    options: dict[str, Setting] = field(default_factory=dict)


@dataclass
class EximConfig:
    root: str
    main: dict[str, Setting]
    lists: dict[str, Setting]  # named lists: name -> its list text
    acls: dict[str, list[Statement]]
    drivers: dict[str, list[Driver]]  # section (routers, transports, authenticators) -> drivers
    aliases: Aliases | None = None

    def option(self, name: str) -> str:
        setting = self.main.get(name)
        return setting.value if setting else ""


def split_list(text: str) -> list[str]:
    """An Exim list: colon-separated (`::` is a literal colon), or `<X` to choose another separator X."""
    text = text.strip()
    separator = ":"
    if len(text) > 1 and text[0] == "<" and not text[1].isalnum() and not text[1].isspace():
        separator, text = text[1], text[2:]
    items, current, i = [], "", 0
    while i < len(text):
        if text[i] == separator:
            if text[i + 1 : i + 2] == separator:
                current += separator
                i += 2
                continue
            items.append(current.strip())
            current = ""
        else:
            current += text[i]
        i += 1
    items.append(current.strip())
    return [item for item in items if item]


class _Preprocessor:
    """Turns the files into logical lines with their locations: includes read, conditionals and macros applied."""

    def __init__(self, source: Source, home: str):
        self.source, self.home = source, home
        self.macros: dict[str, str] = {}
        self.lines: list[tuple[Location, str]] = []
        self.conditions: list[tuple[bool, bool, Location]] = []  # (active, a branch was taken, where)
        self.files = 0

    def active(self) -> bool:
        return all(active for active, _, _ in self.conditions)

    def file(self, path: str, opened_at: Location | None = None) -> None:
        self.files += 1
        if self.files > MAX_FILES:
            where = opened_at or Location(path)
            raise parse_error(where.file, where.line, "too many included files (an include loop?)")
        text = self.source.read(path)
        if text is None:
            where = opened_at or Location(path)
            raise parse_error(
                where.file, where.line, f"cannot read {path}", "use .include_if_exists for optional files"
            )
        pending: tuple[int, str] | None = None
        for number, raw in enumerate(text.splitlines(), 1):
            stripped = raw.strip()
            if stripped.startswith("#") or (not stripped and pending is None):
                continue
            start, joined = pending if pending else (number, "")
            joined += stripped
            if joined.endswith("\\"):
                pending = (start, joined[:-1])
                continue
            pending = None
            self.logical(Location(path, start), joined)
        if pending:
            self.logical(Location(path, pending[0]), pending[1])

    def logical(self, where: Location, line: str) -> None:
        if not line:
            return
        if line.startswith("."):
            self.directive(where, line)
        elif not self.active():
            return
        elif match := MACRO.match(line):
            self.macros[match[1]] = self.expand(match[2], where)
        elif expanded := self.expand(line, where).strip():  # a macro may expand to nothing
            self.lines.append((where, expanded))

    def directive(self, where: Location, line: str) -> None:
        word, _, argument = line.partition(" ")
        argument = argument.strip()
        if word in (".ifdef", ".ifndef"):
            defined = argument in self.macros
            truth = defined if word == ".ifdef" else not defined
            self.conditions.append((truth, truth, where))
        elif word in (".elifdef", ".elifndef", ".else"):
            if not self.conditions:
                raise parse_error(where.file, where.line, f"{word} without .ifdef")
            _, taken, opened = self.conditions.pop()
            truth = True if word == ".else" else (argument in self.macros) == (word == ".elifdef")
            self.conditions.append((truth and not taken, taken or truth, opened))
        elif word == ".endif":
            if not self.conditions:
                raise parse_error(where.file, where.line, ".endif without .ifdef")
            self.conditions.pop()
        elif word in (".include", ".include_if_exists"):
            if self.active():
                self.include(where, word, self.expand(argument, where))
        elif self.active():
            raise parse_error(where.file, where.line, f"unknown directive {word}")

    def include(self, where: Location, word: str, target: str) -> None:
        if target.startswith("/etc/exim4/") and self.home:  # the config's own directory, wherever it is
            target = posixpath.join(self.home, target.removeprefix("/etc/exim4/"))
        target = posixpath.join(posixpath.dirname(where.file), target)
        if word == ".include_if_exists" and self.source.read(target) is None:
            return
        self.file(target, where)

    def expand(self, line: str, where: Location | None = None) -> str:
        for _ in range(10):
            expanded = MACRO_NAME.sub(lambda m: self.macros.get(m[0], m[0]), line)
            if expanded == line:
                break
            if len(expanded) > MAX_LINE:
                at = where or Location("exim config")
                raise parse_error(at.file, at.line, "macros expand to an endless line (a macro that names itself?)")
            line = expanded
        return line

    def finish(self) -> None:
        if self.conditions:
            _, _, opened = self.conditions[-1]
            raise parse_error(opened.file, opened.line, ".ifdef/.ifndef without .endif")


def _parse(lines: list[tuple[Location, str]]) -> EximConfig:
    main: dict[str, Setting] = {}
    lists: dict[str, Setting] = {}
    acls: dict[str, list[Statement]] = {}
    drivers: dict[str, list[Driver]] = {}
    section = "main"
    statements: list[Statement] | None = None
    driver: Driver | None = None
    for where, line in lines:
        words = line.split()
        if words[0] == "begin" and len(words) == 2:
            section, statements, driver = words[1], None, None
            continue
        if section != "main" and re.fullmatch(r"[\w-]+:", words[0]) and len(words) == 1:
            name = words[0][:-1]
            if section == "acl":
                statements = acls.setdefault(name, [])
            else:
                driver = Driver(name, where)
                drivers.setdefault(section, []).append(driver)
            continue
        name, equals, value = line.partition("=")
        setting = Setting(name.strip().replace(" ", ""), value.strip(), where, (section,))
        if section == "main":
            kind = words[0].removesuffix("_cache")
            if kind in LIST_KINDS and len(words) > 1 and equals:
                list_name = name.split()[1]
                lists[list_name] = Setting(list_name, value.strip(), where, (kind,))
            elif equals:
                main[setting.name] = setting
        elif section == "acl" and statements is not None:
            if words[0] in VERBS:
                statements.append(Statement(words[0], where))
                rest = line[len(words[0]) :].strip()
                if "=" in rest:
                    cond, _, cond_value = rest.partition("=")
                    statements[-1].conditions.append(
                        Setting(cond.strip().replace(" ", ""), cond_value.strip(), where, ("acl",))
                    )
            elif statements and equals:
                statements[-1].conditions.append(setting)
        elif driver is not None and equals:
            driver.options[setting.name] = setting
    return EximConfig("", main, lists, acls, drivers)


def read(source: Source, root: str, options: object = None) -> EximConfig:
    split = source.is_dir(root)
    home = posixpath.dirname(root.rstrip("/"))
    pre = _Preprocessor(source, home)
    if split:
        for part in SPLIT_ORDER:
            directory = posixpath.join(root, part)
            for name in source.listdir(directory):
                if re.fullmatch(r"[\w-]+", name):  # update-exim4.conf skips names with dots (backups, .dpkg-*)
                    pre.file(posixpath.join(directory, name))
    else:
        pre.file(root)
    pre.finish()
    config = _parse(pre.lines)
    config.root = root
    config.aliases = read_aliases(source, posixpath.join(posixpath.dirname(home), "aliases"))  # /etc/aliases
    return config


def detect(source: Source, path: str) -> str | None:
    if posixpath.basename(path) in MAIN_FILES and not source.is_dir(path):
        return path
    if not source.is_dir(path):
        return None
    names = source.listdir(path)
    if "main" in names and "acl" in names and source.is_dir(posixpath.join(path, "main")):
        return path  # a split conf.d itself
    for name in ("exim4.conf", "exim.conf"):
        if name in names:
            return posixpath.join(path, name)
    conf_d = posixpath.join(path, "conf.d")
    split_wanted = "dc_use_split_config='true'" in (source.read(posixpath.join(path, "update-exim4.conf.conf")) or "")
    if source.is_dir(posixpath.join(conf_d, "main")) and (split_wanted or "exim4.conf.template" not in names):
        return conf_d
    return posixpath.join(path, "exim4.conf.template") if "exim4.conf.template" in names else None
