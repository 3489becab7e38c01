"""Open configs are flagged, closed ones are not: a corpus written from the relay catalogue, Debian 12's packaged
configs (taken from the .deb files), and mailconf's own renderings of the examples."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mailconf.backends import render_site, supported
from mailconf.lint.core import MemorySource
from mailconf.lint.engine import lint, load
from mailconf.lint.rules._exim import is_guard, rcpt_acl
from mailconf.render import Target
from mailconf.site import load_site

CORPUS = Path(__file__).parent / "lint_corpus"
EXAMPLES = Path(__file__).parent.parent / "examples"
OPEN = sorted(CORPUS.glob("*/open/*"))
CLOSED = sorted(CORPUS.glob("*/closed/*"))
DEB_DIRS = [os.environ.get("MAILCONF_DEBS_CACHE", "/var/cache/mailconf-debs"), "/var/cache/apt/archives"]


def errors(findings: list) -> list:
    return [f for f in findings if f.severity == "error"]


@pytest.mark.parametrize("case", OPEN, ids=[f"{c.parent.parent.name}/{c.name}" for c in OPEN])
def test_open_config_is_flagged_by_check_relay_with_the_rule_its_name_says(case: Path) -> None:
    program, expected = case.parent.parent.name, case.name.split("-")[0]
    found = lint([str(case)], mta=program, relay_only=True)
    flagged = {f.rule for f in errors(found)}
    assert expected in flagged, f"{case.name}: got {flagged}"
    assert all(Path(f.location.file).is_relative_to(case) for f in found)


@pytest.mark.parametrize("case", CLOSED, ids=[f"{c.parent.parent.name}/{c.name}" for c in CLOSED])
def test_closed_config_has_no_errors(case: Path) -> None:
    assert errors(lint([str(case)], mta=case.parent.parent.name)) == []


def test_corpus_covers_every_mta() -> None:
    assert {c.parent.parent.name for c in OPEN} == {"postfix", "exim", "sendmail", "qmail"}
    assert {c.parent.parent.name for c in CLOSED} == {"postfix", "exim", "sendmail", "qmail"}


def test_lint_finds_which_program_each_corpus_directory_belongs_to() -> None:
    configs = load([str(c) for c in OPEN + CLOSED])
    assert {p: len(found) for p, found in configs.items()} == {
        program: sum(c.parent.parent.name == program for c in OPEN + CLOSED) for program in configs
    }
    assert set(configs) == {"postfix", "exim", "sendmail", "qmail"}


# ---------------------------------------------------------------- mailconf's own renderings


def lint_rendering(site: Path, mta: str) -> list:
    rendering = render_site(load_site(site), mta, "dovecot", Target(site_name=site.name))
    source = MemorySource({f.path: f.text(site.name) for f in rendering.files})
    assert set(load(["/"], source=source)) == {mta, "dovecot"}
    return lint(["/"], source=source)


@pytest.mark.parametrize("mta", supported("mta"))
def test_mailconf_renderings_of_the_examples_lint_clean(mta: str) -> None:
    for site in sorted(EXAMPLES.rglob("*.yaml")):
        assert lint_rendering(site, mta) == [], f"{site} rendered for {mta}"


@pytest.mark.parametrize("mta", supported("mta"))
def test_mailconf_mbox_renderings_lint_clean(mta: str, tmp_path: Path) -> None:
    site = tmp_path / "mbox.yaml"  # the examples all use Maildir
    site.write_text((EXAMPLES / "site.yaml").read_text().replace("format: maildir", "format: mbox"))
    assert lint_rendering(site, mta) == []


# ---------------------------------------------------------------- Debian 12's packaged configs


def unpack(package: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    debs = [d for folder in DEB_DIRS for d in sorted(Path(folder).glob(f"{package}_*.deb"))]
    if not debs:
        if os.environ.get("CI"):
            pytest.fail(f"{package}_*.deb is not in {DEB_DIRS}: run scripts/install-mail-programs")
        pytest.skip(f"{package}_*.deb not cached (run scripts/install-mail-programs)")
    root = tmp_path_factory.mktemp(package)
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(root)], check=True)
    return root


def test_debian_postfix_main_cf_and_master_cf_are_closed(tmp_path_factory, tmp_path: Path) -> None:
    share = unpack("postfix", tmp_path_factory) / "usr/share/postfix"
    (tmp_path / "main.cf").write_text((share / "main.cf.debian").read_text())
    (tmp_path / "master.cf").write_text((share / "master.cf.dist").read_text())
    config = load([str(tmp_path)])["postfix"][0]
    assert [s.name for s in config.smtpd_services()] == ["smtp"]
    assert lint([str(tmp_path)]) == []


@pytest.mark.parametrize("layout", ["conf.d", "exim4.conf.template"])
def test_debian_exim_configs_parse_and_are_closed(layout: str, tmp_path_factory) -> None:
    path = unpack("exim4-config", tmp_path_factory) / "etc/exim4" / layout
    config = load([str(path)])["exim"][0]
    name, statements = rcpt_acl(config) or ("", [])
    assert name == "acl_check_rcpt" and any(is_guard(config, s) for s in statements)
    assert len(config.drivers["routers"]) > 5 and len(config.drivers["transports"]) > 5
    assert lint([str(path)]) == []


def test_debian_sendmail_mc_parses_and_is_closed(tmp_path_factory) -> None:
    mc = unpack("sendmail-cf", tmp_path_factory) / "usr/share/sendmail/cf/debian/sendmail.mc"
    if not mc.exists():  # sendmail-base ships it in some versions
        mc = unpack("sendmail-base", tmp_path_factory) / "usr/share/sendmail/cf/debian/sendmail.mc"
    config = load([str(mc)])["sendmail"][0]
    assert {"access_db", "delay_checks", "use_cw_file"} <= set(config.features())
    assert lint([str(mc)]) == []


def test_debian_dovecot_conf_with_its_conf_d_parses_and_is_closed(tmp_path_factory) -> None:
    root = unpack("dovecot-core", tmp_path_factory)
    conf = next(p for p in (root / "etc/dovecot/dovecot.conf", root / "usr/share/dovecot/dovecot.conf") if p.exists())
    config = load([str(conf)])["dovecot"][0]
    assert config.get("ssl").value == "yes" and config.get("auth_mechanisms").value == "plain"
    assert {Path(s.location.file).name for s in config.settings} >= {"10-auth.conf", "10-ssl.conf", "10-mail.conf"}
    assert lint([str(conf)]) == []
