"""Activation ranges for full-integer quantization, measured on calibration samples.

ai-edge-quantizer's own calibration keeps a moving average of each tensor's
min and max, which clips whatever a later sample exceeds. Here every float
tensor of the float model is observed on every sample (`tensors.activations`),
in two passes: the global min/max, then a histogram over it, from
which a range is chosen by the `estimator`:

- `minmax`: the global min and max (nothing clipped);
- `percentile`: the central `percentile` % of values;
- `mse`: the clipping range whose int8 quantization has the least squared
  error on the histogram (clipping error traded against rounding error).

Tensors of fewer than MIN_CLIPPED_SIZE values per sample (the squeeze-excitation
vectors) always keep min/max: a few values are too few to trade clipping for.

A full_int8 file takes its observed ranges `snapped` outward to a coarse grid. Float inference
differs by CPU in the last bits, and so do the ranges observed through it (by about 1e-6 of
their span); unsnapped, every such difference changed the full_int8 files, and which frames
a build scores well (README, "Another CPU").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from uvq_tflite.tensors import activations
from uvq_tflite.tflite_file import inspect_bytes

ESTIMATORS = ("minmax", "percentile", "mse")
BINS = 2048
MIN_CLIPPED_SIZE = 4096  # smaller tensors (squeeze-excitation vectors) keep min/max
HISTOGRAM_VALUES = 1 << 18  # per tensor and sample: a strided subset of larger tensors
LEVELS = 255  # int8
GRID_BITS = 8  # ranges snap to multiples of 1/256 to 1/512 of their span: under one int8 step


def snapped(low: float, high: float) -> tuple[float, float]:
    """[low, high] as INT8 holds it (widened to hold zero, as the quantizer widens it), then
    widened to multiples of the power of two between 1/2**(GRID_BITS+1) and 1/2**GRID_BITS
    of that span, so that ranges a few ulps apart give the same file."""
    low, high = min(low, 0.0), max(high, 0.0)
    span = high - low
    if not 0 < span < math.inf:
        return low, high
    grid = math.ldexp(1.0, math.frexp(span)[1] - 1 - GRID_BITS)
    if grid == 0:  # a span too small for the grid to be a float
        return low, high
    return math.floor(low / grid) * grid, math.ceil(high / grid) * grid


def _best_mse_range(hist: np.ndarray, edges: np.ndarray) -> tuple[float, float]:
    """The [lo, hi] sub-range of the histogram with the least int8 quantization MSE."""
    centers = (edges[:-1] + edges[1:]) / 2
    best, best_err = (edges[0], edges[-1]), np.inf
    for keep in np.linspace(1.0, 0.2, 41):  # symmetric shrink of the range around its centre
        for shift in np.linspace(-(1 - keep) / 2, (1 - keep) / 2, 9):
            lo_frac, hi_frac = (1 - keep) / 2 + shift, 1 - (1 - keep) / 2 + shift
            lo = edges[0] + lo_frac * (edges[-1] - edges[0])
            hi = edges[0] + hi_frac * (edges[-1] - edges[0])
            if hi <= lo:
                continue
            step = (hi - lo) / LEVELS
            clipped = np.clip(centers, lo, hi)
            rounded = lo + np.round((clipped - lo) / step) * step
            err = float(np.sum(hist * (centers - rounded) ** 2))
            if err < best_err:
                best, best_err = (lo, hi), err
    return float(best[0]), float(best[1])


def _percentile_range(hist: np.ndarray, edges: np.ndarray,
                      percentile: float) -> tuple[float, float]:
    cdf = np.cumsum(hist) / hist.sum()
    tail = (1 - percentile / 100) / 2
    lo = edges[int(np.searchsorted(cdf, tail))]
    hi = edges[min(int(np.searchsorted(cdf, 1 - tail)) + 1, len(edges) - 1)]
    return float(lo), float(hi)


def activation_ranges(model: bytes, samples: Callable[[], Iterable[Sequence[np.ndarray]]],
                      estimator: str = "mse", percentile: float = 99.99,
                      threads: int = 2) -> dict[str, tuple[float, float]]:
    """{tensor name: (low, high)} for every float tensor of `model`.

    `samples` is called once per pass and yields each sample's inputs.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; valid: {', '.join(ESTIMATORS)}")
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    sizes: dict[str, int] = {}
    for tensors in activations(model, samples(), threads):
        for name, t in tensors.items():
            low[name] = min(low.get(name, np.inf), float(t.min()))
            high[name] = max(high.get(name, -np.inf), float(t.max()))
            sizes[name] = t.size
    ranges = {name: (low[name], high[name]) for name in low}
    clipped = [name for name in ranges if sizes[name] >= MIN_CLIPPED_SIZE]
    if estimator != "minmax":
        hists = {name: np.zeros(BINS, np.float64) for name in clipped}
        for tensors in activations(model, samples(), threads):
            for name in clipped:
                lo, hi = ranges[name]
                if hi > lo:
                    values = tensors[name].ravel()
                    step = max(1, values.size // HISTOGRAM_VALUES)
                    hists[name] += np.histogram(values[::step], BINS, (lo, hi))[0]
        for name in clipped:
            lo, hi = ranges[name]
            if hi <= lo or not hists[name].any():
                continue
            edges = np.linspace(lo, hi, BINS + 1)
            ranges[name] = (_percentile_range(hists[name], edges, percentile)
                            if estimator == "percentile" else _best_mse_range(hists[name], edges))
    return ranges


# Ops whose output values are a subset of their first input's: its range serves.
VALUE_PRESERVING = ("RESHAPE", "TRANSPOSE", "MAX_POOL_2D", "SQUEEZE", "EXPAND_DIMS")
# Ops whose INT8 output range is fixed by the function (TFLite's kernels require it).
FIXED_RANGES = {"LOGISTIC": (0.0, 1.0), "TANH": (-1.0, 1.0)}


def quantization_ranges(model: bytes, ranges: dict[str, tuple[float, float]]
                        ) -> dict[str, dict[str, np.ndarray]]:
    """`ranges` as ai-edge-quantizer's calibration result for `model`, completed for the
    outputs of fixed-range ops and of value-preserving ops past what the twin observed."""
    report = inspect_bytes(model)
    ranges = dict(ranges)
    for op in report.graph:
        for name in op.outputs:
            if name in ranges:
                continue
            if op.op in FIXED_RANGES:
                ranges[name] = FIXED_RANGES[op.op]
            elif op.op in VALUE_PRESERVING and op.inputs[0] in ranges:
                ranges[name] = ranges[op.inputs[0]]
    rank = dict(report.tensor_ranks)
    return {name: {"min": np.full((1,) * rank[name], lo, np.float32),
                   "max": np.full((1,) * rank[name], hi, np.float32)}
            for name, (lo, hi) in ranges.items() if name in rank}


def ranges_of(quantized_model: bytes) -> dict[str, tuple[float, float]]:
    """The activation ranges a full-integer model was quantized with (from scales and
    zero points), to quantize its twin identically; a float input or output takes the
    range of the INT8 tensor it is converted to or from."""
    from ai_edge_litert.interpreter import Interpreter

    ranges = {}
    for d in Interpreter(model_content=quantized_model).get_tensor_details():
        q = d["quantization_parameters"]
        if d["dtype"] == np.int8 and len(q["scales"]) == 1:
            scale, zero = float(q["scales"][0]), int(q["zero_points"][0])
            ranges[d["name"]] = ((-128 - zero) * scale, (127 - zero) * scale)
    for op in inspect_bytes(quantized_model).graph:  # float I/O: the edges' conversions
        if op.op in ("QUANTIZE", "DEQUANTIZE"):
            source, target = ((op.outputs[0], op.inputs[0]) if op.op == "QUANTIZE"
                              else (op.inputs[0], op.outputs[0]))
            if source in ranges:
                ranges.setdefault(target, ranges[source])
    return ranges
