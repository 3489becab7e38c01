"""The command line: parse arguments, call the library, print the result. No mail logic lives here.

Exit codes everywhere: 0 ok, 1 findings or a refused change, 2 bad input or usage.
Heavy modules are imported inside the commands so that `mailconf --help` starts fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

app = typer.Typer(
    help="Render, check and manage mail server configs (Postfix, Exim, Sendmail, qmail, Dovecot) "
    "from one site description.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rich and markdown-it would double the start-up time
)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The site description.")]
DEFAULT_CONFIG = Path("site.yaml")


def _bad_input(error: Exception) -> NoReturn:
    print(str(error), file=sys.stderr)
    raise typer.Exit(2)


def _load(config: Path):
    from mailconf.errors import MailconfError
    from mailconf.site import load_site

    try:
        return load_site(config)
    except MailconfError as error:
        _bad_input(error)


@app.command()
def validate(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Check a site description; print every problem at file:line:col."""
    loaded = _load(config)
    site = loaded.site
    print(
        f"{config}: ok: {site.host.name}, {len(site.domains)} domain(s), {len(site.users)} user(s), "
        f"{len(site.aliases)} alias(es)"
    )


@app.command()
def render(
    config: ConfigOption = DEFAULT_CONFIG,
    mta: Annotated[str, typer.Option(help="postfix, exim, sendmail or qmail.")] = "postfix",
    pop_imap: Annotated[str, typer.Option("--pop-imap", help="dovecot, or none.")] = "dovecot",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the tree here, as on the host.")] = None,
    root: Annotated[
        Path | None,
        typer.Option(help="Write into this directory and prefix every absolute path in the files with it (sandbox)."),
    ] = None,
) -> None:
    """Render the native configs, write them as a tree with MANIFEST.json, print the commands that follow."""
    from mailconf.backends import render_site
    from mailconf.errors import MailconfError
    from mailconf.render import Target, write_tree

    if (output is None) == (root is None):
        print("render: give exactly one of --output DIR or --root DIR", file=sys.stderr)
        raise typer.Exit(2)
    root_text = str(root.resolve()) if root else ""
    if root_text == "/":
        print(
            "render: --root / would overwrite this host's configs without a backup: use mailconf apply", file=sys.stderr
        )
        raise typer.Exit(2)
    loaded = _load(config)
    programs = {"mta": mta} | ({"pop_imap": pop_imap} if pop_imap != "none" else {})
    try:
        target = Target(root=root_text, site_name=config.name)
        rendering = render_site(loaded, mta, None if pop_imap == "none" else pop_imap, target)
        out = root or output
        assert out is not None
        written = write_tree(rendering, out, target, programs)
    except MailconfError as error:
        _bad_input(error)
    print(f"wrote {len(written)} files under {out}/ (MANIFEST.json lists them)")
    print("\nThen, as root:")
    if output is not None:
        for f in rendering.files:
            print(f"  install -D -m {f.mode:04o} -o {f.owner} -g {f.group} {output}{f.path} {f.path}")
    for stage in ("build", "check", "start", "reload"):
        commands = rendering.commands.get(stage, [])
        if commands:
            print(f"  # {stage}")
            for command in commands:
                print(f"  {command}")
    if root is None:  # a tree to install on a host: how its init system runs the services
        from mailconf.manage.services import print_services

        print("\nServices (for another init system: mailconf services --init ...):")
        print_services(list(programs.values()), None, say=lambda line: print(f"  {line}"))


@app.command()
def schema() -> None:
    """Print the JSON Schema of site.yaml (for editors: yaml-language-server)."""
    import json

    from mailconf.site.model import Site

    document = Site.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "mailconf site description"
    print(json.dumps(document, indent=2))


@app.command()
def init(
    config: ConfigOption = DEFAULT_CONFIG,
    host: Annotated[str | None, typer.Option(help="Fully qualified host name, e.g. mail.example.org.")] = None,
    domain: Annotated[str | None, typer.Option(help="The mail domain, e.g. example.org.")] = None,
    user: Annotated[str | None, typer.Option(help="A local user (unix account) who gets mail.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Ask nothing: use the flags and defaults.")] = False,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter site.yaml."""
    from mailconf.errors import Location, MailconfError, Problem
    from mailconf.site.starter import starter_site

    if config.exists() and not force:
        print(f"{config} exists; not overwriting it (use --force)", file=sys.stderr)
        raise typer.Exit(1)
    if not yes and sys.stdin.isatty():
        host = host or typer.prompt("Host name (FQDN)", default="mail.example.org")
        domain = domain or typer.prompt("Mail domain", default=(host or "").partition(".")[2] or "example.org")
        user = user or typer.prompt("First user (unix account)", default="postmaster")
    try:
        text = starter_site(host or "mail.example.org", domain, user or "admin")
    except MailconfError as error:
        _bad_input(error)
    from mailconf.render import atomic_write

    try:
        atomic_write(config, text.encode("utf-8"))
    except OSError as exc:
        _bad_input(MailconfError([Problem(Location(str(config)), f"cannot write the site file: {exc.strerror}")]))
    print(f"wrote {config}; next: mailconf validate -c {config}")


RootOption = Annotated[Path, typer.Option(help="Where the configs live: / on the host, or a sandbox directory.")]
InitOption = Annotated[
    str | None,
    typer.Option(help="systemd, sysvinit, openrc, daemontools, runit or none (default: detected; none under --root)."),
]
MtaOption = Annotated[str, typer.Option(help="postfix, exim, sendmail or qmail.")]
PopImapOption = Annotated[str, typer.Option("--pop-imap", help="dovecot, or none.")]


def _manage(action):
    """Run a manage action: bad input exits 2, a refused or undone change exits 1 with the reason."""
    from mailconf.errors import MailconfError
    from mailconf.manage.apply import ApplyFailed

    try:
        return action()
    except MailconfError as error:
        _bad_input(error)
    except ApplyFailed as failure:
        print(str(failure), file=sys.stderr)
        raise typer.Exit(1) from None


@app.command()
def diff(
    config: ConfigOption = DEFAULT_CONFIG,
    mta: MtaOption = "postfix",
    pop_imap: PopImapOption = "none",
    root: RootOption = Path("/"),
    init: InitOption = None,
) -> None:
    """Show what apply would change: a unified diff, installed -> rendered (secrets: names only)."""
    from mailconf.manage.apply import diff as show_diff
    from mailconf.manage.apply import make_plan, programs_for

    loaded = _load(config)
    plan = _manage(lambda: make_plan(loaded, programs_for(mta, pop_imap), root.resolve(), init))
    text = show_diff(plan, color=sys.stdout.isatty())
    print(text or "no differences: the installed files match the site description", end="" if text else "\n")


@app.command()
def apply(
    config: ConfigOption = DEFAULT_CONFIG,
    mta: MtaOption = "postfix",
    pop_imap: PopImapOption = "none",
    root: RootOption = Path("/"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the diff; change nothing.")] = False,
    force: Annotated[bool, typer.Option(help="Overwrite files edited by hand or not written by mailconf.")] = False,
    no_reload: Annotated[bool, typer.Option("--no-reload", help="Install, but do not reload the services.")] = False,
    init: InitOption = None,
) -> None:
    """Validate the new configs with the native tools, back up, install atomically, reload (undo on failure)."""
    from mailconf.manage.apply import apply as do_apply
    from mailconf.manage.apply import programs_for

    loaded = _load(config)
    programs = programs_for(mta, pop_imap)
    options = {"init": init, "force": force, "dry_run": dry_run, "reload": not no_reload}
    _manage(lambda: do_apply(loaded, programs, root.resolve(), **options))


@app.command()
def rollback(
    root: RootOption = Path("/"),
    to: Annotated[str | None, typer.Option(help="The backup set to restore (its timestamp); default: latest.")] = None,
    no_reload: Annotated[bool, typer.Option("--no-reload", help="Restore, but do not reload the services.")] = False,
) -> None:
    """Restore the files saved by the last apply (or --to TIMESTAMP) and reload the services."""
    from mailconf.manage.apply import rollback as do_rollback

    _manage(lambda: do_rollback(root.resolve(), to, reload=not no_reload))


@app.command()
def services(
    mta: MtaOption = "postfix",
    init: Annotated[
        str | None, typer.Option(help="systemd, sysvinit, openrc, daemontools or runit (default: this host's).")
    ] = None,
    pop_imap: PopImapOption = "none",
) -> None:
    """Print the commands that enable, start, reload and check each service (and run scripts if any)."""
    from mailconf.manage.services import print_services

    _manage(lambda: print_services([mta] + ([pop_imap] if pop_imap != "none" else []), init))


@app.command("check-qmail")
def check_qmail(
    root: Annotated[Path, typer.Option(help="The tree to check: / on the host, or a sandbox directory.")] = Path("/"),
) -> None:
    """Check qmail's control files, .qmail files, users/assign and tcp.smtp against their documented formats
    (qmail has no checker of its own). Exit 1 when something is wrong, at file:line:col."""
    from mailconf.mta.qmail_check import main as check

    raise typer.Exit(check([str(root)]))


@app.command("dns-records")
def dns_records(
    config: ConfigOption = DEFAULT_CONFIG,
    format: Annotated[str, typer.Option("--format", help="zone (zone-file text) or json.")] = "zone",
    mta_sts_policy: Annotated[
        Path | None, typer.Option("--mta-sts-policy", help="Write the MTA-STS policy file (to serve over HTTPS) here.")
    ] = None,
) -> None:
    """Print the DNS records the site needs: one $ORIGIN block per zone, and the PTR the provider sets."""
    from mailconf.dns.records import json_text, publication, zone_text
    from mailconf.errors import MailconfError

    if format not in ("zone", "json"):
        _bad_input(ValueError(f"dns-records: --format is zone or json, not {format!r}"))
    loaded = _load(config)
    try:
        published = publication(loaded)
    except MailconfError as error:
        _bad_input(error)
    if mta_sts_policy is not None:
        if published.mta_sts_policy is None:
            _bad_input(ValueError(f"{config}: dns.mta_sts is off, so there is no MTA-STS policy to write"))
        mta_sts_policy.write_text(published.mta_sts_policy, encoding="ascii", newline="")
    ttl = loaded.site.dns.ttl
    print(zone_text(published, ttl) if format == "zone" else json_text(published, ttl), end="")


@app.command("check-dns")
def check_dns(
    config: ConfigOption = DEFAULT_CONFIG,
    nameserver: Annotated[
        str | None, typer.Option(help="Ask this server (IP[:PORT]) instead of the system resolver.")
    ] = None,
    format: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer.", min=0.1)] = 3.0,
) -> None:
    """Check live DNS: MX, A/AAAA, reverse DNS, SPF, DMARC, DKIM, MTA-STS, TLS-RPT. Exit 1 on errors."""
    import asyncio

    from mailconf.dns.checks import check_dns as run_checks
    from mailconf.dns.checks import json_report, text_report
    from mailconf.dns.lookup import Lookup, parse_nameserver
    from mailconf.errors import MailconfError

    if format not in ("text", "json"):
        _bad_input(ValueError(f"check-dns: --format is text or json, not {format!r}"))
    try:
        server = parse_nameserver(nameserver) if nameserver else (None, 53)
    except ValueError as error:
        _bad_input(error)
    loaded = _load(config)
    try:
        findings = asyncio.run(run_checks(loaded, Lookup(*server, timeout=timeout)))
    except MailconfError as error:
        _bad_input(error)
    print(text_report(findings) if format == "text" else json_report(findings))
    if any(f.severity == "error" for f in findings):
        raise typer.Exit(1)


@app.command("dkim-keygen")
def dkim_keygen(
    config: ConfigOption = DEFAULT_CONFIG,
    selector: Annotated[str | None, typer.Option(help="Only this selector (one of dns.dkim_selectors).")] = None,
    force: Annotated[bool, typer.Option(help="Replace existing keys.")] = False,
) -> None:
    """Make RSA 2048 DKIM keys per domain and selector (private key mode 0600); existing keys are kept."""
    from mailconf.dns.dkim import keygen
    from mailconf.errors import MailconfError

    loaded = _load(config)
    selectors = loaded.site.dns.dkim_selectors
    if selector is not None and selector not in selectors:
        _bad_input(ValueError(f"{config}: selector {selector!r} is not in dns.dkim_selectors ({', '.join(selectors)})"))
    try:
        made = keygen(loaded, [selector] if selector else selectors, force)
    except MailconfError as error:
        _bad_input(error)
    for files, new in made:
        print(f"wrote {files.private} (0600) and {files.public}" if new else f"kept {files.private} (use --force)")
    print(f"next: mailconf dns-records -c {config}, and publish the DKIM TXT records")


@app.command()
def lint(
    paths: Annotated[list[Path], typer.Argument(help="Config directories or files; a tree holding several is fine.")],
    mta: Annotated[
        str | None, typer.Option(help="Read the paths as this program's: postfix, exim, sendmail, qmail, dovecot.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="text, json, sarif or github.")] = "text",
    fail_on: Annotated[str, typer.Option("--fail-on", help="Exit 1 on findings this severe: error, warning, info.")] = (
        "error"
    ),
    tcp_rules: Annotated[
        Path | None, typer.Option("--tcp-rules", help="qmail's tcpserver rules (default: ./tcp.smtp, /etc/tcp.smtp).")
    ] = None,
) -> None:
    """Lint native mail configs (relay, TLS, auth, consistency) without running any mail program."""
    from mailconf.lint.cli import run_lint

    raise typer.Exit(run_lint(paths, mta, fmt, fail_on, tcp_rules))


@app.command("check-relay")
def check_relay(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="A site description: render and check.")] = None,
    mta: Annotated[str | None, typer.Option(help="The program of --config-dir (or the one MTA to render).")] = None,
    config_dir: Annotated[Path | None, typer.Option("--config-dir", help="Native config directory to check.")] = None,
    tcp_rules: Annotated[Path | None, typer.Option("--tcp-rules", help="qmail's tcpserver rules file.")] = None,
    probe: Annotated[list[str] | None, typer.Option("--probe", help="HOST:PORT of a live server to probe.")] = None,
    xclient: Annotated[str | None, typer.Option(help="Probe: present this client address (Postfix XCLIENT).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
    timeout: Annotated[float, typer.Option(help="Probe: seconds to wait for each reply.")] = 10.0,
) -> None:
    """Find open relays: in a site description (rendered in memory), in native configs, or live over SMTP."""
    from mailconf.lint.cli import run_check_relay

    raise typer.Exit(run_check_relay(config, mta, config_dir, tcp_rules, probe, xclient, fmt, timeout))


def main() -> None:
    app()
