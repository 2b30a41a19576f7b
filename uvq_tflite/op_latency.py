"""Where inference time goes: every op of a .tflite file run alone, precisions side by side.

LiteRT's Python API has no per-op profiler, so each op that computes at run time is
cut out into a model of its own and timed as the whole model runs (XNNPACK, the same
threads). The cut keeps the op's constant inputs, and the ops that compute only from
constants (the DEQUANTIZE of a weight-only INT8 weight, which LiteRT runs once, when
the model loads), so XNNPACK sees static weights as it does in the whole model. Ops
are matched across precisions by the tensor they write (the files name tensors by
module path, "Self-describing models" in the README). Run alone, an op misses the
warm caches and threads of a whole invoke, so the sum over ops only approximates the
whole model; both are reported, measured in the same run.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np

from uvq_tflite.packing import pack, unpack


def _op_type(model, op) -> str:
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    code = model.operatorCodes[op.opcodeIndex]
    return names[max(code.builtinCode, code.deprecatedBuiltinCode)]


def _constant_tensors(model) -> set[int]:
    """Tensors of the main graph known before any input: stored ones, and the outputs
    of ops that read only such tensors."""
    graph = model.subgraphs[0]
    constant = {i for i, t in enumerate(graph.tensors)
                if t.buffer and model.buffers[t.buffer].data is not None}
    for op in graph.operators:
        if all(i in constant for i in op.inputs if i >= 0):
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
    along, with the ops that compute them from constants."""
    model = unpack(data)
    graph = model.subgraphs[0]
    constant = _constant_tensors(model)
    producer = {t: op for op in graph.operators for t in op.outputs}
    out = {}
    for op in graph.operators:
        if all(i in constant for i in op.outputs):
            continue  # runs once, at load
        ops, pending = [op], [i for i in op.inputs if i in constant and i in producer]
        while pending:  # the ops that make its constant inputs, and theirs
            maker = producer[pending.pop()]
            if maker not in ops:
                ops.append(maker)
                pending.extend(i for i in maker.inputs if i in producer)
        ops.sort(key=graph.operators.index)
        output = graph.tensors[op.outputs[0]]
        weights = op.inputs[1] if len(op.inputs) > 1 and op.inputs[1] in constant else None
        out[output.name.decode()] = SingleOp(
            _op_type(model, op), [int(n) for n in output.shape],
            None if weights is None else [int(n) for n in graph.tensors[weights].shape],
            _model_of(model, ops, [i for i in op.inputs if i >= 0 and i not in constant],
                      op.outputs, stored=constant - producer.keys()))
    return out


def _model_of(model, ops: list, inputs: list[int], outputs: list[int], stored: set[int]) -> bytes:
    """A flatbuffer of `ops` of `model`'s main graph, with the given graph inputs and
    outputs (tensor indices); the `stored` tensors keep their data."""
    from ai_edge_litert import schema_py_generated as schema

    graph = model.subgraphs[0]
    used = sorted({i for op in ops for i in [*op.inputs, *op.outputs] if i >= 0})
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


def _medians(invokers: Mapping[str, Callable[[], None]], budget: float, min_runs: int,
             rounds: int = 2) -> dict[str, float]:
    """Median seconds per invoke of each, timed in blocks that alternate between them
    `rounds` times, each block after one untimed invoke and at least `min_runs` long or
    its share of `budget` seconds. Blocks, not single invokes in turn: each interpreter
    has its own thread pool, whose workers spin for a while after their last task and
    would take cores from the next interpreter's short ops."""
    times = {key: [] for key in invokers}
    share = budget / (rounds * len(invokers))
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


def op_latency(files: Mapping[str, bytes], threads: int = 2, budget: float = 0.1,
               min_runs: int = 5) -> dict:
    """Per-op latency of the same model in several precisions ({precision: flatbuffer},
    float32 first): the whole model and each op alone, all precisions interleaved.

    Returns `whole_ms` and `sum_of_ops_ms` per precision, and `ops`: one entry per op
    (graph order of the first file, then ops only later files have), with its type,
    output shape, weight shape (SingleOp) and milliseconds per precision that has it."""
    whole = _medians({p: _invoker(d, threads) for p, d in files.items()}, 10 * budget,
                     min_runs)
    singles = {p: single_op_models(d) for p, d in files.items()}
    names = list(dict.fromkeys(n for ops in singles.values() for n in ops))
    ops = []
    for name in names:
        have = {p: ops_[name] for p, ops_ in singles.items() if name in ops_}
        medians = _medians({p: _invoker(single.model, threads) for p, single in have.items()},
                           budget, min_runs)
        first = next(iter(have.values()))
        ops.append({"tensor": name, "op": first.op, "shape": first.shape,
                    "weights": first.weights,
                    **{f"{p}_ms": round(1e3 * s, 4) for p, s in medians.items()}})
    return {"whole_ms": {p: round(1e3 * s, 3) for p, s in whole.items()},
            "sum_of_ops_ms": {p: round(sum(o.get(f"{p}_ms", 0.0) for o in ops), 3)
                              for p in files},
            "ops": ops}


def by_op_type(result: dict) -> dict[str, dict]:
    """`op_latency`'s ops summed per op type: count and milliseconds per precision."""
    precisions = list(result["whole_ms"])
    types: dict[str, dict] = {}
    for op in result["ops"]:
        entry = types.setdefault(op["op"], {"count": 0, **{p: 0.0 for p in precisions}})
        entry["count"] += 1
        for p in precisions:
            entry[p] = round(entry[p] + op.get(f"{p}_ms", 0.0), 4)
    return dict(sorted(types.items(), key=lambda kv: -max(kv[1][p] for p in precisions)))
