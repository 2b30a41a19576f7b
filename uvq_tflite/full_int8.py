"""Full-integer INT8 models: calibrated quantization and per-layer analysis.

Both observe every intermediate tensor of a float model, one frame at a time.
Where the deployed model does not take one frame per call they observe its twin
instead, fed a call's parts one at a time: for distortion the same wrapper on
one patch (keeping every tensor of the nine 1080p patches of a frame would take
about 11 GB), for a model built for several frames per call the same network at
one frame. A twin's graph is the deployed graph (without the distortion
reassembly tail), op for op, so its tensors map to the deployed ones by
position (the converter names a few of them differently at another batch size).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
from torch import nn

from uvq_tflite.calibration import activation_ranges, quantization_ranges, ranges_of, snapped
from uvq_tflite.core.registry import network
from uvq_tflite.deploy import spec
from uvq_tflite.describe import redescribed
from uvq_tflite.export import export_float32, export_twin
from uvq_tflite.layers import layer_snr
from uvq_tflite.quantize import quantize_full_int8
from uvq_tflite.tflite_file import inspect_bytes

Calls = Iterable[Sequence[np.ndarray]]


def _observed(model: str, float_model: bytes, net: nn.Module) -> tuple[bytes, Callable]:
    """The float model whose tensors are observed, and how a call's inputs feed it."""
    twin = export_twin(model, net)
    if twin is not None:
        return twin, spec(model).twin_calls
    shapes = [t.shape for t in inspect_bytes(float_model).inputs]
    if network(model).frames_per_call(shapes) == 1:
        return float_model, lambda inputs: [inputs]
    per_frame = [shape[0] for shape in network(model).input_shapes(1)]
    return export_float32(model, net), lambda inputs: [
        [array[i * k:(i + 1) * k] for array, k in zip(inputs, per_frame)]
        for i in range(len(inputs[0]) // per_frame[0])]


# Ops the converter adds or leaves out with the batch size (AggregationNet at 2 frames per
# call has a RESHAPE before its FULLY_CONNECTED that it lacks at 1); quantization_ranges
# gives their outputs their inputs' ranges.
SHAPE_ONLY = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")


def twin_names(twin: bytes, deployed: bytes) -> dict[str, str]:
    """Twin tensor name -> deployed tensor name, input for input and op for op; the
    deployed graph may hold SHAPE_ONLY ops the twin lacks, and a tail past its end."""
    ours, theirs = inspect_bytes(twin), inspect_bytes(deployed)
    names = {a.name: b.name for a, b in zip(ours.inputs, theirs.inputs)}
    remaining = iter(theirs.graph)
    for a in ours.graph:
        b = next((op for op in remaining if op.op == a.op or op.op not in SHAPE_ONLY), None)
        if b is None or b.op != a.op:
            raise RuntimeError("the twin's graph is not the deployed graph's beginning")
        names.update(zip(a.outputs, b.outputs))
    return names


def _split(calls: Calls, split: Callable) -> Iterator[Sequence[np.ndarray]]:
    for inputs in calls:
        yield from split(list(inputs))


def calibrated(model: str, float_model: bytes, net: nn.Module, samples: Callable[[], Calls],
               estimator: str, percentile: float, threads: int = 2, io: str = "int8") -> bytes:
    """The full-integer model of `float_model`, activation ranges measured on `samples()`
    (one frame each, as calibration_set.model_samples yields them), with `io` inputs and
    outputs (quantize.IO_TYPES); the ranges snapped, so that a CPU whose float inference
    differs in the last bits builds the same file."""
    observed, split = _observed(model, float_model, net)
    ranges = activation_ranges(observed, lambda: _split(samples(), split), estimator, percentile,
                               threads)
    names = (twin_names(observed, float_model) if observed is not float_model
             else {n: n for n in ranges})
    ranges = {names[n]: snapped(*r) for n, r in ranges.items() if n in names}
    full = quantize_full_int8(float_model, quantization_ranges(float_model, ranges), io)
    return redescribed(full, float_model, "full_int8")


def layer_report(model: str, float_model: bytes, full_model: bytes, net: nn.Module,
                 calls: Sequence[Sequence[np.ndarray]], threads: int = 2) -> list[dict]:
    """Per-layer SNR of `full_model` against `float_model` on `calls` (layers.layer_snr);
    through the twins, quantized with the shipped model's own ranges, where there are twins."""
    observed, split = _observed(model, float_model, net)
    if observed is not float_model:
        shipped = ranges_of(full_model)
        ranges = {twin: shipped[name] for twin, name in twin_names(observed, float_model).items()
                  if name in shipped}
        full_model = quantize_full_int8(observed, quantization_ranges(observed, ranges))
    return layer_snr(observed, full_model, list(_split(calls, split)), threads)
