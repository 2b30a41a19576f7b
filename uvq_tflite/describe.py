"""What a .tflite file says about itself, for the app developer who receives it.

The conversion names the signature's inputs and output (export.py, from the
registry); this module adds one metadata entry, `uvq_tflite`, holding JSON:
the network and precision, what each input and the output are (layout, value
range, UVQ 1.5's preprocessing), and provenance: the sha256 of the checkpoint,
the project version and the tools that made the file. Deterministic: the same
facts give the same bytes. `uvq-tflite inspect` shows it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path

import numpy as np

from uvq_tflite.core import toolchain
from uvq_tflite.core.registry import network
from uvq_tflite.packing import pack, unpack
from uvq_tflite.tflite_file import METADATA_NAME, inspect_bytes

# The toolchain groups whose tools make each precision's bytes.
MADE_WITH = {"float32": ("torch", "converter"),
             "int8": ("torch", "converter", "quantizer", "runtime"),
             "full_int8": ("torch", "converter", "quantizer", "runtime")}


def sha256_of(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def facts(model: str, precision: str, checkpoint_sha256: str | None) -> dict:
    """The metadata of `model`'s `precision` file made from a checkpoint with that hash."""
    info, tools = network(model), toolchain.installed()
    return {
        "model": model,
        "precision": precision,
        "inputs": {name: info.inputs_are for name in info.input_names},
        "output": {info.output_name: info.output_is},
        "checkpoint_sha256": checkpoint_sha256,
        "uvq_tflite_version": importlib.metadata.version("uvq-tflite"),
        "tools": {name: version for group in MADE_WITH[precision]
                  for name, version in tools[group].items()},
    }


def with_metadata(data: bytes, entry: dict) -> bytes:
    """`data` with the `uvq_tflite` metadata entry set to `entry` (replacing any)."""
    from ai_edge_litert import schema_py_generated as schema

    model = unpack(data)
    payload = json.dumps(entry, sort_keys=True).encode()
    model.metadata = [m for m in model.metadata or []
                      if m.name not in (METADATA_NAME, METADATA_NAME.encode())]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(payload, np.uint8)
    model.buffers.append(buffer)
    metadata = schema.MetadataT()
    metadata.name, metadata.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata.append(metadata)
    return pack(model)


def metadata_of(data: bytes) -> dict | None:
    """The `uvq_tflite` metadata entry of a flatbuffer, or None if it has none."""
    return inspect_bytes(data).metadata


# How TFLite's QUANTIZE kernel rounds (runtime.quantize_input does the same): UVQ's pixels
# fall exactly halfway between INT8 steps, where round(x / scale) would differ.
INT8_IO = ("; this file takes and gives INT8: quantize with each tensor's own scale and zero "
           "point as TFLite's QUANTIZE does (q = rint(x * float32(1 / scale)) + zero_point, "
           "ties to even), dequantize the output as (q - zero_point) * scale")


def described(data: bytes, model: str, precision: str, checkpoint_sha256: str | None) -> bytes:
    """`data` with the metadata of `facts`, noting INT8 inputs and outputs if it has them."""
    entry = facts(model, precision, checkpoint_sha256)
    if any(t.dtype == "int8" for t in inspect_bytes(data).inputs):
        entry["inputs"] = {name: what + INT8_IO for name, what in entry["inputs"].items()}
    return with_metadata(data, entry)


def redescribed(data: bytes, source: bytes, precision: str) -> bytes:
    """`data`, derived from `source` (a float32 file), described as `precision` with the
    source's network and checkpoint; unchanged if the source carries no metadata."""
    origin = metadata_of(source)
    if origin is None:
        return data
    return described(data, origin["model"], precision, origin.get("checkpoint_sha256"))
