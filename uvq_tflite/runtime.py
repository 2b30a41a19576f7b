"""Running .tflite files with the LiteRT interpreter (ai-edge-litert)."""

from __future__ import annotations

import numpy as np


class TFLiteRunner:
    """One loaded model; call it with NHWC float32 arrays in input order."""

    def __init__(self, model: bytes, num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_content=model, num_threads=num_threads)
        self._interpreter.allocate_tensors()
        self.inputs = self._interpreter.get_input_details()
        self.outputs = self._interpreter.get_output_details()

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        if len(arrays) != len(self.inputs):
            raise ValueError(f"model takes {len(self.inputs)} inputs, got {len(arrays)}")
        for detail, array in zip(self.inputs, arrays):
            self._interpreter.set_tensor(detail["index"], np.ascontiguousarray(array, np.float32))
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self.outputs[0]["index"]).copy()
