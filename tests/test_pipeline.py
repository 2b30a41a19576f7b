"""The DVC pipeline in a temporary copy of the project: only stale work reruns."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import torch
import yaml
from pipeline_helpers import (
    BIN,
    FAST_CLIP_SECONDS,
    FAST_SAMPLES,
    REPO,
    commit_all,
    copy_project,
    dvc,
    edit_params,
    ran_stages,
    run,
    start_repro,
    wait_for_process,
)

from uvq_tflite.core.registry import MODELS
from uvq_tflite.demo import demo_state_dict

pytestmark = pytest.mark.slow  # each test runs DVC; the module takes minutes


CLIPS = ("synthetic_high", "synthetic_low")
SCORE_VIDEOS = {f"score_video@{clip}" for clip in CLIPS}
CALIBRATION = {"calibration_clips", "calibration_frames", "calibration_features"}


def stages_of(model: str) -> set[str]:
    return {f"{stage}@{model}" for stage in ("demo_checkpoint", "import_checkpoint", "convert",
                                             "quantize", "quantize_full", "verify")}


def breaches(result) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("BREACH")]


def open_full_int8_target(line: str) -> bool:
    """The INT8 target not met yet (issue 9, README): full_int8 accuracy. The only breaches
    a fresh pipeline has; the sizes of both INT8 precisions are met since ca74aa7."""
    return "full_int8" in line and any(
        rule in line for rule in ("min_correlation", "max_score_rel_diff"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A project copy after one full `dvc repro`, committed with its dvc.lock and metrics."""
    root = copy_project(tmp_path_factory.mktemp("built"))
    def fast(params):
        params["verification"]["samples"] = FAST_SAMPLES
        params["clips"]["seconds"] = FAST_CLIP_SECONDS
        params["calibration"]["generated"]["stills"]["frames"] = 4
        params["calibration"]["frames_per_clip"] = 2
    edit_params(root, fast)
    traces = tmp_path_factory.mktemp("traces")
    result = dvc(root, "repro", trace_dir=traces)
    assert ran_stages(result) == (set().union(*map(stages_of, MODELS)) | SCORE_VIDEOS
                                  | {"clip@high", "clip@low"} | CALIBRATION)
    commit_all(root, "repro")
    reads = [json.loads(p.read_text()) for p in traces.glob("*.json")]
    (root.parent / "stage_reads.json").write_text(json.dumps(
        [r for r in reads if len(r["argv"]) > 0 and r["argv"][0].startswith("stages/")]))
    return root


def stage_reads(root) -> dict[str, set[str]]:
    """{stage command: project files its process imported or opened, relative}, from
    the traced `dvc repro` of `built`."""
    out: dict[str, set[str]] = {}
    for record in json.loads((root.parent / "stage_reads.json").read_text()):
        command = " ".join(["python", *record["argv"]])
        out[command] = {str(Path(f).relative_to(root)) for f in record["files"]
                        if Path(f).is_relative_to(root) and Path(f).is_file()
                        and "__pycache__" not in f}
    return out


def lock_outputs(lock: str) -> dict[str, str]:
    return {out["path"]: out["md5"] for stage in yaml.safe_load(lock)["stages"].values()
            for out in stage.get("outs", [])}


# Float inference on another CPU than the one that wrote dvc.lock computes these a few ulps
# apart; the full_int8 files calibrated on them should not change (README, "Another CPU").
FLOAT_INFERENCE_OUTPUTS = {"data/calibration/features.npz"}


def test_a_clean_clone_rebuilds_every_model_file_the_committed_lock_records(tmp_path):
    """`dvc repro` in a clean clone of HEAD, with the committed params and no DVC cache, as
    on a fresh machine (maybe another CPU than the one that wrote dvc.lock): every file it
    builds, the full_int8 files included, comes out byte for byte as HEAD's dvc.lock
    records it, so the committed metrics stand and no verify or score stage reruns. On
    another CPU a snapped range can still flip, by bad luck (README, "Another CPU")."""
    clone = tmp_path / "clone"
    run(REPO, "git", "clone", "-q", str(REPO), str(clone))
    committed = lock_outputs((clone / "dvc.lock").read_text())
    ran = ran_stages(dvc(clone, "repro", timeout=2400))
    rebuilt = lock_outputs((clone / "dvc.lock").read_text())
    differ = sorted(path for path in committed
                    if rebuilt.get(path) != committed[path] and path not in FLOAT_INFERENCE_OUTPUTS)
    assert differ == [], f"not the bytes HEAD's dvc.lock records: {differ}"
    assert not {stage for stage in ran if stage.startswith(("verify@", "score_video@"))}


@pytest.fixture
def project(built, tmp_path):
    dest = tmp_path / "project"
    shutil.copytree(built, dest, symlinks=True)
    return dest


def test_after_repro_nothing_is_stale_and_a_second_repro_runs_nothing(project):
    assert dvc(project, "status", "-q", check=False).returncode == 0
    assert ran_stages(dvc(project, "repro")) == set()
    for model in MODELS:
        metrics = json.loads((project / "metrics" / f"{model}.json").read_text())
        assert set(metrics) == {"samples", "float32", "int8", "full_int8"}
        assert metrics["float32"]["correlation"] > 0.9999
        assert metrics["full_int8"]["float_ops"] == {}  # integer-only
        layers = json.loads((project / "metrics/plots/layers" / f"{model}.json").read_text())
        assert len(layers) > 10 and all("snr_db" in row for row in layers)
    for clip in CLIPS:
        scores = json.loads((project / "metrics" / "videos" / f"{clip}.json").read_text())
        assert scores["frames"] == FAST_CLIP_SECONDS
        assert scores["float32"]["max_rel_diff"] < 1e-4  # the float chain is the reference's
        per_frame = json.loads((project / "metrics/plots/videos" / f"{clip}.json").read_text())
        assert [row["frame"] for row in per_frame] == list(range(FAST_CLIP_SECONDS))


def new_aggregation_checkpoint(root):
    """A user checkpoint, saved with a `model.` prefix as some trainers write them."""
    state = {f"model.{k}": v * 0.5 if v.is_floating_point() else v
             for k, v in demo_state_dict("aggregation").items()}
    path = root / "user" / "aggregation_net.pth"
    path.parent.mkdir()
    torch.save(state, path)
    return "user/aggregation_net.pth"


def test_changing_one_checkpoint_reruns_only_that_model(project):
    path = new_aggregation_checkpoint(project)
    edit_params(project, lambda p: p["checkpoints"].update(aggregation=path))
    ran = ran_stages(dvc(project, "repro"))
    assert ran == stages_of("aggregation") - {"demo_checkpoint@aggregation"} | SCORE_VIDEOS


def test_changing_quantization_reruns_int8_and_verify_never_float(project):
    edit_params(project, lambda p: p["quantization"].update(recipe="weight_only_wi8_afp32"))
    ran = ran_stages(dvc(project, "repro"))
    assert ran == {f"{s}@{m}" for s in ("quantize", "verify") for m in MODELS} | SCORE_VIDEOS


def test_changing_calibration_requantizes_only_full_int8(project):
    edit_params(project, lambda p: p["calibration"].update(seed=1))
    ran = ran_stages(dvc(project, "repro"))
    assert ran == ({"calibration_frames", "calibration_features"} | SCORE_VIDEOS
                   | {f"{s}@{m}" for s in ("quantize_full", "verify") for m in MODELS})


def test_changing_one_clip_setting_rescores_only_that_clip(project):
    edit_params(project, lambda p: p["clips"]["crf"].update(low=45))
    assert ran_stages(dvc(project, "repro")) == {"clip@low", "score_video@synthetic_low"}


def test_changing_thresholds_makes_nothing_stale(project):
    edit_params(project, lambda p: p["thresholds"]["int8"].update(min_correlation=0.5))
    assert dvc(project, "status", "-q", check=False).returncode == 0
    assert ran_stages(dvc(project, "repro")) == set()


def test_editing_the_backbone_reconverts_distortion_and_content_only(project):
    with open(project / "uvq_tflite/nets/backbone.py", "a") as f:
        f.write("\n# an edit\n")
    ran = ran_stages(dvc(project, "repro"))
    # the stages whose code it is; the float32 files come out the same, so no quantize
    # and no calibration_features follow, and aggregation's files stay as they were
    assert ran == {f"{stage}@{model}" for stage in ("demo_checkpoint", "convert",
                                                     "quantize_full", "verify")
                   for model in ("distortion", "content")} | SCORE_VIDEOS


def test_editing_aggregation_code_touches_only_aggregation(project):
    with open(project / "uvq_tflite/nets/aggregation.py", "a") as f:
        f.write("\n# an edit\n")
    ran = ran_stages(dvc(project, "repro"))
    assert "convert@aggregation" in ran
    assert all(stage.endswith("@aggregation") for stage in ran - SCORE_VIDEOS)


def test_checkout_of_an_earlier_commit_restores_from_the_run_cache(project):
    path = new_aggregation_checkpoint(project)
    edit_params(project, lambda p: p["checkpoints"].update(aggregation=path))
    dvc(project, "repro")
    commit_all(project, "user aggregation checkpoint")
    diff = dvc(project, "metrics", "diff", "HEAD~1", "--json").stdout
    assert "metrics/aggregation.json" in json.loads(diff)

    run(project, "git", "checkout", "-q", "HEAD~1")
    result = dvc(project, "repro")
    assert ran_stages(result) == set()
    assert "convert@aggregation" in result.stdout and "cached" in result.stdout
    assert dvc(project, "status", "-q", check=False).returncode == 0


def test_make_report_renders_every_plot(project):
    result = run(project, "make", "--no-print-directory", "report", f"VENV={BIN.parent}",
                 check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    html = (project / "report" / "index.html").read_text()
    plots = [next(iter(p)) for p in yaml.safe_load((project / "dvc.yaml").read_text())["plots"]]
    titles = [p for p in plots if not p.startswith("metrics/")]
    assert len(titles) == 6  # per network: its features, its full_int8 layers
    for title in titles:
        assert f"<figcaption>{title} " in html
    for clip in CLIPS:  # one per-frame plot per clip
        assert f"<figcaption>metrics/plots/videos/{clip}.json " in html
    assert html.count("<figure>") == len(titles) + len(CLIPS)  # nothing drawn twice
    assert "<script" not in html and "compared with HEAD~1" in result.stderr


def make_verify(root, *args):
    return run(root, "make", "--no-print-directory", "verify", f"VENV={BIN.parent}", *args,
               check=False)


def gate(root):
    """`uvq-tflite gate` itself: make turns any failing recipe into exit 2, so only the
    gate tells a breach (1) from bad input (2)."""
    return run(root, str(BIN / "uvq-tflite"), "gate", check=False)


def added_breaches(root, change) -> tuple[int, list[str]]:
    """The gate's exit code after `change(root)`, and the breaches it adds to those the
    copy had before (the open full_int8 targets)."""
    before = set(breaches(gate(root)))
    change(root)
    result = gate(root)
    assert not result.stderr.strip(), result.stderr  # a breach, never a bad-input line
    return result.returncode, [b for b in breaches(result) if b not in before]


def test_make_verify_breaches_only_the_open_full_int8_targets_on_a_fresh_pipeline(project):
    result = make_verify(project)
    assert result.returncode == 2, result.stdout + result.stderr  # make's, for the gate's 1
    found = breaches(result)
    assert found and all(map(open_full_int8_target, found)), found
    assert not any("constant" in line for line in found), found
    for model in MODELS:
        assert f"\n{model} " in result.stdout
    assert gate(project).returncode == 1


def test_make_verify_fails_on_a_model_edited_in_place_that_dvc_status_misses(project):
    def edit(root):
        path = root / "models/tflite/aggregation_net_int8.tflite"
        stat = path.stat()
        data = bytearray(path.read_bytes())
        data[-100] ^= 0xFF  # same size; mtime restored below
        path.write_bytes(bytes(data))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    code, added = added_breaches(project, edit)
    assert code == 1
    assert len(added) == 1 and added[0].startswith(
        "BREACH models/tflite/aggregation_net_int8.tflite: content differs from what "
        "quantize@aggregation wrote"), added


def test_make_verify_fails_on_a_rank_limit_below_the_graph(project):
    code, added = added_breaches(project, lambda root: edit_params(
        root, lambda p: p["thresholds"].update(max_rank=3)))
    assert code == 1
    assert any("distortion float32: max tensor rank 4 > 3 (thresholds.max_rank)" in line
               for line in added), added


def test_make_verify_fails_when_correlation_is_below_the_minimum(project):
    code, added = added_breaches(project, lambda root: edit_params(
        root, lambda p: p["thresholds"]["int8"].update(min_correlation=0.99999999)))
    assert code == 1
    assert {line.split(":")[0] for line in added} >= {
        f"BREACH {model} int8" for model in ("distortion", "content")}, added
    assert all("(thresholds.int8.min_correlation)" in line for line in added), added


def test_make_verify_fails_on_a_stale_pipeline(project):
    code, added = added_breaches(project, lambda root: edit_params(
        root, lambda p: p["quantization"].update(recipe="weight_only_wi8_afp32")))
    assert code == 1
    assert any("pipeline is stale" in line and "quantize@distortion" in line
               for line in added), added


def test_a_conversion_killed_part_way_fails_the_repro_and_the_next_one_rebuilds(project):
    # killed before its write (an atomic write killed mid-way: test_reliability)
    path = new_aggregation_checkpoint(project)
    edit_params(project, lambda p: p["checkpoints"].update(aggregation=path))
    repro = start_repro(project)
    victim = wait_for_process(project, "stages/convert.py aggregation")
    time.sleep(2)
    assert victim.is_running(), "the conversion ended before it could be killed"
    victim.kill()
    repro.communicate(timeout=300)
    assert repro.returncode != 0
    tflite = project / "models" / "tflite"
    assert not (tflite / "aggregation_net.tflite").exists()
    assert ran_stages(dvc(project, "repro")) >= {"convert@aggregation", "quantize@aggregation"}
    assert not list(tflite.glob(".*.tmp"))
    assert all(map(open_full_int8_target, breaches(make_verify(project))))


def test_a_second_concurrent_repro_is_refused_by_dvcs_lock(project):
    path = new_aggregation_checkpoint(project)
    edit_params(project, lambda p: p["checkpoints"].update(aggregation=path))
    first = start_repro(project)
    wait_for_process(project, "stages/import_checkpoint.py aggregation")
    second = dvc(project, "repro", check=False)
    first_output, _ = first.communicate(timeout=600)
    assert second.returncode != 0
    # DVC's per-path rwlock: "'<path>' is busy, it is being blocked by: (PID n): dvc repro"
    assert "is busy, it is being blocked by" in second.stderr
    assert first.returncode == 0, first_output[-2000:]
    assert dvc(project, "status", "-q", check=False).returncode == 0


# Read by a stage but tracked otherwise: params through `params:`, the stage's own outputs.
NOT_DEPS = ("params.yaml",)


def test_every_project_file_a_stage_reads_is_its_dep_and_every_dep_is_read(built):
    """dvc.yaml's deps against what each stage's process imported, opened or was handed on
    its command line, traced during `built`'s repro."""
    from dvc.repo import Repo

    reads = stage_reads(built)
    undeclared, unread = {}, {}
    with Repo(str(built)) as repo:
        for stage in repo.index.stages:
            files = reads.get(" ".join(stage.cmd.split()))
            assert files is not None, f"{stage.addressing}: no trace of `{stage.cmd}`"
            deps = {d.def_path for d in stage.deps}
            # command-line paths: files, and folders it lists as deps (PyAV opens clips
            # in C, unseen by the tracer); other folders it reads file by file
            files |= {arg for arg in stage.cmd.split()[1:]
                      if (built / arg).is_file() or (built / arg).is_dir() and arg in deps}
            outs = {o.def_path for o in stage.outs}

            def under(path, roots):
                return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)

            extra = sorted(f for f in files if not under(f, deps | outs) and f not in NOT_DEPS)
            idle = sorted(d for d in deps if not any(under(f, {d}) for f in files))
            if extra:
                undeclared[stage.addressing] = extra
            if idle:
                unread[stage.addressing] = idle
    assert not undeclared, f"read but not a dep: {undeclared}"
    assert not unread, f"a dep no process read: {unread}"


@pytest.mark.parametrize("group, tool, stale", [
    ("converter", "litert-torch", ("convert", "quantize_full", "verify")),
    ("quantizer", "ai-edge-quantizer", ("quantize", "quantize_full", "verify")),
    ("video", "av", ("clip", "calibration_clips", "calibration_frames", "score_video")),
])
def test_a_tool_upgrade_makes_stale_exactly_the_stages_that_use_it(project, group, tool, stale):
    path = project / "toolchain.yaml"
    recorded = yaml.safe_load(path.read_text())
    recorded[group][tool] = "99.0.0"  # what `uvq-tflite toolchain` writes after an upgrade
    path.write_text(yaml.safe_dump(recorded))
    status = json.loads(dvc(project, "status", "--json").stdout)
    assert {name.split("@")[0] for name in status} == set(stale)
    if group == "converter":  # every network reconverts
        assert {f"convert@{model}" for model in MODELS} <= set(status)


def test_a_teammate_pulls_what_was_pushed_and_reruns_nothing(project, tmp_path):
    remote = tmp_path / "remote"
    dvc(project, "remote", "modify", "--local", "local", "url", str(remote))  # the README's way
    # -o: the shared venv's install stays the repo's (a clone's newer pyproject would redo it)
    keep_venv = ("-o", str(BIN.parent / ".installed"), f"VENV={BIN.parent}")
    run(project, "make", "--no-print-directory", "push", *keep_venv)
    teammate = tmp_path / "teammate"
    run(tmp_path, "git", "clone", "-q", str(project), str(teammate))
    assert not (teammate / "models/tflite/content_net.tflite").exists()
    dvc(teammate, "remote", "modify", "--local", "local", "url", str(remote))
    run(teammate, "make", "--no-print-directory", "pull", *keep_venv)
    assert ran_stages(dvc(teammate, "repro")) == set()
    assert dvc(teammate, "status", "-q", check=False).returncode == 0
    for model in MODELS:
        for precision in ("", "_int8", "_full_int8"):
            name = f"models/tflite/{model}_net{precision}.tflite"
            assert (teammate / name).read_bytes() == (project / name).read_bytes(), name


def test_the_bench_times_a_teammate_who_pulls_and_reruns_nothing(project, tmp_path):
    from pipeline_helpers import ENV

    from uvq_tflite.bench import _bench_teammate

    result = _bench_teammate(project, tmp_path, {**ENV, "PYTHONPATH": str(project)})
    assert result["repro"]["stages_run"] == []
    assert result["seconds"] == pytest.approx(result["pull"]["seconds"]
                                              + result["repro"]["seconds"], abs=0.1)
