"""Postfix accepts anonymous SASL logins, and permit_sasl_authenticated then lets anyone relay.

PASSING:
--- main.cf
smtpd_sasl_auth_enable = yes
smtpd_tls_auth_only = yes
smtpd_sasl_security_options = noanonymous, noplaintext
FAILING:
--- main.cf
smtpd_sasl_auth_enable = yes
smtpd_tls_auth_only = yes
smtpd_sasl_security_options = noplaintext
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.postfix import PostfixConfig
from mailconf.lint.rules._postfix import service_label

ID = "MC110"
PROGRAM = "postfix"
SEVERITY = "error"
RELAY = True
MESSAGE = "anonymous SASL logins are allowed"
HINT = "add noanonymous to smtpd_sasl_security_options"


def check(config: PostfixConfig) -> Iterator[tuple[Location, str]]:
    for service in config.smtpd_services():
        options = config.value("smtpd_sasl_security_options", service)
        if config.is_yes("smtpd_sasl_auth_enable", service) and "noanonymous" not in options:
            yield config.where("smtpd_sasl_security_options", service), service_label(service)
