"""The benchmark harness: interleaved rounds, the report's markdown, the page rendered from JSON.

The benchmarks themselves run only under ``make bench``; these tests check the parts every
script shares, without timing anything real.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402
import render  # noqa: E402
import run_all  # noqa: E402


def test_interleave_rotates_the_order_every_round() -> None:
    calls: list[str] = []
    contenders = {name: (lambda name=name: calls.append(name)) for name in "abc"}

    timings = harness.interleave(contenders, 4)

    assert calls == list("abcbcacababc")
    assert {name: len(values) for name, values in timings.wall.items()} == dict.fromkeys("abc", 4)


def test_self_timed_contenders_give_their_own_seconds_and_pair_by_round() -> None:
    seconds = {"floor": iter([1.0, 2.0, 4.0]), "keel": iter([2.0, 2.0, 5.0])}
    contenders = {name: (lambda values=values: next(values)) for name, values in seconds.items()}

    timings = harness.interleave(contenders, 3, self_timed=True)

    assert timings.median("keel") == 2.0
    # Round by round: 1/2, 2/2, 4/5; their median.
    assert timings.paired("keel", "floor") == pytest.approx(0.8)


def test_a_report_prints_tables_of_formatted_values_and_its_goals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = harness.Report("example.py", argv=[])
    report.table(
        ["contender", "µs|{:,.0f}", "ratio|{:.2f}x"],
        [["plain", 1234.4, 1.0], ["keel", 999.6, None]],
        caption="2 rounds, median",
    )
    report.goal("keel ≥ 1x plain", "1.23x", True)
    report.goal("a", "1", True, show="table")
    report.goal("b", "2", False, show="table", summary=False)
    report.goal("hidden", "0", True, show="summary")

    report.emit(tmp_path / "out.json")

    assert capsys.readouterr().out.splitlines() == [
        "2 rounds, median",
        "",
        "| contender | µs | ratio |",
        "|---|---:|---:|",
        "| plain | 1,234 | 1.00x |",
        "| keel | 1,000 | — |",
        "",
        "Goal keel ≥ 1x plain: 1.23x → met.",
        "",
        "| goal | measured | met |",
        "|---|---|---|",
        "| a | 1 | met |",
        "| b | 2 | NOT met |",
    ]
    saved = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert saved["blocks"][1]["rows"][1] == ["keel", 999.6, None]
    assert [goal["goal"] for goal in saved["goals"]] == ["keel ≥ 1x plain", "a", "b", "hidden"]


PROSE = """<!-- the prose of a test page -->

# Performance

{date}: runs `{command}` in {minutes:.1f} minutes.{mode}

## Fixtures

<!-- fixtures -->

About fixtures.

<!-- results -->

- A note on fixtures.

## Action tokens

<!-- tokens -->

About tokens.

<!-- results -->

- A note on tokens.

## Scale-out

<!-- load -->

About load.

<!-- results -->

- A note on load.
"""


def section(key: str, order: int, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"key": key, "order": order, "parts": parts}


def part(report: harness.Report | None, error: str = "") -> dict[str, Any]:
    result = None
    if report is not None:
        result = {"script": report.script, "argv": [], "blocks": report.blocks,
                  "goals": report.goals, "data": report.data,
                  "skipped": report.skipped}  # fmt: skip
    return {"script": "x.py", "options": ["--rows", "10"], "error": error, "result": result}


def test_the_page_is_rendered_from_the_json_of_a_run(tmp_path: Path) -> None:
    tokens = harness.Report("tokens.py")
    tokens.table(["contender", "pairs/s|{:,.0f}"], [["keel Redis store", 1500.2]])
    tokens.goal("Consume is one round trip", "1", True)
    tokens.goal("at most 1 network round trip per read", "1 Redis", True, show="summary")
    small = harness.Report("fixtures.py")
    small.goal("first import ≥ 10x faster", "12x", True, show="table", summary=False)
    large = harness.Report("fixtures.py")
    large.goal("first import ≥ 10x faster", "9x", False, show="table", part="100,000 rows")
    large.skip("mysql: not reachable")
    results = {
        "run": {"argv": ["--quick"], "quick": True, "date": "2026-01-01 00:00 UTC",
                "machine": "test machine", "loads": ["1.0 1.0 1.0", "2.0 2.0 2.0"], "total": 90},
        "sections": [
            section("fixtures", 6, [part(small), part(large)]),
            section("tokens", 5, [part(tokens)]),
            section("load", 5, [part(None, "FAILED with exit status 1")]),
        ],
    }  # fmt: skip

    (tmp_path / "sections.md").write_text(PROSE, encoding="utf-8")

    goals = render.render(results, docs=tmp_path, sections=tmp_path / "sections.md")

    page = (tmp_path / "performance.md").read_text(encoding="utf-8")
    assert [(g["label"], g["goal"]) for g in goals] == [
        ("Action tokens", "Consume is one round trip"),
        ("Action tokens", "at most 1 network round trip per read"),
        ("Fixtures (100,000 rows)", "first import ≥ 10x faster"),
    ]
    assert "| Fixtures (100,000 rows) | first import ≥ 10x faster | 9x | **not met** |" in page
    assert "runs `.venv-bench/bin/python bench/run_all.py --quick`" in page
    assert "This run used `--quick`" in page
    assert "```console\n$ .venv-bench/bin/python bench/x.py --rows 10\n```" in page
    assert "| keel Redis store | 1,500 |" in page
    assert "- mysql: not reachable" in page
    assert "**FAILED with exit status 1**" in page
    headings = [line for line in page.splitlines() if line.startswith("## ")]
    assert headings[:2] == ["## Goals", "## Fixtures"]
    assert headings[-2:] == ["## Action tokens", "## Scale-out"]
    assert "About fixtures.\n\n```console" in page
    assert "- A note on tokens." in page and "A note on load." not in page
    assert "\n\n\n" not in page


def test_every_section_of_the_run_has_its_prose_and_names_scripts_of_bench() -> None:
    header, prose = render.prose()
    assert header.startswith("# Performance")
    assert [key for key, _, _ in run_all.SECTIONS] == list(prose)
    for key, _, parts in run_all.SECTIONS:
        for script, *modes in parts:
            assert (BENCH / script).is_file(), (key, script)
            assert len(modes) == 3, (key, script)
