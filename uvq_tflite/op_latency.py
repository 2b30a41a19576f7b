"""Where inference time goes: every op of a .tflite file run alone, precisions side by side.

LiteRT's Python API has no per-op profiler, so each op that computes at run time is
cut out into a model of its own and timed as the whole model runs (XNNPACK, the same
threads). The cut keeps the op's constant inputs, and the DEQUANTIZE of a weight-only
INT8 weight (which LiteRT runs once, when the model loads), so XNNPACK sees static
weights as it does in the whole model. Ops are matched across precisions by the
tensor they write (the files name tensors by module path, "Self-describing models" in
the README). Run alone, an op misses the warm caches and threads of a whole invoke,
so the sum over ops only approximates the whole model, and not by the same factor in
every precision; both are reported, measured in the same run.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np

from uvq_tflite.packing import pack, unpack
from uvq_tflite.tflite_file import inspect_bytes


def _constant_tensors(model, op_types: list[str]) -> set[int]:
    """Tensors of the main graph known before any input: stored ones, and what a
    DEQUANTIZE makes of them (LiteRT runs it once, at load)."""
    graph = model.subgraphs[0]
    constant = {i for i, t in enumerate(graph.tensors)
                if t.buffer and model.buffers[t.buffer].data is not None}
    for op, op_type in zip(graph.operators, op_types):
        if op_type == "DEQUANTIZE" and op.inputs[0] in constant:
            constant.update(op.outputs)
    return constant


class SingleOp(NamedTuple):
    """One op cut out of a model: its type, output shape, the shape of its weights (its
    second input, if constant: [out, kh, kw, in] for a conv) and the model of it alone."""

    op: str
    shape: list[int]
    weights: list[int] | None
    model: bytes


def single_op_models(data: bytes) -> dict[str, SingleOp]:
    """Each run-time op of `data`'s main graph as a model of its own, by the name of the
    op's first output. Its inputs are the op's non-constant inputs; constant ones come
    along, with the DEQUANTIZE ops that make them."""
    model = unpack(data)
    graph = model.subgraphs[0]
    op_types = [op.op for op in inspect_bytes(data).graph]  # graph order
    constant = _constant_tensors(model, op_types)
    producer = {t: op for op in graph.operators for t in op.outputs}
    out = {}
    for op, op_type in zip(graph.operators, op_types):
        if all(i in constant for i in op.outputs):
            continue  # runs once, at load
        made = dict.fromkeys(i for i in op.inputs if i in constant and i in producer)
        ops = sorted([op, *(producer[i] for i in made)],  # with the DEQUANTIZE of a weight
                     key=graph.operators.index)
        output = graph.tensors[op.outputs[0]]
        name = output.name.decode()
        if name in out:
            raise ValueError(f"two ops write tensors named {name!r}")
        weights = op.inputs[1] if len(op.inputs) > 1 and op.inputs[1] in constant else None
        out[name] = SingleOp(
            op_type, [int(n) for n in output.shape],
            None if weights is None else [int(n) for n in graph.tensors[weights].shape],
            _model_of(model, ops,
                      list(dict.fromkeys(i for i in op.inputs if i >= 0 and i not in constant)),
                      op.outputs, stored=constant - producer.keys()))
    return out


def _model_of(model, ops: list, inputs: list[int], outputs: list[int], stored: set[int]) -> bytes:
    """A flatbuffer of `ops` of `model`'s main graph, with the given graph inputs and
    outputs (tensor indices); the `stored` tensors keep their data."""
    from ai_edge_litert import schema_py_generated as schema

    graph = model.subgraphs[0]
    used = sorted({i for op in ops for i in [*op.inputs, *op.outputs, *(op.intermediates or [])]
                   if i >= 0})
    index = {old: new for new, old in enumerate(used)}
    sub, buffers = schema.SubGraphT(), [schema.BufferT()]
    sub.tensors, sub.operators = [], []
    for old in used:
        tensor, buffer = copy.copy(graph.tensors[old]), schema.BufferT()
        if old in stored:
            buffer.data = model.buffers[tensor.buffer].data
        buffers.append(buffer)
        tensor.buffer = len(buffers) - 1
        sub.tensors.append(tensor)
    for op in ops:
        op = copy.copy(op)
        op.inputs = [index[i] if i >= 0 else -1 for i in op.inputs]
        op.outputs = [index[i] for i in op.outputs]
        op.intermediates = [index[i] for i in op.intermediates or []]
        sub.operators.append(op)
    sub.inputs, sub.outputs = [index[i] for i in inputs], [index[i] for i in outputs]
    single = schema.ModelT()
    single.version, single.operatorCodes = model.version, model.operatorCodes
    single.subgraphs, single.buffers = [sub], buffers
    return pack(single)


def _invoker(data: bytes, threads: int) -> Callable[[], None]:
    """The invoke of an interpreter of `data`, its inputs set to seeded values."""
    from uvq_tflite.runtime import TFLiteRunner

    runner = TFLiteRunner(data, num_threads=threads)
    rng = np.random.default_rng(0)
    runner.set_inputs(*(rng.uniform(-1, 1, d["shape"]).astype(np.float32) for d in runner.inputs))
    return runner.invoke


ROUNDS = 2  # blocks per interpreter in _medians


def _medians(invokers: Mapping[str, Callable[[], None]], seconds: float, min_runs: int,
             rounds: int = ROUNDS) -> dict[str, float]:
    """Median seconds per invoke of each, timed in blocks that alternate between them
    `rounds` times, each block after one untimed invoke, and at least `min_runs` invokes
    and its share of `seconds` long. Blocks, not single invokes in turn: each
    interpreter has its own thread pool, whose workers spin for a while after their
    last task and would take cores from the next interpreter's short ops."""
    times = {key: [] for key in invokers}
    share = seconds / (rounds * len(invokers))
    for _ in range(rounds):
        for key, invoke in invokers.items():
            invoke()
            block, started = [], time.perf_counter()
            while len(block) < min_runs or time.perf_counter() - started < share:
                before = time.perf_counter()
                invoke()
                block.append(time.perf_counter() - before)
            times[key] += block
    return {key: statistics.median(t) for key, t in times.items()}


def op_latency(files: Mapping[str, bytes], threads: int = 2, seconds: float = 0.1,
               min_runs: int = 5) -> dict:
    """Per-op latency of the same model in several precisions ({precision: flatbuffer},
    float32 first): the whole model (at least 10 * `seconds` of invokes) and each op
    alone (at least `seconds`), the precisions in alternating blocks (_medians).

    Returns `whole_ms` and `sum_of_ops_ms` per precision, and `ops`: one entry per op
    (graph order of the first file, then ops only later files have), with its type,
    output shape, weight shape (SingleOp) and milliseconds per precision that has it."""
    whole = _medians({p: _invoker(d, threads) for p, d in files.items()}, 10 * seconds,
                     min_runs)
    singles = {p: single_op_models(d) for p, d in files.items()}
    names = list(dict.fromkeys(n for ops in singles.values() for n in ops))
    ops = []
    for name in names:
        have = {p: by_name[name] for p, by_name in singles.items() if name in by_name}
        if len({single.op for single in have.values()}) > 1:
            raise ValueError(f"{name!r} is written by different ops: "
                             + ", ".join(f"{p} {s.op}" for p, s in have.items()))
        medians = _medians({p: _invoker(single.model, threads) for p, single in have.items()},
                           seconds, min_runs)
        first = next(iter(have.values()))
        ops.append({"tensor": name, "op": first.op, "shape": first.shape,
                    "weights": first.weights,
                    **{f"{p}_ms": round(1e3 * s, 4) for p, s in medians.items()}})
    return {"whole_ms": {p: round(1e3 * s, 3) for p, s in whole.items()},
            "sum_of_ops_ms": {p: round(sum(o.get(f"{p}_ms", 0.0) for o in ops), 3)
                              for p in files},
            "ops": ops}


def by_op_type(result: dict) -> dict[str, dict]:
    """`op_latency`'s ops summed per op type: count, and milliseconds per precision
    that has ops of the type (a precision without any is left out, not 0)."""
    types: dict[str, dict] = {}
    for op in result["ops"]:
        entry = types.setdefault(op["op"], {"count": 0})
        entry["count"] += 1
        for p in result["whole_ms"]:
            if f"{p}_ms" in op:
                entry[p] = round(entry.get(p, 0.0) + op[f"{p}_ms"], 4)
    return dict(sorted(types.items(),
                       key=lambda kv: -max(v for k, v in kv[1].items() if k != "count")))
