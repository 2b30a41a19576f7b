"""The generated default clips: deterministic bytes, real H.264 that the reader reads."""

from __future__ import annotations

import hashlib

import yaml
from conftest import REPO

from uvq_tflite import video
from uvq_tflite.clips import clip_bytes


def test_clips_match_the_hashes_dvc_lock_recorded():
    # dvc.lock was written by an earlier run (another process, maybe another machine):
    # equal bytes mean a clean clone does not rescore the clips.
    settings = yaml.safe_load((REPO / "params.yaml").read_text())["clips"]
    lock = yaml.safe_load((REPO / "dvc.lock").read_text())["stages"]
    for quality, crf in settings["crf"].items():
        recorded = lock[f"clip@{quality}"]["outs"][0]["md5"]
        assert hashlib.md5(clip_bytes(settings, crf)).hexdigest() == recorded


def test_a_clip_reads_as_its_settings_say(tmp_path):
    settings = {"seconds": 2, "fps": 10, "width": 96, "height": 64, "seed": 1}
    path = tmp_path / "clip.mp4"
    path.write_bytes(clip_bytes(settings, 30))
    info = video.probe(path)
    assert (info.width, info.height, info.video_length, info.orig_fps) == (96, 64, 2, 10)
    frames = list(video.ScoredFrames(info))
    assert len(frames) == 2 and frames[0].shape == (1080, 1920, 3)
    assert not (frames[0] == frames[1]).all()  # the scene moves


def test_a_higher_crf_gives_a_smaller_file():
    settings = {"seconds": 1, "fps": 10, "width": 96, "height": 64, "seed": 1}
    assert len(clip_bytes(settings, 45)) < len(clip_bytes(settings, 18))
