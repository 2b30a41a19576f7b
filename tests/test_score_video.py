"""`uvq-tflite score` and `score_video`: real clips scored as the reference UVQ 1.5 scores them."""

from __future__ import annotations

import json

import av
import pytest
from clip_factory import write_audio_only, write_clip
from conftest import VIDEOS

from uvq_tflite import score_video
from uvq_tflite.cli import main
from uvq_tflite.metrics import pearson

REAL_CLIPS = ("carphone_pristine.mp4", "carphone_distorted.mp4")


@pytest.fixture(scope="module")
def reference():
    return json.loads((VIDEOS / "expected_seed7.json").read_text())["clips"]


@pytest.fixture(scope="module")
def real_scores(parity_models):
    checkpoints, tflite = parity_models
    return score_video([str(VIDEOS / c) for c in REAL_CLIPS], "pytorch,float32,int8",
                       checkpoints, tflite)


def max_rel(actual, expected):
    return max(abs(a - e) / abs(e) for a, e in zip(actual, expected, strict=True))


@pytest.mark.parametrize("clip", REAL_CLIPS)
@pytest.mark.parametrize(("precision", "bound"), [("pytorch", 1e-4), ("float32", 1e-3)])
def test_per_frame_scores_match_the_reference_implementation(real_scores, reference, clip,
                                                             precision, bound):
    ours, theirs = real_scores[str(VIDEOS / clip)][precision], reference[clip]
    assert ours["frame_indices"] == theirs["frame_indices"]
    assert max_rel(ours["per_frame_scores"], theirs["per_frame_scores"]) <= bound
    assert ours["uvq1p5_score"] == pytest.approx(theirs["uvq1p5_score"], rel=bound)


@pytest.mark.parametrize("clip", REAL_CLIPS)
def test_int8_scores_stay_near_the_reference_frame_by_frame(real_scores, reference, clip):
    """Within the gate's 5 % (thresholds.int8), which a model answering UVQ's floor of 1 for
    every frame would meet on these clips: so also well closer than that model."""
    ours = real_scores[str(VIDEOS / clip)]["int8"]["per_frame_scores"]
    theirs = reference[clip]["per_frame_scores"]
    assert max_rel(ours, theirs) <= 0.05
    assert max_rel(ours, theirs) < max_rel([1.0] * len(theirs), theirs) / 1.5


def test_int8_follows_the_reference_from_frame_to_frame_within_the_clips(real_scores,
                                                                         reference):
    """Pearson correlation of each frame's difference from its clip's mean score, both clips'
    ten frames together: a model that only told the clips apart gets none. One clip alone is
    too little: carphone_distorted's five reference scores span 0.55 %, the size of int8's
    own error, and LiteRT's output for the same file differs between CPUs, so int8's
    correlation there does too (README, "Scoring video": 0.805 on one machine, 0.134 on
    another; these pooled deviations 0.798 on the second)."""
    ours, theirs = [], []
    for clip in REAL_CLIPS:
        for pooled, scores in ((ours, real_scores[str(VIDEOS / clip)]["int8"]),
                               (theirs, reference[clip])):
            frames = scores["per_frame_scores"]
            pooled += [score - sum(frames) / len(frames) for score in frames]
    correlation = pearson(ours, theirs)
    assert correlation is not None and correlation >= 0.7


def test_result_keeps_uvqs_keys_and_compares_with_pytorch(real_scores):
    clip = real_scores[str(VIDEOS / REAL_CLIPS[0])]
    assert (clip["video_length"], clip["fps"], clip["orig_fps"], clip["transpose"]) == (
        5, 1, 30, False)
    assert set(clip["pytorch"]) == {"uvq1p5_score", "per_frame_scores", "frame_indices"}
    versus = clip["int8"]["vs_pytorch"]
    assert set(versus) == {"max_abs_diff", "max_rel_diff", "video_score_diff",
                           "frame_correlation"}
    worst = max_rel(clip["int8"]["per_frame_scores"], clip["pytorch"]["per_frame_scores"])
    assert versus["max_rel_diff"] == pytest.approx(worst)


@pytest.fixture(scope="module")
def one_second_clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", rate=25, count=25)


def score_cli(parity_models, *args):
    checkpoints, tflite = parity_models
    return main(["score", *args, "--checkpoint-dir", str(checkpoints),
                 "--models-dir", str(tflite)])


def test_cli_prints_a_table_per_clip(parity_models, one_second_clip, capsys):
    assert score_cli(parity_models, str(one_second_clip)) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{one_second_clip}: 1 frames (1 s at 1 fps)")
    for precision in ("pytorch", "float32", "int8"):
        assert f"\n  {precision} " in out


def test_full_int8_reports_what_its_int8_inputs_and_outputs_clip(parity_models,
                                                                 one_second_clip, capsys):
    assert score_cli(parity_models, str(one_second_clip), "--precision",
                     "float32,full_int8") == 0
    assert "\n  full_int8 values clipped at INT8 inputs/outputs: distortion " in (
        capsys.readouterr().out)
    checkpoints, tflite = parity_models
    clip = score_video(str(one_second_clip), "float32,full_int8", checkpoints,
                       tflite)[str(one_second_clip)]
    assert set(clip["full_int8"]["clipped"]) == {"distortion", "content", "aggregation"}
    assert all(0 <= share <= 1 for share in clip["full_int8"]["clipped"].values())
    assert "clipped" not in clip["float32"]


def test_cli_writes_json_keyed_by_the_path_as_given(parity_models, one_second_clip, tmp_path,
                                                    capsys, monkeypatch):
    monkeypatch.chdir(one_second_clip.parent)
    output = tmp_path / "scores.json"
    assert score_cli(parity_models, "./clip.mp4", "--precision", "float32",
                     "--output", str(output)) == 0
    assert capsys.readouterr().out == ""
    result = json.loads(output.read_text())
    assert list(result) == ["./clip.mp4"]
    assert set(result["./clip.mp4"]["float32"]) == {
        "uvq1p5_score", "per_frame_scores", "frame_indices"}


def bad_inputs(directory):
    """Each kind of unusable input, with the words its error line must contain."""
    directory.mkdir()
    text = directory / "notes.mp4"
    text.write_text("this is not a video\n")
    (directory / "empty.mp4").write_bytes(b"")
    whole = write_clip(directory / "whole.mp4", count=50).read_bytes()
    (directory / "cut.mp4").write_bytes(whole[: len(whole) // 2])
    return {
        directory / "missing.mp4": "no such file",
        directory: "is a directory",
        directory / "empty.mp4": "empty file",
        text: "not a readable video",
        directory / "cut.mp4": "not a readable video",
        write_audio_only(directory / "sound.m4a"): "has no video stream (audio only)",
    }


def test_each_bad_input_gets_one_line_and_good_clips_are_still_scored(
        parity_models, one_second_clip, tmp_path, capsys):
    bad = bad_inputs(tmp_path / "bad")
    output = tmp_path / "scores.json"
    code = score_cli(parity_models, *map(str, bad), str(one_second_clip),
                     "--precision", "pytorch", "--output", str(output))
    assert code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == len(bad)
    for (path, words), line in zip(bad.items(), errors):
        assert line.startswith(f"uvq-tflite: error: {path}: ") and words in line
    assert list(json.loads(output.read_text())) == [str(one_second_clip)]


def test_an_unreadable_file_is_reported(one_second_clip, monkeypatch, capsys, parity_models):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(av, "open", refuse)  # root reads anything: simulate the denial
    assert score_cli(parity_models, str(one_second_clip)) == 2
    assert capsys.readouterr().err.strip() == (
        f"uvq-tflite: error: {one_second_clip}: cannot read it (permission denied)")


def test_missing_models_are_named_and_nothing_is_written(one_second_clip, tmp_path, capsys):
    output = tmp_path / "scores.json"
    code = main(["score", str(one_second_clip), "--precision", "float32,int8",
                 "--models-dir", str(tmp_path / "none"), "--output", str(output)])
    assert code == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 6  # three networks, two precisions
    assert all("no such file" in line for line in errors)
    assert not output.exists()


@pytest.mark.parametrize("precision, message", [
    ("float16", "unknown precision float16; valid: pytorch, float32, int8, full_int8 "
                "(a comma list) or all alone"),
    ("all,int8", "precision list 'all,int8': all means every precision, so it stands alone"),
    ("float32,,", "precision list 'float32,,' has an empty name"),
    ("", "precision list '' has an empty name"),
])
def test_unknown_precision_is_a_usage_error(one_second_clip, capsys, precision, message):
    assert main(["score", str(one_second_clip), "--precision", precision]) == 2
    assert message in capsys.readouterr().err


@pytest.fixture(scope="module")
def full_int8_scores(parity_models, tmp_path_factory):
    """The parity networks' full_int8 files, calibrated as `convert` does on the pipeline's
    default calibration clips (none of them the scored clips), scoring the real clips."""
    import yaml
    from conftest import REPO

    from uvq_tflite.clips import clip_bytes, stills_clip_bytes

    tmp_path = tmp_path_factory.mktemp("full_int8")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    generated = params["calibration"]["generated"]
    scene, stills = tmp_path / "scene.mp4", tmp_path / "stills.mp4"
    scene.write_bytes(clip_bytes({**params["clips"], "seed": generated["scene"]["seed"]},
                                 generated["scene"]["crf"]))
    stills.write_bytes(stills_clip_bytes(generated["stills"]))
    checkpoints, _ = parity_models
    out = tmp_path / "tflite"
    assert main(["convert", "--model", "all", "--precision", "full_int8", "--checkpoint-dir",
                 str(checkpoints), "--output-dir", str(out), "--calibration-videos", str(scene),
                 str(stills)]) == 0
    return score_video([str(VIDEOS / c) for c in REAL_CLIPS], "full_int8", checkpoints, out)


@pytest.mark.slow
@pytest.mark.parametrize("clip", REAL_CLIPS)
def test_full_int8_calibrated_on_held_out_clips_scores_the_real_clips_within_3_percent(
        full_int8_scores, reference, clip):
    """Issue 9's measure: per-frame scores on real clips, against the reference
    implementation's own. Its limit: these reference scores all lie within 1.5 % of UVQ's
    floor of 1, less than one step of the INT8 score output, so it bounds drift but cannot
    show that full_int8 ranks frames (the test below)."""
    result = full_int8_scores[str(VIDEOS / clip)]["full_int8"]
    assert max_rel(result["per_frame_scores"], reference[clip]["per_frame_scores"]) <= 0.03
    # These clips drive the content features past the calibrated range (README).
    assert result["clipped"]["content"] > 0.005


@pytest.mark.slow
@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="open (issue 9): full_int8 gives one score for every frame near "
                          "UVQ's floor; README, 'Where it stands'")
@pytest.mark.parametrize("clip", REAL_CLIPS)
def test_full_int8_ranks_the_frames_as_the_reference_does(full_int8_scores, reference, clip):
    ours = full_int8_scores[str(VIDEOS / clip)]["full_int8"]["per_frame_scores"]
    correlation = pearson(ours, reference[clip]["per_frame_scores"])
    assert correlation is not None and correlation >= 0.7


def test_frame_correlation_tells_ranking_frames_from_staying_close():
    from uvq_tflite.metrics import format_correlation, pearson

    reference = [1.001, 1.004, 1.012, 1.002]
    stuck = [0.9976] * 4  # within 1.4 % of every frame, yet ranks nothing
    assert pearson(stuck, reference) is None and format_correlation(None) == "constant"
    assert pearson([1.0, 1.003, 1.011, 1.001], reference) > 0.99
    assert pearson([1.012, 1.002, 1.001, 1.004], reference) < 0
    assert pearson([1.0], [1.0]) is None


def test_a_short_decode_is_scored_padded_and_says_so(parity_models, tmp_path, capsys):
    # 4 frames at 0.5 fps last 8 s: UVQ scores 8 frames, ffmpeg writes 7, the 8th is zeros
    from fractions import Fraction

    clip = write_clip(tmp_path / "slow.mp4", rate=Fraction(1, 2), count=4)
    checkpoints, tflite = parity_models
    result = score_video(str(clip), "float32", checkpoints, tflite)[str(clip)]
    assert result["padding_frames"] == 1 and len(result["float32"]["per_frame_scores"]) == 8
    assert score_cli(parity_models, str(clip), "--precision", "float32") == 0
    assert capsys.readouterr().out.startswith(
        f"{clip}: 8 frames (8 s at 1 fps; 1 of them zeros padding a short decode, as in UVQ)")


def test_a_clip_named_twice_is_scored_once(parity_models, one_second_clip, capsys):
    again = f"{one_second_clip.parent}/./{one_second_clip.name}"
    assert score_cli(parity_models, str(one_second_clip), again, str(one_second_clip),
                     "--precision", "float32") == 0
    captured = capsys.readouterr()
    assert captured.out.count(f"{one_second_clip}: 1 frames") == 1
    assert captured.err.count(f"{one_second_clip}: 1/1 frames") == 1, captured.err


def test_a_tflite_file_from_another_checkpoint_is_named(parity_models, one_second_clip,
                                                        tmp_path, capsys):
    """The files' metadata records the checkpoint they came from (describe.py): scoring
    them against another checkpoint warns, naming each such file."""
    import shutil

    from uvq_tflite.core.registry import network
    from uvq_tflite.describe import described, sha256_of

    checkpoints, tflite = parity_models
    models = tmp_path / "tflite"
    shutil.copytree(tflite, models)
    actual = sha256_of(checkpoints / "aggregation_net.pth")
    for model, recorded in (("content", sha256_of(checkpoints / "content_net.pth")),
                            ("aggregation", "0" * 64)):
        path = models / network(model).tflite_name("float32")
        path.write_bytes(described(path.read_bytes(), model, "float32", recorded))
    assert main(["score", str(one_second_clip), "--precision", "pytorch,float32",
                 "--checkpoint-dir", str(checkpoints), "--models-dir", str(models)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines()
                if line.startswith("warning:")]
    assert warnings == [
        f"warning: {models / 'aggregation_net.tflite'} was converted from another checkpoint "
        f"than {checkpoints / 'aggregation_net.pth'} (sha256 000000000000..., not "
        f"{actual[:12]}...); its scores do not compare with pytorch's"]
