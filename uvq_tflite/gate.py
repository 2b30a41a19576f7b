"""`make verify`: metrics/*.json against params.yaml's thresholds, as one table."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from uvq_tflite.deploy import MODELS, PRECISIONS, spec
from uvq_tflite.tflite_file import TFLiteFileError, inspect_file


@dataclass
class Row:
    model: str
    precision: str
    metrics: dict
    breaches: list[str] = field(default_factory=list)


def _rank_detail(path: Path, max_rank: int) -> str:
    try:
        above = inspect_file(path).tensors_above(max_rank)
    except TFLiteFileError:
        return ""
    names = ", ".join(f"{n} (rank {r})" for n, r in list(above.items())[:3])
    return f": {names}" if names else ""


def check_row(row: Row, thresholds: dict, tflite_dir: Path) -> None:
    """Append to row.breaches every rule the row's metrics break."""
    m = row.metrics
    minimum = thresholds[row.precision]["min_correlation"]
    if not m["correlation"] >= minimum:
        row.breaches.append(f"correlation {m['correlation']:.6f} < {minimum} "
                            f"(thresholds.{row.precision}.min_correlation)")
    if m["max_rank"] > thresholds["max_rank"]:
        path = tflite_dir / spec(row.model).tflite_name(row.precision)
        row.breaches.append(f"max tensor rank {m['max_rank']} > {thresholds['max_rank']} "
                            f"(thresholds.max_rank){_rank_detail(path, thresholds['max_rank'])}")
    forbidden = forbidden_ops(row, thresholds)
    if forbidden:
        ops = ", ".join(f"{op} x{n}" for op, n in forbidden.items())
        row.breaches.append(f"forbidden ops {ops} (thresholds.forbidden_ops)")
    if not m["nhwc_io"]:
        row.breaches.append("inputs/outputs are not the NHWC shapes of params.yaml's models")


def _read_metrics(path: Path) -> tuple[dict | None, list[str]]:
    """A metrics file holding every precision, or a problem saying why it is unusable."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None, [f"{path}: missing; run `make repro`"]
    except json.JSONDecodeError as exc:
        return None, [f"{path}: unreadable metrics ({exc}); run `make repro`"]
    if not isinstance(data, dict) or not all(isinstance(data.get(p), dict) for p in PRECISIONS):
        return None, [f"{path}: lacks {', '.join(PRECISIONS)}; run `make repro`"]
    return data, []


def load_rows(metrics_dir: Path) -> tuple[list[Row], list[str]]:
    """Rows of every model's metrics file, and problems reading them."""
    rows, problems = [], []
    for model in MODELS:
        data, unusable = _read_metrics(metrics_dir / f"{model}.json")
        problems += unusable
        if data:
            rows += [Row(model, p, data[p]) for p in PRECISIONS]
    return rows, problems


def load_scores(metrics_dir: Path) -> tuple[dict | None, list[str]]:
    """metrics/scores.json, or a problem saying why it is unusable."""
    return _read_metrics(metrics_dir / "scores.json")


def _score_within(scores: dict, thresholds: dict, precision: str) -> bool:
    return scores[precision]["max_rel_diff"] <= thresholds[precision]["max_score_rel_diff"]


def score_breaches(scores: dict, thresholds: dict) -> list[str]:
    breaches = []
    for precision in PRECISIONS:
        limit = thresholds[precision]["max_score_rel_diff"]
        worst = scores[precision]["max_rel_diff"]
        if not _score_within(scores, thresholds, precision):
            breaches.append(f"scores {precision}: max relative score difference {worst:.4g} > "
                            f"{limit} (thresholds.{precision}.max_score_rel_diff)")
    return breaches


def render_scores(scores: dict, thresholds: dict) -> str:
    lines = [f"end-to-end scores, {scores['frames']} frames "
             f"(PyTorch video score {scores['pytorch_video_score']:.4f}):"]
    for precision in PRECISIONS:
        s = scores[precision]
        ok = _score_within(scores, thresholds, precision)
        lines.append(f"  {precision:<8} video score {s['video_score']:.4f}  "
                     f"max |d| {s['max_abs_diff']:.4g}  max rel {s['max_rel_diff']:.4g}  "
                     f"{'pass' if ok else 'FAIL'}")
    return "\n".join(lines)


def forbidden_ops(row: Row, thresholds: dict) -> dict[str, int]:
    """The row's operators that thresholds.forbidden_ops names, with their counts."""
    return {op: n for op, n in row.metrics["ops"].items() if op in thresholds["forbidden_ops"]}


def render(rows: list[Row], thresholds: dict) -> str:
    header = ("model", "precision", "corr", "max|d|", "mean|d|", "size MB", "rank",
              "forbidden", "NHWC", "result")
    lines = [header]
    for r in rows:
        m = r.metrics
        lines.append((r.model, r.precision, f"{m['correlation']:.6f}", f"{m['max_abs_diff']:.4g}",
                      f"{m['mean_abs_diff']:.4g}", f"{m['size_mb']:.2f}", str(m["max_rank"]),
                      str(sum(forbidden_ops(r, thresholds).values())),
                      "yes" if m["nhwc_io"] else "NO", "FAIL" if r.breaches else "pass"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)
