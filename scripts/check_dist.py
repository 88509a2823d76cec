"""Check that the sdist and the wheel in a folder carry what an installed keel needs.

    python scripts/check_dist.py dist

Both must hold the licence, the templates, the migrations, ``py.typed`` and every compiled
catalogue of ``src/keel/locale``; the wheel must not hold the tests. Exit status 1 names what
is missing.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "keel"


def required_package_files() -> set[str]:
    """Paths under ``keel/`` that every distribution must carry."""
    wanted = {"keel/py.typed", "keel/migrations/0001_initial.py"}
    for folder, pattern in (("templates", "*.html"), ("locale", "*.mo")):
        wanted |= {
            f"keel/{path.relative_to(PACKAGE).as_posix()}"
            for path in (PACKAGE / folder).rglob(pattern)
        }
    return wanted


def problems(dist: Path) -> list[str]:
    found: list[str] = []
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        return [f"expected one wheel and one sdist in {dist}, got {wheels + sdists}"]
    wanted = required_package_files()
    if not any(name.endswith(".mo") for name in wanted):
        found.append("no compiled catalogue (*.mo) under src/keel/locale")
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        found.append(f"{wheels[0].name}: no LICENSE in its .dist-info/licenses")
    found += [f"{wheels[0].name}: missing {name}" for name in sorted(wanted - names)]
    if any(name.startswith("tests/") for name in names):
        found.append(f"{wheels[0].name}: holds the tests")
    with tarfile.open(sdists[0]) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        members = {n.removeprefix(f"{top}/") for n in sdist.getnames()}
    if "LICENSE" not in members:
        found.append(f"{sdists[0].name}: no LICENSE")
    found += [
        f"{sdists[0].name}: missing src/{name}"
        for name in sorted(wanted)
        if f"src/{name}" not in members
    ]
    return found


def main(argv: list[str]) -> int:
    dist = Path(argv[0] if argv else "dist")
    found = problems(dist)
    for problem in found:
        print(problem, file=sys.stderr)
    if not found:
        print(f"{dist}: sdist and wheel carry the licence, templates, migrations and catalogues")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
