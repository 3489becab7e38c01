"""A minimal asyncio SMTP client: just what the prober says (EHLO, STARTTLS, XCLIENT, MAIL, RCPT, RSET, QUIT)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from collections.abc import Sequence
from dataclasses import dataclass


class Dropped(Exception):
    """The server closed the connection, never answered within the timeout, or sent something that is not SMTP."""


@dataclass(frozen=True)
class Reply:
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    def __str__(self) -> str:
        return f"{self.code} {self.text}".rstrip()


@functools.cache
def unverified_tls() -> ssl.SSLContext:
    """The prober talks to arbitrary servers (self-signed, expired, wrong name): encrypt, verify nothing.

    One shared context, and no CA store loaded: loading it cost ~20 ms per connection.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Connection:
    """One SMTP session; every wait is bounded by ``timeout`` seconds and failures raise :class:`Dropped`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float):
        self.reader, self.writer, self.timeout = reader, writer, timeout
        self.extensions: dict[str, str] = {}
        self.tls: str | None = None

    @classmethod
    async def open(cls, host: str, port: int, timeout: float) -> Connection:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port)
        except TimeoutError:
            raise Dropped(f"connect: no answer within {timeout:g} s") from None
        except OSError as error:
            raise Dropped(f"connect: {error.strerror or error}") from None
        return cls(reader, writer, timeout)

    @property
    def peer_ip(self) -> str:
        return self.writer.get_extra_info("peername")[0]

    @property
    def local_ip(self) -> str:
        return self.writer.get_extra_info("sockname")[0]

    async def reply(self) -> Reply:
        """Read one (possibly multi-line) reply: ``250-...`` lines continue, ``250 ...`` ends it."""
        lines: list[str] = []
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    raw = await self.reader.readline()
                    if not raw:
                        raise Dropped("connection closed by the server")
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if len(line) < 3 or not line[:3].isdigit() or line[3:4] not in ("", " ", "-"):
                        raise Dropped(f"not an SMTP reply: {line[:80]!r}")
                    lines.append(line[4:])
                    if line[3:4] != "-":
                        return Reply(int(line[:3]), tuple(lines))
        except TimeoutError:
            raise Dropped(f"no reply within {self.timeout:g} s") from None
        except (OSError, ValueError, ssl.SSLError) as error:  # ValueError: a line longer than the stream limit
            raise Dropped(f"connection lost: {error}") from None

    async def _send(self, lines: Sequence[str]) -> None:
        try:
            self.writer.write("".join(f"{line}\r\n" for line in lines).encode())
            async with asyncio.timeout(self.timeout):
                await self.writer.drain()
        except TimeoutError:
            raise Dropped(f"could not send within {self.timeout:g} s") from None
        except (OSError, ssl.SSLError) as error:
            raise Dropped(f"connection lost: {error}") from None

    async def command(self, line: str) -> Reply:
        await self._send([line])
        return await self.reply()

    async def commands(self, lines: Sequence[str]) -> list[Reply]:
        """Send several commands in one write when the server offers PIPELINING (RFC 2920), else one by one."""
        if "PIPELINING" not in self.extensions:
            return [await self.command(line) for line in lines]
        await self._send(lines)
        return [await self.reply() for _ in lines]

    async def ehlo(self, name: str) -> Reply:
        """EHLO, falling back to HELO; remembers the extensions the server offers."""
        reply = await self.command(f"EHLO {name}")
        if reply.code // 100 != 2:
            return await self.command(f"HELO {name}")
        self.extensions = {}
        for line in reply.lines[1:]:
            keyword, _, params = line.partition(" ")
            self.extensions[keyword.upper()] = params
        return reply

    async def starttls(self) -> Reply:
        """STARTTLS and the TLS handshake (unverified); the caller must EHLO again."""
        reply = await self.command("STARTTLS")
        if reply.code == 220:
            try:
                async with asyncio.timeout(self.timeout):
                    await self.writer.start_tls(unverified_tls())
            except TimeoutError:
                raise Dropped(f"TLS handshake: no answer within {self.timeout:g} s") from None
            except (OSError, ssl.SSLError) as error:
                raise Dropped(f"TLS handshake failed: {error}") from None
            self.tls = self.writer.get_extra_info("ssl_object").version()
        return reply

    async def close(self, *, polite: bool = True) -> None:
        """QUIT politely (unless the session already failed), then close; never raises."""
        if polite:
            with contextlib.suppress(Dropped):
                await self.command("QUIT")
        self.writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.timeout):
                await self.writer.wait_closed()
