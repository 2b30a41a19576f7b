"""Running .tflite files with the LiteRT interpreter (ai-edge-litert)."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

import numpy as np

from uvq_tflite.core.errors import first_line
from uvq_tflite.core.registry import network
from uvq_tflite.tflite_file import TFLiteFileError, inspect_bytes

NATIVE_NOISE = ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)


@contextlib.contextmanager
def without_native_noise():
    """Drop LiteRT's C++ INFO line on loading a model; pass on anything else it prints."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if line not in NATIVE_NOISE:
                    print(line, file=sys.stderr)


def quantize_input(array: np.ndarray, detail: dict) -> np.ndarray:
    """Float values -> the input tensor's type, with its own scale and zero point if integer.

    Rounds as TFLite's QUANTIZE kernel does (times the float32 reciprocal of the scale,
    ties to even), so an INT8-input model sees what its float-input twin computes: UVQ's
    [-1, 1] pixels fall exactly halfway between INT8 steps, where rounding modes differ."""
    dtype = detail["dtype"]
    if not np.issubdtype(dtype, np.integer):
        return np.ascontiguousarray(array, dtype)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    steps = np.rint(np.asarray(array, np.float32) * np.float32(1 / np.float32(scale)))
    return np.clip(steps + zero, info.min, info.max).astype(dtype)


def dequantize_output(array: np.ndarray, detail: dict) -> np.ndarray:
    """An output tensor -> float32, with its own scale and zero point if integer."""
    if not np.issubdtype(detail["dtype"], np.integer):
        return array.astype(np.float32)
    scale, zero = detail["quantization"]
    return ((array.astype(np.float32) - zero) * scale).astype(np.float32)


def _int8_edges(interpreter, graph: list) -> tuple[list, list]:
    """(scale, zero point) of the INT8 tensor at each input and output, in order: the
    tensor itself if it is INT8, else the QUANTIZE output it feeds or the DEQUANTIZE
    input it comes from (float I/O); None where there is none (float models).
    `graph`: the model's ops (`Inspection.graph`)."""
    by_name = {d["name"]: d for d in interpreter.get_tensor_details()}
    twins = {}  # float I/O tensor name -> the INT8 tensor it is converted to or from
    for op in graph:
        if op.op == "QUANTIZE":
            twins.setdefault(op.inputs[0], op.outputs[0])
        elif op.op == "DEQUANTIZE":
            twins.setdefault(op.outputs[0], op.inputs[0])

    def edge(detail: dict):
        name = detail["name"] if detail["dtype"] == np.int8 else twins.get(detail["name"])
        twin = by_name.get(name) if name is not None else None
        if twin is None or twin["dtype"] != np.int8 or not twin["quantization"][0]:
            return None
        return twin["quantization"]
    return ([edge(d) for d in interpreter.get_input_details()],
            [edge(d) for d in interpreter.get_output_details()])


def _count_clipped(values: np.ndarray, quantization: tuple[float, int], side: str) -> int:
    """How many float values this INT8 tensor clips: inputs beyond its range (UVQ's pixels
    at exactly -1 or 1 are not); outputs at its ends, -128 or 127 (an output cannot tell
    more, so a value within half a step of a calibrated extreme counts too)."""
    if side == "outputs":
        q = quantize_input(values, {"dtype": np.int8, "quantization": quantization})
        return int(np.count_nonzero((q == -128) | (q == 127)))
    scale, zero = quantization
    low, high = (-128.5 - zero) * scale, (127.5 - zero) * scale
    if low <= values.min() and values.max() <= high:  # the common case, without a mask
        return 0
    return int(np.count_nonzero((values < low) | (values > high)))


class TFLiteRunner:
    """One loaded model; call it with NHWC float32 arrays in input order.

    Integer inputs and outputs (full-integer models) are quantized and
    dequantized with the file's own scales and zero points. With
    `count_clipping`, each call (`__call__`, not `invoke`) of a full-integer model
    also counts the values each INT8 input and its output clip (`take_clipped`):
    inputs beyond the calibrated range, the output at its ends. Frames that only
    pad a last call (`run_per_call`) are counted too.
    """

    def __init__(self, model: bytes, num_threads: int = 1, name: str = "<model>",
                 count_clipping: bool = False):
        from ai_edge_litert.interpreter import Interpreter

        report = inspect_bytes(model, name)  # refuse malformed flatbuffers before LiteRT
        self.name = name
        try:
            with without_native_noise():
                self._interpreter = Interpreter(model_content=model, num_threads=num_threads)
                self._interpreter.allocate_tensors()
            self.inputs = self._interpreter.get_input_details()
            self.outputs = self._interpreter.get_output_details()
        except (ValueError, RuntimeError, UnicodeDecodeError) as exc:
            raise TFLiteFileError(f"{name}: LiteRT cannot load it: {first_line(exc)}") from None
        inputs, outputs = (_int8_edges(self._interpreter, report.graph) if count_clipping
                           else ([], []))
        self._edges = {"inputs": inputs, "outputs": outputs}
        self._counts: dict[tuple[str, int], list[int]] = {}  # (side, i): [clipped, values]

    def take_clipped(self) -> float | None:
        """The largest share, over the INT8 inputs and the output, of values the tensor
        clipped (`_count_clipped`) since the last take; counting then starts anew. None if
        nothing was counted (not `count_clipping`, or no INT8 ranges at the I/O)."""
        shares = [at / values for at, values in self._counts.values() if values]
        self._counts = {}
        return max(shares, default=None)

    def _count(self, side: str, arrays) -> None:
        for i, (array, edge) in enumerate(zip(arrays, self._edges[side])):
            if edge is not None:
                counts = self._counts.setdefault((side, i), [0, 0])
                counts[0] += _count_clipped(array, edge, side)
                counts[1] += array.size

    def set_inputs(self, *arrays: np.ndarray) -> None:
        """Float arrays in input order, quantized first where the model takes integers."""
        if len(arrays) != len(self.inputs):
            raise TFLiteFileError(f"{self.name}: takes {len(self.inputs)} input(s), "
                                  f"not the {len(arrays)} this network has")
        try:
            for detail, array in zip(self.inputs, arrays):
                self._interpreter.set_tensor(detail["index"], quantize_input(array, detail))
        except ValueError as exc:
            raise TFLiteFileError(f"{self.name}: LiteRT refused the input: "
                                  f"{first_line(exc)}") from None

    def invoke(self) -> None:
        """Run the model on the inputs set last (what a latency benchmark times)."""
        try:
            self._interpreter.invoke()
        except (ValueError, RuntimeError) as exc:
            raise TFLiteFileError(f"{self.name}: LiteRT failed to run it: "
                                  f"{first_line(exc)}") from None

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        self.set_inputs(*arrays)
        self.invoke()
        output = self.outputs[0]
        result = dequantize_output(self._interpreter.get_tensor(output["index"]), output)
        self._count("inputs", arrays)
        self._count("outputs", [result])
        return result


def calls(model: str, inputs: list[np.ndarray],
          frames: int) -> list[tuple[list[np.ndarray], int]]:
    """`inputs` split into calls of a model built for `frames` frames per call: each
    call's inputs and how many of its frames are real (the last call is padded)."""
    per_frame = [shape[0] for shape in network(model).input_shapes(1)]
    total = inputs[0].shape[0] // per_frame[0]
    split = []
    for start in range(0, total, frames):
        chunk = []
        for array, k in zip(inputs, per_frame):
            part = array[start * k:(start + frames) * k]
            missing = frames * k - part.shape[0]
            if missing:
                part = np.concatenate([part, np.repeat(part[-k:], missing // k, axis=0)])
            chunk.append(part)
        split.append((chunk, min(frames, total - start)))
    return split


def run_per_call(runner: TFLiteRunner, model: str, inputs: list[np.ndarray],
                 frames: int) -> np.ndarray:
    """Run `inputs` through a model built for `frames` frames per call, padding the last call."""
    return np.concatenate([runner(*chunk)[:real] for chunk, real in calls(model, inputs, frames)])
