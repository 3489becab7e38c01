"""The README's parity table is the one the backends declare, and every declared refusal really happens."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus import write_site

from mailconf.backends import render_site
from mailconf.errors import RenderRefused
from mailconf.parity import markdown_table, unknown_features
from mailconf.render import Target
from mailconf.site import load_site

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_readme_holds_the_generated_parity_table() -> None:
    start, end = "<!-- parity:start -->\n", "<!-- parity:end -->"
    assert README[README.index(start) + len(start) : README.index(end)] == markdown_table()


def test_backends_declare_only_features_the_table_knows() -> None:
    assert unknown_features() == []


@pytest.mark.parametrize(
    ("mta", "site", "feature"),
    [
        ("qmail", "smarthost-with-login", "smarthost login"),
        ("qmail", "ports-moved-and-off", "IPv6"),
    ],
)
def test_a_feature_a_backend_cannot_express_is_refused_naming_it(
    mta: str, site: str, feature: str, tmp_path: Path
) -> None:
    loaded = load_site(write_site(site, tmp_path))
    with pytest.raises(RenderRefused) as refused:
        render_site(loaded, mta, "dovecot", Target())
    assert mta in str(refused.value) and feature in str(refused.value)


@pytest.mark.parametrize("mta", ["postfix", "exim", "sendmail"])
@pytest.mark.parametrize("site", ["smarthost-with-login", "ports-moved-and-off", "virtual-only", "mbox-and-catch-all"])
def test_the_full_featured_backends_render_every_corpus_site(mta: str, site: str, tmp_path: Path) -> None:
    rendering = render_site(load_site(write_site(site, tmp_path)), mta, "dovecot", Target())
    assert rendering.files
