"""float32 TFLite flatbuffer -> INT8 flatbuffers, via ai-edge-quantizer.

- `int8`: dynamic range: INT8 channelwise weights, float activations, from a
  recipe. Ops listed in `weight_only_ops` keep INT8 weights but compute in
  float: a DEQUANTIZE turns each weight to float, once, when the model loads
  (XNNPACK unpacks such static weights in its prepare step). XNNPACK runs a
  float DEPTHWISE_CONV_2D fast, but not one with INT8 weights and float input
  (a slow hybrid kernel that also splits the delegated graph). For MUL and ADD,
  which ai-edge-quantizer leaves float, the weights are their large constant
  operands (constant_operands.py: a LayerNorm's affine tensors).
- `full_int8`: INT8 weights and activations, with activation ranges measured on
  calibration samples (`calibration.py`). Inputs and outputs are INT8 (what
  accelerators take) or, with `io="float32"`, float: then a QUANTIZE of each
  input and a DEQUANTIZE into each output are the only float ops.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from uvq_tflite import constant_operands
from uvq_tflite.core.console import log
from uvq_tflite.core.files import write_atomic
from uvq_tflite.describe import redescribed
from uvq_tflite.packing import repacked

# Recipes of ai_edge_quantizer.recipe that give INT8 channelwise weights.
RECIPES = ("dynamic_wi8_afp32", "weight_only_wi8_afp32")
WEIGHT_ONLY_OPS = ("DEPTHWISE_CONV_2D", *constant_operands.OPS)  # params.yaml's and the CLI's
IO_TYPES = ("int8", "float32")  # full_int8 inputs and outputs; the first is the default


def quantize_int8(float_model: bytes, recipe: str = RECIPES[0],
                  weight_only_ops: Sequence[str] = WEIGHT_ONLY_OPS) -> bytes:
    """Quantize a float flatbuffer with one of RECIPES; `weight_only_ops` compute in
    float from INT8 weights dequantized at load."""
    from ai_edge_quantizer import quantizer
    from ai_edge_quantizer import recipe as recipes

    if recipe not in RECIPES:
        raise ValueError(f"unknown quantization recipe {recipe!r}; valid: {', '.join(RECIPES)}")
    if reason := weight_only_refusal(weight_only_ops):
        raise ValueError(reason)
    ours = [op for op in weight_only_ops if op in constant_operands.OPS]
    qt = quantizer.Quantizer(float_model)
    qt.load_quantization_recipe(getattr(recipes, recipe)())
    for op in weight_only_ops:
        if op not in ours:
            qt.update_quantization_recipe(regex=".*", operation_name=_op_name(op),
                                          op_config=_weight_only_config())
    quantized = constant_operands.int8_constant_operands(_quantized(qt), ours)
    return redescribed(quantized, float_model, "int8")


def size_summary(size: int, float_size: int) -> str:
    """A quantized file's size (bytes) and its ratio to the float32 file it came from."""
    return f"{size / 1e6:.2f} MB, {size / float_size:.3f}x float32"


def write_quantized(path, quantized: bytes, float_model: bytes) -> None:
    """Write a quantized file atomically and log its size against its float32 file."""
    write_atomic(path, quantized)
    log(f"wrote {path}  {size_summary(len(quantized), len(float_model))}")


def weight_only_refusal(ops: Sequence[str]) -> str | None:
    """Why `ops` (builtin op names) cannot get INT8 weight-only compute, from
    ai-edge-quantizer or constant_operands, or None if every one can."""
    from ai_edge_quantizer import algorithm_manager

    unsupported = []
    for op in ops:
        if op in constant_operands.OPS:
            continue
        try:
            algorithm_manager.check_op_quantization_config(
                algorithm_manager.AlgorithmName.MIN_MAX_UNIFORM_QUANT, _op_name(op),
                _weight_only_config())
        except (KeyError, ValueError):
            unsupported.append(op)
    if unsupported:
        return (f"ai-edge-quantizer has no INT8 weight-only config for {', '.join(unsupported)}"
                f" (uvq-tflite adds {' and '.join(constant_operands.OPS)} only)")
    return None


# Builtin op names that ai-edge-quantizer spells differently.
_QUANTIZER_NAMES = {"TRANSPOSE_CONV": "CONV_2D_TRANSPOSE"}


def tflite_name_of(op: str) -> str | None:
    """TFLite's builtin name for `op`, if `op` is ai-edge-quantizer's different spelling."""
    return next((ours for ours, theirs in _QUANTIZER_NAMES.items() if theirs == op), None)


def _op_name(op: str):
    from ai_edge_quantizer import qtyping

    return qtyping.TFLOperationName[_QUANTIZER_NAMES.get(op, op)]


def _weight_only_config():
    """INT8 channelwise symmetric weights, float compute after an explicit DEQUANTIZE."""
    from ai_edge_quantizer import qtyping

    return qtyping.OpQuantizationConfig(
        weight_tensor_config=qtyping.TensorQuantizationConfig(
            num_bits=8, symmetric=True, granularity=qtyping.QuantGranularity.CHANNELWISE),
        compute_precision=qtyping.ComputePrecision.FLOAT, explicit_dequantize=True)


def quantize_full_int8(float_model: bytes, ranges: Mapping[str, Mapping[str, np.ndarray]],
                       io: str = IO_TYPES[0]) -> bytes:
    """INT8 weights (channelwise) and activations (per tensor), with the activation
    `ranges` of `calibration.activation_ranges` (every tensor of the model); `io` is
    the type of the inputs and outputs, one of IO_TYPES."""
    from ai_edge_quantizer import qtyping, quantizer
    from ai_edge_quantizer import recipe as recipes
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    if io not in IO_TYPES:
        raise ValueError(f"unknown full_int8 io type {io!r}; valid: {', '.join(IO_TYPES)}")
    qt = quantizer.Quantizer(float_model)
    qt.load_quantization_recipe(recipes.static_wi8_ai8())
    if io == "float32":  # the graph's inputs and outputs stay float, converted at the edges
        for edge in ("INPUT", "OUTPUT"):
            qt.update_quantization_recipe(regex=".*", operation_name=qtyping.TFLOperationName[edge],
                                          algorithm_key=AlgorithmName.NO_QUANTIZE)
    return _quantized(qt, dict(ranges))


def _quantized(qt, calibration_result=None) -> bytes:
    """The quantized flatbuffer, its repeated zero points and constants stored once.
    The quantizer's own size report is off (it measures the file before repacking), and
    so are its progress bars: the step takes about a second, and the caller logs it."""
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():  # prints: stderr
        # its check that every tensor has a range builds a LiteRT interpreter that keeps all
        # tensors, and LiteRT warns that this mode is meant for debugging
        warnings.filterwarnings("ignore", "Warning: Enabling `experimental_preserve_all_tensors`")
        result = qt.quantize(calibration_result, enable_progress_bar=False,
                             enable_progress_report=False)
    return repacked(bytes(result.quantized_model))
