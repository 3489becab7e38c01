"""apply on a host (root /, not a --root sandbox), inside a private mount namespace.

Writable overlays over the host's /etc and /var, and a directory of the test bound on /run, make the namespace
a throwaway copy of this machine, with Debian's own configs in place: everything `apply` does to /, it does to
the copy. For Exim and Sendmail their unpacked trees are overlaid on /usr and /etc as in realprogs.ns_argv. One
script runs the whole story in one namespace (the daemons it starts live there) and prints what it saw.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import realprogs
from mailtest import self_signed

# The throwaway host, then the story's helpers: `step NAME` starts a section of the output, `banner` greets.
PRELUDE = r"""
set -u
if [ -n "$TREE" ]; then
    mount -t overlay mailconf-usr -o "lowerdir=$TREE/usr:/usr" /usr
    ETC_LOWER="$NS_ETC:$TREE/etc:/etc"
    hostname "$NS_HOSTNAME"
else
    ETC_LOWER=/etc
fi
mount -t overlay mailconf-etc -o "lowerdir=$ETC_LOWER,upperdir=$UPPER/etc,workdir=$WORK/etc" /etc
mount -t overlay mailconf-var -o "lowerdir=/var,upperdir=$UPPER/var,workdir=$WORK/var" /var
mount --bind "$RUN" /run
step() { echo "== $1"; }
banner() { $PYTHON -c "import smtplib; print(smtplib.SMTP('127.0.0.1', $SMTP, timeout=10).ehlo()[1].decode().split()[0])"; }
"""
STORY = r"""
apply() { $MAILCONF apply -c "$SITE" --mta "$MTA" --pop-imap "$POP_IMAP" --init none "$@" 2>&1; echo "exit $?"; }
step "apply over Debian's configs"; apply
step "apply --force"; apply --force
step "banner"; banner
step "second apply"; apply
step "config"; cat "$CONFIG"
step "rollback"; $MAILCONF rollback 2>&1; echo "exit $?"
step "after rollback"; ls "$CONFIG" 2>&1
"""
SUPERVISED = r"""
mkdir -p /etc/service
svscan /etc/service >/dev/null 2>&1 &
echo $! >/run/svscan.pid
apply() { $MAILCONF apply -c "$SITE" --mta postfix --pop-imap none --init daemontools --force 2>&1; echo "exit $?"; }
step "first apply"; apply
step "svstat"; svstat /etc/service/postfix
step "banner"; banner
sed -i 's/mail.host.test/mx2.host.test/' "$SITE"
step "second apply"; apply
step "banner again"; banner
step "stop"; kill "$(cat /run/svscan.pid)"; svc -dx /etc/service/postfix
for i in 1 2 3 4 5 6 7 8 9 10; do svok /etc/service/postfix || break; sleep 1; done
"""
CASES = {  # MTA: (its unpacked tree, POP/IMAP server, its main config file, a line of it naming the host)
    "postfix": (None, "dovecot", "/etc/postfix/main.cf", "myhostname = mail.host.test"),
    "exim": (realprogs.EXIM_ROOT, "none", "/etc/exim4/exim4.conf", "primary_hostname = mail.host.test"),
    "sendmail": (realprogs.SENDMAIL_ROOT, "none", "/etc/mail/sendmail.cf", "Djmail.host.test"),
}
# Every daemon a story may start, by PID file: in the overlay's upper layer (/var) or the bound /run.
PID_FILES = (
    "upper/var/spool/postfix/pid/master.pid",
    "run/dovecot/master.pid",
    "run/exim4/exim.pid",
    "run/sendmail/mta/sendmail.pid",
    "run/svscan.pid",
)


@dataclass
class Story:
    output: str
    base: Path  # the (removed) directory that held the layers
    tls: Path  # the site's certificate and key are in here, outside the layers


def tell(story: str, tree: Path | None = None, **env: str) -> Story:
    """Run PRELUDE + story in a throwaway host; the site (mail.host.test, SMTP on a free loopback port) is $SITE."""
    with realprogs.open_tmpdir("mailconf-host-") as base:
        for layer in ("upper/etc", "upper/var", "work/etc", "work/var", "run"):
            (base / layer).mkdir(parents=True)
        cert, key = self_signed(base / "tls")
        smtp = realprogs.free_port()
        site = base / "site.yaml"
        site.write_text(
            f"host:\n  name: mail.host.test\n  listen: [127.0.0.1]\n  ports: {{smtp: {smtp}, submission: false, "
            "smtps: false, pop3: false, pop3s: false, imap: false, imaps: false}\ndomains: [host.test]\n"
            f"users: [nobody]\npostmaster: nobody\ntls:\n  cert: {cert}\n  key: {key}\n"
        )
        env |= {
            "TREE": str(tree or ""),
            "NS_ETC": str(realprogs._ns_etc()),
            "NS_HOSTNAME": realprogs.NS_HOSTNAME,
            "UPPER": str(base / "upper"),
            "WORK": str(base / "work"),
            "RUN": str(base / "run"),
            "SITE": str(site),
            "SMTP": str(smtp),
            "PYTHON": shlex.quote(sys.executable),
            "MAILCONF": f"{shlex.quote(sys.executable)} -m mailconf",
        }
        unshare = [realprogs.PROGRAMS["unshare"], "--mount", "--uts", "--propagation", "private"]
        try:
            output = realprogs.run([*unshare, "/bin/sh", "-c", PRELUDE + story], env=env, timeout=180).stdout
        finally:
            for path in (base / p for p in PID_FILES):
                if path.exists() and realprogs.is_running(pid := int(path.read_text().split()[0])):
                    realprogs.stop_pid(pid)
    return Story(output, base, cert.parent)


def section(output: str, name: str) -> str:
    return output.split(f"== {name}\n", 1)[1].split("\n== ", 1)[0]


@pytest.mark.parametrize("mta", CASES)
def test_apply_on_the_host_over_debians_configs_serves_and_rolls_back(mta: str) -> None:
    tree, pop_imap, config, host_line = CASES[mta]
    realprogs.require({"postfix": "postfix", "exim": "exim", "sendmail": "sendmail"}[mta])
    realprogs.require("unshare")
    story = tell(STORY, tree, MTA=mta, POP_IMAP=pop_imap, CONFIG=config)
    output = story.output

    first, forced = section(output, "apply over Debian's configs"), section(output, "apply --force")
    if "not written by mailconf" in first:  # Debian's config in the way: refused, then replaced with --force
        assert first.rstrip().endswith("exit 1") and f"started {mta}" in forced, output
    assert first.rstrip().endswith("exit 0") or forced.rstrip().endswith("exit 0"), output
    assert f"started {mta} (it was not running)" in first + forced, output
    assert section(output, "banner").strip() == "mail.host.test", output
    assert "nothing to change" in section(output, "second apply"), output
    installed = section(output, "config")
    assert (
        host_line in installed
        and "mailconf-check-" not in installed
        and str(story.base) not in installed.replace(str(story.tls), "")
    ), "the config names the host's paths: neither the scratch root nor the namespace's layers"
    rolled_back = section(output, "rollback")
    assert rolled_back.rstrip().endswith("exit 0") and f"stopped {mta} again" in rolled_back, output
    assert "No such file" in section(output, "after rollback"), "the first apply undone: its config is gone"


def test_apply_runs_postfix_under_a_real_daemontools_supervisor_and_reloads_it() -> None:
    for program in ("postfix", "unshare", "svscan"):
        realprogs.require(program)
    output = tell(SUPERVISED).output

    first = section(output, "first apply")
    assert first.rstrip().endswith("exit 0"), output
    assert "started postfix (it was not running): ln -sfn /etc/sv/postfix /etc/service/postfix" in first, output
    assert ": up (pid " in section(output, "svstat"), output
    assert section(output, "banner").strip() == "mail.host.test", output
    second = section(output, "second apply")
    assert "reloaded postfix: postfix reload" in second and second.rstrip().endswith("exit 0"), output
    assert section(output, "banner again").strip() == "mx2.host.test", "the supervised master reloaded (SIGHUP)"
