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


class TFLiteRunner:
    """One loaded model; call it with NHWC float32 arrays in input order.

    Integer inputs and outputs (full-integer models) are quantized and
    dequantized with the file's own scales and zero points.
    """

    def __init__(self, model: bytes, num_threads: int = 1, name: str = "<model>"):
        from ai_edge_litert.interpreter import Interpreter

        inspect_bytes(model, name)  # refuse malformed flatbuffers before the C++ runtime sees them
        self.name = name
        try:
            with without_native_noise():
                self._interpreter = Interpreter(model_content=model, num_threads=num_threads)
                self._interpreter.allocate_tensors()
            self.inputs = self._interpreter.get_input_details()
            self.outputs = self._interpreter.get_output_details()
        except (ValueError, RuntimeError, UnicodeDecodeError) as exc:
            raise TFLiteFileError(f"{name}: LiteRT cannot load it: {first_line(exc)}") from None

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
        return dequantize_output(self._interpreter.get_tensor(output["index"]), output)


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
