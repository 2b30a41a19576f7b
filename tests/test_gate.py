"""The gate behind `make verify`, on metrics files written here."""

from __future__ import annotations

import json

import pytest

from uvq_tflite.cli import main
from uvq_tflite.core.registry import MODELS

THRESHOLDS_ARGS = ["--params", "params.yaml"]


BY_PRECISION = "by precision"  # write_metrics' sizes: float32 1 MB, INT8 0.3 MB (within 0.3x)


def metrics(correlation=1.0, ops=None, max_rank=4, nhwc=True, float_ops=None, worst=None,
            size_mb=BY_PRECISION):
    return {"correlation": correlation, "max_abs_diff": 0.0, "mean_abs_diff": 0.0,
            "size_mb": size_mb, "max_rank": max_rank, "ops": ops or {"CONV_2D": 3},
            "nhwc_io": nhwc, "float_ops": float_ops or {}, "worst_layers": worst or []}


PRECISIONS = ("float32", "int8", "full_int8")
DEFAULTS = (metrics(), metrics(0.99), metrics(0.995))


CLIPS = ("synthetic_high", "synthetic_low")  # params.yaml's videos


def score(max_rel_diff=0.0, frame_correlation=0.9):
    return {"uvq1p5_score": 3.0, "max_abs_diff": 3 * max_rel_diff, "max_rel_diff": max_rel_diff,
            "video_score_diff": 0.0, "frame_correlation": frame_correlation}


def write_metrics(directory, scores=(0.0, 0.01, 0.02), **per_model):
    (directory / "videos").mkdir(parents=True, exist_ok=True)
    for model in MODELS:
        rows = per_model.get(model, DEFAULTS)
        rows = [{**row, "size_mb": 1.0 if p == "float32" else 0.3}
                if row.get("size_mb") == BY_PRECISION else row for p, row in zip(PRECISIONS, rows)]
        (directory / f"{model}.json").write_text(json.dumps(dict(zip(PRECISIONS, rows))))
    for clip in CLIPS:
        (directory / "videos" / f"{clip}.json").write_text(json.dumps(
            {"frames": 3, "video_length": 3, "fps": 1, "pytorch": {"uvq1p5_score": 3.0},
             **{p: score(v) for p, v in zip(PRECISIONS, scores)}}))
    return directory


def run_gate(directory, tflite_dir):
    return main(["gate", *THRESHOLDS_ARGS, "--metrics-dir", str(directory),
                 "--tflite-dir", str(tflite_dir), "--no-status"])


def gate(directory, tmp_path, capsys):
    code = run_gate(directory, tmp_path / "none")
    return code, capsys.readouterr().out


def refused(directory, tmp_path, capsys) -> str:
    """What the gate says on stderr about metrics it refuses as bad input (exit 2)."""
    assert run_gate(directory, tmp_path / "none") == 2
    return capsys.readouterr().err


def edit_clip(directory, clip, **full_int8):
    """Set keys of one clip's full_int8 video metrics."""
    path = directory / "videos" / f"{clip}.json"
    data = json.loads(path.read_text())
    data["full_int8"].update(full_int8)
    path.write_text(json.dumps(data))


def test_all_within_bounds_passes(tmp_path, capsys):
    code, out = gate(write_metrics(tmp_path / "m"), tmp_path, capsys)
    assert code == 0 and "verify: passed (0 breaches)" in out
    assert sum(line.endswith(" pass") for line in out.splitlines()) == 9 + 3 * len(CLIPS)


def test_each_rule_is_named_with_model_and_value(tmp_path, capsys):
    directory = write_metrics(
        tmp_path / "m",
        distortion=(metrics(ops={"GATHER_ND": 2, "CONV_2D": 1}), metrics(0.5), DEFAULTS[2]),
        content=(metrics(max_rank=5), metrics(nhwc=False), DEFAULTS[2]))
    code, out = gate(directory, tmp_path, capsys)
    assert code == 1
    assert "BREACH distortion float32: forbidden ops GATHER_ND x2" in out
    assert "BREACH distortion int8: correlation 0.500000 < 0.97" in out
    assert "BREACH content float32: max tensor rank 5 > 4 (thresholds.max_rank)" in out
    assert "BREACH content int8: inputs/outputs are not the NHWC shapes" in out
    assert "verify: FAILED (4 breaches)" in out


def test_missing_metrics_is_a_breach(tmp_path, capsys):
    directory = write_metrics(tmp_path / "m")
    (directory / "content.json").unlink()
    code, out = gate(directory, tmp_path, capsys)
    assert code == 1 and "content.json: missing; run `make repro`" in out


def test_end_to_end_score_difference_is_gated(tmp_path, capsys):
    code, out = gate(write_metrics(tmp_path / "m", scores=(0.002, 0.2, 0.0)), tmp_path, capsys)
    assert code == 1
    for clip in CLIPS:
        assert (f"BREACH video {clip} float32: max per-frame relative score difference "
                f"0.002 > 0.001 (thresholds.float32.max_score_rel_diff)") in out
        assert (f"BREACH video {clip} int8: max per-frame relative score difference "
                f"0.2 > 0.05") in out


def test_frame_correlation_is_shown_not_gated_and_constant_scores_are_named(tmp_path, capsys):
    directory = write_metrics(tmp_path / "m")
    edit_clip(directory, "synthetic_low", frame_correlation=None)  # one value for every frame
    code, out = gate(directory, tmp_path, capsys)
    assert code == 0
    assert "frame corr 0.900  pass" in out and "frame corr constant  pass" in out
    edit_clip(directory, "synthetic_low", frame_correlation=1.5)
    assert "full_int8.frame_correlation: 1.5 is invalid" in refused(directory, tmp_path, capsys)


def test_what_full_int8_clips_is_shown_not_gated_and_checked(tmp_path, capsys):
    directory = write_metrics(tmp_path / "m")
    edit_clip(directory, "synthetic_high",
              clipped={"aggregation": 0.0, "content": 0.5, "distortion": 0.0229})
    code, out = gate(directory, tmp_path, capsys)
    assert code == 0
    assert "      clipped: distortion 2.3%, content 50%, aggregation 0%" in out
    edit_clip(directory, "synthetic_high", clipped={"content": 1.5})
    assert ('full_int8.clipped: {"content": 1.5} is invalid'
            in refused(directory, tmp_path, capsys))


def test_a_clip_without_metrics_is_a_breach(tmp_path, capsys):
    directory = write_metrics(tmp_path / "m")
    (directory / "videos" / "synthetic_low.json").unlink()
    code, out = gate(directory, tmp_path, capsys)
    assert code == 1 and "videos/synthetic_low.json: missing; run `make repro`" in out


def test_full_int8_must_be_integer_only_and_names_its_worst_layers(tmp_path, capsys):
    worst = [{"layer": 6, "op": "MEAN", "snr_db": 19.8,
              "tensor": "wrapper.net.features.1.block.1;;wrapper.net.features.1.block.1.fc2;",
              "drop_db": 11.3}]
    directory = write_metrics(tmp_path / "m", content=(
        metrics(), metrics(0.99), metrics(0.5, float_ops={"LOGISTIC": 2}, worst=worst)))
    code, out = gate(directory, tmp_path, capsys)
    assert code == 1
    assert "BREACH content full_int8: not integer-only: LOGISTIC x2 compute in float" in out
    assert ("BREACH content full_int8: correlation 0.500000 < 0.99 "
            "(thresholds.full_int8.min_correlation); worst layers: #6 MEAN "
            "wrapper.net.features.1.block.1;;wrapper.net.features.1.block.1.fc2; "
            "(SNR 19.8 dB, down 11.3 dB from its input)") in out


def test_a_constant_output_is_named_in_the_table_and_the_breach(tmp_path, capsys):
    """A model that outputs one value (INT8 ranges clipping everything) has correlation 0,
    which alone reads like any other shortfall."""
    dead = {**metrics(0.0), "constant_output": True}
    directory = write_metrics(tmp_path / "m", aggregation=(metrics(), metrics(0.99), dead))
    code, out = gate(directory, tmp_path, capsys)
    assert code == 1
    row = next(line for line in out.splitlines() if line.startswith("aggregation  full_int8"))
    assert row.split()[2] == "constant"
    assert ("BREACH aggregation full_int8: correlation 0.000000 < 0.99 "
            "(thresholds.full_int8.min_correlation): the output is one constant value") in out


def test_quantized_sizes_are_gated_against_float32_and_explained_from_the_file(tmp_path,
                                                                              capsys):
    from tiny_models import TinyConv, converted

    from uvq_tflite.quantize import quantize_int8

    data = quantize_int8(converted(TinyConv))
    mb = len(data) / 1e6
    directory = write_metrics(tmp_path / "m", content=(
        metrics(size_mb=mb / 0.31), metrics(0.99, size_mb=mb), metrics(0.995, size_mb=mb / 0.775)))
    tflite_dir = tmp_path / "tflite"
    tflite_dir.mkdir()
    (tflite_dir / "content_net_int8.tflite").write_bytes(data)
    code = run_gate(directory, tflite_dir)
    out = capsys.readouterr().out
    assert code == 1 and "verify: FAILED (2 breaches)" in out
    breach, no_file = [line for line in out.splitlines() if line.startswith("BREACH")]
    assert breach.startswith("BREACH content int8: size 0.310x float32 > 0.3 "
                             "(thresholds.int8.max_size_vs_float32): ")
    # Each part of the file against the float32 size.
    parts = dict(part.rsplit(" ", 1) for part in breach.split("): ")[1].split(", "))
    assert parts["int8 constants"] == f"{108 / (mb / 0.31 * 1e6):.3f}x"  # 4x3x3x3 weights
    assert set(parts) >= {"graph and names", "quantization parameters"}
    # Without the file (as here for full_int8) the breach still names value and threshold.
    assert no_file == ("BREACH content full_int8: size 0.400x float32 > 0.3 "
                       "(thresholds.full_int8.max_size_vs_float32)")
    row = next(cells for cells in map(str.split, out.splitlines())
               if cells[:2] == ["content", "int8"])
    assert row[6] == "0.310"  # x f32


def test_float_ops_are_allowed_in_float_precisions(tmp_path, capsys):
    directory = write_metrics(tmp_path / "m", content=(
        metrics(float_ops={"CONV_2D": 3}), metrics(0.99, float_ops={"CONV_2D": 3}), DEFAULTS[2]))
    assert gate(directory, tmp_path, capsys)[0] == 0


@pytest.mark.parametrize("raw, shown", [
    ("Infinity", "not strict JSON"), ("NaN", "not strict JSON"), ("7.5", "7.5 is invalid"),
    ("true", "true is invalid"), ('"0.99"', '"0.99" is invalid'), ("null", "null is invalid"),
    ("[1]", "[1] is invalid"), (json.dumps("x" * 500), 'xxx... is invalid'),
])
def test_a_malformed_correlation_is_bad_input_named_with_its_file(tmp_path, capsys, raw, shown):
    directory = write_metrics(tmp_path / "m")
    path = directory / "content.json"
    data = json.loads(path.read_text())
    data["int8"]["correlation"] = "__here__"
    path.write_text(json.dumps(data).replace('"__here__"', raw))
    err = refused(directory, tmp_path, capsys).strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and shown in err[0], err
    assert len(err[0]) < 300


@pytest.mark.parametrize("change, shown", [
    (lambda m: m.update(max_rank=float("nan")), "not strict JSON"),
    (lambda m: m.update(nhwc_io="no"), 'int8.nhwc_io: "no" is invalid'),
    (lambda m: m.update(ops={"gather": 1}), "int8.ops"),
    (lambda m: m.pop("size_mb"), "int8.size_mb: missing"),
    (lambda m: m.update(worst_layers="oops"), "int8.worst_layers: \"oops\" is invalid"),
    (lambda m: m.update(worst_layers=[{"layer": 6, "op": "MEAN", "tensor": "t",
                                       "snr_db": None, "drop_db": 1.0}]),
     "int8.worst_layers: [{\"layer\": 6"),
])
def test_every_value_the_gate_reads_is_checked(tmp_path, capsys, change, shown):
    bad = metrics(0.99)
    change(bad)
    directory = write_metrics(tmp_path / "m", aggregation=(DEFAULTS[0], bad, DEFAULTS[2]))
    err = refused(directory, tmp_path, capsys)
    assert shown in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("frames, shown", [(None, "frames: null is missing or invalid"),
                                           ("3", 'frames: "3" is missing or invalid')])
def test_a_video_file_is_checked_beyond_its_precisions(tmp_path, capsys, frames, shown):
    directory = write_metrics(tmp_path / "m")
    path = directory / "videos" / "synthetic_low.json"
    data = json.loads(path.read_text())
    if frames is None:
        del data["frames"]
    else:
        data["frames"] = frames
    path.write_text(json.dumps(data))
    err = refused(directory, tmp_path, capsys)
    assert shown in err and len(err.strip().splitlines()) == 1, err


def test_an_op_counted_zero_times_is_no_breach(tmp_path, capsys):
    directory = write_metrics(tmp_path / "m", distortion=(
        metrics(ops={"GATHER": 0, "CONV_2D": 1}), DEFAULTS[1],
        metrics(0.995, float_ops={"LOGISTIC": 0})))
    code, out = gate(directory, tmp_path, capsys)
    assert code == 0, out


def test_shares_read_as_percents_and_constant_outputs_are_flagged():
    import numpy as np

    from uvq_tflite.metrics import agreement, format_shares

    assert (format_shares({"aggregation": 1.0, "content": 0.00022, "distortion": 0.123})
            == "distortion 12%, content 0.022%, aggregation 100%")
    reference = np.arange(6.0)
    assert agreement(reference, np.full(6, 2.0))["constant_output"] is True
    assert agreement(reference, reference + 1)["constant_output"] is False


def test_outputs_edited_or_deleted_after_repro_are_named(tmp_path):
    """What `dvc status` misses (an edit that keeps size and mtime): tampered_outputs reads
    every gated output's md5 against dvc.lock, for stages dvc.yaml still has."""
    import hashlib

    import yaml

    from uvq_tflite.gate import tampered_outputs

    def md5(data: bytes) -> str:
        return hashlib.md5(data).hexdigest()

    (tmp_path / "models" / "tflite").mkdir(parents=True)
    (tmp_path / "models" / "tflite" / "a.tflite").write_bytes(b"as written")
    (tmp_path / "models" / "tflite" / "b.tflite").write_bytes(b"edited")
    outs = {"convert@a": ("models/tflite/a.tflite", md5(b"as written")),
            "convert@b": ("models/tflite/b.tflite", md5(b"as written")),
            "quantize@c": ("models/tflite/c.tflite", md5(b"gone")),
            "removed@d": ("models/tflite/d.tflite", md5(b"stage no longer in dvc.yaml")),
            "clips": ("data/clips/e.mp4", md5(b"not gated"))}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {
        stage: {"outs": [{"path": path, "md5": digest}]}
        for stage, (path, digest) in outs.items()}}))
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        name: {"cmd": "true"} for name in ("convert", "quantize", "clips")}}))
    problems = tampered_outputs(tmp_path)
    assert len(problems) == 2, problems
    assert problems[0].startswith("models/tflite/b.tflite: content differs from what "
                                  "convert@b wrote")
    assert problems[1] == ("models/tflite/c.tflite: missing, though dvc.lock records it; "
                           "run `make repro`")
