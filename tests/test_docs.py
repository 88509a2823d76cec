from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from keel.checks import __doc__ as checks_doc

ROOT = Path(__file__).resolve().parent.parent


def _settings_table_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "settings_table", ROOT / "scripts/settings_table.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings_reference_matches_keel_conf() -> None:
    module = _settings_table_module()
    text = (ROOT / "docs/settings.md").read_text()
    assert module.render(text) == text, "run: python scripts/settings_table.py --write"
    assert "`TOKEN_MAX_TTL`" in text


def test_every_check_id_is_documented_and_tested() -> None:
    ids = set(re.findall(r"keel\.[EW]\d{3}", checks_doc or ""))
    assert ids
    documented = set(re.findall(r"keel\.[EW]\d{3}", (ROOT / "docs/checks.md").read_text()))
    tested = set(re.findall(r"test_([ew]\d{3})_", (ROOT / "tests/test_checks.py").read_text()))
    assert ids == documented
    assert {i.split(".")[1].lower() for i in ids} == tested
