"""Where a full-integer model loses accuracy: per-tensor SNR against its float32 model.

Both models run the same held-out inputs; each activation of the INT8 model,
dequantized, is compared with the float tensor of the same name, in the order
the INT8 graph computes them. The error is cumulative: a tensor's SNR includes
everything lost before it, so the first steep drop points at the culprit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from uvq_tflite.metrics import SNR_CAP_DB
from uvq_tflite.tensors import activations
from uvq_tflite.tflite_file import inspect_bytes


def layer_snr(float_model: bytes, quantized_model: bytes,
              samples: Sequence[Sequence[np.ndarray]], threads: int = 2) -> list[dict]:
    """[{"layer": i, "op": name, "tensor": name, "snr_db": x, "drop_db": y}] in graph order,
    over all samples. `drop_db` is how much SNR the op loses against its worst input."""
    graph = inspect_bytes(quantized_model).graph
    order = [name for op in graph for name in op.outputs]
    signal: dict[str, float] = {}
    noise: dict[str, float] = {}
    pairs = zip(activations(float_model, samples, threads),
                activations(quantized_model, samples, threads))
    for reference, quantized in pairs:
        for name in order:
            ref, got = reference.get(name), quantized.get(name)
            if ref is None or got is None or ref.shape != got.shape:
                continue
            ref64 = ref.astype(np.float64)
            signal[name] = signal.get(name, 0.0) + float(np.sum(ref64 ** 2))
            noise[name] = noise.get(name, 0.0) + float(np.sum((ref64 - got) ** 2))
    snr = {name: _db(signal[name], noise[name]) for name in signal}
    rows = []
    for op in graph:
        for name in op.outputs:
            if name not in snr:
                continue
            before = [snr[i] for i in op.inputs if i in snr]
            rows.append({"layer": len(rows), "op": op.op, "tensor": name, "snr_db": snr[name],
                         "drop_db": max(min(before) - snr[name], 0.0) if before else 0.0})
    return rows


def _db(signal: float, noise: float) -> float:
    if noise == 0:
        return SNR_CAP_DB
    if signal == 0:
        return -SNR_CAP_DB
    return min(10 * math.log10(signal / noise), SNR_CAP_DB)


def worst(rows: Iterable[dict], count: int = 3) -> list[dict]:
    """The `count` layers that lose the most SNR against their inputs: the likely culprits."""
    return sorted(rows, key=lambda r: -r["drop_db"])[:count]
