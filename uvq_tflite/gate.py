"""`make verify`: metrics/*.json against params.yaml's thresholds, as one table."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from uvq_tflite.core.registry import MODELS, PRECISIONS, network
from uvq_tflite.tflite_file import TFLiteFileError, inspect_file


@dataclass
class Row:
    model: str
    precision: str
    metrics: dict
    breaches: list[str] = field(default_factory=list)


INTEGER_ONLY = ("full_int8",)  # precisions whose every op must compute in integers


def _worst_layers(metrics: dict) -> str:
    """Where a full-integer model loses most (from the verify stage's per-layer SNR)."""
    worst = metrics.get("worst_layers")
    if not worst:
        return ""
    return "; worst layers: " + ", ".join(
        f"#{w['layer']} {w['op']} {w['tensor'][-48:]} ({w['snr_db']:.1f} dB, "
        f"-{w['drop_db']:.1f} dB)" for w in worst)


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
                            f"(thresholds.{row.precision}.min_correlation)"
                            f"{_worst_layers(m)}")
    if row.precision in INTEGER_ONLY and m["float_ops"]:
        ops = ", ".join(f"{op} x{n}" for op, n in m["float_ops"].items())
        row.breaches.append(f"not integer-only: {ops} compute in float")
    if m["max_rank"] > thresholds["max_rank"]:
        path = tflite_dir / network(row.model).tflite_name(row.precision)
        row.breaches.append(f"max tensor rank {m['max_rank']} > {thresholds['max_rank']} "
                            f"(thresholds.max_rank){_rank_detail(path, thresholds['max_rank'])}")
    forbidden = forbidden_ops(row, thresholds)
    if forbidden:
        ops = ", ".join(f"{op} x{n}" for op, n in forbidden.items())
        row.breaches.append(f"forbidden ops {ops} (thresholds.forbidden_ops)")
    if not m["nhwc_io"]:
        row.breaches.append("inputs/outputs are not the NHWC shapes of params.yaml's models")


def _read_metrics(path: Path, precisions: tuple[str, ...] = PRECISIONS
                  ) -> tuple[dict | None, list[str]]:
    """A metrics file holding every one of `precisions`, or a problem saying why it is unusable."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None, [f"{path}: missing; run `make repro`"]
    except json.JSONDecodeError as exc:
        return None, [f"{path}: unreadable metrics ({exc}); run `make repro`"]
    if not isinstance(data, dict) or not all(isinstance(data.get(p), dict) for p in precisions):
        return None, [f"{path}: lacks {', '.join(precisions)}; run `make repro`"]
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


def load_videos(metrics_dir: Path, clips: list[str]) -> tuple[dict[str, dict], list[str]]:
    """metrics/videos/<clip>.json of every clip in params' videos, and problems reading them."""
    videos, problems = {}, []
    for clip in clips:
        data, unusable = _read_metrics(metrics_dir / "videos" / f"{clip}.json",
                                       ("pytorch", *PRECISIONS))
        problems += unusable
        if data:
            videos[clip] = data
    return videos, problems


def _score_within(clip: dict, thresholds: dict, precision: str) -> bool:
    return clip[precision]["max_rel_diff"] <= thresholds[precision]["max_score_rel_diff"]


def score_breaches(videos: dict[str, dict], thresholds: dict) -> list[str]:
    breaches = []
    for name, clip in videos.items():
        for precision in PRECISIONS:
            if not _score_within(clip, thresholds, precision):
                breaches.append(
                    f"video {name} {precision}: max per-frame relative score difference "
                    f"{clip[precision]['max_rel_diff']:.4g} > "
                    f"{thresholds[precision]['max_score_rel_diff']} "
                    f"(thresholds.{precision}.max_score_rel_diff)")
    return breaches


def render_videos(videos: dict[str, dict], thresholds: dict) -> str:
    lines = ["UVQ scores per clip (max rel: worst per-frame difference from PyTorch):"]
    for name, clip in videos.items():
        lines.append(f"  {name}: {clip['frames']} frames, "
                     f"PyTorch {clip['pytorch']['uvq1p5_score']:.4f}")
        for precision in PRECISIONS:
            row = clip[precision]
            ok = _score_within(clip, thresholds, precision)
            lines.append(f"    {precision:<9} {row['uvq1p5_score']:.4f}  "
                         f"max |d| {row['max_abs_diff']:.4g}  max rel {row['max_rel_diff']:.4g}  "
                         f"{'pass' if ok else 'FAIL'}")
    return "\n".join(lines)


def forbidden_ops(row: Row, thresholds: dict) -> dict[str, int]:
    """The row's operators that thresholds.forbidden_ops names, with their counts."""
    return {op: n for op, n in row.metrics["ops"].items() if op in thresholds["forbidden_ops"]}


def render(rows: list[Row], thresholds: dict) -> str:
    header = ("model", "precision", "corr", "max|d|", "mean|d|", "size MB", "rank",
              "forbidden", "float ops", "NHWC", "result")
    lines = [header]
    for r in rows:
        m = r.metrics
        lines.append((r.model, r.precision, f"{m['correlation']:.6f}", f"{m['max_abs_diff']:.4g}",
                      f"{m['mean_abs_diff']:.4g}", f"{m['size_mb']:.2f}", str(m["max_rank"]),
                      str(sum(forbidden_ops(r, thresholds).values())),
                      str(sum(m["float_ops"].values())),
                      "yes" if m["nhwc_io"] else "NO", "FAIL" if r.breaches else "pass"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)
