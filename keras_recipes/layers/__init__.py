"""Layers: dropout that stays on at prediction time (Monte-Carlo Dropout)."""

from keras_recipes.layers.mc_dropout import MCAlphaDropout, MCDropout

__all__ = ["MCAlphaDropout", "MCDropout"]
