"""Dovecot accepts plaintext logins (PLAIN, LOGIN, USER/PASS) without TLS.

PASSING:
--- dovecot.conf
ssl = required
disable_plaintext_auth = yes
auth_mechanisms = plain login
FAILING:
--- dovecot.conf
ssl = yes
disable_plaintext_auth = no
auth_mechanisms = plain login
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.dovecot import DovecotConfig

ID = "MC501"
PROGRAM = "dovecot"
SEVERITY = "error"
RELAY = False
MESSAGE = "passwords are accepted in clear"
HINT = "set disable_plaintext_auth = yes (Dovecot 2.4: auth_allow_cleartext = no)"


def check(config: DovecotConfig) -> Iterator[tuple[Location, str]]:
    for setting in config.all("disable_plaintext_auth"):
        if setting.value.lower() in ("no", "false", "0"):
            yield setting.location, "disable_plaintext_auth = no"
    for setting in config.all("auth_allow_cleartext"):
        if setting.value.lower() in ("yes", "true", "1"):
            yield setting.location, "auth_allow_cleartext = yes"
