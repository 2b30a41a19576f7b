"""Full-integer INT8 models: calibrated quantization and per-layer analysis.

Both observe every intermediate tensor of a float model, which for the nine
1080p patches of the distortion model would take about 11 GB; there they use
the model's twin (ModelSpec.twin): the same wrapper on one patch, fed the
patches one at a time. The twin's graph is the deployed graph without its
reassembly tail, op for op, so its tensors map to the deployed ones by
position (the converter names a few of them differently at another batch size).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
from torch import nn

from uvq_tflite.calibration import activation_ranges, quantization_ranges, ranges_of
from uvq_tflite.core.registry import network
from uvq_tflite.deploy import spec
from uvq_tflite.describe import redescribed
from uvq_tflite.export import export_twin
from uvq_tflite.layers import layer_snr
from uvq_tflite.quantize import quantize_full_int8
from uvq_tflite.runtime import calls
from uvq_tflite.tflite_file import inspect_bytes

Calls = Iterable[Sequence[np.ndarray]]


def _observed(model: str, float_model: bytes, net: nn.Module) -> tuple[bytes, Callable]:
    """The float model whose tensors are observed, and how a call's inputs feed it."""
    twin = export_twin(model, net)
    if twin is None:
        return float_model, lambda inputs: [inputs]
    return twin, spec(model).twin_calls


def twin_names(twin: bytes, deployed: bytes) -> dict[str, str]:
    """Twin tensor name -> deployed tensor name, input for input and op for op."""
    ours, theirs = inspect_bytes(twin), inspect_bytes(deployed)
    if [op.op for op in ours.graph] != [op.op for op in theirs.graph[:len(ours.graph)]]:
        raise RuntimeError("the twin's graph is not the deployed graph's beginning")
    names = {a.name: b.name for a, b in zip(ours.inputs, theirs.inputs)}
    for a, b in zip(ours.graph, theirs.graph):
        names.update(zip(a.outputs, b.outputs))
    return names


def _split(calls: Calls, split: Callable) -> Iterator[Sequence[np.ndarray]]:
    for inputs in calls:
        yield from split(list(inputs))


def _regrouped(samples: Calls, model: str, frames: int) -> Iterator[list[np.ndarray]]:
    """Samples of one frame each as calls of a model built for `frames` frames per call;
    the last call is padded with its last frame (runtime.calls), which min/max ignores."""
    group: list[list[np.ndarray]] = []
    for inputs in samples:
        group.append(list(inputs))
        if len(group) == frames:
            yield [np.concatenate(parts) for parts in zip(*group)]
            group = []
    if group:
        yield calls(model, [np.concatenate(parts) for parts in zip(*group)], frames)[0][0]


def calibrated(model: str, float_model: bytes, net: nn.Module, samples: Callable[[], Calls],
               estimator: str, percentile: float, threads: int = 2, io: str = "int8") -> bytes:
    """The full-integer model of `float_model`, activation ranges measured on `samples()`
    (one frame each, as calibration_set.model_samples yields them), with `io` inputs and
    outputs (quantize.IO_TYPES)."""
    frames = network(model).frames_per_call([t.shape for t in inspect_bytes(float_model).inputs])
    observed, split = _observed(model, float_model, net)
    ranges = activation_ranges(
        observed, lambda: _split(_regrouped(samples(), model, frames), split), estimator,
        percentile, threads)
    if observed is not float_model:
        names = twin_names(observed, float_model)
        ranges = {names[n]: r for n, r in ranges.items() if n in names}
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
