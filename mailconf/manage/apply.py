"""diff, apply and rollback of the installed configs under a root (/ on a real host).

apply: render; refuse files edited by hand (drift) or never written by mailconf, unless forced; render again
into a scratch root and build the maps and run the native checkers there; only then back up the current
files, write a journal, move the new files into place one by one (atomically each), and reload the services.
A failed reload puts the backup back and reloads again. A crash between moves is undone by the journal on the
next apply or rollback.
"""

from __future__ import annotations

import difflib
import json
import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from mailconf.backends import render_programs
from mailconf.manage import files as fs
from mailconf.manage.runner import filter_bytes, run
from mailconf.manage.services import ServiceCommands, detect_init, service_commands
from mailconf.render import SAFE_ROOT, RenderedFile, Rendering, Target, make_directories, manifest, sha256, write_tree
from mailconf.site import LoadedSite

Say = Callable[[str], None]
SETTLE = 1.5  # seconds a daemon gets after a reload before we ask whether it still runs (Postfix waits 1 s
#                before it exits on a fatal error)
KEEP_HINT = (
    "to keep a hand edit, move it into the site description's `overrides:` section (or re-run with --force "
    "to overwrite it; the current file is backed up first)"
)


class ApplyFailed(Exception):
    """A change was refused or undone: the message says what happened and what is on disk now."""


@dataclass
class Planned:
    file: RenderedFile
    data: bytes
    installed: bytes | None
    state: str
    source: str | None = None  # for a built file (sendmail.cf): the rendered file it is built from
    obsolete: bool = False  # no longer rendered: apply deletes it
    program: str | None = None  # of an obsolete file: the program that read it (None: not recorded)

    @property
    def path(self) -> str:
        return self.file.path


@dataclass
class Plan:
    root: Path
    programs: dict[str, str]
    renderings: dict[str, Rendering]  # program -> its rendering (for its service commands)
    target: Target
    files: list[Planned] = field(default_factory=list)
    services: list[ServiceCommands] = field(default_factory=list)
    built: list[Planned] = field(default_factory=list)  # built files apply would replace: edited since, or foreign
    last: dict = field(default_factory=dict)  # the MANIFEST of the last apply ({}: none)

    @property
    def products(self) -> dict[str, str]:
        """Built file -> its sha256 after the last apply."""
        return self.last.get("products", {})

    @property
    def changes(self) -> list[Planned]:
        return [p for p in self.files if p.state != fs.SAME]

    @property
    def blocked(self) -> list[Planned]:
        return [p for p in self.files + self.built if p.state in (fs.DRIFTED, fs.UNMANAGED)]

    def paths_of(self, program: str) -> set[str]:
        """The files a program reads (a change to one of them means reloading it)."""
        runs = [f for s in self.services if s.program == program for f in s.files]
        return {f.path for f in self.renderings[program].files + runs}

    @cached_property
    def rendering(self) -> Rendering:
        return Rendering.combined(self.renderings.values())


def target_for(root: Path, site_name: str) -> Target:
    return Target(root="" if str(root) == "/" else str(root), site_name=site_name)


def programs_for(mta: str, pop_imap: str | None) -> dict[str, str]:
    return {"mta": mta} | ({"pop_imap": pop_imap} if pop_imap and pop_imap != "none" else {})


def make_plan(loaded: LoadedSite, programs: dict[str, str], root: Path, init: str | None = None) -> Plan:
    target = target_for(root, loaded.path.name)
    plan = Plan(root, programs, render_programs(loaded, programs, target), target)
    plan.services = [service_commands(p, init or detect_init(str(root), p), r) for p, r in plan.renderings.items()]
    plan.last = last = fs.load_json(root / fs.STATE) or {}
    previous = {f["path"]: f["sha256"] for f in last.get("files", [])}
    rendered = plan.rendering.files + [f for s in plan.services for f in s.files]
    for file in rendered:
        data = file.text(target.site_name).encode("utf-8")
        installed = fs.read(fs.on_disk(root, file.path))
        state = fs.classify(installed, data, file.comment is not None, previous.get(file.path))
        plan.files.append(Planned(file, data, installed, state))
    for source in plan.changes:  # its built files are built and installed again: were they edited by hand?
        for product in source.file.products:
            installed = fs.read(fs.on_disk(root, product))
            recorded = plan.products.get(product)
            if installed is not None and fs.sha256_bytes(installed) != recorded:
                state = fs.DRIFTED if recorded else fs.UNMANAGED
                plan.built.append(Planned(RenderedFile(product, ""), b"", installed, state, source.path))
    plan.files += _obsolete(root, last, {f.path for f in rendered}, {p for f in rendered for p in f.products})
    return plan


def _obsolete(root: Path, last: dict, rendered: set[str], built: set[str]) -> list[Planned]:
    """The files the last apply wrote (or built) that the site no longer renders: deleted unless edited since."""
    written = {f["path"]: f["sha256"] for f in last.get("files", [])} | last.get("products", {})
    public = {f["path"] for f in last.get("files", []) if f.get("secret") is False}  # else: names only in diffs
    readers = last.get("readers", {})
    gone = []
    for path, recorded in written.items():
        installed = fs.read(fs.on_disk(root, path))
        if path in rendered or path in built or installed is None:
            continue
        state = fs.OBSOLETE if fs.sha256_bytes(installed) == recorded else fs.DRIFTED
        file = RenderedFile(path, "", comment=None, secret=path not in public)
        gone.append(Planned(file, b"", installed, state, obsolete=True, program=readers.get(path)))
    return gone


# ------------------------------------------------------------------------------------------------ diff


def diff(plan: Plan, color: bool = False) -> str:
    """Unified diff, installed -> rendered, of every file that would change (secrets: names only)."""
    out = []
    for p in plan.changes:
        label = f"{p.path} ({p.state})"
        if p.file.secret or b"\0" in (p.installed or b""):
            out.append(f"--- {label}: {'secret' if p.file.secret else 'binary'} file differs, content not shown\n")
            continue
        old = (p.installed or b"").decode("utf-8", "replace").splitlines(keepends=True)
        new = p.data.decode("utf-8").splitlines(keepends=True)
        lines = difflib.unified_diff(old, new, f"installed {p.path}", f"rendered {p.path} ({p.state})")
        out.extend(_color(line) if color else line for line in lines)
    text = "".join(line if line.endswith("\n") else line + "\n" for line in out)
    return text


def _color(line: str) -> str:
    code = {"+": "32", "-": "31", "@": "36"}.get(line[:1])
    if code is None or line.startswith(("+++", "---")):
        return f"\033[1m{line.rstrip(chr(10))}\033[0m\n" if line.startswith(("+++", "---")) else line
    return f"\033[{code}m{line.rstrip(chr(10))}\033[0m\n"


# ------------------------------------------------------------------------------------------------ validation


def _significant(body: str) -> list[str]:
    return [line for line in body.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def validate(loaded: LoadedSite, plan: Plan) -> dict[str, tuple[bytes, RenderedFile]]:
    """Render into a scratch root, build the maps and run every native checker there; return the built files
    for the real root (host path -> bytes, source). Raise ApplyFailed when a tool refuses the new configuration.

    A built file whose source does not mention the root (a map of addresses) is taken from the scratch build;
    one whose source does (sendmail.cf from sendmail.mc) is built again from the real source by its filter."""
    scratch = Path(tempfile.mkdtemp(prefix="mailconf-check-", dir=_temp_parent()))
    try:
        scratch.chmod(0o755)  # the daemons' users must reach their directories during the checks
        target = Target(root=str(scratch), site_name=plan.target.site_name)
        rendering = Rendering.combined(render_programs(loaded, plan.programs, target).values())
        write_tree(rendering, scratch, target, plan.programs, mailboxes=False)
        settled = time.time() - 60  # Postfix's tools wait until main.cf is 2 s old: the scratch copy need not
        for f in rendering.files:
            os.utime(fs.on_disk(scratch, f.path), (settled, settled))
        for f in rendering.files:
            if f.pipe:
                product = fs.on_disk(scratch, f.products[0])
                product.write_bytes(_filtered(f, fs.on_disk(scratch, f.path).read_bytes()))
            elif f.build:
                _run_or_refuse(f.build)
        for command in rendering.commands.get("check", []):
            _run_or_refuse(command)
        built: dict[str, tuple[bytes, RenderedFile]] = {}
        scratch_bodies = {f.path: f.body for f in rendering.files}
        for f in plan.rendering.files:
            if not f.products:
                continue
            if _significant(scratch_bodies[f.path]) == _significant(f.body):
                built |= {path: (fs.on_disk(scratch, path).read_bytes(), f) for path in f.products}
            elif f.pipe:
                built[f.products[0]] = (_filtered(f, f.text(plan.target.site_name).encode("utf-8")), f)
            else:
                raise ApplyFailed(f"{f.path}: its entries depend on --root, so it cannot be built in scratch")
        return built
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _temp_parent() -> str | None:
    """Where scratch directories go: $TMPDIR, unless its path could not be a root (a space in it)."""
    return None if SAFE_ROOT.fullmatch(tempfile.gettempdir()) else "/tmp"


def _run_or_refuse(command: str) -> None:
    status, output = run(command)
    if status != 0:
        raise ApplyFailed(
            f"the new configuration was refused by `{command}` (exit {status}); nothing was changed"
            + (f":\n{output}" if output else "")
        )


def _filtered(file: RenderedFile, data: bytes) -> bytes:
    """The one product of a file with a build filter (its source on stdin), checked by its pipe_check."""
    assert file.pipe is not None
    status, product, errors = filter_bytes(file.pipe, data)
    if status != 0:
        raise ApplyFailed(
            f"building {file.products[0]} from {file.path} failed (`{file.build}`, exit {status}); nothing was changed"
            + (f":\n{errors}" if errors else "")
        )
    if file.pipe_check:
        with tempfile.TemporaryDirectory(prefix="mailconf-built-", dir=_temp_parent()) as folder:
            built = Path(folder) / Path(file.products[0]).name
            built.write_bytes(product)
            _run_or_refuse(file.pipe_check.format(shlex.quote(str(built))))
    return product


# ------------------------------------------------------------------------------------------------ services


@dataclass
class Reloaded:
    failures: list[str] = field(default_factory=list)
    started: list[ServiceCommands] = field(default_factory=list)  # were not running: started, not reloaded


def running(service: ServiceCommands) -> bool | None:
    """Whether the program runs, by its check commands (None: it has none). Partly (qmail-send up, qmail-smtpd
    down) counts as running: it is reloaded, and the checks after the reload say what is down."""
    checks = service.commands.get("check", [])
    return any(run(command)[0] == 0 for command in checks) if checks else None


def reload_services(services: list[ServiceCommands], say: Say, *, start: bool = True) -> Reloaded:
    """Reload each running service; enable and start one that is not running (unless not `start`: rollback
    leaves a service the admin stopped alone); then check they all run."""
    result = Reloaded()
    failures = result.failures
    left_stopped: list[ServiceCommands] = []
    for service in services:
        was_running, reloaded_one = running(service), False
        for command in service.commands.get("reload", []) if was_running is not False else []:
            status, output = run(command)
            if status == 0:
                say(f"reloaded {service.program}: {command}")
            elif was_running or reloaded_one:
                failures.append(f"{service.program}: `{command}` failed (exit {status}): {output}")
            else:
                was_running = False  # no check commands, and its first reload failed: take it as not running
                break
            reloaded_one = True
        if was_running is False and not start:
            say(f"{service.program} is not running: left stopped")
            left_stopped.append(service)
        elif was_running is False:
            result.started.append(service)
            for command in service.commands.get("enable", []) + service.commands.get("start", []):
                status, output = run(command)
                if status == 0:
                    say(f"started {service.program} (it was not running): {command}")  # or enabled it
                else:
                    failures.append(f"{service.program}: `{command}` failed (exit {status}): {output}")
    checks = [(s.program, c) for s in services if s not in left_stopped for c in s.commands.get("check", [])]
    if checks:
        time.sleep(SETTLE)  # a daemon that cannot use its new config may take a moment to die
    for program, command in checks:
        status, _ = run(command)
        if status != 0:
            failures.append(f"{program} is not running after the reload: `{command}` exit {status}")
    return result


def stop_services(services: list[ServiceCommands], say: Say) -> list[str]:
    """Stop services (those a failed apply started: they were not running before it); return failures."""
    failures = []
    for service in services:
        if running(service) is False:
            continue  # it died already
        for command in service.commands.get("stop", []):
            status, output = run(command)
            if status == 0:
                say(f"stopped {service.program} again: {command}")
            else:
                failures.append(f"{service.program}: `{command}` failed (exit {status}): {output}")
    return failures


# ------------------------------------------------------------------------------------------------ apply


def _refuse_what_needs_force(plan: Plan) -> None:
    """ApplyFailed for a change that must not happen without --force: other programs or services than the last
    apply's, or files edited by hand or not written by mailconf."""
    programs, last = plan.programs, plan.last
    before = last.get("programs", programs)
    if before != programs:
        raise ApplyFailed(
            f"the last apply installed {_names(before)}, this one would install {_names(programs)}: the files of "
            "the programs left out would be deleted while they still run; nothing was changed\n"
            "hint: stop (and disable) the programs left out first, then apply again with --force"
        )
    enabled = {s["program"]: s["commands"].get("enable", []) for s in last.get("services", [])}
    moved = [s for s in plan.services if s.program in enabled and enabled[s.program] != s.commands.get("enable", [])]
    if moved:  # another init system, or other services (qmail: one listener per address)
        raise ApplyFailed(
            "the services would change, nothing was changed:\n"
            + "".join(f"  {s.program}: was {enabled[s.program]}, now {s.commands.get('enable', [])}\n" for s in moved)
            + "hint: stop (and disable) the old services first, then apply again with --force"
        )
    if plan.blocked:
        why = {fs.DRIFTED: "edited by hand since the last apply", fs.UNMANAGED: "not written by mailconf"}
        lines = [
            f"  {p.path}: {why[p.state]}"
            + (f" (built from {p.source})" if p.source else "")
            + (" (no longer rendered: apply would delete it)" if p.obsolete else "")
            for p in plan.blocked
        ]
        raise ApplyFailed(
            "refusing to overwrite, nothing was changed:\n"
            + "\n".join(lines)
            + "\n"
            + diff(plan)
            + f"hint: {KEEP_HINT}"
        )


def apply(
    loaded: LoadedSite,
    programs: dict[str, str],
    root: Path,
    *,
    init: str | None = None,
    force: bool = False,
    dry_run: bool = False,
    reload: bool = True,
    say: Say = print,
) -> bool:
    """Install the rendered site under root. True when something changed; ApplyFailed when refused or undone."""
    _recover(root, say)
    plan = make_plan(loaded, programs, root, init)
    if not force:
        _refuse_what_needs_force(plan)
    if not plan.changes:
        say("nothing to change: the installed files match the site description; nothing reloaded")
        return False
    if dry_run:
        say(diff(plan) + f"dry run: {len(plan.changes)} file(s) would change; nothing was changed")
        return False

    built = validate(loaded, plan)
    changed = {p.path for p in plan.changes}
    gone = {p.path for p in plan.changes if p.obsolete}
    products = {
        path: data
        for path, (data, source) in built.items()
        if source.path in changed or not fs.on_disk(root, path).exists()
    }
    state = manifest(plan.rendering, plan.target, programs)
    state["files"] += [
        {"path": f.path, "mode": f"{f.mode:04o}", "sha256": sha256(f.text(plan.target.site_name)), "header": False}
        for s in plan.services
        for f in s.files
    ]
    readers = {f.path: program for program, r in plan.renderings.items() for f in r.files}
    readers |= {f.path: s.program for s in plan.services for f in s.files}
    state["readers"] = readers | {path: readers[source.path] for path, (_, source) in built.items()}
    kept = {path: sha for path, sha in plan.products.items() if path in built and path not in products}
    state["products"] = kept | {path: fs.sha256_bytes(data) for path, data in products.items()}
    state["services"] = [{"program": s.program, "commands": s.commands} for s in plan.services]
    state_bytes = (json.dumps(state, indent=2) + "\n").encode("utf-8")

    # (path, new content or None to delete it, the rendered file it comes from)
    moves: list[tuple[str, bytes | None, RenderedFile]] = [
        (p.path, None if p.obsolete else p.data, p.file) for p in plan.changes
    ]
    moves += [(path, data, built[path][1]) for path, data in products.items()]
    moves.append(("/" + fs.STATE, state_bytes, RenderedFile("/" + fs.STATE, "", comment=None)))
    folder = fs.backup(root, [path for path, _, _ in moves], state)
    # The directories the configs name, before the files go into them (their owners and modes, not root's).
    make_directories(plan.rendering.directories, root, existing=bool(plan.target.root))
    journal = fs.on_disk(root, fs.JOURNAL)
    fs.write_json(journal, {"backup": folder.name, "paths": [path for path, _, _ in moves]})
    try:
        with fs.synced_directories() as synced:
            for path, data, file in moves:
                if data is None:
                    fs.remove(fs.on_disk(root, path), synced=synced)
                else:
                    fs.install(fs.on_disk(root, path), data, file.mode, file.owner, file.group, synced=synced)
    except Exception as error:  # a full disk, say: put the set back now (a crash is left to the journal)
        fs.restore(root, folder)
        fs.unlink_synced(journal)
        raise ApplyFailed(f"installing failed: {error}\nrestored the previous files from {folder}") from None
    fs.unlink_synced(journal)
    say(f"installed {len(moves) - 1} file(s); the previous ones are in {folder}")
    for path in sorted(changed):
        say(f"  {path}" + (" (removed: no longer rendered)" if path in gone else ""))
    if not reload:
        say("not reloaded (--no-reload)")
        return True
    gone_from = {p.program for p in plan.changes if p.obsolete}  # None: an older MANIFEST, reload them all
    touched = [s for s in plan.services if {s.program, None} & gone_from or changed & plan.paths_of(s.program)]
    reloaded = reload_services(touched, say)
    failures = reloaded.failures
    if failures:
        again = stop_services(reloaded.started, say)  # not running before this apply: not after it (stopped
        fs.restore_journaled(root, folder)  #           while the config they run from is still there)
        again += reload_services([s for s in touched if s not in reloaded.started], say).failures
        raise ApplyFailed(
            "the reload failed:\n  "
            + "\n  ".join(failures)
            + f"\nrestored the previous files from {folder}; "
            + ("reloaded them: ok" if not again else "reloading them failed too:\n  " + "\n  ".join(again))
        )
    return True


# ------------------------------------------------------------------------------------------------ rollback


def _names(programs: dict[str, str]) -> str:
    return " + ".join(programs.values())


def _recover(root: Path, say: Say) -> None:
    """Undo an apply a crash interrupted between moves (its journal is there), before anything else."""
    try:
        recovered = fs.recover(root)
    except fs.RecoveryFailed as error:
        raise ApplyFailed(str(error)) from None
    if recovered:
        say(f"recovered from an interrupted apply: restored the files saved in {recovered}")


def rollback(root: Path, to: str | None = None, *, reload: bool = True, say: Say = print) -> Path:
    """Restore the latest backup set (or the one whose name starts with `to`) and reload as apply does."""
    _recover(root, say)
    sets = fs.backups(root)
    if to:
        sets = [s for s in sets if s.name.startswith(to)]
    if not sets:
        raise ApplyFailed(f"no backup {'named ' + to + ' ' if to else ''}under {root / fs.BACKUPS}")
    folder = sets[-1]
    undone = _services(fs.load_json(folder / "MANIFEST.json"))  # of the apply being undone
    back = _services(fs.load_json(fs.on_disk(folder / "files", fs.STATE)))  # of the set put back (none: first)
    failures = []
    if reload:  # a program the set put back does not run (its files did not exist): stopped while they do
        failures += stop_services([s for s in undone if s.program not in {b.program for b in back}], say)
    restored = fs.restore_journaled(root, folder)
    say(f"restored {len(restored)} file(s) from {folder}")
    if reload:
        failures += reload_services(back, say, start=False).failures
    if failures:
        raise ApplyFailed("restored, but the reload failed:\n  " + "\n  ".join(failures))
    return folder


def _services(state: dict | None) -> list[ServiceCommands]:
    return [ServiceCommands(s["program"], s["commands"]) for s in (state or {}).get("services", [])]
