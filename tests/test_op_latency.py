"""Per-op latency: each op cut out of a model computes what it computes in the model."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from uvq_tflite.op_latency import by_op_type, op_latency, single_op_models
from uvq_tflite.tflite_file import inspect_bytes


def _interpreter(data: bytes, **options):
    from ai_edge_litert.interpreter import Interpreter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # preserve_all_tensors "is meant for debugging"
        interpreter = Interpreter(model_content=data, **options)
    interpreter.allocate_tensors()
    return interpreter


def _every_tensor(data: bytes) -> dict[str, np.ndarray]:
    """Every tensor of one run of `data` on seeded inputs, by name, as the runtime holds it."""
    interpreter = _interpreter(data, experimental_preserve_all_tensors=True)
    rng = np.random.default_rng(1)
    for d in interpreter.get_input_details():
        values = rng.uniform(-1, 1, d["shape"])
        if d["dtype"] == np.int8:
            values = rng.integers(-128, 128, d["shape"])
        interpreter.set_tensor(d["index"], values.astype(d["dtype"]))
    interpreter.invoke()
    out = {}
    for d in interpreter.get_tensor_details():
        try:
            out[d["name"]] = interpreter.get_tensor(d["index"]).copy()
        except ValueError:  # a constant the runtime folded away
            pass
    return out


@pytest.mark.parametrize("model,precision", [("content", "float32"), ("content", "int8"),
                                             ("content", "full_int8"),
                                             ("aggregation", "full_int8")])
def test_each_op_cut_out_computes_what_it_computes_in_the_whole_model(converted, model,
                                                                      precision):
    data = converted[model][precision]
    whole = _every_tensor(data)
    singles = single_op_models(data)
    report = inspect_bytes(data)
    at_load = [op for op in report.graph if op.outputs[0] not in singles]
    assert len(singles) + len(at_load) == len(report.graph)
    computed = {t.name for t in report.inputs} | {t for op in report.graph for t in op.outputs}
    assert all(op.op == "DEQUANTIZE" and op.inputs[0] not in computed for op in at_load)
    at_run_time = computed - {t for op in at_load for t in op.outputs}
    inputs = {op.outputs[0]: [i for i in op.inputs if i in at_run_time] for op in report.graph}
    for name, single in singles.items():
        interpreter = _interpreter(single.model)
        details = interpreter.get_input_details()
        assert [d["name"] for d in details] == inputs[name]  # weights stay stored
        for d in details:
            interpreter.set_tensor(d["index"], whole[d["name"]])
        interpreter.invoke()
        output = interpreter.get_output_details()[0]
        assert output["name"] == name
        np.testing.assert_array_equal(interpreter.get_tensor(output["index"]), whole[name],
                                      err_msg=f"{single.op} {name}")
        assert single.shape == list(whole[name].shape)


def test_dynamic_int8_weights_dequantized_at_load_stay_static(converted):
    """The depthwise weights of `int8` are DEQUANTIZEd when the model loads; cut out, a
    depthwise conv keeps its DEQUANTIZE and takes only its activation as input."""
    singles = single_op_models(converted["content"]["int8"])
    depthwise = [s for s in singles.values() if s.op == "DEPTHWISE_CONV_2D"]
    assert depthwise
    for single in depthwise:
        assert len(single.weights) == 4
        report = inspect_bytes(single.model)
        assert [op.op for op in report.graph] == ["DEQUANTIZE", "DEPTHWISE_CONV_2D"]
        assert len(report.inputs) == 1


def test_op_latency_times_every_op_of_every_precision(converted):
    files = {p: converted["aggregation"][p] for p in ("float32", "int8", "full_int8")}
    result = op_latency(files, threads=1, seconds=0.001, min_runs=1)
    assert list(result["whole_ms"]) == list(files)
    for precision, data in files.items():
        timed = [op for op in result["ops"] if f"{precision}_ms" in op]
        assert {op["tensor"] for op in timed} == set(single_op_models(data))
        assert all(op[f"{precision}_ms"] > 0 for op in timed)
        assert result["sum_of_ops_ms"][precision] == pytest.approx(
            sum(op[f"{precision}_ms"] for op in timed), abs=1e-3)
        assert result["whole_ms"][precision] > 0
    types = by_op_type(result)
    assert sum(t["count"] for t in types.values()) == len(result["ops"])
    for precision in files:
        assert sum(t.get(precision, 0) for t in types.values()) == pytest.approx(
            result["sum_of_ops_ms"][precision], abs=1e-3)
        for op_type, entry in types.items():  # no 0 for a precision without such ops
            assert (precision in entry) == any(
                f"{precision}_ms" in op for op in result["ops"] if op["op"] == op_type)
