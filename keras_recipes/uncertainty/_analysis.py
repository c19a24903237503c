"""What `MCDropoutPredictor` must know about a model before sampling it.

Which dropout layers its graph calls (and which are hidden inside subclassed
layers), which nested graph models lead to them, and how the model ends (softmax,
sigmoid or neither). Graphs are walked with `keras_recipes._graph_walk`.
"""

from __future__ import annotations

import keras

from keras_recipes import _graph_walk

__all__ = [
    "DROPOUT_TYPES",
    "find_dropout_layers",
    "graph_models_containing",
    "output_activation",
    "tracked_dropout_layers",
]

# The layers Monte-Carlo Dropout samples (subclasses included).
DROPOUT_TYPES = (keras.layers.Dropout, keras.layers.AlphaDropout, keras.layers.GaussianDropout)


def _graph_children(root):
    """What `find_dropout_layers` walks into: the operations of `root`, and of every
    Functional/Sequential model nested in it, in graph order."""
    def children(op):
        if op is root or _graph_walk.is_graph_model(op):
            return _graph_walk.operations(op)
        return None
    return children


def _nested_operations(model):
    """Every operation below `model`, through nested graph models, in graph order."""
    return (step.layer for step in
            _graph_walk.walk(model, _graph_children(model), include_root=False))


def _has_active_rate(layer):
    return float(getattr(layer, "rate", 0.0)) > 0.0


def find_dropout_layers(model):
    """Walks the model's graph, nested graph models included.

    Returns:
        `(found, opaque)`: `found` lists the dropout layers reachable through
        Functional/Sequential graphs, in order, without duplicates; `opaque`
        lists `(owner, dropout_layer)` for active dropout layers hidden inside
        subclassed layers, which cannot be switched on alone.
    """
    found, opaque = [], []
    for step in _graph_walk.walk(model, _graph_children(model), include_root=False,
                                 unique=True):
        op = step.layer
        if isinstance(op, DROPOUT_TYPES):
            found.append(op)
        elif not step.expanded and isinstance(op, keras.layers.Layer):
            for inner in _graph_walk.flatten_layers(op, include_self=False):
                if isinstance(inner, DROPOUT_TYPES) and _has_active_rate(inner):
                    opaque.append((op, inner))
    return found, opaque


def tracked_dropout_layers(model):
    """Every dropout layer tracked anywhere inside `model`, in tracking order.

    For a model whose call cannot be read (a subclassed model), the dropout layers
    are its tracked sublayers, not nodes of a graph.
    """
    return [layer for layer in _graph_walk.flatten_layers(model, include_self=False)
            if isinstance(layer, DROPOUT_TYPES)]


def _contains_any(model, ids):
    """Whether a graph model contains (at any depth) an operation in `ids`."""
    return any(id(op) in ids for op in _nested_operations(model))


def _all_graph_models(model):
    """The model and every Functional/Sequential model nested in it."""
    return [model] + [op for op in _nested_operations(model) if _graph_walk.is_graph_model(op)]


def graph_models_containing(model, layers):
    """Ids of `model` and the graph models nested in it that contain one of `layers`."""
    ids = {id(layer) for layer in layers}
    return {id(op) for op in _all_graph_models(model) if _contains_any(op, ids)}


def _output_operation(model):
    """The operation that produces the model's (single) output, through nested models.

    A model without a graph ends, by this guess, in its last tracked layer.
    """
    operations = _graph_walk.graph_output_operations(model)
    if operations:
        op = operations[0]
    else:
        layers = model.layers
        op = layers[-1] if layers else None
    if op is not None and _graph_walk.is_graph_model(op):
        return _output_operation(op)
    return op


def output_activation(model):
    """`"softmax"`, `"sigmoid"` or None: the activation ending the model."""
    op = _output_operation(model)
    if isinstance(op, keras.layers.Softmax):
        return "softmax"
    activation = getattr(op, "activation", None)
    name = getattr(activation, "__name__", "")
    if name in ("softmax", "sigmoid"):
        return name
    return None
