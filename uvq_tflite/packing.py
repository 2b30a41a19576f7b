"""Writing .tflite flatbuffers from LiteRT's object API, each distinct vector once.

A quantized model repeats many vectors: every channelwise weight and bias has
one zero point (int64, 8 bytes) per channel, all zero, and ai-edge-quantizer
gives each quantized bias its own copy of shared constants. A flatbuffer
reaches a vector through an offset, so any number of tables can point at one
copy; the runtime reads the same values. `pack` writes each distinct numeric
vector once: the full-integer backbones shrink by a tenth.
"""

from __future__ import annotations

import flatbuffers
import numpy as np

from uvq_tflite.tflite_file import FILE_IDENTIFIER


class _SharingBuilder(flatbuffers.Builder):
    """A flatbuffers builder that writes each distinct numpy vector once."""

    def __init__(self, size: int):
        super().__init__(size)
        self._written: dict[tuple[str, bytes], int] = {}

    def CreateNumpyVector(self, x: np.ndarray) -> int:  # noqa: N802 (flatbuffers' name)
        key = (x.dtype.str, x.tobytes())
        if key not in self._written:
            self._written[key] = super().CreateNumpyVector(x)
        return self._written[key]


def unpack(data: bytes):
    """The object-API model (schema.ModelT) of a flatbuffer, every buffer's data a numpy
    array: LiteRT reads buffers stored past the flatbuffer (ai-edge-quantizer writes
    them so) as a bytearray, which the object API packs one byte per call."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    for buffer in model.buffers:
        if buffer.data is not None and type(buffer.data) is not np.ndarray:  # as Pack checks
            buffer.data = np.frombuffer(buffer.data, np.uint8)
    return model


def pack(model) -> bytes:
    """The flatbuffer of an object-API model, each distinct numeric vector stored once."""
    builder = _SharingBuilder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def repacked(data: bytes) -> bytes:
    """`data` written by `pack`: the same model, repeated vectors stored once."""
    return pack(unpack(data))
