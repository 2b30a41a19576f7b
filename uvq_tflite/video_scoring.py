"""Scoring real clips as UVQ 1.5 does, with PyTorch and every TFLite precision side by side.

Each frame the reader yields goes through the full chain once per precision;
the video score is the mean of the frame scores, and the output keeps UVQ's own
keys (`uvq1p5_score`, `per_frame_scores`, `frame_indices`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from uvq_tflite.core.console import Progress, log
from uvq_tflite.core.errors import UserInputError
from uvq_tflite.core.registry import MODELS, SCORE_PRECISIONS, network
from uvq_tflite.metrics import format_correlation, format_shares, pearson
from uvq_tflite.reference import to_model_range
from uvq_tflite.video import ScoredFrames, VideoError, VideoInfo, probe

Scorer = Callable[[np.ndarray], np.ndarray]  # NHWC frames in [-1, 1] -> scores [F]


def parse_precisions(text: str | Iterable[str]) -> tuple[str, ...]:
    """`all`, a comma list or an iterable of SCORE_PRECISIONS names, in canonical order."""
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    if names == ["all"]:
        return SCORE_PRECISIONS
    valid = f"valid: {', '.join(SCORE_PRECISIONS)} (a comma list) or all alone"
    if not names or "" in names:
        raise UserInputError(f"precision list {','.join(names)!r} has an empty name; {valid}")
    if "all" in names:
        raise UserInputError(f"precision list {','.join(names)!r}: all means every precision, "
                             f"so it stands alone; {valid}")
    if unknown := [n for n in names if n not in SCORE_PRECISIONS]:
        raise UserInputError(f"unknown precision {', '.join(unknown)}; {valid}")
    return tuple(p for p in SCORE_PRECISIONS if p in names)


def _pytorch_scorer(checkpoint_dir: Path) -> Scorer:
    from uvq_tflite.checkpoints import load_network
    from uvq_tflite.scoring import pytorch_scores

    nets, problems = {}, []
    for model in MODELS:
        try:
            nets[model] = load_network(model, checkpoint_dir / f"{network(model).file_stem}.pth")
        except UserInputError as exc:
            problems.append(str(exc))
    if problems:
        raise UserInputError("\n".join(problems))
    return lambda frames: pytorch_scores(nets, frames)


def _tflite_scorer(models_dir: Path, precision: str, threads: int) -> Scorer:
    from uvq_tflite.describe import metadata_of
    from uvq_tflite.runtime import TFLiteRunner
    from uvq_tflite.tflite_file import read_tflite

    runners, per_call, checkpoints, problems = {}, {}, {}, []
    for model in MODELS:
        path = models_dir / network(model).tflite_name(precision)
        try:
            data = read_tflite(path)
            runners[model] = TFLiteRunner(data, threads, str(path),
                                          count_clipping=precision == "full_int8")
        except UserInputError as exc:
            problems.append(str(exc))
            continue
        checkpoints[model] = path, (metadata_of(data) or {}).get("checkpoint_sha256")
        per_call[model] = network(model).frames_per_call(
            [list(d["shape"]) for d in runners[model].inputs])
        if not per_call[model]:
            problems.append(f"{path}: its inputs are not those of the {model} network")
    if problems:
        raise UserInputError("\n".join(problems))
    return _TFLiteScorer(runners, per_call, checkpoints)


class _TFLiteScorer:
    """The three .tflite files of one precision, scoring frames as one chain;
    `checkpoints`: model -> (its file, the checkpoint sha256 the file's metadata records)."""

    def __init__(self, runners: dict, per_call: dict[str, int], checkpoints: dict):
        self.runners, self.per_call, self.checkpoints = runners, per_call, checkpoints

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        from uvq_tflite.scoring import tflite_scores

        return tflite_scores(self.runners, self.per_call, frames)

    def take_clipped(self) -> dict[str, float] | None:
        """Per network, the largest share of values an INT8 input or output clipped to its
        calibrated range since the last take (runtime.TFLiteRunner.take_clipped); None
        unless counted (full_int8 files)."""
        shares = {model: runner.take_clipped() for model, runner in self.runners.items()}
        return {m: share for m, share in shares.items() if share is not None} or None


def _take_clipped(scorer: Scorer) -> dict[str, float] | None:
    take = getattr(scorer, "take_clipped", None)  # TFLite scorers; PyTorch's clips nothing
    return take() if take else None


def load_scorers(precisions: tuple[str, ...], checkpoint_dir: str | Path,
                 models_dir: str | Path, threads: int = 2) -> dict[str, Scorer]:
    """One scorer per precision; UserInputError naming every missing or bad model file."""
    scorers, problems = {}, []
    for precision in precisions:
        try:
            scorers[precision] = (_pytorch_scorer(Path(checkpoint_dir)) if precision == "pytorch"
                                  else _tflite_scorer(Path(models_dir), precision, threads))
        except UserInputError as exc:
            problems += [f"{precision}: {line}" for line in str(exc).splitlines()]
    if problems:
        raise UserInputError("\n".join(problems))
    return scorers


def _checkpoint_mismatches(scorers: dict[str, Scorer], checkpoint_dir: Path) -> list[str]:
    """One line per .tflite file whose metadata (describe.py) names another checkpoint
    than the one `pytorch` scores with: its differences from pytorch then mean nothing."""
    from uvq_tflite.describe import sha256_of

    if "pytorch" not in scorers:
        return []
    lines = []
    for model in MODELS:
        checkpoint = checkpoint_dir / f"{network(model).file_stem}.pth"
        expected = sha256_of(checkpoint)
        for scorer in scorers.values():
            path, recorded = getattr(scorer, "checkpoints", {}).get(model, (None, None))
            if isinstance(recorded, str) and recorded != expected:
                lines.append(f"{path} was converted from another checkpoint than {checkpoint} "
                             f"(sha256 {recorded[:12]}..., not {expected[:12]}...); its scores "
                             f"do not compare with pytorch's")
    return lines


def _compared(scores: np.ndarray, pytorch: np.ndarray) -> dict[str, float | None]:
    diff = np.abs(scores.astype(np.float64) - pytorch)
    return {"max_abs_diff": float(diff.max()),
            "max_rel_diff": float((diff / np.abs(pytorch)).max()),
            "video_score_diff": float(scores.mean(dtype=np.float64) - pytorch.mean()),
            "frame_correlation": pearson(scores, pytorch)}


def score_clip(info: VideoInfo, scorers: dict[str, Scorer],
               progress: Progress | None = None) -> dict:
    """One clip's result: its reader facts and, per precision, UVQ's keys.

    Non-PyTorch precisions also carry `vs_pytorch`: max abs and relative
    per-frame difference, the video-score difference and the frame correlation.
    Full-integer files also carry `clipped`: per network, the share of values an
    INT8 input or output clipped to its calibrated range (a clip unlike the
    calibration set shows here first).
    """
    per_frame: dict[str, list[float]] = {p: [] for p in scorers}
    for scorer in scorers.values():
        _take_clipped(scorer)  # count this clip's values only

    frames = ScoredFrames(info)
    for frame in frames:
        batch = to_model_range(frame)[None]
        for precision, scorer in scorers.items():
            per_frame[precision].append(float(scorer(batch)[0]))
        if progress:
            progress.advance()
    result: dict = {"video_length": info.video_length, "fps": info.fps,
                    "orig_fps": info.orig_fps, "transpose": info.transpose,
                    "duration": info.duration, "padding_frames": frames.padding}
    indices = info.frame_indices()
    for precision, scores in per_frame.items():
        result[precision] = {"uvq1p5_score": float(np.mean(scores, dtype=np.float64)),
                             "per_frame_scores": scores, "frame_indices": indices}
        if precision != "pytorch" and "pytorch" in per_frame:
            result[precision]["vs_pytorch"] = _compared(
                np.array(scores), np.array(per_frame["pytorch"], np.float64))
        clipped = _take_clipped(scorers[precision])
        if clipped:
            result[precision]["clipped"] = clipped
    return result


def score_video(videos: str | Path | Iterable[str | Path], precisions: str | Iterable[str] = "all",
                checkpoint_dir: str | Path = "models/checkpoints",
                models_dir: str | Path = "models/tflite", fps: int = 1,
                transpose: str = "auto", threads: int = 2,
                on_error: Callable[[VideoError], None] | None = None,
                show_progress: bool = False) -> dict:
    """Score clips as UVQ 1.5 does: {video path as given: {precision: {uvq1p5_score, ...}}}.

    Precisions: `all` or any of SCORE_PRECISIONS (pytorch, float32, int8,
    full_int8), a comma list or iterable. A clip that cannot be read raises
    VideoError, unless `on_error` is given: it is then called with the error
    and the clip is left out.
    """
    paths, seen = [], set()
    for video in [videos] if isinstance(videos, (str, Path)) else videos:
        if (key := os.path.normpath(os.fspath(video))) not in seen:  # named twice: scored once
            seen.add(key)
            paths.append(video)
    infos = []
    for path in paths:
        try:
            infos.append(probe(path, fps, transpose))
        except VideoError as exc:
            if on_error is None:
                raise
            on_error(exc)
    results = {}
    if not infos:
        return results
    scorers = load_scorers(parse_precisions(precisions), checkpoint_dir, models_dir, threads)
    for line in _checkpoint_mismatches(scorers, Path(checkpoint_dir)):
        log(f"warning: {line}")
    for info in infos:
        progress = Progress(info.path, info.frame_count, "frames") if show_progress else None
        try:
            results[info.path] = score_clip(info, scorers, progress)
        except VideoError as exc:
            if on_error is None:
                raise
            on_error(exc)
        finally:
            if progress:
                progress.close()
    return results


def render_table(results: dict) -> str:
    """A readable table per clip: video score and per-frame differences from PyTorch."""
    blocks = []
    for path, clip in results.items():
        precisions = [p for p in SCORE_PRECISIONS if p in clip]
        frames = len(clip[precisions[0]]["per_frame_scores"])
        padding = clip.get("padding_frames", 0)
        padded = f"; {padding} of them zeros padding a short decode, as in UVQ"
        lines = [f"{path}: {frames} frames ({clip['video_length']} s at {clip['fps']} fps"
                 f"{', transposed' if clip['transpose'] else ''}{padded if padding else ''})",
                 f"  {'precision':<10} {'UVQ score':>9}  {'max |d| vs pytorch':>18}  "
                 f"{'max rel':>8}  {'frame corr':>10}"]
        for precision in precisions:
            row = clip[precision]
            versus = row.get("vs_pytorch")
            diffs = (f"{versus['max_abs_diff']:>18.3g}  {versus['max_rel_diff']:>8.3g}  "
                     f"{format_correlation(versus['frame_correlation']):>10}" if versus else "")
            lines.append(f"  {precision:<10} {row['uvq1p5_score']:>9.5f}  {diffs}".rstrip())
        lines += [f"  {precision} values clipped at INT8 inputs/outputs: "
                  f"{format_shares(clip[precision]['clipped'])}"
                  for precision in precisions if "clipped" in clip[precision]]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def clip_metrics(result: dict) -> tuple[dict, list[dict]]:
    """A `score_clip` result as DVC metrics (numbers only) and per-frame plot rows."""
    precisions = [p for p in SCORE_PRECISIONS if p in result]
    first = result[precisions[0]]
    metrics = {"frames": len(first["per_frame_scores"]), "video_length": result["video_length"],
               "fps": result["fps"]}
    for precision in precisions:
        row = result[precision]
        metrics[precision] = {"uvq1p5_score": row["uvq1p5_score"], **row.get("vs_pytorch", {}),
                              **({"clipped": row["clipped"]} if "clipped" in row else {})}
    per_frame = [{"frame": i, "frame_index": index,
                  **{p: result[p]["per_frame_scores"][i] for p in precisions}}
                 for i, index in enumerate(first["frame_indices"])]
    return metrics, per_frame
