"""The built documentation site: cross-references resolved, reference entries present,
anchors checked. The site is built once per run (about three seconds) into a temporary folder."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# The docs dependency group (mkdocs, and PyYAML with it): absent where only the test group is
# installed, as in the run against the built wheel.
pytest.importorskip("mkdocs", reason="the docs dependency group is not installed")
import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLE = re.compile(r":(?:class|meth|func|data|attr|mod|exc|obj|ref):[`~\w]")


def _mkdocs(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    built = _mkdocs(ROOT / "mkdocs.yml", folder)
    assert built.returncode == 0, built.stderr
    return folder


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


def test_no_built_page_shows_a_raw_sphinx_role(site: Path) -> None:
    with_roles = {
        page.relative_to(site).as_posix()
        for page in site.rglob("*.html")
        if ROLE.search(_text(page))
    }
    assert with_roles == set()
    assert (site / "reference/tokens/index.html").exists()


def test_no_source_file_uses_a_sphinx_role() -> None:
    sources = list((ROOT / "src/keel").rglob("*.py"))
    assert len(sources) > 50
    with_roles = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if ROLE.search(line)
    ]
    assert with_roles == []


def test_signatures_show_types_and_return_types(site: Path) -> None:
    configuration = _text(site / "reference/configuration/index.html")
    assert "health_check() -> RedisHealth" in configuration
    assert "make_key(*parts: str, tag: str | None = None) -> str" in configuration


@pytest.mark.parametrize(
    "identifier",
    [
        "keel.site.admin.SingletonModelAdmin",
        "keel.site.admin.field_group_fieldsets",
        "keel.site.middleware.MaintenanceModeMiddleware",
        "keel.site.middleware.RequestCacheMiddleware",
        "keel.site.context_processors",
        "keel.templatetags.keel_site",
        "keel.signals.site_settings_changed",
    ],
)
def test_the_admin_middleware_context_processors_and_tags_have_reference_entries(
    site: Path, identifier: str
) -> None:
    pages = "".join(p.read_text() for p in (site / "reference").rglob("*.html"))
    assert f'id="{identifier}"' in pages


def test_site_url_gives_canonical_links(site: Path) -> None:
    page = (site / "installation/index.html").read_text()
    assert 'rel="canonical" href="https://django-keel.readthedocs.io/installation/"' in page


def test_a_broken_anchor_fails_the_build(tmp_path: Path) -> None:
    project = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert project["validation"]["anchors"] == "warn"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "other.md").write_text("# Other\n\n## A heading\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(yaml.safe_dump({"site_name": "anchors", "validation": project["validation"]}))
    (docs / "index.md").write_text("# Home\n\nSee [the part](other.md#no-such-heading).\n")
    broken = _mkdocs(config, tmp_path / "site")
    assert broken.returncode != 0
    assert "does not contain an anchor '#no-such-heading'" in broken.stderr
    (docs / "index.md").write_text("# Home\n\nSee [the part](other.md#a-heading).\n")
    assert _mkdocs(config, tmp_path / "site").returncode == 0
