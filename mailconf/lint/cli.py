"""What `mailconf lint` and `mailconf check-relay` do, as plain functions returning the exit code."""

from __future__ import annotations

import sys
from pathlib import Path

from mailconf.errors import Location, MailconfError
from mailconf.lint.core import SEVERITIES, Finding, MemorySource
from mailconf.lint.engine import READERS, Options, lint
from mailconf.lint.formatters import FORMATS, render
from mailconf.lint.formatters.json import rows


def _usage(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def exit_code(findings: list[Finding], fail_on: str) -> int:
    threshold = SEVERITIES.index(fail_on)
    return 1 if any(SEVERITIES.index(f.severity) >= threshold for f in findings) else 0


def run_lint(
    paths: list[Path],
    mta: str | None = None,
    fmt: str = "text",
    fail_on: str = "error",
    tcp_rules: Path | None = None,
    relay_only: bool = False,
) -> int:
    if fmt not in FORMATS:
        return _usage(f"--format: choose one of {', '.join(FORMATS)}")
    if fail_on not in SEVERITIES:
        return _usage(f"--fail-on: choose one of {', '.join(reversed(SEVERITIES))}")
    if mta is not None and mta not in READERS:
        return _usage(f"--mta: choose one of {', '.join(READERS)}")
    options = Options(tcp_rules=str(tcp_rules) if tcp_rules else None)
    try:
        findings = lint([str(p) for p in paths], mta=mta, relay_only=relay_only, options=options)
    except MailconfError as error:
        return _usage(str(error))
    sys.stdout.write(render(findings, fmt))
    return exit_code(findings, fail_on)


def rendered_findings(site_file: Path, mta: str | None = None) -> list[Finding]:
    """Render the site for every supported MTA (or just `mta`) in memory and run the relay rules on the files."""
    from mailconf.backends import render_site, supported
    from mailconf.errors import RenderRefused
    from mailconf.render import Target
    from mailconf.site import load_site

    loaded = load_site(site_file)
    findings = []
    for name in [mta] if mta else supported("mta"):
        try:
            rendering = render_site(loaded, name, None, Target(site_name=site_file.name))
        except RenderRefused as refused:
            if mta:
                raise
            # The site asks for something this MTA cannot express: nothing to check there; say so and go on.
            print(f"{name}: not checked: {refused.problems[0].message}", file=sys.stderr)
            continue
        source = MemorySource({f.path: f.text(site_file.name) for f in rendering.files})
        for f in lint(["/"], relay_only=True, source=source):
            where = Location(f"<{name} from {site_file}>{f.location.file}", f.location.line)
            findings.append(Finding(where, f.rule, f.severity, f.message, f.hint, f.relay))
    return findings


def run_check_relay(
    site_file: Path | None = None,
    mta: str | None = None,
    config_dir: Path | None = None,
    tcp_rules: Path | None = None,
    probes: list[str] | None = None,
    xclient: str | None = None,
    fmt: str = "text",
    timeout: float = 10.0,
) -> int:
    if fmt not in ("text", "json"):
        return _usage("--format: choose text or json")
    if site_file is None and config_dir is None and not probes:
        return _usage("check-relay: give -c SITE.yaml, --config-dir DIR (with --mta), or --probe HOST:PORT")
    if mta is not None and mta not in READERS:
        return _usage(f"--mta: choose one of {', '.join(READERS)}")
    code = 0
    parts = None  # with --probe and --format json, the static findings go into the probe's one JSON document
    if site_file is not None or config_dir is not None:
        findings: list[Finding] = []
        try:
            if site_file is not None:
                findings += rendered_findings(site_file, mta)
            if config_dir is not None:
                options = Options(tcp_rules=str(tcp_rules) if tcp_rules else None)
                findings += lint([str(config_dir)], mta=mta, relay_only=True, options=options)
        except MailconfError as error:
            return _usage(str(error))
        if probes and fmt == "json":
            parts = {"static": rows(findings)}
        else:
            sys.stdout.write(render(findings, fmt))
        code = exit_code(findings, "error")
    if probes:
        from mailconf.probe import run_cli

        code = max(code, run_cli(probes, xclient=xclient, fmt=fmt, timeout=timeout, parts=parts))
    return code
