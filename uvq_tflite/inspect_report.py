"""Human-readable `uvq-tflite inspect` output and the hardware rules it checks."""

from __future__ import annotations

from pathlib import Path

from uvq_tflite.core.registry import MODELS, network
from uvq_tflite.tflite_file import Inspection


def model_of(report: Inspection, model: str | None) -> str | None:
    """The network a file is for: given, its metadata's, or from a `<model>_net*.tflite`
    file name."""
    if model:
        return model
    if report.metadata and report.metadata.get("model") in MODELS:
        return report.metadata["model"]
    stem = Path(report.path).name
    return next((m for m in MODELS if stem.startswith(network(m).file_stem)), None)


def nhwc_frames(report: Inspection, model: str | None) -> int | None:
    """Frames per call if the I/O is the network's NHWC layout, 0 if not, None if unknown."""
    model = model_of(report, model)
    if model is None:
        return None
    return network(model).frames_per_call([t.shape for t in report.inputs],
                                       [t.shape for t in report.outputs])


def hardware_breaches(report: Inspection, max_rank: int, forbidden: list[str],
                      model: str | None = None) -> list[str]:
    breaches = [f"forbidden op {op} x{n}" for op, n in report.count_ops(forbidden).items()]
    breaches += [f"tensor {name} has rank {rank} > {max_rank}"
                 for name, rank in report.tensors_above(max_rank).items()]
    if nhwc_frames(report, model) == 0:
        breaches.append(f"inputs/outputs are not the NHWC layout of the "
                        f"{model_of(report, model)} network")
    return breaches


NAMED_ABOVE = 5  # tensors over the rank limit named in the text report (--json has all)


def describe(report: Inspection, max_rank: int, forbidden: list[str],
             model: str | None = None) -> str:
    frames = nhwc_frames(report, model)
    nhwc = {None: "unknown (pass --model)", 0: "NO"}.get(frames, f"yes, {frames} frame(s) per call")
    found = report.count_ops(forbidden)
    above = report.tensors_above(max_rank)
    quantized = (", ".join(f"{n} {t}" for t, n in report.quantized.items())
                 + f" tensors ({report.channelwise} channelwise)" if report.quantized else "none")
    named = list(above)[:NAMED_ABOVE] + ([f"and {len(above) - NAMED_ABOVE} more (--json)"]
                                          if len(above) > NAMED_ABOVE else [])
    lines = [
        f"file:        {report.path} ({report.size_bytes / 1e6:.2f} MB)",
        *(f"input:       {t.name} {t.shape} {t.dtype}" for t in report.inputs),
        *(f"output:      {t.name} {t.shape} {t.dtype}" for t in report.outputs),
        f"NHWC I/O:    {nhwc}",
        f"max rank:    {report.max_rank}"
        + (f" -- {len(above)} tensor(s) above {max_rank}: " + ", ".join(named) if above else ""),
        "forbidden:   " + (", ".join(f"{op} x{n}" for op, n in found.items()) or
                            f"none of {', '.join(forbidden)}"),
        f"quantized:   {quantized}",
        "operators:",
        *(f"  {op:<24} {n}" for op, n in sorted(report.ops.items(), key=lambda kv: -kv[1])),
        *_described(report.metadata),
    ]
    return "\n".join(lines)


def _described(metadata: dict | None) -> list[str]:
    """What the file's own metadata (describe.py) says, line by line."""
    if not metadata:
        return ["metadata:    none from uvq-tflite"]
    lines = [f"metadata:    {metadata.get('model')} network, {metadata.get('precision')}"]
    for kind in ("inputs", "output"):
        entries = metadata.get(kind)
        for name, what in (entries.items() if isinstance(entries, dict) else ()):
            lines.append(f"  {kind[:-1] if kind == 'inputs' else kind} {name}: {what}")
    lines.append(f"  checkpoint sha256: {metadata.get('checkpoint_sha256')}")
    tools = metadata.get("tools")
    versions = ", ".join(f"{k} {v}" for k, v in tools.items()) if isinstance(tools, dict) else ""
    lines.append(f"  made by: uvq-tflite {metadata.get('uvq_tflite_version')}, {versions}")
    return lines
