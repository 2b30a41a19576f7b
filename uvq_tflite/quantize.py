"""float32 TFLite flatbuffer -> INT8 flatbuffer, via ai-edge-quantizer."""

from __future__ import annotations

import contextlib
import sys

# Recipes of ai_edge_quantizer.recipe that give INT8 channelwise weights.
RECIPES = ("dynamic_wi8_afp32", "weight_only_wi8_afp32")


def quantize_int8(float_model: bytes, recipe: str = RECIPES[0]) -> bytes:
    """Quantize a float flatbuffer with one of RECIPES."""
    from ai_edge_quantizer import quantizer
    from ai_edge_quantizer import recipe as recipes

    if recipe not in RECIPES:
        raise ValueError(f"unknown quantization recipe {recipe!r}; valid: {', '.join(RECIPES)}")
    qt = quantizer.Quantizer(float_model)
    qt.load_quantization_recipe(getattr(recipes, recipe)())
    with contextlib.redirect_stdout(sys.stderr):
        return qt.quantize().quantized_model
