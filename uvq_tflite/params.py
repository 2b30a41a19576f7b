"""params.yaml: loading and validation before any work is done."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import yaml

from uvq_tflite.deploy import MODELS, PRECISIONS, spec
from uvq_tflite.errors import UserInputError
from uvq_tflite.quantize import RECIPES

PARAMS_FILE = Path("params.yaml")
SECTIONS = ("checkpoints", "models", "quantization", "verification", "scoring", "thresholds")


class ParamsError(UserInputError):
    """params.yaml has problems; the message lists each on its own line."""


def demo_checkpoint_path(model: str) -> Path:
    """Where the demo_checkpoint stage writes a model's demo checkpoint."""
    return Path("models/demo") / f"{spec(model).file_stem}.pth"


def _is_int(value: Any, low: int, high: int | None = None) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool) and value >= low
            and (high is None or value <= high))


def _is_number(value: Any, low: float, high: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


def _builtin_ops() -> set[str]:
    from ai_edge_litert import schema_py_generated as schema

    return {k for k in vars(schema.BuiltinOperator) if not k.startswith("_")}


def _check_keys(problems: list[str], where: str, section: Any, valid: tuple[str, ...],
                required: bool = True) -> dict:
    if not isinstance(section, dict):
        problems.append(f"{where}: expected a mapping with keys {', '.join(valid)}")
        return {}
    for key in section:
        if key not in valid:
            problems.append(f"{where}.{key}: unknown key; valid: {', '.join(valid)}")
    if required:
        for key in valid:
            if key not in section:
                problems.append(f"{where}.{key}: missing")
    return section


def _checkpoints(problems: list[str], section: dict, root: Path) -> None:
    for model, path in _check_keys(problems, "checkpoints", section, MODELS).items():
        if model not in MODELS:
            continue
        if not isinstance(path, str) or not path:
            problems.append(f"checkpoints.{model}: expected a file path, got {path!r}")
        elif not (root / path).is_file() and Path(path) != demo_checkpoint_path(model):
            problems.append(f"checkpoints.{model}: {path} does not exist")


def _models(problems: list[str], section: dict) -> None:
    for model, entry in _check_keys(problems, "models", section, MODELS).items():
        if model not in MODELS:
            continue
        entry = _check_keys(problems, f"models.{model}", entry, ("inputs",))
        if "inputs" in entry and not spec(model).frames_per_call(entry["inputs"]):
            shapes = [list(s) for s in spec(model).input_shapes(1)]
            problems.append(f"models.{model}.inputs: {entry['inputs']!r} is not an input of "
                            f"the {model} network; expected {shapes} with the first "
                            f"dimension times F frames per call (F >= 1)")


def _leaf(problems: list[str], where: str, value: Any, ok: Callable[[Any], bool],
          expected: str) -> None:
    if not ok(value):
        problems.append(f"{where}: {value!r} is invalid; expected {expected}")


Check = tuple[Callable[[Any], bool], str]


def _int_range(low: int, high: int | None = None) -> Check:
    text = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
    return (lambda v: _is_int(v, low, high)), text


def _number_range(low: float, high: float) -> Check:
    return (lambda v: _is_number(v, low, high)), f"a number from {low:g} to {high:g}"


def _leaves(problems: list[str], where: str, section: Any, checks: dict[str, Check],
            others: tuple[str, ...] = ()) -> dict:
    """Check a mapping's keys (`checks` and `others`) and each value in `checks`."""
    section = _check_keys(problems, where, section, (*checks, *others))
    for key, value in section.items():
        if key in checks:
            _leaf(problems, f"{where}.{key}", value, *checks[key])
    return section


def _quantization(problems: list[str], section: dict) -> None:
    _leaves(problems, "quantization", section,
            {"recipe": ((lambda v: v in RECIPES), f"one of {', '.join(RECIPES)}")})


def _verification(problems: list[str], section: dict) -> None:
    section = _leaves(problems, "verification", section,
                      {"seed": _int_range(0), "threads": _int_range(1, 64)}, ("samples",))
    if "samples" in section:
        _leaves(problems, "verification.samples", section["samples"],
                {model: _int_range(1, 10000) for model in MODELS})


def _scoring(problems: list[str], section: dict) -> None:
    _leaves(problems, "scoring", section, {"frames": _int_range(1, 1000), "seed": _int_range(0)})


PRECISION_BOUNDS = {
    "min_correlation": _number_range(-1, 1),
    "max_score_rel_diff": _number_range(0, 10),
}


def _thresholds(problems: list[str], section: dict) -> None:
    section = _leaves(problems, "thresholds", section, {"max_rank": _int_range(1, 8)},
                      (*PRECISIONS, "forbidden_ops"))
    for precision in PRECISIONS:
        if precision in section:
            _leaves(problems, f"thresholds.{precision}", section[precision], PRECISION_BOUNDS)
    if "forbidden_ops" in section:
        ops = section["forbidden_ops"]
        if not isinstance(ops, list) or not all(isinstance(op, str) for op in ops):
            problems.append("thresholds.forbidden_ops: expected a list of TFLite builtin "
                            "operator names such as GATHER_ND")
        else:
            known = _builtin_ops()
            for op in ops:
                if op not in known:
                    problems.append(f"thresholds.forbidden_ops: {op!r} is not a TFLite "
                                    f"builtin operator (e.g. GATHER, GATHER_ND, TRANSPOSE)")


VALIDATORS = {
    "models": _models,
    "quantization": _quantization,
    "verification": _verification,
    "scoring": _scoring,
    "thresholds": _thresholds,
}


def load_params(path: str | Path = PARAMS_FILE, sections: tuple[str, ...] = SECTIONS) -> dict:
    """params.yaml with `sections` validated; ParamsError lists every problem found."""
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    problems: list[str] = []
    params = _check_keys(problems, path.name, params, SECTIONS)
    for name, section in params.items():
        if name not in sections:
            continue
        if name == "checkpoints":
            _checkpoints(problems, section, path.parent)
        elif name in VALIDATORS:
            VALIDATORS[name](problems, section)
    if problems:
        raise ParamsError("\n".join(f"{path}: {p}" for p in problems))
    return params
