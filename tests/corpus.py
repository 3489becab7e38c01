"""Varied site descriptions that every backend must render into configs its real programs accept."""

from __future__ import annotations

import shutil
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"
HASH = "{SHA512-CRYPT}$6$TogXeqoGMJUwQ/4E$qDUz7qxTml/2caZ9fIfO0D8HXioV3IBvLWPTAFJpXE3F0DqDiJ964w6m3VDJW8CwQmptmgX0r5AD.nyGzkvGk."

VARIED = {
    "minimal": """
host: {name: mail.example.org}
domains: [example.org]
users: [joe]
""",
    "mbox-and-catch-all": """
host: {name: mail.example.org, listen: [127.0.0.1, "::1"]}
domains:
  - {name: example.org, catch_all: joe}
  - example.net
users: [joe, sue]
aliases: {webmaster: [joe, sue], sales@example.net: sue}
mailbox: {format: mbox, spool: /var/spool/mail}
message_size_limit: 10M
""",
    "virtual-only": f"""
host: {{name: mx.virtual.example}}
domains:
  - {{name: virtual.example, type: virtual, catch_all: ann@virtual.example}}
  - {{name: other.example, type: virtual}}
users:
  - {{address: ann@virtual.example, password_hash: "{HASH}"}}
  - {{address: ann@other.example, password_hash: "{HASH}"}}
aliases: {{info@other.example: [ann@other.example, ann@virtual.example]}}
postmaster: ann@virtual.example
mailbox: {{virtual_root: /srv/mail, virtual_uid: 2000, virtual_gid: 2000}}
""",
    "smarthost-with-login": """
host: {name: mail.example.org}
domains: [example.org]
users: [joe]
smarthost: {host: smtp.provider.example, port: 2525, credentials_file: smarthost.secret}
relay_domains: [backup.example]
""",
    "ports-moved-and-off": """
host:
  name: mail.example.org
  ipv6: "2001:db8::25"
  ports: {smtp: 2525, submission: 2587, smtps: false, pop3: false, pop3s: false, imap: 2143, imaps: 2993}
domains: [example.org]
users: [joe]
trusted_networks: [192.168.0.0/16, "fd12:3456::/32", 198.51.100.0/26, "2001:db8:1::/48"]
pop_imap: {protocols: [imap]}
""",
}


def write_site(name: str, directory: Path) -> Path:
    """Write one varied site (with any files it names) into `directory`; return the site file."""
    directory.mkdir(parents=True, exist_ok=True)
    site = directory / "site.yaml"
    site.write_text(VARIED[name])
    secret = directory / "smarthost.secret"
    secret.write_text("mailuser:s3cret pass\n")
    secret.chmod(0o600)
    return site


def all_sites(directory: Path) -> dict[str, Path]:
    """The examples and the varied sites, each written into its own folder under `directory`."""
    sites = {name: write_site(name, directory / name) for name in VARIED}
    examples = directory / "examples"
    shutil.copytree(EXAMPLES, examples)
    for example in sorted(examples.rglob("site.yaml")) + sorted(examples.glob("*.yaml")):
        sites[f"example:{example.relative_to(examples)}"] = example
    return sites
