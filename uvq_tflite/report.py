"""`make report`: the pipeline's plots as one HTML page that needs no network.

DVC's own `dvc plots show` page loads Vega from a CDN, so it is blank offline.
Here DVC still resolves the plots (dvc.yaml's `plots`, with the data of each
revision) and vl-convert, which bundles Vega, renders each to SVG inline: the
page holds no script at all. With a revision to compare against (`dvc plots
diff`), every plot draws both the workspace and that revision.
"""

from __future__ import annotations

import html
import json
import subprocess
import sys
from pathlib import Path

from uvq_tflite.core.errors import UserInputError, first_line

STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1100px}"
         "figure{margin:2em 0}figcaption{font-weight:bold;margin-bottom:.5em}")


def resolved_plots(against: str | None) -> dict[str, list[dict]]:
    """{plot title: [DVC's Vega-Lite specs with data]} of the workspace (and `against`)."""
    if not Path("dvc.yaml").is_file():
        raise UserInputError(f"{Path.cwd()}: no dvc.yaml here; run `uvq-tflite report` at the "
                             f"root of the uvq-tflite checkout")
    command = ["plots", "diff", against, "--json"] if against else ["plots", "show", "--json"]
    result = subprocess.run([sys.executable, "-m", "dvc", *command], capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise UserInputError(f"dvc {' '.join(command)} failed: "
                             f"{first_line(RuntimeError(result.stderr))}")
    plots = json.loads(result.stdout).get("data", {})
    if not plots:
        raise UserInputError("no plot data in the workspace; run `make repro` first")
    return plots


def svg_of(spec: dict) -> str:
    import vl_convert

    return vl_convert.vegalite_to_svg(spec)


def render(plots: dict[str, list[dict]], against: str | None) -> str:
    """The HTML page: one inline SVG per plot, no scripts."""
    compared = f" against {html.escape(against)}" if against else ""
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             f"<title>uvq-tflite report</title><style>{STYLE}</style></head><body>",
             f"<h1>uvq-tflite: the workspace's plots{compared}</h1>"]
    for title, entries in plots.items():
        for entry in entries:
            if entry.get("type") != "vega":
                continue
            revisions = ", ".join(entry.get("revisions", []))
            parts.append(f"<figure><figcaption>{html.escape(title)} "
                         f"<small>({html.escape(revisions)})</small></figcaption>"
                         f"{svg_of(entry['content'])}</figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def previous_commit() -> str | None:
    """HEAD~1 if the repository has one (what the report compares against by default)."""
    result = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "HEAD~1"],
                            capture_output=True, text=True)
    return "HEAD~1" if result.returncode == 0 else None


def write_report(output: Path, against: str | None) -> int:
    """Render the report to `output`; the number of plots drawn."""
    from uvq_tflite.core.files import write_atomic

    plots = resolved_plots(against)
    page = render(plots, against)
    write_atomic(output, page.encode())
    return page.count("<figure>")
