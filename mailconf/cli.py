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
    loaded = _load(config)
    root_text = str(root.resolve()) if root else ""
    target = Target(root=root_text, site_name=config.name)
    programs = {"mta": mta} | ({"pop_imap": pop_imap} if pop_imap != "none" else {})
    try:
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
    from mailconf.errors import MailconfError
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
    config.write_text(text, encoding="utf-8")
    print(f"wrote {config}; next: mailconf validate -c {config}")


def main() -> None:
    app()
