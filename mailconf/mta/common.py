"""What several backends render the same way: the mail store's directories, the commands of a daemon known by
its PID file, and whether a daemontools service is up."""

from __future__ import annotations

from mailconf.render import Directory
from mailconf.site.model import Site


def mail_store_directories(site: Site) -> list[Directory]:
    """The mbox spool, and the virtual mailboxes' root (owned by the virtual uid/gid) when there are any."""
    directories = [Directory(site.mailbox.spool, group="mail", mode=0o2775)]
    if site.virtual_domains:
        uid, gid = str(site.mailbox.virtual_uid), str(site.mailbox.virtual_gid)
        directories.append(Directory(site.mailbox.virtual_root, owner=uid, group=gid, mode=0o770))
    return directories


def pid_file_commands(name: str, pid_file: str) -> dict[str, list[str]]:
    """reload (SIGHUP), status and stop of a daemon known by its PID file. Status asks whether the file's process
    is `name`: a stale PID file may name another process by now."""
    pid = f"$(head -n1 {pid_file})"
    return {
        "reload": [f"kill -HUP {pid}"],
        "status": [f"grep -qs {name} /proc/{pid}/cmdline"],
        "stop": [f"kill {pid}"],
    }


def svstat_up(directory: str) -> str:
    """Whether the daemontools service in `directory` is up (svok only says that its supervise runs)."""
    return f"svstat {directory} | grep -q ': up '"
