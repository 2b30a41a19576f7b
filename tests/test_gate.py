"""The gate behind `make verify`, on metrics files written here."""

from __future__ import annotations

import json

from uvq_tflite.cli import main

THRESHOLDS_ARGS = ["--params", "params.yaml"]


def metrics(correlation=1.0, ops=None, max_rank=4, nhwc=True):
    return {"correlation": correlation, "max_abs_diff": 0.0, "mean_abs_diff": 0.0,
            "size_mb": 1.0, "max_rank": max_rank, "ops": ops or {"CONV_2D": 3},
            "nhwc_io": nhwc}


CLIPS = ("synthetic_high", "synthetic_low")  # params.yaml's videos


def score(max_rel_diff):
    return {"uvq1p5_score": 3.0, "max_abs_diff": 3 * max_rel_diff, "max_rel_diff": max_rel_diff,
            "video_score_diff": 0.0}


def write_metrics(directory, scores=(0.0, 0.01), **per_model):
    (directory / "videos").mkdir(parents=True, exist_ok=True)
    for model in ("distortion", "content", "aggregation"):
        float32, int8 = per_model.get(model, (metrics(), metrics(0.99)))
        (directory / f"{model}.json").write_text(json.dumps({"float32": float32, "int8": int8}))
    for clip in CLIPS:
        (directory / "videos" / f"{clip}.json").write_text(json.dumps(
            {"frames": 3, "video_length": 3, "fps": 1, "pytorch": {"uvq1p5_score": 3.0},
             "float32": score(scores[0]), "int8": score(scores[1])}))
    return directory


def gate(directory, tmp_path, capsys):
    code = main(["gate", *THRESHOLDS_ARGS, "--metrics-dir", str(directory),
                 "--tflite-dir", str(tmp_path / "none"), "--no-status"])
    return code, capsys.readouterr().out


def test_all_within_bounds_passes(tmp_path, capsys):
    code, out = gate(write_metrics(tmp_path / "m"), tmp_path, capsys)
    assert code == 0 and "verify: passed (0 breaches)" in out
    assert sum(line.endswith(" pass") for line in out.splitlines()) == 6 + 2 * len(CLIPS)


def test_each_rule_is_named_with_model_and_value(tmp_path, capsys):
    directory = write_metrics(
        tmp_path / "m",
        distortion=(metrics(ops={"GATHER_ND": 2, "CONV_2D": 1}), metrics(0.5)),
        content=(metrics(max_rank=5), metrics(nhwc=False)))
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
    code, out = gate(write_metrics(tmp_path / "m", scores=(0.002, 0.2)), tmp_path, capsys)
    assert code == 1
    for clip in CLIPS:
        assert (f"BREACH video {clip} float32: max per-frame relative score difference "
                f"0.002 > 0.001 (thresholds.float32.max_score_rel_diff)") in out
        assert (f"BREACH video {clip} int8: max per-frame relative score difference "
                f"0.2 > 0.05") in out


def test_a_clip_without_metrics_is_a_breach(tmp_path, capsys):
    directory = write_metrics(tmp_path / "m")
    (directory / "videos" / "synthetic_low.json").unlink()
    code, out = gate(directory, tmp_path, capsys)
    assert code == 1 and "videos/synthetic_low.json: missing; run `make repro`" in out
