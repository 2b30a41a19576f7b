"""Conversion: faithful float32 files, INT8 from them, deterministic and atomic."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
import torch
from conftest import PUBLISHED_AGGREGATION, VIDEOS, assert_close
from test_checkpoints import run_cli

from uvq_tflite import reference as ref
from uvq_tflite.checkpoints import load_network
from uvq_tflite.core.files import write_atomic
from uvq_tflite.core.registry import MODELS, PRECISIONS, network
from uvq_tflite.deploy import spec
from uvq_tflite.export import export_float32, fold_batch_norms
from uvq_tflite.quantize import quantize_int8
from uvq_tflite.runtime import TFLiteRunner
from uvq_tflite.tflite_file import inspect_bytes

FORBIDDEN = ("GATHER", "GATHER_ND")


@pytest.mark.parametrize("precision", ["float32", "int8"])
@pytest.mark.parametrize("model", MODELS)
def test_graph_obeys_the_hardware_rules(converted, model, precision):
    report = inspect_bytes(converted[model][precision])
    assert report.count_ops(FORBIDDEN) == {}
    assert report.max_rank <= 4, report.tensors_above(4)
    assert [t.shape for t in report.inputs] == [list(s) for s in network(model).input_shapes(1)]
    assert [t.shape for t in report.outputs] == [list(network(model).output_shape(1))]
    assert all(t.dtype == "float32" for t in report.inputs + report.outputs)


@pytest.mark.parametrize("model", MODELS)
def test_int8_has_channelwise_int8_weights_and_is_smaller(converted, model):
    from ai_edge_litert.interpreter import Interpreter

    report = inspect_bytes(converted[model]["int8"])
    assert report.quantized.get("int8", 0) > 0
    weights = [d for d in Interpreter(model_content=converted[model]["int8"]).get_tensor_details()
               if d["dtype"] == np.int8]
    for w in weights:  # one scale per channel of the quantized axis
        q = w["quantization_parameters"]
        assert len(q["scales"]) == w["shape"][q["quantized_dimension"]], w["name"]
    # A weight with a single output channel (aggregation's last linear) is per tensor too.
    assert report.channelwise == sum(len(w["quantization_parameters"]["scales"]) > 1
                                     for w in weights)
    assert len(converted[model]["int8"]) < 0.4 * len(converted[model]["float32"])
    assert inspect_bytes(converted[model]["float32"]).quantized == {}


def _delegated_partitions(model: bytes) -> int:
    """How many XNNPACK partitions LiteRT splits the graph into (its DELEGATE nodes)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model, num_threads=1)
    interpreter.allocate_tensors()
    return [op["op_name"] for op in interpreter._get_ops_details()].count("DELEGATE")


def test_int8_depthwise_weights_are_int8_but_compute_in_float(converted):
    # XNNPACK runs float DEPTHWISE_CONV_2D fast, not one with INT8 weights and float input
    report = inspect_bytes(converted["content"]["int8"])
    dequantized = {out for op in report.graph if op.op == "DEQUANTIZE" for out in op.outputs}
    depthwise = [op for op in report.graph if op.op == "DEPTHWISE_CONV_2D"]
    assert depthwise and all(op.inputs[1] in dequantized for op in depthwise)
    assert report.quantized["int8"] == report.ops["CONV_2D"] + len(depthwise)
    assert _delegated_partitions(converted["content"]["int8"]) == 1
    hybrid = quantize_int8(converted["content"]["float32"], weight_only_ops=())
    assert "DEQUANTIZE" not in inspect_bytes(hybrid).ops
    assert _delegated_partitions(hybrid) == len(depthwise) + 1  # split at each depthwise


def test_float_distortion_file_reproduces_the_reference(converted, parity_frame, expected):
    run = TFLiteRunner(converted["distortion"]["float32"])
    assert_close(run(ref.split_patches(parity_frame)), expected["distortion_frame"])


def test_float_content_file_reproduces_the_reference(converted, expected):
    run = TFLiteRunner(converted["content"]["float32"])
    assert_close(run(expected["content_input_256"]), expected["content_frame"])


def test_float_aggregation_file_reproduces_the_published_score(converted, expected):
    run = TFLiteRunner(converted["aggregation"]["float32"])
    assert_close(run(expected["content_frame"], expected["distortion_frame"]), expected["score"])


def test_distortion_wrapper_scores_several_frames_per_call(parity_nets, parity_frame):
    frames = np.concatenate([parity_frame, -parity_frame])
    wrapper = spec("distortion").wrapper(parity_nets["distortion"])
    with torch.no_grad():
        out = wrapper(torch.from_numpy(ref.split_patches(frames))).numpy()
    assert out.shape == network("distortion").output_shape(2)
    assert_close(out, ref.distortion_features(parity_nets["distortion"], frames))


def test_folding_batch_norms_removes_them_and_keeps_the_features(parity_nets, expected):
    net = parity_nets["content"]
    folded = fold_batch_norms(net)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 48  # stem, 2 in the first MBConv, 3 in each of the other 15
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert_close(ref.content_features(folded, expected["content_input_256"]),
                 expected["content_frame"])


def test_frames_per_call_sets_the_converted_shapes():
    net = load_network("aggregation", PUBLISHED_AGGREGATION)
    report = inspect_bytes(export_float32("aggregation", net, frames=3))
    assert [t.shape for t in report.inputs] == [[3, 8, 8, 128], [3, 24, 24, 128]]
    assert [t.shape for t in report.outputs] == [[3, 1]]


def test_conversion_is_deterministic():
    net = load_network("aggregation", PUBLISHED_AGGREGATION)
    first, second = export_float32("aggregation", net), export_float32("aggregation", net)
    assert first == second
    assert quantize_int8(first) == quantize_int8(second)


def test_quantizer_recipe_equals_litert_torch_quant_config():
    import litert_torch
    from litert_torch.generative.quantize import quant_attrs, quant_recipes

    net = load_network("aggregation", PUBLISHED_AGGREGATION)
    config = quant_recipes.full_dynamic_recipe(
        weight_dtype=quant_attrs.Dtype.INT8, granularity=quant_attrs.Granularity.CHANNELWISE)
    sample = tuple(torch.zeros(s) for s in network("aggregation").input_shapes(1))
    via_converter = bytes(litert_torch.convert(spec("aggregation").wrapper(net).eval(), sample,
                                               quant_config=config).model_content())
    # the recipe alone (named I/O, with metadata), without this project's weight-only ops
    ours = quantize_int8(export_float32("aggregation", net), weight_only_ops=())
    a, b = inspect_bytes(ours), inspect_bytes(via_converter)
    assert (a.ops, a.quantized, a.channelwise) == (b.ops, b.quantized, b.channelwise)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(s).astype(np.float32)
              for s in network("aggregation").input_shapes(1)]
    assert np.array_equal(TFLiteRunner(ours)(*inputs), TFLiteRunner(via_converter)(*inputs))


def test_write_atomic_leaves_nothing_on_failure(tmp_path, monkeypatch):
    dest = tmp_path / "model.tflite"

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_atomic(dest, b"x" * 100)
    assert list(tmp_path.iterdir()) == []


def test_write_atomic_replaces_whole_file(tmp_path):
    dest = tmp_path / "model.tflite"
    dest.write_bytes(b"old")
    write_atomic(dest, b"new contents")
    assert dest.read_bytes() == b"new contents"
    assert list(tmp_path.iterdir()) == [dest]


def test_cli_convert_writes_the_seed_file_names_for_every_precision(parity_models, tmp_path):
    checkpoints, _ = parity_models
    result = run_cli("convert", "--model", "aggregation", "--checkpoint-dir", str(checkpoints),
                     "--calibration-videos", str(VIDEOS / "carphone_pristine.mp4"),
                     "--calibration-fps", "1", "--frames-per-clip", "2",
                     "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"aggregation_net.tflite", "aggregation_net_int8.tflite",
                     "aggregation_net_full_int8.tflite"}  # the backbones only calibrate it
    for name in names:
        assert f"wrote {tmp_path / name}" in result.stderr
    float_size = (tmp_path / "aggregation_net.tflite").stat().st_size
    for name in names - {"aggregation_net.tflite"}:  # sizes of the files written, repacked
        size = (tmp_path / name).stat().st_size
        assert f"wrote {tmp_path / name}  {size / 1e6:.2f} MB, {size / float_size:.3f}x float32  " \
            in result.stderr
    assert "Quantization Ratio" not in result.stderr  # the quantizer's, measured before packing
    full = inspect_bytes((tmp_path / "aggregation_net_full_int8.tflite").read_bytes())
    assert full.float_ops == {}
    assert result.stdout == ""


def test_cli_full_int8_needs_calibration_videos(tmp_path):
    result = run_cli("convert", "--model", "content", "--checkpoint-dir", str(tmp_path),
                     "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip() == ("uvq-tflite: error: --precision full_int8 (and all) needs "
                                     "--calibration-videos CLIP...")
    assert not (tmp_path / "out").exists()


def test_cli_bad_calibration_clips_are_each_named_before_any_file_is_written(parity_models,
                                                                          tmp_path):
    checkpoints, _ = parity_models
    (tmp_path / "notes.mp4").write_text("not a video")
    result = run_cli("convert", "--model", "aggregation", "--checkpoint-dir", str(checkpoints),
                     "--calibration-videos", str(tmp_path / "notes.mp4"),
                     str(tmp_path / "missing.mp4"), str(VIDEOS / "carphone_pristine.mp4"),
                     "--frames-per-clip", "30", "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(lines) == 3 and "Traceback" not in result.stderr, result.stderr
    assert "notes.mp4: not a readable video" in lines[0]
    assert "missing.mp4: no such file" in lines[1]
    assert ("carphone_pristine.mp4: 18 frames at 4 fps (20 with UVQ's zero padding), fewer "
            "than the 30") in lines[2]
    assert not (tmp_path / "out").exists()  # not even the float32 file


def test_cli_quantize_from_a_float_file(tmp_path):
    assert run_cli("convert", "--model", "aggregation", "--precision", "float32", "--checkpoint",
                   str(PUBLISHED_AGGREGATION), "--output-dir", str(tmp_path)).returncode == 0
    float_path = tmp_path / "aggregation_net.tflite"
    result = run_cli("quantize", str(float_path), str(tmp_path / "q.tflite"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "q.tflite").read_bytes() == quantize_int8(float_path.read_bytes())
    size, float_size = (p.stat().st_size for p in (tmp_path / "q.tflite", float_path))
    line = f"wrote {tmp_path / 'q.tflite'}  {size / 1e6:.2f} MB, {size / float_size:.3f}x float32  "
    assert line in result.stderr
    refused = run_cli("quantize", str(float_path), str(tmp_path / "sub.tflite"),
                      "--weight-only-ops", "DEPTHWISE_CONV_2D,SUB")
    assert refused.returncode == 2 and not (tmp_path / "sub.tflite").exists()
    assert "has no INT8 weight-only config for SUB" in refused.stderr
    typo = run_cli("quantize", str(float_path), str(tmp_path / "typo.tflite"),
                   "--weight-only-ops", "DEPTHWISE")
    assert typo.returncode == 2
    assert "'DEPTHWISE' is not a TFLite builtin operator (e.g. GATHER" in typo.stderr
    again = run_cli("quantize", str(tmp_path / "q.tflite"), str(tmp_path / "qq.tflite"))
    assert again.returncode == 2 and not (tmp_path / "qq.tflite").exists()
    assert again.stderr.strip().endswith("quantize takes the float32 .tflite"), again.stderr
    float_bytes = float_path.read_bytes()
    in_place = run_cli("quantize", str(float_path), f"{tmp_path}/./{float_path.name}")
    assert in_place.returncode == 2
    assert in_place.stderr.strip().endswith("also an input of this command; write the output "
                                            "elsewhere"), in_place.stderr
    assert float_path.read_bytes() == float_bytes


def test_unpack_reads_buffers_stored_past_the_flatbuffer_as_arrays(converted):
    """ai-edge-quantizer stores 256 KiB or more of weights past the flatbuffer. LiteRT's
    reader returns those as bytearrays, which the object API packs one byte per Python
    call; `unpack` makes them arrays, packed as one copy."""
    from ai_edge_litert.tools import flatbuffer_utils
    from ai_edge_quantizer import quantizer, recipe

    from uvq_tflite.packing import pack, unpack

    qt = quantizer.Quantizer(converted["content"]["float32"])
    qt.load_quantization_recipe(recipe.dynamic_wi8_afp32())
    raw = bytes(qt.quantize(enable_progress_report=False).quantized_model)
    stored = flatbuffer_utils.convert_bytearray_to_object(bytearray(raw)).buffers
    assert sum(bool(b.offset) for b in stored) > 10  # past the flatbuffer
    model = unpack(raw)
    assert all(b.data is None or isinstance(b.data, np.ndarray) for b in model.buffers)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 256, 256, 3)).astype(np.float32)
    np.testing.assert_array_equal(TFLiteRunner(pack(model))(x), TFLiteRunner(raw)(x))


def test_weight_only_takes_builtin_names_the_quantizer_spells_differently():
    """TRANSPOSE_CONV is CONV_2D_TRANSPOSE to ai-edge-quantizer: weight-only, its weight
    is INT8 behind a DEQUANTIZE and it computes what the float file does."""
    from tiny_models import SAMPLES, TinyTransposeConv, converted

    float_model = converted(TinyTransposeConv)
    quantized = quantize_int8(float_model, weight_only_ops=["TRANSPOSE_CONV"])
    report = inspect_bytes(quantized)
    assert report.count_ops(("TRANSPOSE_CONV", "DEQUANTIZE")) == {"TRANSPOSE_CONV": 1,
                                                                  "DEQUANTIZE": 1}
    assert report.float_ops.get("DEQUANTIZE") == 1 and report.quantized == {"int8": 1}
    x = np.random.default_rng(0).standard_normal(SAMPLES[TinyTransposeConv]).astype(np.float32)
    expected = TFLiteRunner(float_model)(x)
    assert_close(TFLiteRunner(quantized)(x), expected, rel=0.02, min_corr=0.999)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("model", MODELS)
def test_every_file_names_its_io_and_describes_itself(converted, model, precision):
    from ai_edge_litert.interpreter import Interpreter

    data = converted[model][precision]
    info = network(model)
    (signature,) = Interpreter(model_content=data).get_signature_list().values()
    assert signature == {"inputs": list(info.input_names), "outputs": [info.output_name]}
    meta = inspect_bytes(data).metadata
    assert (meta["model"], meta["precision"]) == (model, precision)
    assert list(meta["inputs"]) == list(info.input_names)
    assert meta["inputs"][info.input_names[0]].startswith(info.inputs_are)
    assert ("INT8" in meta["inputs"][info.input_names[0]]) == (precision == "full_int8")
    tools = {"torch", "litert-torch"} | ({"ai-edge-quantizer"} if precision != "float32" else set())
    assert tools <= set(meta["tools"]) and "av" not in meta["tools"]


def test_cli_records_the_checkpoint_hash_and_inspect_shows_the_metadata(tmp_path):
    assert run_cli("convert", "--model", "aggregation", "--precision", "float32", "--checkpoint",
                   str(PUBLISHED_AGGREGATION), "--output-dir", str(tmp_path)).returncode == 0
    digest = hashlib.sha256(PUBLISHED_AGGREGATION.read_bytes()).hexdigest()
    path = tmp_path / "aggregation_net.tflite"
    assert inspect_bytes(path.read_bytes()).metadata["checkpoint_sha256"] == digest
    result = run_cli("quantize", str(path), str(tmp_path / "renamed.tflite"))
    assert result.returncode == 0
    shown = run_cli("inspect", str(tmp_path / "renamed.tflite"))
    assert "metadata:    aggregation network, int8" in shown.stdout
    assert f"checkpoint sha256: {digest}" in shown.stdout
    assert "NHWC I/O:    yes, 1 frame(s) per call" in shown.stdout  # the model, from metadata


@pytest.mark.parametrize("precision", PRECISIONS)
def test_tensors_are_named_by_the_module_path_that_computes_them(converted, precision):
    """Not by litert-torch's chain of qualified class names, which a report cut to one line
    could not tell apart: the layer's path, as in the checkpoint's state dict."""
    names = [name for name, _ in inspect_bytes(converted["content"][precision]).tensor_ranks]
    assert not [n for n in names if "torch.nn" in n or "uvq_tflite." in n]
    assert any(n.startswith("wrapper.net.features.13.block.2.fc1;") for n in names)
    assert max(map(len, names)) < 200  # four fused locations; litert-torch wrote 1172 chars


def test_int8_stores_the_layernorm_affine_constants_as_int8(converted, expected):
    """The published AggregationNet's LayerNorm weight and bias are constant operands of a
    MUL and an ADD, which ai-edge-quantizer leaves float (0.11x of the float32 file):
    weight-only, they are INT8 read through a DEQUANTIZE, and the score barely moves."""
    float_model, int8 = converted["aggregation"]["float32"], converted["aggregation"]["int8"]
    report = inspect_bytes(int8)
    assert report.count_ops(("DEQUANTIZE",)) == {"DEQUANTIZE": 2}
    assert report.size_parts["float32 constants"] < 0.01 * len(float_model)  # biases, scalars
    assert len(int8) < 0.3 * len(float_model)
    float_constants = quantize_int8(float_model, weight_only_ops=["DEPTHWISE_CONV_2D"])
    assert len(float_constants) > 0.33 * len(float_model)
    inputs = expected["content_frame"], expected["distortion_frame"]
    score, before = (TFLiteRunner(m)(*inputs).item() for m in (int8, float_constants))
    reference = expected["score"].item()
    assert abs(score - reference) < 0.002 * reference, (score, before, reference)
