"""Postfix accepts SMTP logins (SASL) before TLS: passwords cross the network in clear.

PASSING:
--- main.cf
smtpd_tls_auth_only = yes
--- master.cf
submission inet n       -       y       -       -       smtpd
  -o smtpd_sasl_auth_enable=yes
FAILING:
--- main.cf
smtpd_tls_security_level = may
--- master.cf
submission inet n       -       y       -       -       smtpd
  -o smtpd_sasl_auth_enable=yes
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.postfix import PostfixConfig
from mailconf.lint.rules._postfix import service_label

ID = "MC109"
PROGRAM = "postfix"
SEVERITY = "error"
RELAY = False
MESSAGE = "SASL logins are offered without TLS"
HINT = "set smtpd_tls_auth_only = yes (or smtpd_tls_security_level = encrypt on that service)"


def check(config: PostfixConfig) -> Iterator[tuple[Location, str]]:
    for service in config.smtpd_services():
        if not config.is_yes("smtpd_sasl_auth_enable", service):
            continue
        tls_first = (
            config.is_yes("smtpd_tls_auth_only", service)
            or config.is_yes("smtpd_tls_wrappermode", service)
            or config.value("smtpd_tls_security_level", service) == "encrypt"
            or "noplaintext" in config.value("smtpd_sasl_security_options", service)
        )
        if not tls_first:
            yield config.where("smtpd_sasl_auth_enable", service), service_label(service)
