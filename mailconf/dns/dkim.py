"""DKIM keys: where they live (DIR/SELECTOR.DOMAIN.key, mode 0600, and .pub), making them with openssl, and
the public key a TXT record publishes (base64 of the DER SubjectPublicKeyInfo, the body of the .pub PEM)."""

from __future__ import annotations

import base64
import binascii
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mailconf.errors import fail
from mailconf.site import LoadedSite

KEY_BITS = 2048


@dataclass(frozen=True)
class KeyFiles:
    private: Path
    public: Path


def key_files(loaded: LoadedSite, selector: str, domain: str) -> KeyFiles:
    directory = loaded.path.parent / loaded.site.dns.dkim_keys  # an absolute dkim_keys stays absolute
    return KeyFiles(directory / f"{selector}.{domain}.key", directory / f"{selector}.{domain}.pub")


def public_key(loaded: LoadedSite, selector: str, domain: str) -> str | None:
    """The base64 public key for the `p=` tag, or None while no key exists."""
    files = key_files(loaded, selector, domain)
    if files.public.exists():
        pem = files.public.read_bytes()
    elif files.private.exists():
        pem = _openssl(["pkey", "-in", str(files.private), "-pubout"])
    else:
        return None
    body = b"".join(line for line in pem.splitlines() if line and not line.startswith(b"-----"))
    try:
        base64.b64decode(body, validate=True)
    except binascii.Error:
        raise fail(str(files.public), "not a PEM public key", "make a new key: mailconf dkim-keygen --force") from None
    return body.decode("ascii")


def dkim_text(key: str) -> str:
    return f"v=DKIM1; k=rsa; p={key}"


def published_key(text: str) -> str | None:
    """The `p=` of a DKIM TXT record (whitespace removed), None when the record has none."""
    for tag in text.split(";"):
        name, _, value = tag.partition("=")
        if name.strip() == "p":
            return "".join(value.split())
    return None


def keygen(loaded: LoadedSite, selectors: list[str], force: bool = False) -> list[tuple[KeyFiles, bool]]:
    """A key per domain and selector; each with whether it was made (False: it existed and was kept)."""
    made = []
    for domain in loaded.site.domains:
        for selector in selectors:
            files = key_files(loaded, selector, domain.name)
            made.append((files, generate(files, force)))
    return made


def generate(files: KeyFiles, force: bool = False) -> bool:
    """Make an RSA key pair; False (and nothing touched) when the key exists and `force` is off."""
    if files.private.exists() and not force:
        return False
    files.private.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    private = _openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{KEY_BITS}"])
    public = _openssl(["pkey", "-pubout"], private)
    _write(files.private, private, 0o600)
    _write(files.public, public, 0o644)
    return True


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write beside the target and rename, so that a reader never sees half a key and the mode holds from byte one."""
    temporary = path.with_name(f".{path.name}.new")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not widen or narrow it
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def _openssl(args: list[str], stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=False)
    except FileNotFoundError:
        raise fail("openssl", "the openssl program is not installed", "apt-get install openssl") from None
    if done.returncode:
        raise fail("openssl", f"openssl {args[0]} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout
