"""users/cdb from users/assign (mailconf's qmail-newu), proven by the real cdb tools of Debian's freecdb: cdbdump
and cdbget read what we write, and cdbmake writes the very same bytes from the same records."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
import realprogs
from corpus import write_site
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailconf.mta.qmail import Qmail
from mailconf.mta.qmail_users import cdb_bytes, users_cdb
from mailconf.render import Target, write_tree
from mailconf.site import load_site

REPO = Path(__file__).parent.parent
Records = list[tuple[bytes, bytes]]

ASSIGN = (
    "+vmail-virtual.example-:vmail:2000:2000:/srv/mail/virtual.example:-::\n"
    "+vmail-other_net.example-:vmail:2000:2000:/srv/mail/other-net.example:-::\n"
    "=Joe:joe:1000:1001:/home/joe:::\n"
    ".\n"
)
# What qmail-newu makes of ASSIGN, written out by hand.
ASSIGN_RECORDS: Records = [
    (b"!vmail-virtual.example-", b"vmail\x002000\x002000\x00/srv/mail/virtual.example\x00-\x00"),
    (b"!vmail-other_net.example-", b"vmail\x002000\x002000\x00/srv/mail/other-net.example\x00-\x00"),
    (b"!joe\0", b"joe\x001000\x001001\x00/home/joe\x00\x00"),
    (b"", b"-"),
]


def dump_format(records: Records) -> bytes:
    """cdbmake's input and cdbdump's output: +klen,dlen:key->data per record, then an empty line."""
    return b"".join(b"+%d,%d:%s->%s\n" % (len(k), len(d), k, d) for k, d in records) + b"\n"


def cdbdump(cdb: Path) -> bytes:
    with cdb.open("rb") as f:
        done = subprocess.run([realprogs.require("cdbdump")], stdin=f, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def cdbget(cdb: Path, key: bytes, skip: int = 0) -> bytes | None:
    """The data of the (skip+1)th record with ``key`` (None if there is none); freecdb's cdbget takes no empty key."""
    argv = [realprogs.require("cdbget"), key, *([str(skip)] if skip else [])]
    with cdb.open("rb") as f:
        done = subprocess.run(argv, stdin=f, capture_output=True, timeout=60)
    assert done.returncode in (0, 100), done.stderr
    return done.stdout if done.returncode == 0 else None


def cdbmake(records: Records, directory: Path) -> bytes:
    cdb = directory / "made.cdb"
    argv = [realprogs.require("cdbmake"), cdb, directory / "made.tmp"]
    done = subprocess.run(argv, input=dump_format(records), capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return cdb.read_bytes()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def check_with_real_tools(records: Records, directory: Path) -> None:
    """cdbdump lists every record in order, cdbget finds each value (duplicates by skip), cdbmake agrees bytewise."""
    ours = cdb_bytes(records)
    cdb = write(directory / "ours.cdb", ours)
    assert cdbdump(cdb) == dump_format(records)
    seen: dict[bytes, int] = {}
    for key, data in records:
        skip = seen[key] = seen.get(key, -1) + 1
        if key and b"\0" not in key:  # argv cannot hold either
            assert cdbget(cdb, key, skip) == data, (key, skip)
    for key in seen:
        if key and b"\0" not in key:
            assert cdbget(cdb, key, seen[key] + 1) is None, key
    assert ours == cdbmake(records, directory)


# ------------------------------------------------------------------------------------------ the cdb writer

keys = st.one_of(st.binary(max_size=12), st.sampled_from([b"dup", b"-x", b"!joe\0", b"", b"a b"]))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.tuples(keys, st.binary(max_size=40)), max_size=60))
def test_real_cdbdump_cdbget_and_cdbmake_agree_with_cdb_bytes(records: Records, tmp_path: Path) -> None:
    check_with_real_tools(records, tmp_path)


def test_thousands_of_records_with_crowded_tables_are_byte_identical_to_cdbmake(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    records = [(rng.randbytes(rng.randrange(0, 6)), rng.randbytes(rng.randrange(0, 30))) for _ in range(5000)]
    records += records[:50]  # duplicate keys (and whole records)
    cdb = write(tmp_path / "ours.cdb", cdb_bytes(records))
    assert cdbdump(cdb) == dump_format(records)
    assert cdb.read_bytes() == cdbmake(records, tmp_path)
    for key, _ in records[:200]:
        if key and b"\0" not in key:
            assert cdbget(cdb, key) == next(d for k, d in records if k == key)


def test_an_empty_database_is_the_one_cdbmake_writes(tmp_path: Path) -> None:
    assert cdb_bytes([]) == cdbmake([], tmp_path)
    assert len(cdb_bytes([])) == 2048


# ------------------------------------------------------------------------------------------ users/assign


def test_users_cdb_holds_the_wildcards_the_exact_address_and_the_wildchars(tmp_path: Path) -> None:
    ours = users_cdb(ASSIGN)
    cdb = write(tmp_path / "cdb", ours)
    assert cdbdump(cdb) == dump_format(ASSIGN_RECORDS)
    assert cdbget(cdb, b"!vmail-virtual.example-") == ASSIGN_RECORDS[0][1]
    assert cdbget(cdb, b"!vmail-other_net.example-") == ASSIGN_RECORDS[1][1]
    assert cdbget(cdb, b"!Joe") is None and cdbget(cdb, b"!joe") is None  # an = key is lowercased and ends in NUL
    assert ours == cdbmake(ASSIGN_RECORDS, tmp_path)


def test_wildchars_are_each_prefix_s_last_character_once_in_first_seen_order(tmp_path: Path) -> None:
    assign = "".join(f"+{loc}:u:1:1:/h:-::\n" for loc in ("list.", "vmail-a-", "ann_", "", "B.", "vmail-b-", "X", "x"))
    cdb = write(tmp_path / "cdb", users_cdb(assign + ".\n"))
    dumped = cdbdump(cdb).splitlines()
    assert dumped[-2:] == [b"+0,5:->.-_Xx", b""]  # "" adds nothing; X and x are both kept (case as written)
    assert b"+1,11:!->u\x001\x001\x00/h\x00-\x00" in dumped  # the empty prefix: every address
    assert cdbget(cdb, b"!b.") == b"u\x001\x001\x00/h\x00-\x00"  # the key is lowercased, the wildchar is not


def test_data_stops_at_the_sixth_colon_and_reading_stops_at_the_first_line_starting_with_a_dot(tmp_path: Path) -> None:
    assign = "=a:u:1:2:/h:-:ext:ignored:more\n=:u:1:2:/h:::\nnot-plus:u:1:2:/h:::\n.end\n=b:u:1:2:/h:::\n"
    cdb = write(tmp_path / "cdb", users_cdb(assign))
    expected = [
        (b"!a\0", b"u\x001\x002\x00/h\x00-\x00ext"),
        (b"!\0", b"u\x001\x002\x00/h\x00\x00"),  # qmail-newu accepts an empty local part
        (b"!ot-plus\0", b"u\x001\x002\x00/h\x00\x00"),  # neither = nor +: read as = (the first character dropped)
        (b"", b""),
    ]
    assert cdbdump(cdb) == dump_format(expected)


def render_virtual_site(directory: Path) -> Path:
    site = write_site("virtual-only", directory)
    root = directory / "root"
    target = Target(root=str(root), site_name=site.name)
    write_tree(Qmail().render(load_site(site), target), root, target, {"mta": "qmail"})
    return root


def test_the_users_assign_of_a_rendered_virtual_site_builds_with_the_entry_point(tmp_path: Path) -> None:
    root = render_virtual_site(tmp_path)
    assign = root / "var/qmail/users/assign"
    assert assign.read_text().endswith("\n.\n")
    with assign.open("rb") as f:
        done = subprocess.run(
            [sys.executable, "-m", "mailconf.mta.qmail_users"], stdin=f, capture_output=True, cwd=REPO, timeout=60
        )
    assert done.returncode == 0 and done.stderr == b"", done.stderr
    cdb = write(root / "var/qmail/users/cdb", done.stdout)
    assert done.stdout == users_cdb(assign.read_text())
    for domain in ("virtual.example", "other.example"):
        home = f"{root}/srv/mail/{domain}".encode()
        assert cdbget(cdb, f"!vmail-{domain}-".encode()) == b"vmail\x002000\x002000\x00" + home + b"\x00-\x00"
    dumped = cdbdump(cdb)
    assert dumped.endswith(b"+0,1:->-\n\n") and dumped.count(b"\n+") == 2
    records = [(b"!vmail-virtual.example-", cdbget(cdb, b"!vmail-virtual.example-") or b"")]
    records += [(b"!vmail-other.example-", cdbget(cdb, b"!vmail-other.example-") or b""), (b"", b"-")]
    assert done.stdout == cdbmake(records, tmp_path)


# ------------------------------------------------------------------------------------------ format errors

FORMAT_ERRORS = {
    "no final dot": ("+a-:u:1:1:/h:-::\n", "line 2", "single dot is missing"),
    "empty file": ("", "line 1", "single dot is missing"),
    "last line without newline": ("=a:u:1:1:/h:::\n=b:u:1:1:/h:::", "line 2", "newline"),
    "no colon": ("=a:u:1:1:/h:::\n+nocolon\n.\n", "line 2", "no colon"),
    "too few fields": ("=a:u:1:1:/h:::\n=b:u:1:1:/h::\n.\n", "line 2", "5 colons"),
    "colon first": (":u:1:1:/h:::\n.\n", "line 1", "starts with a colon"),
    "NUL byte": ("=a:u:1:1:/h:::\n=b\0:u:1:1:/h:::\n.\n", "line 2", "NUL"),
}


@pytest.mark.parametrize("name", FORMAT_ERRORS)
def test_a_format_error_names_the_line(name: str) -> None:
    assign, line, what = FORMAT_ERRORS[name]
    with pytest.raises(ValueError) as error:
        users_cdb(assign)
    assert str(error.value).startswith(f"{line}:") and what in str(error.value), error.value


def test_the_entry_point_exits_111_with_the_message_on_a_format_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mailconf.mta.qmail_users"],
        input=b"=a:u:1:1:/h:::\n+nocolon\n.\n",
        capture_output=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 111 and done.stdout == b""
    assert done.stderr == b"qmail-newu: line 2: no colon\n"
