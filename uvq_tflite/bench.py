"""`make bench`: pipeline timings and memory, LiteRT latency float32 vs INT8 (whole
models and per op), and video scoring.

Not a DVC stage: measuring never makes the pipeline stale. Results go to
benchmarks/pipeline.json, latency.json, op_latency.json and video.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import yaml

from uvq_tflite.core.console import EXIT_OK, EXIT_USAGE, log
from uvq_tflite.core.files import write_json
from uvq_tflite.core.registry import MODELS, PRECISIONS, SCORE_PRECISIONS, network
from uvq_tflite.op_latency import ROUNDS, by_op_type, op_latency

OUT_DIR = Path("benchmarks")


class PeakMemory:
    """Peak of the summed RSS of a process tree, sampled every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.05):
        self.peak = 0
        self._root = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(interval,), daemon=True)

    def _sample(self, interval: float) -> None:
        while not self._stop.is_set():
            total = 0
            try:
                for proc in [self._root, *self._root.children(recursive=True)]:
                    try:
                        total += proc.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                break
            self.peak = max(self.peak, total)
            self._stop.wait(interval)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _timed(command: list[str], cwd: Path, env: dict | None = None) -> tuple[dict, str]:
    """Wall time and peak RSS of a command's process tree, and its output; exit on failure."""
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    with PeakMemory(proc.pid) as memory:
        output, _ = proc.communicate()
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed in {cwd}:\n{output[-3000:]}")
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(memory.peak / 1e6, 1)}, output


def _timed_repro(root: Path, env: dict, *flags: str) -> dict:
    result, output = _timed([sys.executable, "-m", "dvc", "repro", *flags], root, env)
    return {**result, "stages_run": sorted(set(re.findall(r"Running stage '([^']+)'", output)))}


def _bench_teammate(root: Path, tmp: Path, env: dict) -> dict:
    """What a teammate pays for the outputs `root` pushed: pull, then a repro that should
    run nothing (the README's make push / make pull, on a folder remote)."""
    remote = tmp / "remote"
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "remote", "modify", "--local", "local", "url", str(remote)],
                   cwd=root, env=env, check=True, capture_output=True)
    subprocess.run([*dvc, "push", "--run-cache"], cwd=root, env=env, check=True,
                   capture_output=True)
    clone = tmp / "teammate"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
    subprocess.run([*dvc, "remote", "modify", "--local", "local", "url", str(remote)],
                   cwd=clone, env=env, check=True, capture_output=True)
    clone_env = {**env, "PYTHONPATH": str(clone)}
    pull, _ = _timed([*dvc, "pull", "--run-cache"], clone, clone_env)
    repro = _timed_repro(clone, clone_env)
    return {"pull": pull, "repro": repro,
            "seconds": round(pull["seconds"] + repro["seconds"], 1)}


def uncommitted(repo: Path) -> bool:
    """Whether tracked files differ from HEAD, the bench's own outputs aside (the latency
    and video results are written before the pipeline is timed)."""
    return bool(subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
         f":(exclude){OUT_DIR}"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip())


def bench_pipeline(repo: Path) -> dict:
    """Full repro of a clean clone, a no-op repro, a forced repro of every stage and
    one-checkpoint changes, timed in one run."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    if uncommitted(repo):
        log("note: uncommitted changes are not benchmarked (a clean clone of HEAD is)")
    with tempfile.TemporaryDirectory(prefix="uvq-bench-") as tmp:
        root = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(repo), str(root)], check=True)
        env["PYTHONPATH"] = str(root)  # the clone's stages run the clone's code
        results = {}
        log("bench: full dvc repro of a clean clone ...")
        results["full"] = _timed_repro(root, env)
        log(f"bench: full {results['full']['seconds']} s; no-op repro ...")
        results["noop"] = _timed_repro(root, env)
        log("bench: a teammate's clone: dvc pull --run-cache, then dvc repro ...")
        results["teammate"] = _bench_teammate(root, Path(tmp), env)
        log("bench: forced repro of every stage ...")
        results["forced"] = _timed_repro(root, env, "--force")
        for model in ("aggregation", "distortion"):
            path = root / "user" / f"{model}_net.pth"
            path.parent.mkdir(exist_ok=True)
            shutil.copy(root / "models/demo" / f"{model}_net.pth", path)
            _perturb_checkpoint(path)
            params_path = root / "params.yaml"
            params = yaml.safe_load(params_path.read_text())
            params["checkpoints"][model] = str(path.relative_to(root))
            params_path.write_text(yaml.safe_dump(params, sort_keys=False))
            log(f"bench: one-checkpoint change ({model}) ...")
            results[f"change_{model}"] = _timed_repro(root, env)
    full = results["full"]["seconds"]
    results["teammate"]["fraction_of_full"] = round(results["teammate"]["seconds"] / full, 3)
    for key in ("change_aggregation", "change_distortion"):
        results[key]["fraction_of_full"] = round(results[key]["seconds"] / full, 3)
        results[key]["fraction_of_forced"] = round(
            results[key]["seconds"] / results["forced"]["seconds"], 3)
    return results


def _perturb_checkpoint(path: Path) -> None:
    import torch

    state = torch.load(path, weights_only=True)
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = state[first] * 1.01
    torch.save(state, path)


def bench_latency(tflite_dir: Path, threads: int, runs: int, warmup: int) -> dict:
    """Median latency of each .tflite, every precision measured side by side, interleaved.

    Only `invoke` is timed: quantizing a full-integer model's input is not inference.
    """
    from uvq_tflite.runtime import TFLiteRunner
    from uvq_tflite.tflite_file import read_tflite

    rng = np.random.default_rng(0)
    results = {}
    for model in MODELS:
        runners, sizes, inputs = {}, {}, None
        for precision in PRECISIONS:
            data = read_tflite(tflite_dir / network(model).tflite_name(precision))
            runners[precision] = runner = TFLiteRunner(data, num_threads=threads)
            sizes[precision] = len(data)
            inputs = inputs or [rng.uniform(-1, 1, d["shape"]).astype(np.float32)
                                for d in runner.inputs]
            runner.set_inputs(*inputs)
        times = {p: [] for p in PRECISIONS}
        for i in range(warmup + runs):
            for precision, runner in runners.items():  # interleaved: same conditions
                started = time.perf_counter()
                runner.invoke()
                if i >= warmup:
                    times[precision].append(time.perf_counter() - started)
        entry = {p: {"median_ms": round(1e3 * statistics.median(times[p]), 2),
                     "size_mb": round(sizes[p] / 1e6, 3)} for p in PRECISIONS}
        for p in PRECISIONS[1:]:
            entry[p]["speedup_vs_float32"] = round(
                entry["float32"]["median_ms"] / entry[p]["median_ms"], 3)
            entry[p]["size_vs_float32"] = round(sizes[p] / sizes["float32"], 3)
        results[model] = entry
        log(f"bench: {model}: " + ", ".join(f"{p} {entry[p]['median_ms']} ms"
                                            for p in PRECISIONS))
    return results


OP_SECONDS, OP_MIN_RUNS = 0.1, 5  # each op's timing: at least so long, so many invokes


def bench_op_latency(tflite_dir: Path, threads: int) -> dict:
    """Each model's latency per op and per op type, every precision (op_latency.py)."""
    from uvq_tflite.tflite_file import read_tflite

    results = {}
    for model in MODELS:
        log(f"bench: ops of {model}: each op alone, {', '.join(PRECISIONS)} ...")
        result = op_latency({p: read_tflite(tflite_dir / network(model).tflite_name(p))
                             for p in PRECISIONS}, threads, OP_SECONDS, OP_MIN_RUNS)
        results[model] = {"whole_ms": result["whole_ms"],
                          "sum_of_ops_ms": result["sum_of_ops_ms"],
                          "by_op_type": by_op_type(result), "ops": result["ops"]}
        log(f"bench: ops of {model}: sum of ops alone " + ", ".join(
            f"{p} {result['sum_of_ops_ms'][p]} ms" for p in PRECISIONS) + " (whole model "
            + ", ".join(f"{result['whole_ms'][p]}" for p in PRECISIONS) + ")")
    return results


LONG_CLIP = {"seconds": 600, "fps": 2, "width": 1920, "height": 1080, "seed": 0}
SCORED_CLIP = {"seconds": 10, "fps": 25, "width": 640, "height": 360, "seed": 0}
READ_ONLY = ("import sys; from uvq_tflite.video import ScoredFrames, probe; "
             "print(sum(1 for _ in ScoredFrames(probe(sys.argv[1]))))")


def bench_video(tflite_dir: Path, checkpoint_dir: Path) -> dict:
    """The reader on a 10-minute 1080p clip, then each precision scoring a 10 s clip,
    each in its own process: wall time and peak RSS."""
    from uvq_tflite.clips import clip_bytes

    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="uvq-bench-video-") as tmp:
        long_clip, scored = Path(tmp) / "long.mp4", Path(tmp) / "scored.mp4"
        log("bench: encoding a 10-minute 1080p clip ...")
        long_clip.write_bytes(clip_bytes(LONG_CLIP, 30, preset="ultrafast"))
        scored.write_bytes(clip_bytes(SCORED_CLIP, 30))
        read, output = _timed([sys.executable, "-c", READ_ONLY, str(long_clip)], Path.cwd())
        results["read_10_min_1080p"] = {**read, "frames": int(output.split()[-1]),
                                        "clip": LONG_CLIP}
        log(f"bench: reader {read}")
        results["score_10_s"] = {"clip": SCORED_CLIP}
        for precision in SCORE_PRECISIONS:
            run, _ = _timed([sys.executable, "-m", "uvq_tflite", "score", str(scored),
                             "--precision", precision, "--models-dir", str(tflite_dir),
                             "--checkpoint-dir", str(checkpoint_dir),
                             "--output", str(Path(tmp) / f"{precision}.json")], Path.cwd())
            run["seconds_per_video_second"] = round(run["seconds"] / SCORED_CLIP["seconds"], 3)
            results["score_10_s"][precision] = run
            log(f"bench: score {precision} {run}")
    return results


# Some of the x86 features LiteRT's kernels (XNNPACK, ruy) choose their code paths by.
ISA_FLAGS = ("sse4_1", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
             "avx512_vnni", "avx_vnni", "amx_int8")


def machine(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict:
    """What the numbers were measured on: another CPU gives other timings and float
    outputs (README, "Another CPU").
    The first CPU's model and feature flags; None where cpuinfo does not say (ARM lists
    `Features`, not `flags`, and often no model name)."""
    model, flags = None, None
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "model name" and model is None:
                model = value
            elif key == "flags" and flags is None:
                flags = set(value.split())
    return {"cpu_count": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "processor": platform.processor() or None,
            "cpu_model": model,
            "cpu_isa": None if flags is None else [f for f in ISA_FLAGS if f in flags]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m uvq_tflite.bench", description=__doc__)
    parser.add_argument("--only", choices=("pipeline", "latency", "ops", "video"))
    parser.add_argument("--threads", type=int, default=2, help="LiteRT interpreter threads")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--tflite-dir", default="models/tflite")
    args = parser.parse_args(argv)
    OUT_DIR.mkdir(exist_ok=True)
    if args.only in (None, "latency", "ops") and not all(
            (Path(args.tflite_dir) / network(m).tflite_name(p)).is_file()
            for m in MODELS for p in PRECISIONS):
        log(f"no models in {args.tflite_dir}: run `make repro` first")
        return EXIT_USAGE
    if args.only in (None, "latency"):
        latency = {"machine": machine(), "threads": args.threads, "runs": args.runs,
                   "models": bench_latency(Path(args.tflite_dir), args.threads, args.runs,
                                           args.warmup)}
        write_json(OUT_DIR / "latency.json", latency)
    if args.only in (None, "ops"):
        write_json(OUT_DIR / "op_latency.json", {
            "machine": machine(), "threads": args.threads, "seconds_per_op": OP_SECONDS,
            "min_runs": OP_MIN_RUNS, "rounds": ROUNDS,
            "models": bench_op_latency(Path(args.tflite_dir), args.threads)})
    if args.only in (None, "video"):
        write_json(OUT_DIR / "video.json", {"machine": machine(), **bench_video(
            Path(args.tflite_dir), Path("models/checkpoints"))})
    if args.only in (None, "pipeline"):
        pipeline = {"machine": machine(), **bench_pipeline(Path.cwd())}
        write_json(OUT_DIR / "pipeline.json", pipeline)
    log(f"bench: wrote {OUT_DIR}/")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
