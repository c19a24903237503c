"""The layer-graph view of a model that the lint rules and the measurements read.

`LayerGraph(model)` lists the operations of one model level in topological order with
their connections, from `keras_recipes._graph_walk.graph_nodes` for functional
and Sequential models, or as the chain of `model.layers` otherwise. Also here: how a
layer's activation and initializer are classified.
"""

from __future__ import annotations

import math

import keras

from keras_recipes import _graph_walk

__all__ = [
    "HARD_ZERO_ACTIVATIONS",
    "MERGE_LAYERS",
    "RELU_FAMILY",
    "SATURATING_ACTIVATIONS",
    "TRANSPARENT_LAYERS",
    "LayerGraph",
    "activation_name",
    "all_layers",
    "count_weight_layers",
    "initializer_family",
    "initializer_name",
    "is_weight_layer",
    "kernel_initializers",
    "own_activation",
    "recurrent_layer",
    "visible_layers",
]

RELU_FAMILY = frozenset(
    {
        "relu", "relu6", "leaky_relu", "prelu", "elu", "celu", "gelu", "silu", "mish",
        "softplus", "hard_silu", "sparse_plus", "squareplus",
    }
)
HARD_ZERO_ACTIVATIONS = frozenset({"relu", "relu6"})
SATURATING_ACTIVATIONS = frozenset({"sigmoid", "tanh", "hard_sigmoid", "hard_tanh", "softsign"})

TRANSPARENT_LAYERS = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.Dropout,
    keras.layers.AlphaDropout,
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.Flatten,
    keras.layers.Reshape,
)
MERGE_LAYERS = (
    keras.layers.Add,
    keras.layers.Average,
    keras.layers.Concatenate,
    keras.layers.Dot,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Multiply,
    keras.layers.Subtract,
)


def activation_name(fn):
    """The name of an activation function as the rules compare it (`"linear"` for None,
    Keras's aliases `swish` / `hard_swish` as `silu` / `hard_silu`)."""
    if fn is None:
        return "linear"
    name = None
    try:
        name = keras.activations.serialize(fn)
    except Exception:  # custom callables that Keras cannot serialize
        name = None
    if isinstance(name, dict):
        name = name.get("config", name.get("class_name"))
        if isinstance(name, dict):
            name = name.get("name")
    if not isinstance(name, str):
        name = getattr(fn, "__name__", type(fn).__name__)
    name = name.lower()
    return {"swish": "silu", "hard_swish": "hard_silu"}.get(name, name)


def is_weight_layer(layer):
    """Whether `layer` is a plain layer with a kernel (Dense, convolutions, ...).

    Recurrent layers and nested models are not: they are checked by their own rules.
    """
    return (
        isinstance(layer, keras.layers.Layer)
        and not isinstance(layer, keras.Model)
        and not isinstance(layer, keras.layers.RNN)
        and bool(kernel_initializers(layer))
    )


def kernel_initializers(layer):
    """The `(argument, initializer)` pairs of the kernels a layer multiplies its input by.

    `kernel_initializer` for Dense and convolutions, `depthwise_initializer` and
    `pointwise_initializer` for depthwise and separable convolutions.
    """
    names = ("kernel_initializer", "depthwise_initializer", "pointwise_initializer")
    return [
        (name, getattr(layer, name)) for name in names
        if getattr(layer, name, None) is not None
    ]


def recurrent_layer(layer):
    """The recurrent layer `layer` is or wraps (`Bidirectional`), or None."""
    if isinstance(layer, keras.layers.Bidirectional):
        layer = layer.forward_layer
    return layer if isinstance(layer, keras.layers.RNN) else None


def own_activation(layer):
    """The activation a layer applies itself, or None if it is not an activation."""
    if isinstance(layer, keras.layers.LeakyReLU):
        return "leaky_relu"
    if isinstance(layer, keras.layers.PReLU):
        return "prelu"
    if isinstance(layer, keras.layers.ELU):
        return "elu"
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    if isinstance(layer, keras.layers.ReLU):
        if getattr(layer, "negative_slope", 0.0):
            return "leaky_relu"
        return "relu6" if getattr(layer, "max_value", None) == 6 else "relu"
    if isinstance(layer, keras.layers.Activation) or is_weight_layer(layer):
        activation = getattr(layer, "activation", None)
        return activation_name(activation) if activation is not None else "linear"
    return None


def initializer_family(initializer):
    """`"glorot"`, `"he"`, `"lecun"` or `"variance_scaling"` for a `VarianceScaling`
    initializer by its scale and mode; any other initializer's class name."""
    if isinstance(initializer, keras.initializers.VarianceScaling):
        scale, mode = float(initializer.scale), initializer.mode
        if mode == "fan_avg" and math.isclose(scale, 1.0):
            return "glorot"
        if mode == "fan_in" and math.isclose(scale, 2.0):
            return "he"
        if mode == "fan_in" and math.isclose(scale, 1.0):
            return "lecun"
        return "variance_scaling"
    return type(initializer).__name__


def initializer_name(initializer):
    """An initializer's class name, with scale and mode for `VarianceScaling`, for messages."""
    name = type(initializer).__name__
    if isinstance(initializer, keras.initializers.VarianceScaling):
        name += f"(scale={initializer.scale:g}, mode={initializer.mode!r})"
    return name


class LayerGraph:
    """The layers of one model level in topological order, with their connections.

    Functional models (and Sequential ones, through their functional graph) give
    the exact graph (`exact` is True); other models are read as a chain of
    `model.layers`.

    Attributes:
        layers: the operations (layers or `keras.ops` calls) in topological order.
        successors, predecessors: `id(op)` -> list of the ops it feeds / is fed by.
        nodes: `id(op)` -> the graph's call nodes of that op.
        outputs: the ids of the ops producing the model's outputs.
    """

    def __init__(self, model):
        self.model = model
        self.layers = []
        self.successors = {}
        self.predecessors = {}
        self.nodes = {}
        self.outputs = set()
        nodes = _graph_walk.graph_nodes(model)
        self.exact = nodes is not None
        if self.exact:
            self._from_nodes(nodes)
            self.outputs = {id(op) for op in _graph_walk.graph_output_operations(model)}
        else:
            self._from_chain(visible_layers(model))

    def _from_chain(self, chain):
        self.layers = chain
        for op in chain:
            self.successors[id(op)] = []
            self.predecessors[id(op)] = []
        for a, b in zip(chain, chain[1:]):
            self.successors[id(a)].append(b)
            self.predecessors[id(b)].append(a)
        if chain:
            self.outputs.add(id(chain[-1]))

    def _from_nodes(self, nodes):
        node_ids = {id(node) for node in nodes}  # input layers are not among them
        for node in nodes:
            op = node.operation
            if id(op) not in self.nodes:
                self.layers.append(op)
                self.successors.setdefault(id(op), [])
                self.predecessors.setdefault(id(op), [])
            self.nodes.setdefault(id(op), []).append(node)
            for parent in node.parent_nodes:
                if id(parent) not in node_ids:
                    continue
                parent_op = parent.operation
                if op not in self.successors.setdefault(id(parent_op), []):
                    self.successors[id(parent_op)].append(op)
                if parent_op not in self.predecessors[id(op)]:
                    self.predecessors[id(op)].append(parent_op)

    def effective_activation(self, layer):
        """The activation applied to a layer's output, looking through BN/Dropout."""
        own = own_activation(layer)
        if own not in (None, "linear"):
            return own
        found, frontier, visited = set(), list(self.successors.get(id(layer), [])), set()
        while frontier:
            op = frontier.pop()
            if id(op) in visited:
                continue
            visited.add(id(op))
            activation = own_activation(op)
            if activation is not None and not is_weight_layer(op):
                found.add(activation)
            elif isinstance(op, TRANSPARENT_LAYERS):
                frontier.extend(self.successors.get(id(op), []))
            else:
                found.add("linear")
        if len(found) == 1:
            return found.pop()
        return own or "linear"

    def is_output(self, layer):
        """Whether the layer's output reaches a model output through no other weights."""
        frontier, visited = [layer], set()
        while frontier:
            op = frontier.pop()
            if id(op) in visited:
                continue
            visited.add(id(op))
            passes = op is layer or isinstance(op, TRANSPARENT_LAYERS) or (
                own_activation(op) is not None and not is_weight_layer(op)
            )
            if not passes:  # a layer with weights in between: not through it
                continue
            if id(op) in self.outputs:
                return True
            frontier.extend(self.successors.get(id(op), []))
        return False

    def is_skip(self, op):
        """Whether `op` joins several branches (a merge layer or a `keras.ops` call)."""
        if isinstance(op, MERGE_LAYERS):
            return True
        if isinstance(op, keras.layers.Layer):
            return False
        return len(self.predecessors.get(id(op), [])) >= 2

    def first_node_input(self, layer):
        """The first symbolic input of the layer's first call in the graph, or None."""
        tensors = self.nodes[id(layer)][0].arguments.keras_tensors
        return tensors[0] if tensors else None

    def first_node_output(self, layer):
        """The first symbolic output of the layer's first call in the graph."""
        return self.nodes[id(layer)][0].outputs[0]


def _is_custom_container(layer):
    """A layer of the user's own that only holds other layers (a block of a subclassed model)."""
    return (
        not isinstance(layer, keras.Model)
        and not type(layer).__module__.startswith("keras.")
        and not is_weight_layer(layer)
        and bool(_graph_walk.sublayers(layer))
    )


def _layer_children(root, into_models):
    """What the layer view walks into: `root`, the user's own container layers and,
    with `into_models`, nested models."""
    def children(layer):
        if layer is root or _is_custom_container(layer) or (
                into_models and isinstance(layer, keras.Model)):
            return _graph_walk.sublayers(layer)
        return None
    return children


def _layers(model, into_models):
    steps = _graph_walk.walk(model, _layer_children(model, into_models), include_root=False)
    return [step.layer for step in steps if not _is_custom_container(step.layer)]


def visible_layers(model):
    """The layers of one model level in the order they were assigned, looking into the
    user's own container layers (not into nested models: those are checked as bases).

    This is how a subclassed model is read: as the chain of the layers it holds.
    """
    return _layers(model, into_models=False)


def all_layers(model):
    """Every layer below `model`, nested models and the user's container layers included
    (depth first)."""
    return _layers(model, into_models=True)


def count_weight_layers(model):
    """The number of layers with a kernel below `model`, nested models included."""
    return sum(is_weight_layer(layer) for layer in all_layers(model))
