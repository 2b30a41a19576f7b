"""Reading and inspecting .tflite flatbuffers with LiteRT's schema (no TensorFlow)."""

from __future__ import annotations

import collections
import json
import os
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

from uvq_tflite.core.errors import UserInputError

FILE_IDENTIFIER = b"TFL3"
MIN_SIZE = 8
MAX_MODEL_BYTES = 2 << 30  # flatbuffers address 2 GB; the largest UVQ model is 15 MB
METADATA_NAME = "uvq_tflite"  # the metadata entry describe.py writes
MAX_METADATA_BYTES = 1 << 16


class TFLiteFileError(UserInputError):
    """A file that is not a readable TFLite flatbuffer."""


@dataclass
class TensorInfo:
    name: str
    shape: list[int]
    dtype: str


@dataclass
class OpInfo:
    """One operator of the main graph: its name and the names of the tensors it reads and writes."""

    op: str
    inputs: list[str]
    outputs: list[str]


@dataclass
class Inspection:
    """What `uvq-tflite inspect` reports about one .tflite file."""

    path: str
    size_bytes: int
    ops: dict[str, int]
    max_rank: int
    tensor_ranks: list[tuple[str, int]] = field(repr=False)
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    quantized: dict[str, int]  # quantized tensors by type
    channelwise: int  # constants with one scale per channel of their axis (more than one)
    float_ops: dict[str, int] = field(default_factory=dict)  # ops computing in float, by name
    size_parts: dict[str, int] = field(default_factory=dict)  # bytes by part, largest first
    graph: list[OpInfo] = field(default_factory=list, repr=False)  # in execution order
    metadata: dict | None = None  # the `uvq_tflite` entry (describe.py), if the file has one

    def count_ops(self, names: list[str] | tuple[str, ...]) -> dict[str, int]:
        """How often each op in `names` occurs (zero counts dropped)."""
        return {n: self.ops[n] for n in names if self.ops.get(n)}

    def tensors_above(self, max_rank: int) -> dict[str, int]:
        """Tensors whose rank exceeds `max_rank`, by name."""
        return {n: r for n, r in self.tensor_ranks if r > max_rank}

    def to_dict(self, max_rank: int) -> dict:
        """JSON-ready facts, naming only the tensors above `max_rank`."""
        facts = asdict(self)
        del facts["tensor_ranks"], facts["graph"]
        facts["tensors_above_max_rank"] = self.tensors_above(max_rank)
        return facts


def read_tflite(path: str | Path) -> bytes:
    """The bytes of a file that carries the TFLite identifier, or TFLiteFileError."""
    path = Path(path)
    if path.is_dir():
        raise TFLiteFileError(f"{path}: is a directory, not a .tflite file")
    if not path.is_file():
        raise TFLiteFileError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            header = f.read(MIN_SIZE)
            check_identifier(header, path)  # a non-model is refused before reading it
            size = os.fstat(f.fileno()).st_size
            if size > MAX_MODEL_BYTES:
                raise TFLiteFileError(f"{path}: {size / 1e9:.1f} GB, larger than any UVQ model "
                                      f"(limit {MAX_MODEL_BYTES / 1e9:.0f} GB)")
            return header + f.read()
    except OSError as exc:
        raise TFLiteFileError(f"{path}: unreadable ({exc.strerror})") from None


def check_identifier(data: bytes, path: str | Path) -> None:
    if len(data) < MIN_SIZE:
        raise TFLiteFileError(f"{path}: {len(data)} bytes, too short for a TFLite flatbuffer")
    if data[4:8] != FILE_IDENTIFIER:
        raise TFLiteFileError(f"{path}: not a TFLite flatbuffer "
                              f"(file identifier {data[4:8]!r}, expected {FILE_IDENTIFIER!r})")


def _enum_names(enum_cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_")}


class _Walk:
    """Bounds a walk over a flatbuffer's vectors to linear time in the file size.

    Every vector element takes at least 4 bytes, so one vector longer than a
    quarter of the file is corruption; and since a model's tables (graphs,
    tensors, operators) are its own, elements visited in total beyond the file's
    size mean tables are shared (a 24 KB file could otherwise cost minutes):
    implausible for a model. Shared number vectors (packing.py) are not walked.
    """

    def __init__(self, size: int):
        self.size, self.visited = size, 0

    def __call__(self, length: int, what: str) -> int:
        if length < 0 or 4 * length > self.size:
            raise ValueError(f"{what} count {length} exceeds the file")
        self.visited += length
        if self.visited > self.size:
            raise ValueError(f"its tables are shared: {self.visited} elements visited in a "
                             f"{self.size}-byte file, implausible for a model")
        return length


def _check_buffer(buffer, size: int, index: int) -> None:
    """Constant data must lie inside the file: a truncated file loses weights silently."""
    length = buffer.DataLength()
    if length and buffer.DataAsNumpy().size != length:
        raise ValueError(f"buffer {index} holds {length} bytes past the end of the file")
    offset, external = buffer.Offset(), buffer.Size()
    if offset > 1 and offset + external > size:
        raise ValueError(f"buffer {index} ({external} bytes at {offset}) lies past the end")


# What the generated flatbuffer reader raises on corrupt offsets and lengths (TypeError:
# flatbuffers' "bad number" for an out-of-range offset), and _Walk/_check_buffer on
# implausible ones; anything else is a bug, not bad input.
CORRUPTION_ERRORS = (struct.error, IndexError, ValueError, OverflowError, TypeError)


def inspect_bytes(data: bytes, path: str | Path = "<bytes>") -> Inspection:
    """Parse a flatbuffer; TFLiteFileError if it is malformed."""
    check_identifier(data, path)
    try:
        return _inspect(data, str(path))
    except TFLiteFileError:
        raise
    except CORRUPTION_ERRORS as exc:
        raise TFLiteFileError(f"{path}: malformed TFLite flatbuffer ({type(exc).__name__}: "
                              f"{str(exc)[:200]})") from None


def inspect_file(path: str | Path) -> Inspection:
    return inspect_bytes(read_tflite(path), path)


def _inspect(data: bytes, path: str) -> Inspection:
    from ai_edge_litert import schema_py_generated as schema

    op_names = _enum_names(schema.BuiltinOperator)
    type_names = _enum_names(schema.TensorType)
    model = schema.Model.GetRootAs(data, 0)
    bounded = _Walk(len(data))

    codes = []
    for i in range(bounded(model.OperatorCodesLength(), "operator code")):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = op_names.get(builtin, f"UNKNOWN_{builtin}")
        if name == "CUSTOM":
            name = f"CUSTOM:{(code.CustomCode() or b'').decode(errors='replace')}"
        codes.append(name)

    for i in range(bounded(model.BuffersLength(), "buffer")):
        _check_buffer(model.Buffers(i), len(data), i)

    ops: collections.Counter[str] = collections.Counter()
    float_ops: collections.Counter[str] = collections.Counter()
    graph_ops: list[OpInfo] = []
    ranks: list[tuple[str, int]] = []
    quantized: collections.Counter[str] = collections.Counter()
    channelwise = 0
    constants: collections.Counter[str] = collections.Counter()  # bytes by dtype
    counted = _Positions()  # vectors several tables share count once
    quantization_bytes = 0
    inputs: list[TensorInfo] = []
    outputs: list[TensorInfo] = []
    for s in range(bounded(model.SubgraphsLength(), "subgraph")):
        graph = model.Subgraphs(s)
        tensors = []
        for t in range(bounded(graph.TensorsLength(), "tensor")):
            tensor = graph.Tensors(t)
            shape = [int(tensor.Shape(j)) for j in
                     range(bounded(tensor.ShapeLength(), "dimension"))]
            info = TensorInfo((tensor.Name() or b"").decode(errors="replace") or f"tensor_{t}",
                              shape, type_names.get(tensor.Type(), str(tensor.Type())).lower())
            tensors.append(info)
            ranks.append((f"{s}:{info.name}" if s else info.name, len(shape)))
            buffer = tensor.Buffer()  # 0: the empty sentinel of tensors the graph computes
            if buffer >= max(model.BuffersLength(), 1):
                raise ValueError(f"tensor {t} names buffer {buffer}, which does not exist")
            stored = model.Buffers(buffer) if buffer > 0 else None
            stored_bytes = (stored.DataLength() or stored.Size()) if stored else 0
            if stored_bytes and counted.first(_data_at(stored)):
                constants[info.dtype] += stored_bytes
            q = tensor.Quantization()
            if q is not None:
                quantization_bytes += sum(
                    length * width for field, length, width in (
                        (_MIN, q.MinLength(), 4), (_MAX, q.MaxLength(), 4),
                        (_SCALE, q.ScaleLength(), 4), (_ZERO_POINT, q.ZeroPointLength(), 8))
                    if length and counted.first(_vector_at(q, field)))
            if q is not None and q.ScaleLength() > 0:
                quantized[info.dtype] += 1
                channelwise += (stored_bytes > 0 and q.ScaleLength() > 1  # one scale: per tensor
                                and len(shape) > q.QuantizedDimension()
                                and q.ScaleLength() == shape[q.QuantizedDimension()])
        input_ids = [graph.Inputs(i) for i in
                     range(bounded(graph.InputsLength(), "input"))]
        output_ids = [graph.Outputs(i) for i in
                      range(bounded(graph.OutputsLength(), "output"))]
        graph_inputs, graph_outputs = set(input_ids), set(output_ids)
        for o in range(bounded(graph.OperatorsLength(), "operator")):
            op = graph.Operators(o)
            name = codes[op.OpcodeIndex()]
            ops[name] += 1
            ins = [op.Inputs(i) for i in range(bounded(op.InputsLength(), "op input"))]
            outs = [op.Outputs(i) for i in range(bounded(op.OutputsLength(), "op output"))]
            if _computes_in_float(name, ins, outs, tensors, graph_inputs, graph_outputs):
                float_ops[name] += 1
            if s == 0:
                graph_ops.append(OpInfo(name, [tensors[i].name for i in ins if i >= 0],
                                        [tensors[i].name for i in outs]))
        if s == 0:
            inputs = [tensors[i] for i in input_ids]
            outputs = [tensors[i] for i in output_ids]
    return Inspection(path=path, size_bytes=len(data), ops=dict(sorted(ops.items())),
                      max_rank=max((r for _, r in ranks), default=0), tensor_ranks=ranks,
                      inputs=inputs, outputs=outputs, quantized=dict(quantized),
                      channelwise=channelwise, float_ops=dict(sorted(float_ops.items())),
                      graph=graph_ops, metadata=_own_metadata(model, data, bounded),
                      size_parts=size_parts(len(data), constants, quantization_bytes))


# Vector fields by their vtable slot offset (schema field order): QuantizationParameters'
# min, max, scale (float32) and zero_point (int64); Buffer's data.
_MIN, _MAX, _SCALE, _ZERO_POINT, _DATA = 4, 6, 8, 10, 4


def _vector_at(table, field: int) -> int:
    """Where the elements of a table's vector field start in the file."""
    return table._tab.Vector(table._tab.Offset(field))


def _data_at(buffer) -> int:
    """Where a buffer's bytes start: in the flatbuffer, or past it (Offset, large models)."""
    return _vector_at(buffer, _DATA) if buffer.DataLength() else -buffer.Offset()


class _Positions:
    """The file positions seen so far: a vector several tables point at is counted once."""

    def __init__(self):
        self.seen: set[int] = set()

    def first(self, position: int) -> bool:
        new = position not in self.seen
        self.seen.add(position)
        return new


def size_parts(size: int, constants: dict[str, int], quantization_bytes: int) -> dict[str, int]:
    """Where a file's bytes go, largest first: constants by dtype (weights, biases), the
    quantization parameters (a float32 scale and an int64 zero point per channel of a
    channelwise tensor, one of each for any other quantized tensor; each stored vector
    counted once), and the rest (graph, tensor names, metadata)."""
    parts = {f"{dtype} constants": n for dtype, n in constants.items() if n}
    if quantization_bytes:
        parts["quantization parameters"] = quantization_bytes
    parts["graph and names"] = max(size - sum(parts.values()), 0)
    return dict(sorted(parts.items(), key=lambda kv: -kv[1]))


def _own_metadata(model, data: bytes, bounded: _Walk) -> dict | None:
    """The JSON object of the `uvq_tflite` metadata entry; None if absent or unreadable."""
    for i in range(bounded(model.MetadataLength(), "metadata")):
        entry = model.Metadata(i)
        if entry.Name() != METADATA_NAME.encode():
            continue
        if not 0 <= entry.Buffer() < model.BuffersLength():
            raise ValueError(f"metadata buffer {entry.Buffer()} does not exist")
        raw = model.Buffers(entry.Buffer()).DataAsNumpy()
        if not hasattr(raw, "tobytes") or raw.size > MAX_METADATA_BYTES:
            return None
        try:
            value = json.loads(raw.tobytes())
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    return None


FLOAT_TYPES = ("float32", "float16", "float64", "bfloat16")


def _computes_in_float(name: str, ins: list[int], outs: list[int], tensors: list[TensorInfo],
                       graph_inputs: set[int], graph_outputs: set[int]) -> bool:
    """Whether an op reads or writes a float tensor, other than converting the model's
    float I/O: a QUANTIZE of a graph input or a DEQUANTIZE into a graph output."""
    if name == "QUANTIZE" and all(i in graph_inputs for i in ins):
        return False
    if name == "DEQUANTIZE" and all(o in graph_outputs for o in outs):
        return False
    return any(tensors[i].dtype in FLOAT_TYPES for i in ins + outs if i >= 0)
