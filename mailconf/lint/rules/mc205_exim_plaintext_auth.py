"""Exim advertises a plaintext server authenticator (PLAIN, LOGIN) without TLS: passwords in clear.

PASSING:
--- exim4.conf
begin authenticators
plain_server:
  driver = plaintext
  public_name = PLAIN
  server_condition = ${if pam{$auth2:$auth3}}
  server_advertise_condition = ${if eq{$tls_in_cipher}{}{false}{true}}
# a client-side authenticator offers nothing to clients
plain_client:
  driver = plaintext
  public_name = PLAIN
  client_send = ^user^secret
FAILING:
--- exim4.conf
begin authenticators
plain_server:
  driver = plaintext
  public_name = PLAIN
  server_condition = ${if pam{$auth2:$auth3}}
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.exim import EximConfig

ID = "MC205"
PROGRAM = "exim"
SEVERITY = "error"
RELAY = False
MESSAGE = "a plaintext authenticator is offered without TLS"
HINT = "add server_advertise_condition = ${if def:tls_in_cipher}"


def check(config: EximConfig) -> Iterator[tuple[Location, str]]:
    if "tls" in config.option("auth_advertise_hosts"):
        return
    for driver in config.drivers.get("authenticators", []):
        kind = driver.options.get("driver")
        condition = driver.options.get("server_advertise_condition")
        server = "server_condition" in driver.options  # client-side authenticators offer nothing
        if kind and kind.value == "plaintext" and server and not (condition and "tls" in condition.value):
            yield driver.location, driver.name
