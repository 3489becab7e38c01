"""Installed files: what state each one is in, atomic installs, backups and the crash journal."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from mailconf.render import HASH_LINE, HEADER, TEMP_MARK, atomic_write, ensure_directory, sha256

STATE = "var/lib/mailconf/MANIFEST.json"  # the MANIFEST of the last apply, relative to the root
JOURNAL = "var/lib/mailconf/journal.json"  # present only while files are being moved
BACKUPS = "var/backups/mailconf"

NEW, SAME, CHANGED, DRIFTED, UNMANAGED = "new", "same", "changed", "drifted", "unmanaged"
OBSOLETE = "obsolete"  # written by the last apply, no longer rendered (an alias removed from the site): deleted


def on_disk(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def header_body(data: bytes) -> tuple[str, str] | None:
    """(hash from the header, body) of a file mailconf wrote with its generated header, else None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.split("\n", 2)
    marker = HEADER.split("{", 1)[0]
    if len(lines) < 3 or marker not in lines[0] or HASH_LINE not in lines[1]:
        return None
    return lines[1].split(HASH_LINE, 1)[1].strip(), lines[2]


def classify(installed: bytes | None, new: bytes, headered: bool, previous: str | None) -> str:
    """NEW (missing), SAME, CHANGED (mailconf's own file, untouched since), DRIFTED (edited by hand) or
    UNMANAGED (mailconf never wrote it). `previous` is the file's sha256 in the last apply's MANIFEST."""
    if installed is None:
        return NEW
    if installed == new:
        return SAME
    if headered:
        parsed = header_body(installed)
        if parsed is not None:
            return CHANGED if sha256(parsed[1]) == parsed[0] else DRIFTED
    elif previous is not None:
        return CHANGED if sha256_bytes(installed) == previous else DRIFTED
    return DRIFTED if previous is not None else UNMANAGED


def sha256_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def install(
    dest: Path, data: bytes, mode: int, owner: str = "root", group: str = "root", *, synced: set[Path] | None = None
) -> None:
    """Write dest atomically (atomic_write: temp file, fsync, owner and mode, rename), then fsync the dir, or
    add it to `synced` (from synced_directories: each directory is synced once, when the batch is done)."""
    ensure_directory(dest.parent)
    atomic_write(dest, data, mode, owner=owner, group=group)
    if synced is None:
        fsync_dir(dest.parent)
    else:
        synced.add(dest.parent)


def remove(dest: Path, *, synced: set[Path]) -> None:
    """Delete a file mailconf wrote and no longer renders (its directory is synced with the batch)."""
    dest.unlink(missing_ok=True)
    synced.add(dest.parent)


@contextlib.contextmanager
def synced_directories() -> Iterator[set[Path]]:
    """A batch of installs: the directories they renamed files in are fsynced once, at the end (also when the
    batch fails part-way, so that what was moved is on disk before the previous set is put back)."""
    directories: set[Path] = set()
    try:
        yield directories
    finally:
        for directory in sorted(directories):
            fsync_dir(directory)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, data: object) -> None:
    install(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"), 0o644)


def load_json(path: Path) -> dict | None:
    data = read(path)
    return json.loads(data) if data is not None else None


# ------------------------------------------------------------------------------------------------ backups


@dataclass
class Saved:
    path: str  # host path
    existed: bool
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


def backup(root: Path, paths: list[str], manifest: dict) -> Path:
    """Copy the current files (same relative layout) into a new timestamped folder; return the folder."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    folder = root / BACKUPS / stamp
    folder.mkdir(parents=True, mode=0o700)
    os.chmod(folder.parent, 0o700)  # backups hold secrets
    fsync_dir(folder.parent)  # the set must survive a crash as surely as the journal that names it
    saved = []
    with synced_directories() as synced:
        for path in paths:
            source = on_disk(root, path)
            try:
                st = source.stat()
            except FileNotFoundError:
                saved.append(Saved(path, False))
                continue
            install(on_disk(folder / "files", path), source.read_bytes(), st.st_mode & 0o7777, synced=synced)
            saved.append(Saved(path, True, st.st_mode & 0o7777, st.st_uid, st.st_gid))
    write_json(folder / "MANIFEST.json", manifest)
    write_json(folder / "backup.json", {"files": [asdict(s) for s in saved]})  # last: it marks the set complete
    os.sync()  # the new directories of the set too: all of it is on disk before a journal names it
    return folder


def backups(root: Path) -> list[Path]:
    base = root / BACKUPS
    return sorted(p for p in base.iterdir() if (p / "backup.json").is_file()) if base.is_dir() else []


def restore(root: Path, folder: Path) -> list[str]:
    """Put back every file of a backup set (and remove the files that did not exist then)."""
    info = load_json(folder / "backup.json") or {"files": []}
    restored = []
    with synced_directories() as synced:
        for entry in info["files"]:
            saved = Saved(**entry)
            dest = on_disk(root, saved.path)
            if saved.existed:
                data = on_disk(folder / "files", saved.path).read_bytes()
                install(dest, data, saved.mode, str(saved.uid), str(saved.gid), synced=synced)
            else:
                with contextlib.suppress(FileNotFoundError):
                    dest.unlink()
                    synced.add(dest.parent)
            _remove_temp_files(dest)
            restored.append(saved.path)
    return restored


def _remove_temp_files(dest: Path) -> None:
    if dest.parent.is_dir():
        for leftover in dest.parent.glob(f".{dest.name}{TEMP_MARK}*"):
            leftover.unlink(missing_ok=True)


def restore_journaled(root: Path, folder: Path) -> list[str]:
    """restore() under a journal naming the set: a crash half-way is finished by the next recover()."""
    journal = on_disk(root, JOURNAL)
    write_json(journal, {"backup": folder.name, "paths": [], "restoring": True})
    restored = restore(root, folder)
    unlink_synced(journal)
    return restored


def recover(root: Path) -> Path | None:
    """After a crash between moves, put the whole set from before back; return the backup used, if any."""
    journal = on_disk(root, JOURNAL)
    data = load_json(journal)
    if data is None:
        return None
    folder = root / BACKUPS / data["backup"]
    if not (folder / "backup.json").is_file():  # never drop the journal without the set it points to
        raise RecoveryFailed(
            f"an interrupted apply left {journal}, but its backup set {folder} is gone or incomplete: the files "
            f"it names ({', '.join(data.get('paths', []))}) may be a mix of two applies; check them, then delete "
            "the journal"
        )
    restore(root, folder)
    unlink_synced(journal)
    return folder


class RecoveryFailed(Exception):
    """The crash journal cannot be acted on safely."""


def unlink_synced(path: Path) -> None:
    """Delete a file and make the deletion durable (the journal: back after a crash, it would undo an apply)."""
    path.unlink()
    fsync_dir(path.parent)
