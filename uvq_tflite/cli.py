"""`uvq-tflite` command line. Exit codes: 0 success, 1 verification breach, 2 bad input."""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

from uvq_tflite.core.console import EXIT_BREACH, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, log
from uvq_tflite.core.errors import UserInputError
from uvq_tflite.core.registry import MODELS, PRECISIONS, SCORE_PRECISIONS, network
from uvq_tflite.video import TRANSPOSE_MODES, probe


def _choices(value: str, valid: tuple[str, ...]) -> tuple[str, ...]:
    return valid if value == "all" else (value,)


def _checkpoint_paths(args: argparse.Namespace, models: tuple[str, ...]) -> dict[str, Path]:
    if args.checkpoint is not None:
        if len(models) != 1:
            raise UserInputError("--checkpoint goes with a single --model; "
                                 "use --checkpoint-dir for --model all")
        return {models[0]: Path(args.checkpoint)}
    return {m: Path(args.checkpoint_dir) / f"{m}_net.pth" for m in models}


def _report(path: Path, started: float, float_model: bytes | None = None) -> None:
    """Log a written file's size (against `float_model`, the file it was quantized from)."""
    from uvq_tflite.quantize import size_summary

    size = path.stat().st_size
    size_text = (size_summary(size, len(float_model)) if float_model is not None
                 else f"{size / 1e6:.2f} MB")
    log(f"wrote {path}  {size_text}  {time.monotonic() - started:.1f} s")


def _calibration_frames(args: argparse.Namespace):
    """Decoded calibration frames for full_int8, read and checked before any conversion."""
    from uvq_tflite.calibration_set import sample_frames

    log(f"reading calibration frames from {len(args.calibration_videos)} clip(s)")
    return sample_frames(args.calibration_videos, args.calibration_fps, args.frames_per_clip,
                         seed=0)


def cmd_convert(args: argparse.Namespace) -> int:
    from uvq_tflite import calibration_set
    from uvq_tflite.checkpoints import load_network
    from uvq_tflite.core.errors import CheckpointError
    from uvq_tflite.core.files import check_writable_dir, check_writable_file, write_atomic
    from uvq_tflite.core.params import memory_problem
    from uvq_tflite.describe import sha256_of
    from uvq_tflite.export import export_float32
    from uvq_tflite.full_int8 import calibrated
    from uvq_tflite.quantize import quantize_int8

    models = _choices(args.model, MODELS)
    precisions = _choices(args.precision, PRECISIONS)
    full = "full_int8" in precisions
    if full and not args.calibration_videos:
        raise UserInputError("--precision full_int8 (and all) needs --calibration-videos CLIP...")
    # full_int8 AggregationNet is calibrated on the float32 backbones' feature maps
    needed = MODELS if full and "aggregation" in models else models
    if needed != models and args.checkpoint is not None:
        raise UserInputError("full_int8 AggregationNet is calibrated on the backbones' feature "
                             "maps: give --checkpoint-dir holding all three checkpoints")
    for m in models:
        if too_large := memory_problem(m, args.frames):
            raise UserInputError(f"--frames {args.frames}: {m}: {too_large}")
    paths = _checkpoint_paths(args, needed)
    out_dir = Path(args.output_dir)
    check_writable_dir(out_dir)  # before minutes of conversion
    for model, precision in itertools.product(models, precisions):
        check_writable_file(out_dir / network(model).tflite_name(precision))
    nets, problems = {}, []
    for m, p in paths.items():  # validate all before writing, and name every bad one
        try:
            nets[m] = load_network(m, p)
        except CheckpointError as exc:
            problems.append(str(exc))
    if problems:
        raise UserInputError("\n".join(problems))

    frames = _calibration_frames(args) if full else None
    float_models: dict[str, bytes] = {}
    for model, net in nets.items():
        started = time.monotonic()
        log(f"{model}: converting {paths[model]} to float32 ({args.frames} frame(s) per call)")
        float_models[model] = float_model = export_float32(model, net, args.frames,
                                                           sha256_of(paths[model]))
        if model not in models:
            continue
        if "float32" in precisions:
            dest = out_dir / network(model).tflite_name("float32")
            write_atomic(dest, float_model)
            _report(dest, started)
        if "int8" in precisions:
            started = time.monotonic()
            log(f"{model}: quantizing to int8 ({args.recipe})")
            dest = out_dir / network(model).tflite_name("int8")
            write_atomic(dest, quantize_int8(float_model, args.recipe, args.weight_only_ops))
            _report(dest, started, float_model)
        if frames is not None:
            started = time.monotonic()
            log(f"{model}: quantizing to full_int8 ({args.estimator} ranges, "
                f"{len(frames)} calibration frames)")
            data = ({"frames": frames} if model != "aggregation" else
                    calibration_set.backbone_features(frames, float_models))
            dest = out_dir / network(model).tflite_name("full_int8")
            write_atomic(dest, calibrated(
                model, float_model, net, lambda: calibration_set.model_samples(model, data),
                args.estimator, args.percentile, io=args.io))
            _report(dest, started, float_model)
    return EXIT_OK


def cmd_quantize(args: argparse.Namespace) -> int:
    from uvq_tflite.core.files import check_writable_file, write_atomic
    from uvq_tflite.quantize import quantize_int8
    from uvq_tflite.tflite_file import inspect_bytes, read_tflite

    started = time.monotonic()
    float_model = read_tflite(args.input)
    if quantized := sum(inspect_bytes(float_model, args.input).quantized.values()):
        raise UserInputError(f"{args.input}: not a float32 model ({quantized} quantized "
                             f"tensors); quantize takes the float32 .tflite")
    check_writable_file(args.output, [args.input])
    log(f"quantizing {args.input} ({args.recipe})")
    write_atomic(args.output, quantize_int8(float_model, args.recipe, args.weight_only_ops))
    _report(Path(args.output), started, float_model)
    return EXIT_OK


def cmd_check_params(args: argparse.Namespace) -> int:
    from uvq_tflite.core.params import ParamsError, load_params

    params = load_params(args.params)
    if problems := _unreadable_clips(params, Path(args.params).parent):
        raise ParamsError("\n".join(f"{args.params}: {p}" for p in problems))
    log(f"{args.params}: ok")
    return EXIT_OK


def _unreadable_clips(params: dict, root: Path) -> list[str]:
    """The clips params names that exist but that a stage would refuse (the generated
    ones do not exist yet): calibration clips and the scored videos, probed, not decoded."""
    from uvq_tflite.calibration_set import clip_problems
    from uvq_tflite.core.params import GENERATED_CALIBRATION_CLIPS

    calibration, scoring = params["calibration"], params["scoring"]
    problems = []
    if Path(calibration["clips"]) != GENERATED_CALIBRATION_CLIPS:
        problems += [f"calibration.clips: {line}" for line in clip_problems(
            root / calibration["clips"], calibration["fps"], calibration["frames_per_clip"])]
    for name, path in params["videos"].items():
        if (root / path).is_file():
            try:
                probe(root / path, scoring["fps"], scoring["transpose"])
            except UserInputError as exc:
                problems.append(f"videos.{name}: {exc}")
    return problems


def cmd_toolchain(args: argparse.Namespace) -> int:
    from uvq_tflite.core import toolchain

    path = Path(args.file)
    if args.check:
        toolchain.check(path)
        log(f"{path}: matches the installed tools")
    elif toolchain.write(path):
        log(f"{path}: recorded the installed tools; `dvc status` shows the stages that use "
            f"a changed one")
    else:
        log(f"{path}: up to date")
    return EXIT_OK


def _stale_stages() -> list[str]:
    import json
    import subprocess

    result = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        return [f"(dvc status failed: {result.stderr.strip().splitlines()[-1:]})"]
    return sorted(json.loads(result.stdout or "{}"))


def cmd_gate(args: argparse.Namespace) -> int:
    from uvq_tflite.core.params import load_params
    from uvq_tflite.gate import (
        check_row,
        float32_sizes,
        load_rows,
        load_videos,
        render,
        render_videos,
        score_breaches,
        tampered_outputs,
    )

    params = load_params(args.params)
    thresholds = params["thresholds"]
    rows, breaches = load_rows(Path(args.metrics_dir))
    reference = float32_sizes(rows)
    for row in rows:
        check_row(row, thresholds, Path(args.tflite_dir), reference)
    if rows:
        print(render(rows, thresholds, reference))
    breaches += [f"{r.model} {r.precision}: {b}" for r in rows for b in r.breaches]
    videos, problems = load_videos(Path(args.metrics_dir), list(params["videos"]))
    breaches += problems
    if videos:
        print(render_videos(videos, thresholds))
        breaches += score_breaches(videos, thresholds)
    if not args.no_status:
        stale = _stale_stages()
        if stale:
            breaches.append(f"pipeline is stale, run `make repro`: {', '.join(stale)}")
        breaches += tampered_outputs(Path("."))
    for breach in breaches:
        print(f"BREACH {breach}")
    print(f"verify: {'FAILED' if breaches else 'passed'} "
          f"({len(breaches)} breach{'es' if len(breaches) != 1 else ''})")
    if breaches:
        print("README.md: \"Verification\" says what each rule checks, \"Full-integer INT8\" "
              "where full_int8 loses accuracy; docs/full_int8-accuracy.md what limits it")
    return EXIT_BREACH if breaches else EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from uvq_tflite.core.files import check_writable_file
    from uvq_tflite.report import previous_commit, write_report

    check_writable_file(args.output)
    against = None if args.against == "none" else (args.against or previous_commit())
    count = write_report(Path(args.output), against)
    log(f"wrote {args.output}: {count} plots" + (f", compared with {against}" if against else "")
        + "; no network needed to view it")
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    import json

    from uvq_tflite.inspect_report import describe, hardware_breaches
    from uvq_tflite.tflite_file import inspect_file

    report = inspect_file(args.model_file)
    breaches = hardware_breaches(report, args.max_rank, args.forbidden, args.model)
    if args.json:
        print(json.dumps({**report.to_dict(args.max_rank), "breaches": breaches}, indent=2))
    else:
        print(describe(report, args.max_rank, args.forbidden, args.model))
    return EXIT_BREACH if breaches else EXIT_OK


def cmd_score(args: argparse.Namespace) -> int:
    from uvq_tflite.core.files import check_writable_file, write_json
    from uvq_tflite.video_scoring import parse_precisions, render_table, score_video

    if args.output is not None:
        check_writable_file(args.output, args.videos)  # before minutes of scoring
    bad: list[str] = []

    def refuse(exc: Exception) -> None:
        bad.append(str(exc))
        log(f"uvq-tflite: error: {exc}")

    results = score_video(args.videos, parse_precisions(args.precision),
                          args.checkpoint_dir, args.models_dir, args.fps, args.transpose,
                          args.threads, on_error=refuse, show_progress=True)
    if results:
        if args.output is not None:
            write_json(args.output, results)
            log(f"wrote {args.output} ({len(results)} video{'s' if len(results) > 1 else ''})")
        else:
            print(render_table(results))
    return EXIT_USAGE if bad else EXIT_OK


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _within(check: tuple, parse: type = int):
    """An argparse type that takes what params.yaml takes for the same setting (`check`,
    one of core.params' shared checks)."""
    valid, expected = check

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            value = None
        if value is None or not valid(value):
            raise argparse.ArgumentTypeError(f"{text!r} is invalid; expected {expected}")
        return value
    return convert


def _op_list(text: str) -> list[str]:
    """Comma-separated TFLite builtin op names, checked as params.yaml checks them."""
    from uvq_tflite.core.params import op_name_problems

    ops = [op for op in text.split(",") if op]
    if unknown := op_name_problems(ops):
        raise argparse.ArgumentTypeError("; ".join(unknown))
    return ops


def _weight_only_ops(text: str) -> list[str]:
    """Builtin op names that can be made weight-only."""
    from uvq_tflite.quantize import weight_only_refusal

    ops = _op_list(text)
    if reason := weight_only_refusal(ops):
        raise argparse.ArgumentTypeError(reason)
    return ops


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line instead of the whole usage block."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from uvq_tflite.calibration import ESTIMATORS
    from uvq_tflite.core import params
    from uvq_tflite.quantize import IO_TYPES, RECIPES, WEIGHT_ONLY_OPS

    parser = _Parser(
        prog="uvq-tflite",
        description="Convert UVQ 1.5 PyTorch checkpoints to float32 and INT8 TFLite.",
        epilog="Exit codes: 0 success, 1 verification breach, 2 bad input or usage.")
    sub = parser.add_subparsers(dest="command", required=True)

    conv = sub.add_parser("convert", help="checkpoints -> .tflite files")
    conv.add_argument("--model", required=True, choices=(*MODELS, "all"))
    conv.add_argument("--precision", default="all", choices=(*PRECISIONS, "all"))
    source = conv.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="checkpoint of the single --model")
    source.add_argument("--checkpoint-dir", help="directory holding <model>_net.pth files")
    conv.add_argument("--output-dir", required=True)
    conv.add_argument("--frames", type=_positive_int, default=1,
                      help="frames per call (batch size); default 1")
    conv.add_argument("--recipe", default=RECIPES[0], choices=RECIPES,
                      help="ai-edge-quantizer recipe for int8")
    conv.add_argument("--weight-only-ops", type=_weight_only_ops, default=list(WEIGHT_ONLY_OPS),
                      help="ops int8 computes in float from INT8 weights dequantized at load "
                           f"(comma list; default {','.join(WEIGHT_ONLY_OPS)})")
    conv.add_argument("--calibration-videos", nargs="+", metavar="CLIP",
                      help="clips full_int8 is calibrated on (read as UVQ reads them)")
    conv.add_argument("--calibration-fps", type=_within(params.FPS), default=4,
                      help="frames per second read from each calibration clip (default 4)")
    conv.add_argument("--frames-per-clip", type=_within(params.FRAMES_PER_CLIP), default=8,
                      help="calibration frames chosen from each clip (default 8)")
    conv.add_argument("--estimator", default=ESTIMATORS[0], choices=ESTIMATORS,
                      help=f"how full_int8 activation ranges are chosen (default {ESTIMATORS[0]})")
    conv.add_argument("--percentile", type=_within(params.PERCENTILE, float), default=99.99,
                      help="with --estimator percentile: the central percent kept")
    conv.add_argument("--io", default=IO_TYPES[0], choices=IO_TYPES,
                      help=f"full_int8 input and output type (default {IO_TYPES[0]})")
    conv.set_defaults(func=cmd_convert, parser=conv)

    quant = sub.add_parser("quantize", help="float32 .tflite -> INT8 .tflite")
    quant.add_argument("input")
    quant.add_argument("output")
    quant.add_argument("--recipe", default=RECIPES[0], choices=RECIPES)
    quant.add_argument("--weight-only-ops", type=_weight_only_ops, default=list(WEIGHT_ONLY_OPS),
                       help="ops computed in float from INT8 weights dequantized at load "
                            f"(comma list; default {','.join(WEIGHT_ONLY_OPS)})")
    quant.set_defaults(func=cmd_quantize, parser=quant)

    check = sub.add_parser("check-params", help="validate params.yaml")
    check.add_argument("--params", default="params.yaml")
    check.set_defaults(func=cmd_check_params, parser=check)

    tools = sub.add_parser("toolchain", help="record the installed tool versions in "
                                             "toolchain.yaml (stages declare them as params)")
    tools.add_argument("--file", default="toolchain.yaml")
    tools.add_argument("--check", action="store_true",
                       help="only compare; exit 2 if the installed tools differ")
    tools.set_defaults(func=cmd_toolchain, parser=tools)

    gate = sub.add_parser(
        "gate", help="metrics/*.json against thresholds (make verify)",
        description="Check the verify and score stages' metrics against params.yaml's "
                    "thresholds and hardware rules, print a table, and exit 1 on any breach "
                    "(2 if a metrics file is unreadable or malformed).")
    gate.add_argument("--params", default="params.yaml", help="thresholds and videos to gate")
    gate.add_argument("--metrics-dir", default="metrics",
                      help="<model>.json and videos/<clip>.json from the pipeline")
    gate.add_argument("--tflite-dir", default="models/tflite",
                      help="the .tflite files, read to explain size and rank breaches")
    gate.add_argument("--no-status", action="store_true",
                      help="skip the `dvc status` staleness check")
    gate.set_defaults(func=cmd_gate, parser=gate)

    score = sub.add_parser(
        "score", help="score video files as UVQ 1.5 does, PyTorch and TFLite side by side",
        description="Score clips as the reference UVQ 1.5 does (1080p frames picked like "
                    "its ffmpeg reader, mean of per-frame scores) with each precision.")
    score.add_argument("videos", nargs="+", metavar="VIDEO")
    score.add_argument("--precision", default="all",
                       help=f"comma list of {', '.join(SCORE_PRECISIONS)}, or all (default)")
    score.add_argument("--checkpoint-dir", default="models/checkpoints",
                       help="<model>_net.pth files for pytorch (default: models/checkpoints)")
    score.add_argument("--models-dir", default="models/tflite",
                       help="the .tflite files (default: models/tflite)")
    score.add_argument("--fps", type=_within(params.FPS), default=1,
                       help="frames scored per second of video (default 1, as UVQ)")
    score.add_argument("--transpose", default="auto", choices=TRANSPOSE_MODES,
                       help="rotate 90 degrees counter-clockwise first; auto: portrait clips")
    score.add_argument("--threads", type=_within(params.THREADS), default=2, help="LiteRT threads")
    score.add_argument("--output", help="write JSON here instead of a table on stdout")
    score.set_defaults(func=cmd_score, parser=score)

    rep = sub.add_parser("report", help="the pipeline's plots as an offline HTML page")
    rep.add_argument("--output", default="report/index.html")
    rep.add_argument("--against", help="revision to compare with (`dvc plots diff`); default "
                                       "HEAD~1 if there is one, `none` for no comparison")
    rep.set_defaults(func=cmd_report, parser=rep)

    insp = sub.add_parser("inspect", help="operators, ranks and I/O of a .tflite file; "
                                          "exit 1 if it breaks the hardware rules")
    insp.add_argument("model_file", metavar="MODEL.tflite")
    insp.add_argument("--json", action="store_true", help="machine-readable output")
    insp.add_argument("--max-rank", type=_within(params.MAX_RANK), default=4)
    insp.add_argument("--forbidden", type=_op_list,
                      default=["GATHER", "GATHER_ND"], help="comma-separated op names")
    insp.add_argument("--model", choices=MODELS,
                      help="network, for the NHWC check (default: the file's metadata, "
                           "else its name)")
    insp.set_defaults(func=cmd_inspect, parser=insp)
    return parser


def main(argv: list[str] | None = None) -> int:
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:  # the command's parser says so, pointing at the command's --help
        args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return args.func(args)
    except UserInputError as exc:
        for line in str(exc).splitlines():
            log(f"uvq-tflite: error: {line}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        log("uvq-tflite: interrupted")
        return EXIT_INTERRUPTED
