"""Postfix: main.cf (logical lines, continuation lines, comments between them) and master.cf with `-o` overrides."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from mailconf.errors import Location
from mailconf.lint.core import Aliases, Delivery, Setting, Source, parse_error, read_aliases, under_etc

DEFAULT_RELAY_RESTRICTIONS = "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"
# Defaults of Postfix 3.7 that the rules depend on; the ones that change with compatibility_level are computed.
DEFAULTS = {
    "compatibility_level": "0",
    "smtpd_recipient_restrictions": "",
    "smtpd_sasl_auth_enable": "no",
    "smtpd_tls_auth_only": "no",
    "smtpd_tls_security_level": "",
    "smtpd_tls_wrappermode": "no",
    "smtpd_sasl_security_options": "noanonymous",
    "allow_percent_hack": "yes",
    "swap_bangpath": "yes",
    "allow_untrusted_routing": "no",
    "relayhost": "",
    "permit_mx_backup_networks": "",
    "smtpd_restriction_classes": "",
    "smtpd_authorized_xclient_hosts": "",
    "home_mailbox": "",
    "mail_spool_directory": "/var/mail",
    "mailbox_command": "",
    "mailbox_transport": "",
    "alias_maps": "hash:/etc/aliases",
}
VARIABLE = re.compile(r"^\$(?:\{(\w+)\}|\((\w+)\)|(\w+))$")


def logical_lines(text: str, path: str) -> Iterator[list[tuple[int, str]]]:
    """Postfix's logical lines: a line starting with whitespace continues the one before; comment lines and
    empty lines are skipped, also between continuation lines."""
    current: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if line[0].isspace():
            if not current:
                raise parse_error(
                    path, number, "continuation line without a line to continue", "remove the leading whitespace"
                )
            current.append((number, stripped))
            continue
        if current:
            yield current
        current = [(number, stripped)]
    if current:
        yield current


@dataclass
class Service:
    """A master.cf entry; `overrides` are its `-o name=value` options."""

    name: str
    kind: str
    command: str
    location: Location
    overrides: dict[str, Setting] = field(default_factory=dict)


@dataclass
class PostfixConfig:
    directory: str
    main_file: str
    main: dict[str, Setting]
    services: list[Service]
    source: Source
    aliases: Aliases | None = None

    def get(self, name: str, service: Service | None = None) -> Setting | None:
        if service is not None and name in service.overrides:
            return service.overrides[name]
        return self.main.get(name)

    def value(self, name: str, service: Service | None = None) -> str:
        setting = self.get(name, service)
        if setting is not None:
            return setting.value
        return self.default(name)

    def default(self, name: str) -> str:
        modern = self.compatibility() >= (1,)
        if name == "smtpd_relay_restrictions":
            return DEFAULT_RELAY_RESTRICTIONS if modern else ""
        if name == "mynetworks_style":
            return "host" if self.compatibility() >= (2,) else "subnet"
        if name == "relay_domains":
            return "" if self.compatibility() >= (2,) else "$mydestination"
        return DEFAULTS.get(name, "")

    def compatibility(self) -> tuple[int, ...]:
        setting = self.main.get("compatibility_level")
        numbers = re.findall(r"\d+", setting.value) if setting else []
        return tuple(int(n) for n in numbers[:3]) if numbers else (0,)

    def where(self, name: str, service: Service | None = None) -> Location:
        """Where a setting is written, or main.cf itself when Postfix's default applies."""
        setting = self.get(name, service)
        return setting.location if setting else Location(self.main_file)

    def is_yes(self, name: str, service: Service | None = None) -> bool:
        return self.value(name, service).strip().lower() in ("yes", "true", "1")

    def delivery(self) -> Delivery | None:
        """Where local delivery puts mail; None when a command or transport (an LDA, LMTP) takes over."""
        if self.value("mailbox_command") or self.value("mailbox_transport"):
            return None
        home = self.value("home_mailbox").strip()
        if home:
            kind = "maildir" if home.endswith("/") else "mbox"
            return Delivery(kind, "~/" + home.rstrip("/"), self.where("home_mailbox"))
        return Delivery("mbox", self.value("mail_spool_directory").rstrip("/"), self.where("mail_spool_directory"))

    def _aliases(self) -> Aliases | None:
        etc = posixpath.dirname(self.directory.rstrip("/"))
        for item in self.tokens("alias_maps"):
            kind, _, path = item.name.partition(":")
            local = under_etc(etc, path) if kind in ("hash", "lmdb", "btree", "cdb", "dbm", "texthash") else None
            found = read_aliases(self.source, local) if local else None
            if found:
                return found
        return None

    def smtpd_services(self) -> list[Service | None]:
        """Every service that runs smtpd (None: master.cf is missing, so main.cf alone applies)."""
        if not self.services:
            return [None]
        return [s for s in self.services if s.command == "smtpd"]

    def tokens(self, name: str, service: Service | None = None) -> list[Setting]:
        """A list-valued parameter split into its items; `$name` items are expanded (each item keeps the
        location where it was written)."""
        setting = self.get(name, service)
        location = setting.location if setting else Location(self.main_file)
        return self._expand(self.value(name, service), location, service, depth=0)

    def _expand(self, value: str, location: Location, service: Service | None, depth: int) -> list[Setting]:
        items: list[Setting] = []
        for word in re.split(r"[\s,]+", value.strip()):
            if not word:
                continue
            match = VARIABLE.match(word)
            if match and depth < 8:
                name = next(g for g in match.groups() if g)
                inner = self.get(name, service)
                if inner is not None:
                    items += self._expand(inner.value, inner.location, service, depth + 1)
                    continue
            items.append(Setting(word, "", location))
        return items


def parse_main(text: str, path: str) -> dict[str, Setting]:
    settings: dict[str, Setting] = {}
    for lines in logical_lines(text, path):
        number, first = lines[0]
        name, equals, value = first.partition("=")
        name = name.strip()
        if not equals or not re.fullmatch(r"[\w./-]+", name):
            raise parse_error(
                path,
                number,
                f"expected `name = value`, got {first[:60]!r}",
                "main.cf holds one `parameter = value` per line; see postconf(5)",
            )
        value = " ".join([value.strip(), *(text for _, text in lines[1:])]).strip()
        settings[name] = Setting(name, value, Location(path, number))
    return settings


def parse_master(text: str, path: str) -> list[Service]:
    services = []
    for lines in logical_lines(text, path):
        words = [(number, word) for number, line in lines for word in line.split()]
        number = lines[0][0]
        if len(words) < 8:
            raise parse_error(
                path,
                number,
                "a master.cf service needs 8 fields: service type private unpriv chroot wakeup maxproc command",
                "see master(5)",
            )
        service = Service(words[0][1], words[1][1], words[7][1], Location(path, number))
        args = words[8:]
        i = 0
        while i < len(args):
            if args[i][1] == "-o" and i + 1 < len(args):
                option_line, option = args[i + 1]
                i += 2
                if option.startswith("{"):  # -o { name = value with spaces }
                    while not option.rstrip().endswith("}") and i < len(args):
                        option += " " + args[i][1]
                        i += 1
                    option = option.strip().removeprefix("{").removesuffix("}")
                name, _, value = option.partition("=")
                service.overrides[name.strip()] = Setting(name.strip(), value.strip(), Location(path, option_line))
            else:
                i += 1
        services.append(service)
    return services


def read(source: Source, directory: str, options: object = None) -> PostfixConfig:
    main_file = posixpath.join(directory, "main.cf")
    main_text = source.read(main_file)
    if main_text is None:
        raise parse_error(main_file, 0, "main.cf is missing", "point at the directory that holds main.cf")
    master_file = posixpath.join(directory, "master.cf")
    master_text = source.read(master_file)
    services = parse_master(master_text, master_file) if master_text is not None else []
    config = PostfixConfig(directory, main_file, parse_main(main_text, main_file), services, source)
    config.aliases = config._aliases()
    return config


def detect(source: Source, path: str) -> str | None:
    if posixpath.basename(path) in ("main.cf", "master.cf") and not source.is_dir(path):
        return posixpath.dirname(path)
    return path if source.read(posixpath.join(path, "main.cf")) is not None else None
