"""params.yaml is validated before any work, one message per problem."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from conftest import REPO, VIDEOS

from uvq_tflite.core.params import ParamsError, load_params


def write_params(tmp_path, change=None):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    if change:
        change(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def problems(tmp_path, change) -> list[str]:
    with pytest.raises(ParamsError) as info:
        load_params(write_params(tmp_path, change))
    return str(info.value).splitlines()


def test_the_committed_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert set(params) == {"checkpoints", "models", "quantization", "full_int8", "calibration",
                           "verification", "clips", "videos", "scoring", "thresholds"}


@pytest.mark.parametrize("change, message", [
    (lambda p: p["models"].update(bogus={"inputs": [[1]]}),
     "models.bogus: unknown key; valid: distortion, content, aggregation"),
    (lambda p: p["models"]["content"].update(inputs=[[1, 224, 224, 3]]),
     "models.content.inputs: [[1, 224, 224, 3]] is not an input of the content network; "
     "expected [[1, 256, 256, 3]]"),
    (lambda p: p["models"]["distortion"].update(inputs=[[8, 360, 640, 3]]),
     "models.distortion.inputs: [[8, 360, 640, 3]] is not an input"),
    (lambda p: p["thresholds"]["int8"].update(min_correlation=1.5),
     "thresholds.int8.min_correlation: 1.5 is invalid; expected a number from -1 to 1"),
    (lambda p: p["thresholds"].update(max_rank=0),
     "thresholds.max_rank: 0 is invalid; expected an integer from 1 to 8"),
    (lambda p: p["thresholds"].update(forbidden_ops=["GATHERND"]),
     "thresholds.forbidden_ops: 'GATHERND' is not a TFLite builtin operator"),
    (lambda p: p["thresholds"].update(forbidden_ops=["gather"]),
     "thresholds.forbidden_ops: 'gather' is not a TFLite builtin operator "
     "(TFLite calls it GATHER)"),
    (lambda p: p["verification"]["samples"].update(content=-3),
     "verification.samples.content: -3 is invalid; expected an integer from 1 to 10000"),
    (lambda p: p["quantization"].update(recipe="int4"),
     "quantization.recipe: 'int4' is invalid; expected one of dynamic_wi8_afp32, "
     "weight_only_wi8_afp32"),
    (lambda p: p["checkpoints"].update(content="nowhere/content_net.pth"),
     "checkpoints.content: nowhere/content_net.pth does not exist"),
    (lambda p: p.pop("thresholds"), "params.yaml: thresholds: missing"),
    (lambda p: p.update(treshholds={}), "params.yaml: treshholds: unknown key; valid: "),
    (lambda p: p["quantization"].update(weight_only_ops=["DEPTHWISE"]),
     "quantization.weight_only_ops: 'DEPTHWISE' is not a TFLite builtin operator"),
    (lambda p: p["quantization"].update(weight_only_ops=["CONV_2D_TRANSPOSE"]),
     "quantization.weight_only_ops: 'CONV_2D_TRANSPOSE' is not a TFLite builtin operator "
     "(TFLite calls it TRANSPOSE_CONV)"),
    (lambda p: p["quantization"].update(weight_only_ops=None),
     "quantization.weight_only_ops: expected a list of TFLite builtin operator names"),
    (lambda p: p["quantization"].update(weight_only_ops=["DEPTHWISE_CONV_2D", "SUB"]),
     "quantization.weight_only_ops: ai-edge-quantizer has no INT8 weight-only config for SUB "
     "(uvq-tflite adds MUL and ADD only)"),
    (lambda p: p["full_int8"].update(estimator="kl"),
     "full_int8.estimator: 'kl' is invalid; expected one of minmax, percentile, mse"),
    (lambda p: p["calibration"].update(clips="nowhere"),
     "calibration.clips: nowhere is not a directory"),
    (lambda p: p["calibration"].update(frames_per_clip=0),
     "calibration.frames_per_clip: 0 is invalid; expected an integer from 1 to 256"),
    (lambda p: p["calibration"]["generated"]["stills"].update(crf=99),
     "calibration.generated.stills.crf: 99 is invalid; expected an integer from 0 to 51"),
    (lambda p: p["scoring"].update(fps=0),
     "scoring.fps: 0 is invalid; expected an integer from 1 to 60"),
    (lambda p: p["scoring"].update(transpose="yes"),
     "scoring.transpose: 'yes' is invalid; expected one of auto, on, off"),
    (lambda p: p["videos"].update(mine="clips/mine.mp4"),
     "videos.mine: clips/mine.mp4 does not exist"),
    (lambda p: p["clips"].update(width=641),
     "clips.width: 641 is odd; H.264 (yuv420p) needs even sizes"),
    (lambda p: p["clips"]["crf"].update(low=52),
     "clips.crf.low: 52 is invalid; expected an integer from 0 to 51"),
    (lambda p: p["thresholds"]["float32"].update(max_score_rel_diff=-0.1),
     "thresholds.float32.max_score_rel_diff: -0.1 is invalid; expected a number from 0 to 10"),
    (lambda p: p["thresholds"]["full_int8"].pop("max_size_vs_float32"),
     "thresholds.full_int8.max_size_vs_float32: missing"),
    (lambda p: p["thresholds"]["float32"].update(max_size_vs_float32=1),
     "thresholds.float32.max_size_vs_float32: unknown key"),
])
def test_each_problem_is_named(tmp_path, change, message):
    found = problems(tmp_path, change)
    assert len(found) == 1, found
    assert message in found[0]


def test_a_calibration_folder_without_clips_is_named(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / ".notes").write_text("hidden")
    found = problems(tmp_path, lambda p: p["calibration"].update(clips="mine"))
    assert found == [f"{tmp_path / 'params.yaml'}: calibration.clips: mine holds no clips "
                     f"(hidden files do not count)"]


def test_all_problems_are_listed_at_once(tmp_path):
    def break_three(p):
        p["thresholds"]["max_rank"] = "four"
        p["verification"]["seed"] = -1
        p["models"]["aggregation"]["inputs"] = [[1, 8, 8, 128]]
    assert len(problems(tmp_path, break_three)) == 3


def test_demo_checkpoint_paths_may_not_exist_yet(tmp_path):
    assert load_params(write_params(tmp_path))  # models/demo/* are written by the pipeline


def test_check_params_cli_exits_2_with_one_line_per_problem(tmp_path):
    def break_two(p):
        p["thresholds"]["max_rank"] = 0
        p["quantization"]["recipe"] = "x"
    path = write_params(tmp_path, break_two)
    result = subprocess.run([sys.executable, "-m", "uvq_tflite", "check-params", "--params",
                             str(path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 2
    assert "Traceback" not in result.stderr


def test_check_params_probes_the_clips_it_names(tmp_path):
    # what the calibration_frames and score stages would refuse, said before DVC runs
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not a video")
    (tmp_path / "mine" / "carphone.mp4").symlink_to(VIDEOS / "carphone_pristine.mp4")
    (tmp_path / "broken.mp4").write_bytes(b"\0" * 64)

    def point_at_mine(p):
        p["calibration"].update(clips="mine", frames_per_clip=21)  # carphone: 20 at 4 fps
        p["videos"]["synthetic_high"] = "broken.mp4"
    path = write_params(tmp_path, point_at_mine)
    result = subprocess.run([sys.executable, "-m", "uvq_tflite", "check-params", "--params",
                             str(path)], capture_output=True, text=True)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 3, result.stderr
    mine = tmp_path / "mine"
    assert f"calibration.clips: {mine / 'carphone.mp4'}: at most 20 frames at 4 fps (5 s), " \
           f"fewer than the 21 frames_per_clip" in lines[0]
    assert f"calibration.clips: {mine / 'notes.txt'}: not a readable video" in lines[1]
    assert f"videos.synthetic_high: {tmp_path / 'broken.mp4'}: not a readable video" in lines[2]
    path = write_params(tmp_path, lambda p: p["calibration"].update(clips="mine",
                                                                   frames_per_clip=20))
    (tmp_path / "mine" / "notes.txt").unlink()
    result = subprocess.run([sys.executable, "-m", "uvq_tflite", "check-params", "--params",
                             str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("section, key, low, high, option, command", [
    ("full_int8", "percentile", 50, 100, "--percentile", ["convert"]),
    ("calibration", "fps", 1, 60, "--calibration-fps", ["convert"]),
    ("calibration", "frames_per_clip", 1, 256, "--frames-per-clip", ["convert"]),
    ("scoring", "fps", 1, 60, "--fps", ["score", "clip.mp4"]),
    ("scoring", "threads", 1, 64, "--threads", ["score", "clip.mp4"]),
    ("thresholds", "max_rank", 1, 8, "--max-rank", ["inspect", "m.tflite"]),
])
def test_params_and_the_same_option_take_the_same_range(tmp_path, monkeypatch, capsys, section,
                                                        key, low, high, option, command):
    """The other half of test_checkpoints' options test: both ends, both places."""
    from uvq_tflite.cli import main

    step = 0.5 if key == "percentile" else 1  # the one setting that takes fractions
    monkeypatch.chdir(tmp_path)  # accepted values then stop at the missing input files
    for value, valid in ((low - step, False), (low, True), (high, True), (high + step, False)):
        def change(p, value=value):
            p[section][key] = value
        if valid:
            load_params(write_params(tmp_path, change))
        else:
            found = problems(tmp_path, change)
            assert len(found) == 1 and f"{section}.{key}: " in found[0], found
        try:
            main([*command, option, str(value)])
        except SystemExit as exit_:
            assert exit_.code == 2
        refused = f"{option}: '{value}' is invalid" in capsys.readouterr().err
        assert refused is not valid, (option, value)
