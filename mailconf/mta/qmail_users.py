"""qmail-newu in Python: build /var/qmail/users/cdb from /var/qmail/users/assign.

qmail is not packaged in Debian 12, so mailconf cannot run qmail's own qmail-newu; and qmail-newu reads and
writes compiled-in paths (it changes into /var/qmail), so it could not build a file in a sandbox tree anyway.
This module writes the same bytes qmail-newu writes: a constant database (D. J. Bernstein's cdb format) with

- ``!local\\0`` -> ``user\\0uid\\0gid\\0homedir\\0dash\\0ext`` for each ``=local:user:uid:gid:homedir:dash:ext:`` line,
- ``!loc`` -> ``user\\0uid\\0gid\\0homedir\\0dash\\0pre`` for each ``+loc:user:uid:gid:homedir:dash:pre:`` line,
- ``""`` -> the last characters of the wildcard prefixes (qmail-lspawn tries a prefix only where it ends in one),

in the order of the assign file. Like qmail-newu, reading stops at the first line that starts with ``.``, keys
are lowercased (ASCII only) and a line that starts neither with ``=`` nor ``+`` is read as an ``=`` line.

Run as ``python -m mailconf.mta.qmail_users < assign > cdb``; exits 111 (qmail's temporary failure) on a format
error, as qmail-newu does.
"""

from __future__ import annotations

import struct
import sys

HEADER_SIZE = 2048  # 256 (position, slots) pairs of little-endian uint32
_PAIR = struct.Struct("<II")


def cdb_hash(key: bytes) -> int:
    """The cdb hash: start at 5381, then h = ((h << 5) + h) ^ c for each byte, kept to 32 bits."""
    h = 5381
    for c in key:
        h = (((h << 5) + h) & 0xFFFFFFFF) ^ c
    return h


def cdb_bytes(records: list[tuple[bytes, bytes]]) -> bytes:
    """A whole cdb file holding ``records`` (key, data) in the given order; duplicate keys are kept, as cdbmake does."""
    body = bytearray()
    tables: list[list[tuple[int, int]]] = [[] for _ in range(256)]  # per table: (hash, record position)
    for key, data in records:
        h = cdb_hash(key)
        tables[h & 255].append((h, HEADER_SIZE + len(body)))
        body += _PAIR.pack(len(key), len(data)) + key + data
    header = bytearray()
    position = HEADER_SIZE + len(body)
    for entries in tables:
        slots: list[tuple[int, int]] = [(0, 0)] * (2 * len(entries))
        for h, record in entries:
            where = (h >> 8) % len(slots)
            while slots[where][1]:  # a record position is never 0: records start after the header
                where = (where + 1) % len(slots)
            slots[where] = (h, record)
        header += _PAIR.pack(position, len(slots))
        position += 8 * len(slots)
        for slot in slots:
            body += _PAIR.pack(*slot)
    if position > 0xFFFFFFFF:
        raise ValueError("cdb: the database would exceed 4 GiB")
    return bytes(header + body)


def assign_records(assign: str) -> list[tuple[bytes, bytes]]:
    """The (key, data) records qmail-newu makes from users/assign text; ValueError names the bad line."""
    lines = assign.encode().split(b"\n")
    records: list[tuple[bytes, bytes]] = []
    wildchars = bytearray()
    for number, line in enumerate(lines, start=1):
        if line.startswith(b"."):
            break
        if number == len(lines):  # the text after the last newline: qmail-newu needs whole lines up to the "."
            what = (
                "the final line holding a single dot is missing" if not line else "the line does not end in a newline"
            )
            raise ValueError(f"line {number}: {what}")
        if b"\0" in line:
            raise ValueError(f"line {number}: contains a NUL byte")
        colon = line.find(b":")
        if colon == -1:
            raise ValueError(f"line {number}: no colon")
        if colon == 0:
            raise ValueError(f"line {number}: starts with a colon, not = or +")
        local = line[1:colon].lower()  # bytes.lower() is ASCII only, like qmail's case_lowerb
        if line.startswith(b"+"):
            key = b"!" + local
            if colon >= 2 and line[colon - 1] not in wildchars:
                wildchars.append(line[colon - 1])
        else:
            key = b"!" + local + b"\0"
        fields = line[colon + 1 :].split(b":", 6)
        if len(fields) < 7:
            raise ValueError(f"line {number}: {len(fields) - 1} colons after the address, 6 needed")
        records.append((key, b"\0".join(fields[:6])))
    records.append((b"", bytes(wildchars)))
    return records


def users_cdb(assign: str) -> bytes:
    """The users/cdb that qmail-newu writes for the users/assign text ``assign``."""
    return cdb_bytes(assign_records(assign))


def main() -> None:
    """Read users/assign on stdin, write users/cdb on stdout; exit 111 with a message on a format error."""
    try:
        cdb = users_cdb(sys.stdin.buffer.read().decode())
    except ValueError as error:  # UnicodeDecodeError included
        print(f"qmail-newu: {error}", file=sys.stderr)
        sys.exit(111)
    sys.stdout.buffer.write(cdb)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
