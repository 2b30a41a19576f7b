"""`make verify`: metrics/*.json against params.yaml's thresholds, as one table."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from uvq_tflite.core.errors import UserInputError, first_line
from uvq_tflite.core.params import builtin_ops
from uvq_tflite.core.registry import MODELS, PRECISIONS, network
from uvq_tflite.metrics import format_correlation, format_shares
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
        f"#{w['layer']} {w['op']} {w['tensor']} (SNR {w['snr_db']:.1f} dB, "
        f"down {w['drop_db']:.1f} dB from its input)" for w in worst)


def _rank_detail(path: Path, max_rank: int) -> str:
    try:
        above = inspect_file(path).tensors_above(max_rank)
    except TFLiteFileError:
        return ""
    names = ", ".join(f"{n} (rank {r})" for n, r in list(above.items())[:3])
    return f": {names}" if names else ""


def size_vs_float32(row: Row, float32_mb: dict[str, float]) -> float:
    """The row's file size as a fraction of its model's float32 file (the metrics schema
    makes every model's float32 row present, and its size positive)."""
    return row.metrics["size_mb"] / float32_mb[row.model]


def _size_detail(path: Path, float32_mb: float) -> str:
    """Where the file's bytes go, each part as a fraction of the float32 file."""
    try:
        parts = inspect_file(path).size_parts
    except TFLiteFileError:
        return ""
    shares = {name: n / (float32_mb * 1e6) for name, n in parts.items()}
    return ": " + ", ".join(f"{name} {share:.3f}x" for name, share in shares.items()
                            if share >= 0.0005)


def check_row(row: Row, thresholds: dict, tflite_dir: Path,
              float32_mb: dict[str, float]) -> None:
    """Append to row.breaches every rule the row's metrics break; `float32_mb`
    (float32_sizes) is what the size of a quantized file is measured against."""
    m = row.metrics
    limit = thresholds[row.precision].get("max_size_vs_float32")
    ratio = size_vs_float32(row, float32_mb)
    if limit is not None and not ratio <= limit:
        path = tflite_dir / network(row.model).tflite_name(row.precision)
        row.breaches.append(f"size {ratio:.3f}x float32 > {limit} "
                            f"(thresholds.{row.precision}.max_size_vs_float32)"
                            f"{_size_detail(path, float32_mb[row.model])}")
    minimum = thresholds[row.precision]["min_correlation"]
    if not m["correlation"] >= minimum:
        constant = ": the output is one constant value" if m.get("constant_output") else ""
        row.breaches.append(f"correlation {m['correlation']:.6f} < {minimum} "
                            f"(thresholds.{row.precision}.min_correlation){constant}"
                            f"{_worst_layers(m)}")
    if row.precision in INTEGER_ONLY and (float_ops := _counted(m["float_ops"])):
        ops = ", ".join(f"{op} x{n}" for op, n in float_ops.items())
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


class MalformedMetrics(UserInputError):
    """A metrics file that is not what the verify or score stages write (exit 2)."""


MAX_METRICS_BYTES = 1 << 20


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _read_metrics(path: Path, schema: dict[str, Check]) -> tuple[dict | None, list[str]]:
    """A metrics file that passes `schema` (every precision's values), None and a breach if
    it is missing; MalformedMetrics, one line per problem, if it is anything else."""
    try:
        if path.stat().st_size > MAX_METRICS_BYTES:
            raise MalformedMetrics(f"{path}: {path.stat().st_size} bytes, too large for metrics")
        data = json.loads(path.read_bytes().decode("utf-8"), parse_constant=_reject_constant)
    except FileNotFoundError:
        return None, [f"{path}: missing; run `make repro`"]
    except OSError as exc:
        raise MalformedMetrics(f"{path}: unreadable ({exc.strerror})") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, NaN, Infinity
        raise MalformedMetrics(f"{path}: not strict JSON metrics ({first_line(exc)})"
                               ) from None
    problems = _schema_problems(data, schema)
    if problems:
        raise MalformedMetrics("\n".join(f"{path}: {p}" for p in problems))
    return data, []


Check = tuple[Callable[[Any], bool], str]


def _number(low: float = -math.inf, high: float = math.inf) -> Check:
    return ((lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
             and math.isfinite(v) and low <= v <= high),
            f"a finite number from {low} to {high}")


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _op_counts(v: Any) -> bool:
    return isinstance(v, dict) and all(
        isinstance(op, str) and (op in builtin_ops() or op.startswith(("CUSTOM:", "UNKNOWN_")))
        and _count(n) for op, n in v.items())


def _text(v: Any) -> bool:
    return isinstance(v, str)


_LAYER_FIELDS: dict[str, Callable[[Any], bool]] = {
    "layer": _count, "op": _text, "tensor": _text, "snr_db": _number()[0],
    "drop_db": _number()[0]}


def _worst_layer_list(v: Any) -> bool:
    return isinstance(v, list) and all(
        isinstance(w, dict) and all(k in w and ok(w[k]) for k, ok in _LAYER_FIELDS.items())
        for w in v)


_CORRELATION = _number(-1, 1)
MODEL_SCHEMA: dict[str, Check] = {
    "correlation": _CORRELATION, "max_abs_diff": _number(0), "mean_abs_diff": _number(0),
    "size_mb": _number(1e-6), "max_rank": (_count, "a whole number >= 0"),
    "nhwc_io": ((lambda v: isinstance(v, bool)), "true or false"),
    "ops": (_op_counts, "TFLite builtin op names (upper case) with counts"),
    "float_ops": (_op_counts, "TFLite builtin op names (upper case) with counts"),
    "constant_output": ((lambda v: isinstance(v, bool)), "true or false"),
    "worst_layers": (_worst_layer_list, "a list of {layer, op, tensor, snr_db, drop_db}"),
}


def _shares(v: Any) -> bool:
    return isinstance(v, dict) and all(
        model in MODELS and _number(0, 1)[0](share) for model, share in v.items())


VIDEO_SCHEMA: dict[str, Check] = {
    "uvq1p5_score": _number(), "max_abs_diff": _number(0), "max_rel_diff": _number(0),
    "frame_correlation": ((lambda v: v is None or _CORRELATION[0](v)),
                          f"null (constant scores) or {_CORRELATION[1]}"),
    "clipped": (_shares, f"network names ({', '.join(MODELS)}) with shares from 0 to 1"),
}
# values of a video file outside its precisions
VIDEO_TOP: dict[str, Check] = {"frames": ((lambda v: _count(v) and v > 0), "a whole number >= 1")}
# only full-integer files clip (video_scoring's `clipped`) and name worst layers (verify);
# metrics before constant_output
OPTIONAL = ("clipped", "constant_output", "worst_layers")


def _schema_problems(data: Any, schema: dict[str, Check]) -> list[str]:
    precisions = PRECISIONS if schema is MODEL_SCHEMA else ("pytorch", *PRECISIONS)
    if not isinstance(data, dict):
        return [f"expected an object with {', '.join(precisions)}"]
    problems = []
    for key, (ok, expected) in (VIDEO_TOP if schema is VIDEO_SCHEMA else {}).items():
        if not ok(data.get(key)):
            problems.append(f"{key}: {_short(data.get(key))} is missing or invalid; "
                            f"expected {expected}")
    for precision in precisions:
        row = data.get(precision)
        if not isinstance(row, dict):
            problems.append(f"{precision}: missing, or not an object")
            continue
        for key, (ok, expected) in schema.items():
            if precision == "pytorch" and key != "uvq1p5_score":
                continue
            if key not in row:
                if key not in OPTIONAL:
                    problems.append(f"{precision}.{key}: missing; expected {expected}")
            elif not ok(row[key]):
                problems.append(f"{precision}.{key}: {_short(row[key])} is invalid; "
                                f"expected {expected}")
    return problems


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_rows(metrics_dir: Path) -> tuple[list[Row], list[str]]:
    """Rows of every model's metrics file, and problems reading them."""
    rows, problems = [], []
    for model in MODELS:
        data, unusable = _read_metrics(metrics_dir / f"{model}.json", MODEL_SCHEMA)
        problems += unusable
        if data:
            rows += [Row(model, p, data[p]) for p in PRECISIONS]
    return rows, problems


def load_videos(metrics_dir: Path, clips: list[str]) -> tuple[dict[str, dict], list[str]]:
    """metrics/videos/<clip>.json of every clip in params' videos, and problems reading them."""
    videos, problems = {}, []
    for clip in clips:
        data, unusable = _read_metrics(metrics_dir / "videos" / f"{clip}.json", VIDEO_SCHEMA)
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
    lines = ["UVQ scores per clip (max rel: worst per-frame difference from PyTorch; "
             "frame corr: per-frame scores against PyTorch's; clipped: values full_int8's "
             "INT8 inputs/outputs clip, per network; neither gated):"]
    for name, clip in videos.items():
        lines.append(f"  {name}: {clip['frames']} frames, "
                     f"PyTorch {clip['pytorch']['uvq1p5_score']:.4f}")
        for precision in PRECISIONS:
            row = clip[precision]
            ok = _score_within(clip, thresholds, precision)
            lines.append(f"    {precision:<9} {row['uvq1p5_score']:.4f}  "
                         f"max |d| {row['max_abs_diff']:.4g}  max rel {row['max_rel_diff']:.4g}  "
                         f"frame corr {format_correlation(row['frame_correlation'])}  "
                         f"{'pass' if ok else 'FAIL'}")
            if row.get("clipped"):
                lines.append(f"      clipped: {format_shares(row['clipped'])}")
    return "\n".join(lines)


def _counted(ops: dict[str, int]) -> dict[str, int]:
    """Op counts without the ops counted zero times."""
    return {op: n for op, n in ops.items() if n > 0}


def forbidden_ops(row: Row, thresholds: dict) -> dict[str, int]:
    """The row's operators that thresholds.forbidden_ops names, with their counts."""
    return {op: n for op, n in _counted(row.metrics["ops"]).items()
            if op in thresholds["forbidden_ops"]}


def float32_sizes(rows: list[Row]) -> dict[str, float]:
    """model -> size of its float32 file in MB, what quantized sizes are measured against."""
    return {r.model: r.metrics["size_mb"] for r in rows if r.precision == "float32"}


def render(rows: list[Row], thresholds: dict, float32_mb: dict[str, float]) -> str:
    header = ("model", "precision", "corr", "max|d|", "mean|d|", "size MB", "x f32", "rank",
              "forbidden", "float ops", "NHWC", "result")
    lines = [header]
    for r in rows:
        m = r.metrics
        corr = "constant" if m.get("constant_output") else f"{m['correlation']:.6f}"
        lines.append((r.model, r.precision, corr, f"{m['max_abs_diff']:.4g}",
                      f"{m['mean_abs_diff']:.4g}", f"{m['size_mb']:.2f}",
                      f"{size_vs_float32(r, float32_mb):.3f}", str(m["max_rank"]),
                      str(sum(forbidden_ops(r, thresholds).values())),
                      str(sum(m["float_ops"].values())),
                      "yes" if m["nhwc_io"] else "NO", "FAIL" if r.breaches else "pass"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


def tampered_outputs(root: Path, prefixes: tuple[str, ...] = ("models/tflite/", "metrics/")
                     ) -> list[str]:
    """Gated files whose content differs from the md5 dvc.lock records for them: edited
    after `dvc repro` (DVC's own status trusts size and mtime, which an edit can keep)."""
    lock_path = root / "dvc.lock"
    if not lock_path.is_file():
        return []
    lock = yaml.safe_load(lock_path.read_text(encoding="utf-8")) or {}
    current = (yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8")) or {})["stages"]
    problems = []
    for name, stage in sorted((lock.get("stages") or {}).items()):
        if name.split("@")[0] not in current:  # a stage since removed from dvc.yaml
            continue
        for out in stage.get("outs") or []:
            path, md5 = out.get("path", ""), out.get("md5", "")
            if not path.startswith(prefixes) or md5.endswith(".dir"):
                continue
            file = root / path
            if not file.is_file():
                problems.append(f"{path}: missing, though dvc.lock records it; run `make repro`")
                continue
            with open(file, "rb") as f:
                actual = hashlib.file_digest(f, "md5").hexdigest()
            if actual != md5:
                problems.append(f"{path}: content differs from what {name} wrote (md5 "
                                f"{actual[:12]}..., dvc.lock {md5[:12]}...); "
                                f"run `make repro`")
    return problems
