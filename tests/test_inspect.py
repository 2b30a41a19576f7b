"""`uvq-tflite inspect`: the flatbuffer's real operators and ranks, and bad files."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_models import AdvancedIndexing, RankFive, TinyConv, converted

from uvq_tflite.cli import main
from uvq_tflite.tflite_file import TFLiteFileError, inspect_bytes


@pytest.fixture
def write(tmp_path):
    def _write(data: bytes, name: str = "model.tflite"):
        path = tmp_path / name
        path.write_bytes(data)
        return str(path)
    return _write


def test_gather_nd_is_found_where_the_seeds_byte_search_misses_it():
    data = converted(AdvancedIndexing)
    assert b"GATHER_ND" not in data  # builtin ops are enum codes, not names
    assert inspect_bytes(data).count_ops(["GATHER", "GATHER_ND"]) == {"GATHER_ND": 1}


def test_rank_five_tensors_are_named():
    report = inspect_bytes(converted(RankFive))
    assert report.max_rank == 5
    above = report.tensors_above(4)
    assert above and set(above.values()) == {5}


def test_cli_reports_and_fails_on_hardware_breaches(write, capsys):
    assert main(["inspect", write(converted(AdvancedIndexing))]) == 1
    out = capsys.readouterr().out
    assert "GATHER_ND x1" in out
    assert main(["inspect", write(converted(RankFive)), "--json"]) == 1
    facts = json.loads(capsys.readouterr().out)
    assert facts["max_rank"] == 5 and facts["tensors_above_max_rank"]
    assert any("rank 5 > 4" in b for b in facts["breaches"])


def test_cli_passes_a_clean_model_and_checks_nhwc_io(write, capsys):
    assert main(["inspect", write(converted(TinyConv))]) == 0
    out = capsys.readouterr().out
    assert "input:       serving_default_args_0 [1, 8, 8, 3] float32" in out
    assert "NHWC I/O:    unknown" in out
    # Named like a distortion file, its I/O is not the distortion network's: a breach.
    assert main(["inspect", write(converted(TinyConv), "distortion_net.tflite")]) == 1
    assert "NHWC I/O:    NO" in capsys.readouterr().out


def test_cli_counts_quantized_tensors(tmp_path, write, capsys):
    from uvq_tflite.quantize import quantize_int8

    assert main(["inspect", write(quantize_int8(converted(TinyConv)))]) == 0
    assert "quantized:   1 int8 tensors (1 channelwise)" in capsys.readouterr().out


def test_size_parts_account_for_every_byte_and_the_channelwise_parameters():
    from uvq_tflite.quantize import quantize_int8

    float_model = inspect_bytes(converted(TinyConv))
    assert float_model.size_parts["float32 constants"] == (4 * 3 * 3 * 3 + 4) * 4
    quantized = inspect_bytes(quantize_int8(converted(TinyConv)))
    parts = quantized.size_parts
    assert parts["int8 constants"] == 4 * 3 * 3 * 3  # the weights, one byte each
    assert parts["float32 constants"] == 4 * 4  # dynamic range keeps the bias float
    # One float32 scale and one int64 zero point per output channel of the weight.
    assert parts["quantization parameters"] == 4 * (4 + 8)
    assert list(parts.values()) == sorted(parts.values(), reverse=True)


def test_only_constants_count_as_channelwise():
    """A [1, ...] activation's one scale matches its batch axis; it is still per tensor."""
    import numpy as np

    from uvq_tflite.calibration import activation_ranges, quantization_ranges
    from uvq_tflite.quantize import quantize_full_int8

    float_model = converted(TinyConv)
    samples = [[np.random.default_rng(0).uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)]]
    ranges = quantization_ranges(float_model, activation_ranges(float_model, lambda: samples))
    report = inspect_bytes(quantize_full_int8(float_model, ranges))
    assert report.quantized == {"int8": 3, "int32": 1}  # input, weight, output; bias
    assert report.channelwise == 2  # the weight and its bias


BAD_FILES = {
    "zero bytes": b"",
    "text": b"this is not a model, just some text\n",
    "wrong identifier": b"\x1c\x00\x00\x00XXXX" + bytes(64),
    "random bytes": bytes(range(256)) * 8,
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_files_get_one_clear_error_and_exit_2(name, write, capsys):
    assert main(["inspect", write(BAD_FILES[name])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("uvq-tflite: error: ")


def test_truncated_and_missing_files_exit_2(write, tmp_path, capsys):
    data = converted(TinyConv)
    for cut in (9, 64, len(data) // 2, len(data) - 1):
        assert main(["inspect", write(data[:cut])]) == 2, cut
    assert main(["inspect", str(tmp_path / "nope.tflite")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path)]) == 2
    assert f"{tmp_path}: is a directory, not a .tflite file" in capsys.readouterr().err


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_models_parse_consistently_or_fail_as_bad_input(data):
    """A corrupt flatbuffer is bad input (one bounded line naming the file), never
    another exception; whatever parses is a self-consistent report."""
    original = bytearray(converted(TinyConv))
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(8, len(original)))
    try:
        report = inspect_bytes(bytes(original[:cut]), "mutated.tflite")
    except TFLiteFileError as exc:
        message = str(exc)
        assert message.startswith("mutated.tflite: ") and "\n" not in message
        assert len(message) < 400
        return
    assert sum(report.ops.values()) == len(report.graph)
    assert report.max_rank == max((rank for _, rank in report.tensor_ranks), default=0)
    assert all(n <= report.ops[op] for op, n in report.float_ops.items())


def test_a_flatbuffer_whose_tables_are_shared_is_refused_in_linear_time():
    """1000 operators sharing one 2000-long input vector: 24 KB that took 10 s to walk."""
    import time

    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    b = flatbuffers.Builder(0)
    b.StartVector(4, 2000, 4)
    for _ in range(2000):
        b.PrependInt32(0)
    shared = b.EndVector()
    operators = []
    for _ in range(1000):
        s.OperatorStart(b)
        s.OperatorAddInputs(b, shared)
        s.OperatorAddOutputs(b, shared)
        operators.append(s.OperatorEnd(b))

    def vector(start, items):
        start(b, len(items))
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        return b.EndVector()

    s.TensorStart(b)
    tensors = vector(s.SubGraphStartTensorsVector, [s.TensorEnd(b)])
    ops = vector(s.SubGraphStartOperatorsVector, operators)
    s.SubGraphStart(b)
    s.SubGraphAddOperators(b, ops)
    s.SubGraphAddTensors(b, tensors)
    graphs = vector(s.ModelStartSubgraphsVector, [s.SubGraphEnd(b)])
    s.OperatorCodeStart(b)
    codes = vector(s.ModelStartOperatorCodesVector, [s.OperatorCodeEnd(b)])
    s.ModelStart(b)
    s.ModelAddVersion(b, 3)
    s.ModelAddSubgraphs(b, graphs)
    s.ModelAddOperatorCodes(b, codes)
    b.Finish(s.ModelEnd(b), file_identifier=b"TFL3")
    data = bytes(b.Output())
    assert len(data) < 30_000
    started = time.monotonic()
    with pytest.raises(TFLiteFileError, match="tables are shared"):
        inspect_bytes(data, "shared.tflite")
    assert time.monotonic() - started < 1


def test_cli_refuses_an_op_name_that_is_not_a_builtin(write, capsys):
    """A misspelt --forbidden name would otherwise pass every model."""
    with pytest.raises(SystemExit) as refused:
        main(["inspect", write(converted(TinyConv)), "--forbidden", "conv_2d,FOO"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "'conv_2d' is not a TFLite builtin operator (TFLite calls it CONV_2D)" in err
    assert "'FOO' is not a TFLite builtin operator" in err
    assert main(["inspect", write(converted(TinyConv)), "--forbidden", "CONV_2D"]) == 1


def test_cli_names_a_few_tensors_above_the_rank_limit_and_counts_the_rest(write, capsys,
                                                                         monkeypatch):
    from uvq_tflite import inspect_report

    monkeypatch.setattr(inspect_report, "NAMED_ABOVE", 1)
    path = write(converted(TinyConv))
    assert main(["inspect", path, "--max-rank", "1"]) == 1
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("max rank:"))
    first = next(iter(inspect_bytes(converted(TinyConv)).tensors_above(1)))
    assert line.endswith(f"3 tensor(s) above 1: {first}, and 2 more (--json)")
    assert main(["inspect", path]) == 0 and "quantized:   none\n" in capsys.readouterr().out
