"""params.yaml: loading and validation before any work is done."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

import yaml

from uvq_tflite.core.errors import UserInputError
from uvq_tflite.core.files import visible_files
from uvq_tflite.core.registry import MODELS, PRECISIONS, network

PARAMS_FILE = Path("params.yaml")
SECTIONS = ("checkpoints", "models", "quantization", "full_int8", "calibration", "verification",
            "clips", "videos", "scoring", "thresholds")


class ParamsError(UserInputError):
    """params.yaml has problems; the message lists each on its own line."""


MAX_PARAMS_BYTES = 1 << 20


class _StrictLoader(yaml.SafeLoader):
    """safe_load without aliases (a 2 KB file of nested aliases expands to gigabytes)
    and without duplicate keys (YAML keeps the last silently; DVC refuses the file)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.MarkedYAMLError(problem="aliases (*name) are not allowed",
                                       problem_mark=mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.MarkedYAMLError(problem=f"duplicate key {_short(key)}",
                                           problem_mark=key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: Path) -> Any:
    """A YAML file of at most MAX_PARAMS_BYTES of UTF-8, read strictly (_StrictLoader)."""
    try:
        if path.stat().st_size > MAX_PARAMS_BYTES:
            raise ParamsError(f"{path}: {path.stat().st_size} bytes; a params file is at most "
                              f"{MAX_PARAMS_BYTES} bytes")
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such file") from None
    except OSError as exc:
        raise ParamsError(f"{path}: unreadable ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ParamsError(f"{path}: not UTF-8 (byte {exc.start})") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a safe loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ParamsError(f"{path}: {exc.problem}{where}") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None


def _short(value: Any) -> str:
    """repr(value), cut to a readable length: messages never format unbounded values."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def demo_checkpoint_path(model: str) -> Path:
    """Where the demo_checkpoint stage writes a model's demo checkpoint."""
    return Path("models/demo") / f"{network(model).file_stem}.pth"


GENERATED_CALIBRATION_CLIPS = Path("data/calibration/clips")  # the calibration_clips stage's


def generated_clip_path(quality: str) -> Path:
    """Where the clip stage writes the generated clip of `quality` (a key of clips.crf)."""
    return Path("data/clips") / f"synthetic_{quality}.mp4"


def _is_int(value: Any, low: int, high: int | None = None) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool) and value >= low
            and (high is None or value <= high))


def _is_number(value: Any, low: float, high: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


@functools.cache
def builtin_ops() -> frozenset[str]:
    """The names of TFLite's builtin operators (what params and metrics may name)."""
    from ai_edge_litert import schema_py_generated as schema

    return frozenset(k for k in vars(schema.BuiltinOperator) if not k.startswith("_"))


def op_name_problems(ops: list[str]) -> list[str]:
    """One line per name in `ops` that is not a TFLite builtin operator; for a name that
    is ai-edge-quantizer's spelling of one, or one in lower case, the line gives TFLite's."""
    from uvq_tflite.quantize import tflite_name_of

    problems = []
    for op in ops:
        if op not in builtin_ops():
            name = tflite_name_of(op) or (op.upper() if op.upper() in builtin_ops() else None)
            hint = f"TFLite calls it {name}" if name else "e.g. GATHER, GATHER_ND, TRANSPOSE"
            problems.append(f"{_short(op)} is not a TFLite builtin operator ({hint})")
    return problems


def _check_keys(problems: list[str], where: str, section: Any, valid: tuple[str, ...],
                required: bool = True) -> dict:
    """`section` if it is a mapping; a problem for each unknown or missing key of it
    (`where` is its dotted name, empty for the file itself)."""
    if not isinstance(section, dict):
        problems.append(f"{where or 'the file'}: expected a mapping with keys {', '.join(valid)}")
        return {}
    prefix = f"{where}." if where else ""
    for key in section:
        if key not in valid:
            problems.append(f"{prefix}{key}: unknown key; valid: {', '.join(valid)}")
    if required:
        for key in valid:
            if key not in section:
                problems.append(f"{prefix}{key}: missing")
    return section


def _checkpoints(problems: list[str], section: dict, root: Path) -> None:
    for model, path in _check_keys(problems, "checkpoints", section, MODELS).items():
        if model not in MODELS:
            continue
        if not isinstance(path, str) or not path:
            problems.append(f"checkpoints.{model}: expected a file path, got {_short(path)}")
        elif not (root / path).is_file() and Path(path) != demo_checkpoint_path(model):
            problems.append(f"checkpoints.{model}: {path} does not exist")


def _models(problems: list[str], section: dict) -> None:
    for model, entry in _check_keys(problems, "models", section, MODELS).items():
        if model not in MODELS:
            continue
        entry = _check_keys(problems, f"models.{model}", entry, ("inputs",))
        inputs = entry.get("inputs")
        if "inputs" not in entry:
            continue
        integers = isinstance(inputs, list) and all(
            isinstance(shape, list) and all(_is_int(d, 1) for d in shape) for shape in inputs)
        frames = network(model).frames_per_call(inputs) if integers else 0
        if not frames:
            shapes = [list(s) for s in network(model).input_shapes(1)]
            problems.append(f"models.{model}.inputs: {_short(inputs)} is not an input of "
                            f"the {model} network; expected {shapes} (whole numbers) with the "
                            f"first dimension times F frames per call (F >= 1)")
        elif too_large := memory_problem(model, frames):
            problems.append(f"models.{model}.inputs: {too_large}")


def memory_problem(model: str, frames: int) -> str | None:
    """Why one call of `frames` frames does not fit this machine, or None if it does:
    its float32 inputs alone may take a quarter of the memory (the model, its
    activations and the reference run beside them)."""
    import psutil

    needed, budget = network(model).call_bytes(frames), psutil.virtual_memory().total // 4
    if needed <= budget:
        return None
    return (f"{frames} frames per call take {needed / 1e9:.1f} GB of input (float32) alone; "
            f"this machine allows {budget / 1e9:.1f} GB")


def _leaf(problems: list[str], where: str, value: Any, ok: Callable[[Any], bool],
          expected: str) -> None:
    if not ok(value):
        problems.append(f"{where}: {_short(value)} is invalid; expected {expected}")


Check = tuple[Callable[[Any], bool], str]


def _int_range(low: int, high: int | None = None) -> Check:
    text = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
    return (lambda v: _is_int(v, low, high)), text


def _number_range(low: float, high: float) -> Check:
    return (lambda v: _is_number(v, low, high)), f"a number from {low:g} to {high:g}"


# Values that command-line options of the same meaning check too (cli.py).
PERCENTILE = _number_range(50, 100)
FPS = _int_range(1, 60)
FRAMES_PER_CLIP = _int_range(1, 256)
THREADS = _int_range(1, 64)
MAX_RANK = _int_range(1, 8)


def _leaves(problems: list[str], where: str, section: Any, checks: dict[str, Check],
            others: tuple[str, ...] = ()) -> dict:
    """Check a mapping's keys (`checks` and `others`) and each value in `checks`."""
    section = _check_keys(problems, where, section, (*checks, *others))
    for key, value in section.items():
        if key in checks:
            _leaf(problems, f"{where}.{key}", value, *checks[key])
    return section


def _op_names(problems: list[str], where: str, ops: Any) -> bool:
    """Whether `ops` is a list of TFLite builtin operator names; if not, say why."""
    if not isinstance(ops, list) or not all(isinstance(op, str) for op in ops):
        problems.append(f"{where}: expected a list of TFLite builtin operator names "
                        f"such as GATHER_ND")
        return False
    unknown = op_name_problems(ops)
    problems += [f"{where}: {line}" for line in unknown]
    return not unknown


def _quantization(problems: list[str], section: dict) -> None:
    from uvq_tflite.quantize import RECIPES, weight_only_refusal

    section = _leaves(problems, "quantization", section,
                      {"recipe": ((lambda v: v in RECIPES), f"one of {', '.join(RECIPES)}")},
                      ("weight_only_ops",))
    if "weight_only_ops" not in section:
        return
    where, ops = "quantization.weight_only_ops", section["weight_only_ops"]
    if _op_names(problems, where, ops) and (reason := weight_only_refusal(ops)):
        problems.append(f"{where}: {reason}")


def _verification(problems: list[str], section: dict) -> None:
    section = _leaves(problems, "verification", section,
                      {"seed": _int_range(0), "threads": THREADS}, ("samples",))
    if "samples" in section:
        _leaves(problems, "verification.samples", section["samples"],
                {model: _int_range(1, 10000) for model in MODELS})


def _full_int8(problems: list[str], section: dict) -> None:
    from uvq_tflite.calibration import ESTIMATORS
    from uvq_tflite.quantize import IO_TYPES

    _leaves(problems, "full_int8", section, {
        "estimator": ((lambda v: v in ESTIMATORS), f"one of {', '.join(ESTIMATORS)}"),
        "percentile": PERCENTILE,
        "io": ((lambda v: v in IO_TYPES), f"one of {', '.join(IO_TYPES)}")})


def _calibration(problems: list[str], section: dict, root: Path) -> None:
    section = _leaves(problems, "calibration", section, {
        "fps": FPS, "frames_per_clip": FRAMES_PER_CLIP, "seed": _int_range(0)},
        ("clips", "generated"))
    generated_section = _check_keys(problems, "calibration.generated",
                                    section.get("generated"), ("scene", "stills"))
    if "scene" in generated_section:
        _leaves(problems, "calibration.generated.scene", generated_section["scene"],
                {"seed": _int_range(0), "crf": _int_range(0, 51)})
    if "stills" in generated_section:
        _leaves(problems, "calibration.generated.stills", generated_section["stills"],
                {"frames": _int_range(1, 256), "seed": _int_range(0), "fps": _int_range(1, 60),
                 "crf": _int_range(0, 51)})
    if "clips" not in section:
        return
    clips = section["clips"]
    if not isinstance(clips, str) or not clips:
        problems.append(f"calibration.clips: expected a directory of video files, got "
                        f"{_short(clips)}")
    elif Path(clips) == GENERATED_CALIBRATION_CLIPS:
        return  # written by the calibration_clips stage
    elif not (root / clips).is_dir():
        problems.append(f"calibration.clips: {clips} is not a directory")
    elif not visible_files(root / clips):
        problems.append(f"calibration.clips: {clips} holds no clips (hidden files do not count)")


def _clips(problems: list[str], section: dict) -> None:
    section = _leaves(problems, "clips", section, {
        "seconds": _int_range(1, 60), "fps": _int_range(1, 120),
        "width": _int_range(16, 3840), "height": _int_range(16, 2160), "seed": _int_range(0)},
        ("crf",))
    for key in ("width", "height"):
        if _is_int(section.get(key), 16) and section[key] % 2:
            problems.append(f"clips.{key}: {section[key]} is odd; H.264 (yuv420p) needs even sizes")
    crf = section.get("crf")
    if "crf" in section and (not isinstance(crf, dict) or not crf):
        problems.append("clips.crf: expected a mapping of quality names to x264 CRF values")
    elif isinstance(crf, dict):
        for quality, value in crf.items():
            _leaf(problems, f"clips.crf.{quality}", value, *_int_range(0, 51))


def _videos(problems: list[str], section: Any, root: Path, generated: set[Path]) -> None:
    if not isinstance(section, dict) or not section:
        problems.append("videos: expected a mapping of clip names to video files")
        return
    for name, path in section.items():
        if not isinstance(path, str) or not path:
            problems.append(f"videos.{_short(name)}: expected a file path, got {_short(path)}")
        elif not (root / path).is_file() and Path(path) not in generated:
            problems.append(f"videos.{name}: {path} does not exist")


def _scoring(problems: list[str], section: dict) -> None:
    from uvq_tflite.video import TRANSPOSE_MODES

    _leaves(problems, "scoring", section, {
        "fps": FPS, "threads": THREADS,
        "transpose": ((lambda v: v in TRANSPOSE_MODES), f"one of {', '.join(TRANSPOSE_MODES)}")})


PRECISION_BOUNDS = {
    "min_correlation": _number_range(-1, 1),
    "max_score_rel_diff": _number_range(0, 10),
}
# Quantized precisions also bound their file size against the float32 file's.
SIZE_BOUND = {"max_size_vs_float32": _number_range(0, 10)}


def _thresholds(problems: list[str], section: dict) -> None:
    section = _leaves(problems, "thresholds", section, {"max_rank": MAX_RANK},
                      (*PRECISIONS, "forbidden_ops"))
    for precision in PRECISIONS:
        if precision in section:
            _leaves(problems, f"thresholds.{precision}", section[precision],
                    PRECISION_BOUNDS if precision == "float32" else {**PRECISION_BOUNDS,
                                                                      **SIZE_BOUND})
    if "forbidden_ops" in section:
        _op_names(problems, "thresholds.forbidden_ops", section["forbidden_ops"])


VALIDATORS = {
    "models": _models,
    "quantization": _quantization,
    "verification": _verification,
    "full_int8": _full_int8,
    "clips": _clips,
    "scoring": _scoring,
    "thresholds": _thresholds,
}


def load_params(path: str | Path = PARAMS_FILE, sections: tuple[str, ...] = SECTIONS) -> dict:
    """params.yaml with `sections` validated; ParamsError lists every problem found."""
    params = read_yaml(Path(path))
    path = Path(path)
    problems: list[str] = []
    params = _check_keys(problems, "", params, SECTIONS)
    for name, section in params.items():
        if name not in sections:
            continue
        if name == "checkpoints":
            _checkpoints(problems, section, path.parent)
        elif name == "videos":
            crf = (params.get("clips") or {}).get("crf")
            generated = {generated_clip_path(q) for q in crf} if isinstance(crf, dict) else set()
            _videos(problems, section, path.parent, generated)
        elif name == "calibration":
            _calibration(problems, section, path.parent)
        elif name in VALIDATORS:
            VALIDATORS[name](problems, section)
    if problems:
        raise ParamsError("\n".join(f"{path}: {p}" for p in problems))
    return params
