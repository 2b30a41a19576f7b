"""Every tensor a .tflite model takes or computes, by name, for calibration and per-layer
error. Constants are left out: the quantization recipe quantizes weights (per channel);
a calibration range for one would make it per tensor.

LiteRT keeps intermediate tensors when asked (`experimental_preserve_all_tensors`);
per-tensor quantized activations are dequantized with their own scale and zero
point, so a float model and its full-integer twin compare name by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np

from uvq_tflite.runtime import quantize_input, without_native_noise
from uvq_tflite.tflite_file import inspect_bytes


def _interpreter(model: bytes, threads: int):
    import warnings

    from ai_edge_litert.interpreter import Interpreter

    with warnings.catch_warnings(), without_native_noise():
        warnings.simplefilter("ignore")  # "preserve_all_tensors is meant for debugging"
        interpreter = Interpreter(model_content=model, num_threads=threads,
                                  experimental_preserve_all_tensors=True)
        interpreter.allocate_tensors()
    return interpreter


def _activation(detail: dict, computed: set[str]) -> bool:
    """A tensor the graph takes or computes (never a constant: weights are quantized by the
    recipe, not from calibration ranges), float or integer with a single scale."""
    if detail["name"] not in computed:
        return False
    if detail["dtype"] == np.float32:
        return True
    scales = detail["quantization_parameters"]["scales"]
    return detail["dtype"] in (np.int8, np.int16) and len(scales) == 1


def activations(model: bytes, samples: Iterable[Sequence[np.ndarray]],
                threads: int = 2) -> Iterator[Mapping[str, np.ndarray]]:
    """For each sample (the model's float inputs, in order): its activations, as float32,
    each read from the interpreter when asked for, and only until the next sample runs."""
    interpreter = _interpreter(model, threads)
    inputs = interpreter.get_input_details()
    report = inspect_bytes(model)
    computed = {t.name for t in report.inputs} | {n for op in report.graph for n in op.outputs}
    details = [d for d in interpreter.get_tensor_details() if _activation(d, computed)]
    for sample in samples:
        for detail, array in zip(inputs, sample):
            interpreter.set_tensor(detail["index"], quantize_input(array, detail))
        interpreter.invoke()
        details = [d for d in details if _kept(interpreter, d)]
        tensors = _Activations(interpreter, details)
        yield tensors
        tensors.expired = True


def _kept(interpreter, detail: dict) -> bool:
    """Whether the runtime kept the tensor's values (not a constant it folded away)."""
    try:
        interpreter.tensor(detail["index"])()
    except ValueError:
        return False
    return True


class _Activations(Mapping):
    """One sample's activations by name, copied out of the interpreter one at a time.

    Copies of them all would hold every intermediate tensor twice: for a 360x640
    distortion patch, comparing two models that way took the verify stage to 3.9 GB.
    """

    def __init__(self, interpreter, details: list[dict]):
        self._interpreter, self._details = interpreter, {d["name"]: d for d in details}
        self.expired = False

    def __getitem__(self, name: str) -> np.ndarray:
        if self.expired:
            raise RuntimeError("activations read after the next sample ran")
        d = self._details[name]
        value = self._interpreter.get_tensor(d["index"])
        if d["dtype"] != np.float32:
            q = d["quantization_parameters"]
            value = (value.astype(np.float32) - q["zero_points"][0]) * q["scales"][0]
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._details)

    def __len__(self) -> int:
        return len(self._details)
