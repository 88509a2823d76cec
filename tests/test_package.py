"""The distribution: what the README and the installation page promise about the package."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

import keel
from keel.tokens import JsonActionTokenManager

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


def test_the_suite_runs_against_the_copy_it_was_asked_to_test() -> None:
    location = Path(keel.__file__).resolve()
    if os.environ.get("KEEL_TEST_INSTALLED_WHEEL"):
        assert location.parent != ROOT / "src" / "keel", f"expected the wheel, got {location}"
        assert "site-packages" in location.parts, location
        assert (location.parent / "locale/fr/LC_MESSAGES/django.mo").is_file()
    else:
        assert location.parent == ROOT / "src" / "keel"


@pytest.mark.django_db
def test_the_readme_token_example_runs() -> None:
    block = next(b for b in _python_blocks((ROOT / "README.md").read_text()) if "token" in b)
    *setup, last = block.strip().splitlines()
    namespace: dict[str, object] = {}
    exec("\n".join(setup), namespace)
    manager = namespace["confirmation_tokens"]
    assert isinstance(manager, JsonActionTokenManager)
    assert last.startswith("confirmation_tokens.consume_token(token)")
    assert manager.consume_token(str(namespace["token"])) == {"email": "ada@example.com"}
    assert manager.consume_token(str(namespace["token"])) is None


def test_the_readme_imports_exist() -> None:
    imports = [
        line
        for block in _python_blocks((ROOT / "README.md").read_text())
        for line in block.splitlines()
        if line.startswith(("from keel", "import keel"))
    ]
    assert len(imports) >= 3
    exec("\n".join(imports), {})


def test_the_readme_names_the_two_make_commands_under_developing() -> None:
    readme = (ROOT / "README.md").read_text()
    developing = readme.split("\n## Developing\n", 1)[1]
    assert "make demo" in developing
    assert "make test" in developing


def test_extras_leave_the_binary_build_and_hiredis_to_the_user() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert extras["postgres"] == ["psycopg>=3.2"]
    assert extras["redis"] == ["redis>=5.2"]
    assert extras["hiredis"] == ["redis[hiredis]>=5.2"]
    dependencies = PYPROJECT["project"]["dependencies"]
    assert {r.split(">=")[0] for r in dependencies} == {"Django", "cryptography", "tqdm"}
    assert not any("[binary]" in r or "hiredis" in r for r in PYPROJECT["project"]["dependencies"])


def test_make_serve_takes_a_port() -> None:
    plan = subprocess.run(
        ["make", "-n", "-W", "pyproject.toml", "serve", "PORT=8123"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "runserver 127.0.0.1:8123" in plan


def _check_dist(dist: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts/check_dist.py"), str(dist)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_dist_check_names_what_a_wheel_lacks(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "django_keel-0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("keel/__init__.py", "")
    with tarfile.open(tmp_path / "django_keel-0.tar.gz", "w:gz") as sdist:
        sdist.add(ROOT / "LICENSE", arcname="django_keel-0/LICENSE")
    outcome = _check_dist(tmp_path)
    assert outcome.returncode == 1
    assert "no LICENSE in its .dist-info/licenses" in outcome.stderr
    assert "missing keel/locale/fr/LC_MESSAGES/django.mo" in outcome.stderr
    assert "missing keel/templates/keel/site/maintenance.html" in outcome.stderr
    assert "django_keel-0.tar.gz: missing src/keel/py.typed" in outcome.stderr
    assert "django_keel-0.tar.gz: no LICENSE" not in outcome.stderr
