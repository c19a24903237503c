"""The one walker over a model's layers and graph.

Max-norm (`constraints.py`), MC Dropout (`uncertainty/_analysis.py`), the diagnostics'
layer view (`diagnostics/_graph.py`) and transfer learning (`models/transfer/`) all walk
a model through this module; they differ only in which layers they walk into, which
each says with the `children` function it passes to `walk`. Built on
`keras_recipes._keras_internals`, which stays the only module touching Keras privates.

Two meanings of "a model with a graph" are kept apart by name: `is_graph_model` (by type:
functional or Sequential, so its graph can be read and replayed) and `has_defined_inputs`
(it has symbolic inputs and outputs now: a Sequential model never built on an input
shape has none).
"""

from __future__ import annotations

from typing import NamedTuple

import keras

from keras_recipes import _keras_internals as ki

__all__ = [
    "Step",
    "flatten_layers",
    "graph_nodes",
    "graph_output_operations",
    "has_defined_inputs",
    "inbound_nodes",
    "is_graph_model",
    "model_of",
    "operations",
    "producer",
    "sublayers",
    "upstream",
    "walk",
]

def model_of(model):
    """The model whose layers `model` runs: for a wrapper that says it wraps a model
    (`wraps_a_model`, as `compile_recipe`'s `RecipeWrapper` does), the model in it.

    What `diagnose`, `TrainingMonitor` and the lint read the layers of: a wrapper's
    only layer is your model, not a (pretrained) base nested in it.
    """
    while getattr(type(model), "wraps_a_model", False):
        model = model.inner_model
    return model


# The graph primitives, re-exported so that walking a model needs this one module.
flatten_layers = ki.flatten_layers
graph_nodes = ki.graph_nodes
graph_output_operations = ki.graph_output_operations
inbound_nodes = ki.inbound_nodes
is_graph_model = ki.is_graph_model
producer = ki.producer


class Step(NamedTuple):
    """One layer of a `walk`.

    Attributes:
        layer: the layer (or the operation, in a graph).
        expanded: whether the walk went into it (its `children` were not None).
        frozen: whether it, or a layer the walk went through to reach it, is not
            trainable (False for operations that are not layers).
    """

    layer: object
    expanded: bool
    frozen: bool


def walk(root, children, *, include_root=True, unique=False):
    """`root` and the layers below it, depth first, each before the layers inside it.

    Args:
        root: a layer or model.
        children: `children(layer)` -> the layers to walk into below `layer`, in order,
            or None for a leaf. It decides how deep the walk goes: into nested models,
            into a `Bidirectional`, into the user's container layers, ...
        include_root: whether `root` itself is yielded (its children are walked either way).
        unique: whether a layer reached twice (a layer shared by two nested models) is
            yielded, and walked into, only the first time.

    Yields:
        `Step(layer, expanded, frozen)`.
    """
    seen = set()

    def visit(layer, frozen, yielded):
        frozen = frozen or not getattr(layer, "trainable", True)
        below = children(layer)
        if yielded:
            yield Step(layer, below is not None, frozen)
        for child in below or ():
            if unique:
                if id(child) in seen:
                    continue
                seen.add(id(child))
            yield from visit(child, frozen, True)

    yield from visit(root, False, include_root)


def operations(model):
    """The operations one level of a model runs: those of its graph in graph order, or
    for a model without a readable graph its tracked top-level layers."""
    graph = ki.functional_graph(model)
    if graph is not None:
        return list(graph.operations)
    return list(model.layers)


def sublayers(layer):
    """The layers directly inside `layer`: a model's `layers`, any other layer's tracked
    sublayers (a custom block's attributes)."""
    if isinstance(layer, keras.Model):
        return list(layer.layers)
    return ki.child_layers(layer)


def upstream(tensor):
    """`(tensor, operation, node)` from a symbolic tensor back towards the inputs.

    Follows the first input of each node as long as the node has exactly one input; the
    last triple yielded is that of an input layer or of a node with several inputs.
    """
    while True:
        operation, node = ki.producer(tensor)
        yield tensor, operation, node
        if len(node.input_tensors) != 1:
            return
        tensor = node.input_tensors[0]


def has_defined_inputs(model):
    """Whether `model` has symbolic inputs and outputs now (its features can be taken).

    Not `is_graph_model` (functional or Sequential by type): a Sequential model never
    built on an input shape has no inputs yet.
    """
    try:
        return bool(model.inputs) and bool(model.outputs)
    except (AttributeError, ValueError):
        return False
