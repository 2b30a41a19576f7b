"""Agreement between a reference array and a converted model's output, and between
per-frame score series."""

from __future__ import annotations

import math

import numpy as np

SNR_CAP_DB = 300.0  # reported when the arrays are identical (JSON has no infinity)


def agreement(reference: np.ndarray, actual: np.ndarray) -> dict[str, float | bool]:
    """Pearson correlation, cosine similarity, abs diffs, relative L2 error, SNR (dB), and
    whether the output is one constant value (a model that computes nothing from its
    inputs, e.g. INT8 ranges that clip everything, which a correlation of 0 hides)."""
    if reference.shape != actual.shape:
        raise ValueError(f"shape {actual.shape} differs from the reference {reference.shape}")
    ref = reference.astype(np.float64).ravel()
    out = actual.astype(np.float64).ravel()
    diff = out - ref
    ref_norm, out_norm, err_norm = (float(np.linalg.norm(v)) for v in (ref, out, diff))
    correlation = pearson(ref, out)
    if correlation is None:  # a constant array: identical, or nothing in common
        correlation = 1.0 if err_norm == 0 else 0.0
    return {
        "correlation": correlation,
        "cosine": float(ref @ out / (ref_norm * out_norm)) if ref_norm and out_norm else 0.0,
        "max_abs_diff": float(np.abs(diff).max()),
        "mean_abs_diff": float(np.abs(diff).mean()),
        "rel_l2": err_norm / ref_norm if ref_norm else err_norm,
        "snr_db": min(20 * math.log10(ref_norm / err_norm), SNR_CAP_DB)
        if err_norm and ref_norm else (SNR_CAP_DB if not err_norm else -SNR_CAP_DB),
        "constant_output": bool(np.ptp(out) == 0),
    }


def significant(value, digits: int = 6):
    """`value` with every float rounded to `digits` significant digits, for stable JSON;
    NaN and infinities (NaN weights) become null, which strict JSON can hold and the
    gate refuses."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: significant(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [significant(v, digits) for v in value]
    return value


def pearson(a, b) -> float | None:
    """Pearson correlation of two equal-size series, None when either is constant (or has
    under two values). Of per-frame scores against PyTorch's ("frame correlation") it
    tells whether a precision ranks the frames as PyTorch does, which a small relative
    difference alone cannot show when the scores barely vary."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def format_correlation(value: float | None) -> str:
    """A frame correlation for a table: `constant` when undefined."""
    return "constant" if value is None else f"{value:.3f}"


def format_shares(shares: dict[str, float]) -> str:
    """Shares per network in percent, in network order: two significant digits (so a
    small share never reads as zero), whole percents from 10 %."""
    from uvq_tflite.core.registry import MODELS

    return ", ".join(f"{model} {_percent(shares[model] * 100)}%" for model in MODELS
                     if model in shares)


def _percent(value: float) -> str:
    return f"{value:.2g}" if value < 10 else f"{value:.0f}"
