"""Sendmail offers PLAIN or LOGIN authentication without requiring TLS first (confAUTH_OPTIONS lacks `p`).

PASSING:
--- sendmail.mc
define(`confAUTH_MECHANISMS', `PLAIN LOGIN')dnl
define(`confAUTH_OPTIONS', `A p y')dnl
FAILING:
--- sendmail.mc
define(`confAUTH_MECHANISMS', `PLAIN LOGIN')dnl
TRUST_AUTH_MECH(`PLAIN LOGIN')dnl
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.sendmail import SendmailConfig

ID = "MC306"
PROGRAM = "sendmail"
SEVERITY = "error"
RELAY = False
MESSAGE = "passwords are accepted in clear"
HINT = "define(`confAUTH_OPTIONS', `A p y') so PLAIN and LOGIN need TLS"


def check(config: SendmailConfig) -> Iterator[tuple[Location, str]]:
    defines = config.defines()
    mechanisms = defines.get("confAUTH_MECHANISMS")
    words = mechanisms.arg(1).upper().split() if mechanisms else []
    if not {"PLAIN", "LOGIN"} & set(words):
        return
    options = defines.get("confAUTH_OPTIONS")
    if options is None or "p" not in options.arg(1).replace(",", " ").split():
        assert mechanisms is not None
        yield (options or mechanisms).location, "PLAIN/LOGIN without confAUTH_OPTIONS `p`"
