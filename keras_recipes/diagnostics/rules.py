"""The static lint of `diagnose`: the chapter's cautions, checked on the model alone.

`STATIC_RULES` is the registry of the rules (name -> severity and one-line summary),
made of the tables of the layer rules (`_layer_rules`: initializers, SELU,
activations, BatchNormalization) and of the training rules (`_training_rules`:
optimizer, learning rate, pretrained bases, callbacks). Every finding takes its
severity from it, and the tests derive their coverage from it. `lint(model)` runs
every rule.
"""

from __future__ import annotations

from keras_recipes.diagnostics import _layer_rules, _training_rules
from keras_recipes.diagnostics._graph import count_weight_layers
from keras_recipes.diagnostics._layer_rules import DEEP_NETWORK_WEIGHT_LAYERS
from keras_recipes.diagnostics._seen import layer_graph

__all__ = ["DEEP_NETWORK_WEIGHT_LAYERS", "STATIC_RULES", "lint"]

#: Static rules: name -> (severity, one-line summary).
STATIC_RULES = {**_layer_rules.RULES, **_training_rules.RULES}


def lint(model, callbacks=()):
    """Runs every static rule on `model` (and the `callbacks` it will be trained with);
    returns its `LayerGraph` and the findings."""
    graph = layer_graph(model)
    depth = count_weight_layers(graph.model)
    findings = _layer_rules.lint_layers(graph, depth)
    findings += _training_rules.lint_training(model, graph, depth, callbacks)
    return graph, findings
