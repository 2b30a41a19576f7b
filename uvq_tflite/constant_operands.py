"""INT8 constant operands of MUL and ADD, which ai-edge-quantizer leaves float.

Dynamic-range and weight-only recipes quantize the weights of convolutions and
fully connected layers only. A LayerNorm's affine weight and bias are constant
operands of a MUL and an ADD: in the published AggregationNet two [1, 256, 4, 4]
float32 tensors, 0.11x of its float32 file, which kept its `int8` file at 0.36x.
Here each float32 constant operand of those ops with at least MIN_ELEMENTS
values becomes INT8 (one symmetric scale) read through a DEQUANTIZE: LiteRT
dequantizes a constant once and keeps the result, and the op computes in float,
as the weight-only depthwise convolutions do. Smaller constants (scalars,
per-channel vectors) stay float: INT8 would save less than its scale,
zero point and DEQUANTIZE cost.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from uvq_tflite.packing import pack, unpack

OPS = ("MUL", "ADD")
MIN_ELEMENTS = 1024
_DEQUANTIZE_INT8_VERSION = 2  # TFLite's op version of a DEQUANTIZE from INT8


def int8_constant_operands(data: bytes, ops: Sequence[str] = OPS) -> bytes:
    """`data` with the large float32 constant operands of `ops` (a subset of OPS) stored
    as INT8 and dequantized once; unchanged if there are none."""
    from ai_edge_litert import schema_py_generated as schema

    if unknown := set(ops) - set(OPS):
        raise ValueError(f"no INT8 constant operands for {', '.join(sorted(unknown))}")
    model = unpack(data)
    wanted = {getattr(schema.BuiltinOperator, op) for op in ops}
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    users = np.bincount([t.buffer for g in model.subgraphs for t in g.tensors],
                        minlength=len(model.buffers))
    changed = False
    for graph in model.subgraphs:
        constants = {i for op in graph.operators if codes[op.opcodeIndex] in wanted
                     for i in op.inputs if _is_large_float_constant(model, graph, i)}
        dequantizes = [_dequantize(model, graph, i, users) for i in sorted(constants)]
        graph.operators = dequantizes + list(graph.operators)
        changed |= bool(dequantizes)
    return pack(model) if changed else data


def _is_large_float_constant(model, graph, index: int) -> bool:
    from ai_edge_litert import schema_py_generated as schema

    if index < 0:
        return False
    tensor = graph.tensors[index]
    stored = model.buffers[tensor.buffer].data if tensor.buffer > 0 else None
    return (tensor.type == schema.TensorType.FLOAT32 and stored is not None
            and stored.size >= 4 * MIN_ELEMENTS)


def _dequantize(model, graph, index: int, users: np.ndarray):
    """A DEQUANTIZE computing float tensor `index` from a new INT8 copy of its values."""
    from ai_edge_litert import schema_py_generated as schema

    tensor = graph.tensors[index]
    values = model.buffers[tensor.buffer].data.view(np.float32)
    scale = float(np.abs(values).max()) / 127 or 1.0
    quantized = schema.BufferT()
    quantized.data = np.clip(np.rint(values / scale), -127, 127).astype(np.int8).view(np.uint8)
    model.buffers.append(quantized)
    if users[tensor.buffer] == 1:  # nothing else reads the float values
        model.buffers[tensor.buffer].data = None
    twin = schema.TensorT()
    twin.name, twin.shape, twin.type = tensor.name + b"_int8", tensor.shape, schema.TensorType.INT8
    twin.buffer = len(model.buffers) - 1
    twin.quantization = schema.QuantizationParametersT()
    twin.quantization.scale = np.array([scale], np.float32)
    twin.quantization.zeroPoint = np.array([0], np.int64)
    graph.tensors.append(twin)
    tensor.buffer = 0  # computed now, by the DEQUANTIZE
    op = schema.OperatorT()
    op.opcodeIndex = _dequantize_opcode(model)
    op.inputs, op.outputs = [len(graph.tensors) - 1], [index]
    return op


def _dequantize_opcode(model) -> int:
    """The index of DEQUANTIZE's operator code, added if the model has none."""
    from ai_edge_litert import schema_py_generated as schema

    builtin = schema.BuiltinOperator.DEQUANTIZE
    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode = builtin, min(builtin, 127)
    code.version = _DEQUANTIZE_INT8_VERSION
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1
