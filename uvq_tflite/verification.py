"""Per-model verification: each .tflite file against the independent PyTorch reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from uvq_tflite import reference, synthetic
from uvq_tflite.core.errors import UserInputError
from uvq_tflite.core.registry import PRECISIONS, network
from uvq_tflite.full_int8 import layer_report
from uvq_tflite.layers import worst
from uvq_tflite.metrics import agreement
from uvq_tflite.runtime import TFLiteRunner, calls, run_per_call
from uvq_tflite.tflite_file import inspect_bytes, read_tflite


def reference_case(model: str, net: nn.Module, samples: int,
                   seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Model inputs (NHWC, as the .tflite takes them) and the reference output."""
    if model == "aggregation":
        content, distortion = synthetic.feature_maps(samples, seed)
        return [content, distortion], reference.aggregate(net, content, distortion)
    frames = reference.to_model_range(synthetic.video_frames(samples, seed))
    if model == "distortion":
        return [reference.split_patches(frames)], reference.distortion_features(net, frames)
    content_inputs = reference.resize_for_content(frames)
    return [content_inputs], reference.content_features(net, content_inputs)


def hardware_facts(data: bytes, model: str, frames: int, path: Path) -> dict:
    """Facts `make verify` gates: size, op histogram, highest rank, NHWC I/O, float ops.
    UserInputError if the file's I/O is not `model`'s at `frames` frames per call."""
    report = inspect_bytes(data, path)
    shapes = [t.shape for t in report.inputs]
    io_frames = network(model).frames_per_call(shapes, [t.shape for t in report.outputs])
    if io_frames != frames:
        expected = [list(s) for s in network(model).input_shapes(frames)]
        raise UserInputError(f"{path}: inputs {shapes} are not the {model} network's at "
                             f"{frames} frame(s) per call ({expected}); is it another model?")
    return {
        "size_mb": round(len(data) / 1e6, 6),  # bytes; the JSON keeps 6 significant digits
        "max_rank": report.max_rank,
        "ops": report.ops,
        "nhwc_io": io_frames == frames,
        "quantized_tensors": sum(report.quantized.values()),
        "float_ops": report.float_ops,
        "io_dtypes": sorted({t.dtype for t in report.inputs + report.outputs}),
    }


PLOT_POINTS = 1000
LAYER_SAMPLES = 2  # held-out calls compared tensor by tensor (preserving every tensor is costly)
WORST_LAYERS = 3


def verify_model(model: str, net: nn.Module, tflite: dict[str, Path], frames: int,
                 samples: int, seed: int, threads: int) -> tuple[dict, list[dict], list[dict]]:
    """Metrics for every precision against the reference semantics; up to PLOT_POINTS
    evenly spaced (reference, float32, int8, full_int8) values for a scatter plot; and
    the full-integer model's per-layer SNR against the float32 model."""
    inputs, expected = reference_case(model, net, samples, seed)
    metrics: dict = {"samples": samples}
    outputs, files = {}, {}
    for precision in PRECISIONS:
        files[precision] = data = read_tflite(tflite[precision])
        facts = hardware_facts(data, model, frames, tflite[precision])  # before running it
        runner = TFLiteRunner(data, threads, str(tflite[precision]))
        outputs[precision] = run_per_call(runner, model, inputs, frames)
        metrics[precision] = {**agreement(expected, outputs[precision]), **facts}
    picks = np.unique(np.linspace(0, expected.size - 1, PLOT_POINTS).astype(int))
    points = [{"reference": float(expected.flat[i]),
               **{p: float(outputs[p].flat[i]) for p in PRECISIONS}} for i in picks]
    whole = [chunk for chunk, real in calls(model, inputs, frames) if real == frames]
    layers = layer_report(model, files["float32"], files["full_int8"], net,
                          whole[:LAYER_SAMPLES], threads)
    metrics["full_int8"]["worst_layers"] = [
        {k: r[k] for k in ("layer", "op", "tensor", "snr_db", "drop_db")}
        for r in worst(layers, WORST_LAYERS)]
    return metrics, points, layers

