"""Full-integer INT8: integer-only files, calibration on real frames, per-layer analysis."""

from __future__ import annotations

import collections

import numpy as np
import pytest
from conftest import VIDEOS

from uvq_tflite import calibration_set, video
from uvq_tflite.calibration import (
    GRID_BITS,
    activation_ranges,
    quantization_ranges,
    ranges_of,
    snapped,
)
from uvq_tflite.core.registry import MODELS, network
from uvq_tflite.deploy import spec
from uvq_tflite.export import export_float32, export_twin
from uvq_tflite.full_int8 import calibrated, twin_names
from uvq_tflite.layers import layer_snr, worst
from uvq_tflite.metrics import SNR_CAP_DB
from uvq_tflite.quantize import quantize_full_int8
from uvq_tflite.runtime import TFLiteRunner, dequantize_output, quantize_input
from uvq_tflite.tflite_file import inspect_bytes


@pytest.fixture(scope="module")
def full(converted):
    return {m: converted[m]["full_int8"] for m in converted}


@pytest.fixture(scope="module")
def frames(calibration_frames):
    return calibration_frames


@pytest.mark.parametrize("model", MODELS)
def test_full_int8_is_integer_only_with_int8_io_and_the_hardware_rules(full, model):
    report = inspect_bytes(full[model])
    assert report.float_ops == {}
    assert {t.dtype for t in report.inputs + report.outputs} == {"int8"}
    assert [t.shape for t in report.inputs] == [list(s) for s in network(model).input_shapes(1)]
    assert report.max_rank <= 4 and report.count_ops(("GATHER", "GATHER_ND")) == {}
    assert "float32 constants" not in report.size_parts  # every weight and bias is integer


@pytest.mark.parametrize("model", MODELS)
def test_full_int8_weights_are_channelwise(full, model):
    """Weights get one scale per output channel from the recipe, never a calibration range
    (constants are not activations)."""
    from ai_edge_litert.interpreter import Interpreter

    axis = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}  # output channels
    details = {d["name"]: d for d in Interpreter(model_content=full[model]).get_tensor_details()}
    weights = [(details[op.inputs[1]], axis[op.op]) for op in inspect_bytes(full[model]).graph
               if op.op in axis]
    assert weights
    for w, channels in weights:
        q = w["quantization_parameters"]
        assert w["dtype"] == np.int8, w["name"]
        assert q["quantized_dimension"] == channels, w["name"]
        assert len(q["scales"]) == w["shape"][channels], w["name"]


def test_float_models_compute_in_float(converted):
    assert inspect_bytes(converted["content"]["float32"]).float_ops["CONV_2D"] > 0


def test_runner_quantizes_inputs_and_dequantizes_outputs(full, converted, frames):
    inputs = next(calibration_set.backbone_samples("content", frames))
    ours = TFLiteRunner(full["content"])(*inputs)
    reference = TFLiteRunner(converted["content"]["float32"])(*inputs)
    assert ours.dtype == np.float32 and ours.shape == reference.shape
    assert np.corrcoef(ours.ravel(), reference.ravel())[0, 1] > 0.5  # same features, roughly


def test_runner_counts_the_values_int8_inputs_and_outputs_clip(full, converted, frames):
    """Calibration-like features clip (almost) nothing; ten times larger ones clip, at the
    inputs of an INT8-I/O file and at the QUANTIZE edges of a float-I/O one alike."""
    float_model = converted["aggregation"]["float32"]
    features = calibration_set.backbone_features(
        frames[:1], {m: converted[m]["float32"] for m in ("content", "distortion")})
    inputs = next(calibration_set.model_samples("aggregation", features))
    runner = TFLiteRunner(full["aggregation"], count_clipping=True)
    runner(*inputs)
    within = runner.take_clipped()
    runner(*[x * 10 for x in inputs])
    beyond = runner.take_clipped()
    assert within < 0.001 and beyond > 0.05
    assert runner.take_clipped() is None  # read and reset: nothing counted since
    ranges = quantization_ranges(float_model, ranges_of(full["aggregation"]))
    float_io = TFLiteRunner(quantize_full_int8(float_model, ranges, io="float32"),
                            count_clipping=True)
    float_io(*[x * 10 for x in inputs])
    assert float_io.take_clipped() == beyond
    unquantized = TFLiteRunner(float_model, count_clipping=True)
    unquantized(*inputs)
    assert unquantized.take_clipped() is None


def test_int8_io_round_trips_within_half_a_step():
    detail = {"dtype": np.int8, "quantization": (0.02, -3)}
    values = np.linspace(-2.5, 2.5, 101, dtype=np.float32)
    back = dequantize_output(quantize_input(values, detail), detail)
    assert np.abs(back - values).max() <= 0.01 + 1e-6
    assert quantize_input(np.array([100.0]), detail)[0] == 127  # saturates, never wraps


def test_minmax_ranges_hold_every_calibration_value(converted, frames):
    model = converted["aggregation"]["float32"]
    samples = [[np.full((1, 8, 8, 128), v, np.float32), np.full((1, 24, 24, 128), v, np.float32)]
               for v in (-2.0, 3.0)]
    ranges = activation_ranges(model, lambda: iter(samples), "minmax")
    assert ranges[inspect_bytes(model).inputs[0].name] == (-2.0, 3.0)
    clipped = activation_ranges(model, lambda: iter(samples), "percentile", percentile=90)
    assert all(lo >= ranges[n][0] and hi <= ranges[n][1] for n, (lo, hi) in clipped.items())


def test_snapped_ranges_hold_the_observed_one_and_widen_it_by_less_than_an_int8_step():
    """The grid is the range INT8 holds, which holds zero: one from [3.9, 4.0]'s own span
    would be 64 times finer than that of the [0, 4] the file gets, and flip 64 times as often."""
    rng = np.random.default_rng(0)
    for low, high in rng.uniform(-50, 50, (1000, 2)) * rng.uniform(0, 1, (1000, 1)):
        low, high = min(low, high), max(low, high)
        held = min(low, 0.0), max(high, 0.0)
        lo, hi = snapped(low, high)
        step = (held[1] - held[0]) / 255
        assert held[0] - step < lo <= held[0] and held[1] <= hi < held[1] + step
        grid = 2.0 ** (np.floor(np.log2(held[1] - held[0])) - GRID_BITS)
        assert lo / grid == round(lo / grid) and hi / grid == round(hi / grid)
    assert snapped(0.0, 6.0) == (0.0, 6.0)  # values on the grid stay
    assert snapped(3.9, 4.0) == snapped(0.0, 4.0) == (0.0, 4.0)
    assert snapped(-3.0, -1.0) == (-3.0, 0.0)
    assert snapped(-1.0, 1.0 + 1e-6) == (-1.0, 1.0 + 2.0 ** (1 - GRID_BITS))


def test_float_inference_a_few_ulps_apart_gives_the_same_full_int8_file(converted, parity_nets,
                                                                        frames):
    """Another CPU computes the calibration feature maps a few ulps apart (README, "Another
    CPU"); snapped ranges make the same AggregationNet file from them, where unsnapped
    ones do not."""
    data = calibration_set.backbone_features(
        frames, {m: converted[m]["float32"] for m in ("content", "distortion")})
    rng = np.random.default_rng(0)
    nudged = {k: v * (1 + rng.uniform(-1e-6, 1e-6, v.shape)).astype(np.float32)
              for k, v in data.items()}
    model, net = converted["aggregation"]["float32"], parity_nets["aggregation"]
    files = [calibrated("aggregation", model, net,
                        lambda d=d: calibration_set.model_samples("aggregation", d),
                        "minmax", 99.99)
             for d in (data, nudged)]
    assert files[0] == files[1]
    unsnapped = [quantize_full_int8(model, quantization_ranges(model, activation_ranges(
        model, lambda d=d: calibration_set.model_samples("aggregation", d), "minmax")))
        for d in (data, nudged)]
    assert unsnapped[0] != unsnapped[1]


def test_quantized_ranges_read_back(full):
    ranges = ranges_of(full["content"])
    report = inspect_bytes(full["content"])
    for op in report.graph:
        for name in op.outputs:
            assert name in ranges, f"{op.op} output {name} has no range"


def test_distortion_twin_gives_every_tensor_the_ranges_need(converted, parity_nets):
    """The one-patch twin computes the same tensors; value-preserving ops complete them."""
    deployed = converted["distortion"]["float32"]
    twin = export_twin("distortion", parity_nets["distortion"])
    patch = np.zeros((1, 360, 640, 3), np.float32)
    names = twin_names(twin, deployed)
    ranges = activation_ranges(twin, lambda: iter([[patch]]), "minmax")
    qsv = quantization_ranges(deployed, {names[n]: r for n, r in ranges.items() if n in names})
    for op in inspect_bytes(deployed).graph:
        for name in op.outputs:
            assert name in qsv, f"{op.op} output {name} has no range"
    assert spec("distortion").twin_calls([np.zeros((9, 2))])[8][0].shape == (1, 2)


def test_layer_snr_is_capped_for_identical_models_and_finds_the_losses(full, converted, frames):
    inputs = [list(next(calibration_set.backbone_samples("content", frames)))]
    same = layer_snr(converted["content"]["float32"], converted["content"]["float32"], inputs)
    assert same and all(row["snr_db"] == SNR_CAP_DB for row in same)
    rows = layer_snr(converted["content"]["float32"], full["content"], inputs)
    assert len(rows) > 100 and [r["layer"] for r in rows] == list(range(len(rows)))
    assert all(r["snr_db"] < SNR_CAP_DB for r in rows[1:])
    top = worst(rows, 3)
    assert [r["drop_db"] for r in top] == sorted((r["drop_db"] for r in rows), reverse=True)[:3]


@pytest.mark.parametrize("model", ["distortion", "aggregation"])
def test_float_io_converts_at_the_edges_and_computes_what_int8_io_computes(full, converted,
                                                                          frames, model):
    """io: float32 gives float inputs and outputs, a QUANTIZE of each input and a
    DEQUANTIZE into each output, and the same integer graph between them."""
    float_model = converted[model]["float32"]
    ranges = quantization_ranges(float_model, ranges_of(full[model]))
    int8_io = quantize_full_int8(float_model, ranges)
    float_io = quantize_full_int8(float_model, ranges, io="float32")
    report = inspect_bytes(float_io)
    assert report.float_ops == {}
    assert {t.dtype for t in report.inputs + report.outputs} == {"float32"}
    edges = collections.Counter(QUANTIZE=len(report.inputs), DEQUANTIZE=len(report.outputs))
    assert (collections.Counter(op.op for op in report.graph)
            == collections.Counter(op.op for op in inspect_bytes(int8_io).graph) + edges)
    read_back = ranges_of(float_io)  # its twin is quantized with the same ranges
    assert all(read_back[t.name] == ranges_of(int8_io)[t.name] for t in report.inputs)
    data = ({"frames": frames} if model != "aggregation" else calibration_set.backbone_features(
        frames, {m: converted[m]["float32"] for m in ("content", "distortion")}))
    inputs = next(calibration_set.model_samples(model, data))
    np.testing.assert_array_equal(TFLiteRunner(float_io)(*inputs), TFLiteRunner(int8_io)(*inputs))


@pytest.mark.parametrize("estimator", ["minmax", "mse"])
def test_a_model_of_two_frames_per_call_is_calibrated_as_the_one_frame_model(
        converted, parity_nets, frames, estimator):
    """Calibration observes a model built for 2 frames per call through its 1-frame twin,
    frame by frame (3 frames: none padded, none counted twice): its ranges, and so what
    it computes, are the 1-frame model's."""
    data = calibration_set.backbone_features(
        frames[:3], {m: converted[m]["float32"] for m in ("content", "distortion")})
    net = parity_nets["aggregation"]
    one, two = (calibrated("aggregation", export_float32("aggregation", net, frames=n), net,
                           lambda: calibration_set.model_samples("aggregation", data),
                           estimator, 99.99) for n in (1, 2))
    assert set(ranges_of(one).values()) == set(ranges_of(two).values())  # + a RESHAPE at 2
    content, distortion = data["content"][:2], data["distortion"][:2]
    np.testing.assert_array_equal(
        TFLiteRunner(two)(content, distortion),
        np.concatenate([TFLiteRunner(one)(content[i:i + 1], distortion[i:i + 1])
                        for i in range(2)]))


def test_bad_calibration_clips_are_each_named(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(calibration_set.CalibrationError) as error:
        calibration_set.sample_frames(
            [tmp_path / "missing.mp4", tmp_path / "notes.mp4", VIDEOS / "carphone_pristine.mp4"],
            fps=1, frames_per_clip=6, seed=0)
    lines = str(error.value).splitlines()
    assert len(lines) == 3
    assert "missing.mp4: no such file" in lines[0]
    assert "notes.mp4: not a readable video" in lines[1]
    assert "5 frames at 1 fps, fewer than the 6 frames_per_clip" in lines[2]


def test_calibration_chooses_only_frames_the_clip_holds():
    # At 4 fps UVQ reads 20 frames of carphone (ceil(4.004 s)), the last 2 of them padding;
    # seed 0's first choice takes frame 19, so the choice is made again among the 18.
    clip = VIDEOS / "carphone_pristine.mp4"
    held = list(video.written_frames(video.probe(clip, 4)))
    assert len(held) == 18 and max(np.random.default_rng(0).choice(20, 8, replace=False)) >= 18
    frames = calibration_set.sample_frames([clip], fps=4, frames_per_clip=8, seed=0)
    assert len(frames) == 8
    assert all(any(np.array_equal(f, h) for h in held) for f in frames)
    with pytest.raises(calibration_set.CalibrationError,
                       match="18 frames at 4 fps .20 with UVQ's zero padding., fewer than the 19 "
                             "frames_per_clip asked for; raise the calibration fps"):
        calibration_set.sample_frames([clip], fps=4, frames_per_clip=19, seed=0)


def test_a_clip_shorter_than_the_frames_asked_for_counts_the_frames_it_holds(tmp_path):
    from clip_factory import write_clip

    clip = write_clip(tmp_path / "one.mp4", rate=25, count=1)  # UVQ reads 1 s: 4 frames at 4 fps
    with pytest.raises(calibration_set.CalibrationError,
                       match="one.mp4: 1 frames at 4 fps .4 with UVQ's zero padding., fewer "
                             "than the 8 frames_per_clip"):
        calibration_set.sample_frames([clip], fps=4, frames_per_clip=8, seed=0)


def test_an_empty_calibration_folder_is_refused(tmp_path):
    with pytest.raises(calibration_set.CalibrationError, match="holds no clips"):
        calibration_set.clips_in(tmp_path)


def test_packing_stores_each_repeated_vector_once_and_computes_the_same(full, frames):
    """Every channelwise weight and bias repeats an all-zero int64 zero point per channel;
    written once (packing.py), the file shrinks and LiteRT computes the same bits."""
    from ai_edge_litert.tools import flatbuffer_utils

    from uvq_tflite.packing import repacked, unpack

    shared = full["content"]
    plain = bytes(flatbuffer_utils.convert_object_to_bytearray(unpack(shared)))
    assert len(shared) < 0.92 * len(plain)
    assert repacked(shared) == shared
    parts = inspect_bytes(shared).size_parts  # shared vectors count once
    assert sum(parts.values()) == len(shared) and parts["graph and names"] > 0
    assert parts["quantization parameters"] < inspect_bytes(plain).size_parts[
        "quantization parameters"] / 2
    inputs = next(calibration_set.backbone_samples("content", frames))
    np.testing.assert_array_equal(TFLiteRunner(shared)(*inputs), TFLiteRunner(plain)(*inputs))
