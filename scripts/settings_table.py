"""Print (or, with ``--write``, update in docs/settings.md) the table of KEEL settings."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from keel.conf import SETTINGS  # noqa: E402

START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"
DOC = ROOT / "docs" / "settings.md"


def table() -> str:
    rows = ["| key | default | meaning | invalid value |", "|---|---|---|---|"]
    for spec in SETTINGS.values():
        rows.append(f"| `{spec.name}` | `{spec.default!r}` | {spec.doc} | `{spec.check_id}` |")
    return "\n".join(rows)


def render(text: str) -> str:
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    return pattern.sub(f"{START}\n{table()}\n{END}", text)


if __name__ == "__main__":
    if "--write" in sys.argv:
        DOC.write_text(render(DOC.read_text()))
    else:
        print(table())
