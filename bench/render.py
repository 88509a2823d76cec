"""Turn a run's JSON (``build/bench/results.json``) into ``docs/performance.md`` and its plots.

    .venv-bench/bin/python bench/render.py [results.json] [--docs DIR] [--sections FILE]

``bench/run_all.py`` calls this after a run; run alone, it rewrites the page from the last run
(into ``--docs``, ``docs/`` by default: the plots go to its ``img/``). The prose (the page's
header, and each section's title, intro and notes) is ``bench/sections.md``.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness import ROOT, markdown

DOCS = ROOT / "docs"
PROSE = ROOT / "bench" / "sections.md"
RESULTS = ROOT / "build" / "bench" / "results.json"

COLORS = {"keel": "#2a7ab0", "peer": "#999999", "seed": "#d0703c", "floor": "#4a9a4a"}
LEGEND = (
    "Blue: keel; grey: peers; green: raw floors; orange: the systems keel replaces "
    "(codex-django, pytoolbox). Bars marked * come from `bench/seeds.py`, a separate "
    "process of the same run."
)


# The bar plots: file, title, axis, the key of the series in the JSON (of the section of that
# key and of the seeds run), log scale.
BARS = [
    ("bench-site-settings.png", "Site settings: cost of one read of ten fields",
     "µs per read (median, log scale; * from the seeds run)", "site_settings", True),
    ("bench-tokens.png", "Action tokens: create + consume throughput",
     "pairs per second (median; * from the seeds run)", "tokens", False),
    ("bench-mixins.png", "Change tracking: cost of loading rows, times plain Django",
     "load time / plain Django load time (median; * from the seeds run)", "mixins", False),
]  # fmt: skip


def kind(name: str) -> str:
    lowered = name.lower()
    if "codex" in lowered or "pytoolbox" in lowered:
        return "seed"
    if "floor" in lowered or lowered.startswith("raw"):
        return "floor"
    return "keel" if lowered.startswith("keel") else "peer"


def plot_all(data: Mapping[str, list[dict[str, Any]]], img: Path) -> list[tuple[str, str]]:
    """Write the PNGs from each part's ``data``; return (file name, alt text) of each one."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        print(f"*** SKIPPED plots: matplotlib is not installed ({exc})", file=sys.stderr)
        return []
    img.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, str]] = []
    seeds = data.get("seeds", [{}])[0]

    def save(fig: Any, filename: str, alt: str) -> None:
        fig.tight_layout()
        fig.savefig(img / filename, dpi=110)
        plt.close(fig)
        written.append((filename, alt))

    series: dict[str, dict[int, float]] = {}
    for part in data.get("fixtures", []):
        for name, seconds in part.get("seconds", {}).items():
            series.setdefault(name, {})[part["rows"]] = seconds
    if series:
        fig, ax = plt.subplots(figsize=(11, 5.5))
        for name, points in series.items():
            style = ":" if "hash on" in name else "-" if "keel" in name else "--"
            sizes = sorted(points)
            ax.plot(sizes, [points[s] for s in sizes], style, marker="o", label=name)
        if "fixture" in seeds:
            rows, seconds = seeds["fixture"]
            label = f"codex-django JsonFixtureUpsertCommand ({rows:,} rows, seeds run)"
            ax.plot([rows], [seconds], "k*", markersize=12, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows in the fixture file")
        ax.set_ylabel("seconds (median, log scale)")
        ax.set_title("Fixture import on PostgreSQL: cost versus size")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
        save(fig, "bench-fixtures.png", "Fixture import cost versus size")

    for filename, title, xlabel, key, log in BARS:
        bars = [(n, v) for part in data.get(key, [])[:1] for n, v in part.get(key, {}).items()]
        bars += [(f"{n} *", v) for n, v in seeds.get(key, {}).items()]
        if not bars:
            continue
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(bars) + 1.4))
        colors = [COLORS[kind(name)] for name, _ in bars]
        ax.barh([name for name, _ in bars], [value for _, value in bars], color=colors)
        for y, (_, value) in enumerate(bars):
            shown = f"{value:,.0f}" if value >= 100 else f"{value:.2f}"
            ax.text(value, y, f" {shown}", va="center", fontsize=8)
        ax.invert_yaxis()
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(True, axis="x", which="both", alpha=0.3)
        save(fig, filename, title)
    return written


def prose(path: Path = PROSE) -> tuple[str, dict[str, tuple[str, str, str]]]:
    """The page's header (a template of the run's values) and each section's title, intro and
    notes, by key, from ``bench/sections.md``."""
    head, *chunks = path.read_text(encoding="utf-8").split("\n## ")
    found = {}
    for chunk in chunks:
        title, rest = chunk.split("\n", 1)
        match = re.fullmatch(r"\s*<!-- (\w+) -->\s*(.*?)\s*<!-- results -->\s*(.*?)\s*", rest, re.S)
        if not match:
            raise ValueError(f"{path}: the section {title!r} has no key or no results marker")
        found[match[1]] = (title, match[2], match[3])
    return head.split("-->", 1)[1].strip(), found


def render(
    results: Mapping[str, Any], write: bool = True, docs: Path = DOCS, sections: Path = PROSE
) -> list[dict[str, Any]]:
    """Write the page (and the plots) of ``results`` with the prose of ``sections``; return
    the goals of the summary."""
    header, texts = prose(sections)
    goals: list[dict[str, Any]] = []
    skipped: list[str] = []
    body: list[str] = []
    data: dict[str, list[dict[str, Any]]] = {}
    for section in results["sections"]:
        title, intro, notes = texts[section["key"]]
        body += [f"## {title}", "", intro, ""]
        shown = False
        for part in section["parts"]:
            command = shlex.join(
                [".venv-bench/bin/python", f"bench/{part['script']}", *part["options"]]
            )
            body += ["```console", f"$ {command}", "```", ""]
            if part["error"]:
                body += [f"**{part['error']}**", ""]
                skipped.append(f"`{command}`: {part['error']}")
            document = part.get("result")
            if not document:
                continue
            shown = True
            body += [*markdown(document), ""]
            skipped += document["skipped"]
            data.setdefault(section["key"], []).append(document["data"])
            for goal in filter(lambda goal: goal["summary"], document["goals"]):
                label = title + (f" ({goal['part']})" if goal["part"] else "")
                goals.append({**goal, "label": label, "order": section["order"]})
        if shown and notes:
            body += [notes, ""]
    goals.sort(key=lambda goal: goal["order"])
    if not write:
        return goals
    plots = plot_all(data, docs / "img")
    run = results["run"]
    modes = {"quick": "fewer rounds still", "smoke": "the smallest sizes: no figure to read"}
    mode = "".join(f" This run used `--{m}` ({why})." for m, why in modes.items() if run.get(m))
    command = shlex.join([".venv-bench/bin/python", "bench/run_all.py", *run["argv"]])
    header = header.format(**run, command=command, minutes=run["total"] / 60, mode=mode)
    lines = [header, "", "## Goals", "", "keel's performance goals, as measured in this run.", ""]
    lines += ["| part | goal | measured | met |", "|---|---|---|---|"]
    for goal in goals:
        met = "**met**" if goal["met"] else "**not met**"
        lines.append(f"| {goal['label']} | {goal['goal']} | {goal['measured']} | {met} |")
    if not goals:
        lines.append("| — | no goal could be read: see the sections below | — | — |")
    lines.append("")
    if skipped:
        lines += ["Skipped or failed in this run:", "", *(f"- {item}" for item in skipped), ""]
    if plots:
        lines += ["## Plots", ""]
        for filename, alt in plots:
            lines += [f"![{alt}](img/{filename})", ""]
        lines += [LEGEND, ""]
    page = re.sub(r"\n{3,}", "\n\n", "\n".join(lines + body)).rstrip() + "\n"
    docs.joinpath("performance.md").write_text(page, encoding="utf-8")
    return goals


if __name__ == "__main__":
    options = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    options.add_argument("results", type=Path, nargs="?", default=RESULTS)
    options.add_argument("--docs", type=Path, default=DOCS)
    options.add_argument("--sections", type=Path, default=PROSE)
    args = options.parse_args()
    results = json.loads(args.results.read_text(encoding="utf-8"))
    render(results, docs=args.docs, sections=args.sections)
