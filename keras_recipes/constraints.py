"""Max-norm regularization applied to an existing model, with the right axes per layer.

Max-norm (Srivastava et al., 2014) bounds the norm of each unit's *incoming*
weight vector: `||w|| <= max_value`, re-projected after every optimizer step.
`keras.constraints.MaxNorm` does the projection but leaves the choice of axes to
the user, and its default `axis=0` is only right for `Dense`: on a `Conv2D`
kernel of shape `(rows, cols, in, filters)` it bounds columns of the kernel that
mix units. `apply_max_norm` picks the axes of each layer type's kernel layout.
"""

from __future__ import annotations

import re

import keras

from keras_recipes import _graph_walk
from keras_recipes import _validation as v

__all__ = ["apply_max_norm"]

_ON_UNSUPPORTED = ("raise", "skip")


# --------------------------------------------------------------------------- #
# Kernel layouts
# --------------------------------------------------------------------------- #
def _einsum_axes(equation):
    """Kernel axes summed into each output unit of an `EinsumDense` equation."""
    match = re.fullmatch(r"\s*([\w.]*)\s*,\s*([\w.]*)\s*->\s*([\w.]*)\s*", equation)
    if not match or "." in match.group(2):
        return None
    kernel, output = match.group(2), match.group(3)
    axes = tuple(i for i, letter in enumerate(kernel) if letter not in output)
    return axes or None


def _rnn_specs(cell):
    """`(constraint attribute, variable attribute, axes)` of a recurrent cell."""
    kernel_size = getattr(cell, "kernel_size", None)
    if kernel_size is not None:  # ConvLSTM cells: (*kernel_size, in, 4 * filters)
        axes = tuple(range(len(kernel_size) + 1))
    else:  # SimpleRNN, LSTM, GRU cells: (in, gates * units)
        axes = (0,)
    return [
        (cell, "kernel_constraint", "kernel", axes),
        (cell, "recurrent_constraint", "recurrent_kernel", axes),
    ]


def _weight_specs(layer):
    """The constrainable kernels of `layer`.

    Returns:
        A list of `(owner, constraint_attribute, variable_attribute, axes)`;
        empty for a layer without incoming-weight kernels (BatchNormalization,
        Embedding, pooling...), or None for a layer whose kernel layout is
        unknown.
    """
    if getattr(layer, "lora_enabled", False) or getattr(layer, "quantization_mode", None):
        return None
    layers = keras.layers
    if isinstance(layer, layers.Dense):  # (in, units)
        return [(layer, "kernel_constraint", "kernel", (0,))]
    if isinstance(layer, layers.EinsumDense):
        axes = _einsum_axes(layer.equation)
        return None if axes is None else [(layer, "kernel_constraint", "kernel", axes)]
    if isinstance(layer, (layers.SeparableConv1D, layers.SeparableConv2D)):
        # depthwise (*kernel_size, in, multiplier); pointwise (1.., in * multiplier, filters)
        rank = layer.rank
        return [
            (layer, "depthwise_constraint", "depthwise_kernel", tuple(range(rank))),
            (layer, "pointwise_constraint", "pointwise_kernel", tuple(range(rank + 1))),
        ]
    if isinstance(layer, (layers.DepthwiseConv1D, layers.DepthwiseConv2D)):
        # (*kernel_size, in, multiplier): each output channel sees one input channel
        return [(layer, "depthwise_constraint", "kernel", tuple(range(layer.rank)))]
    if isinstance(layer, (layers.Conv1DTranspose, layers.Conv2DTranspose,
                          layers.Conv3DTranspose)):
        # (*kernel_size, filters, in)
        rank = layer.rank
        return [(layer, "kernel_constraint", "kernel", tuple(range(rank)) + (rank + 1,))]
    if isinstance(layer, (layers.Conv1D, layers.Conv2D, layers.Conv3D)):
        # (*kernel_size, in / groups, filters), whatever the data_format
        return [(layer, "kernel_constraint", "kernel", tuple(range(layer.rank + 1)))]
    if isinstance(layer, (layers.SimpleRNN, layers.LSTM, layers.GRU, layers.ConvLSTM1D,
                          layers.ConvLSTM2D, layers.ConvLSTM3D)):
        return _rnn_specs(layer.cell)
    if _has_kernel(layer):
        return None
    return []


def _has_kernel(layer):
    """Whether a layer of unknown type owns a weight that looks like a kernel."""
    return any("kernel" in variable.path.rsplit("/", 1)[-1] for variable in layer.weights)


def _children(layer):
    """Layers inside containers whose config serializes their sublayers."""
    if isinstance(layer, keras.Model) and hasattr(layer, "layers"):
        try:
            return list(layer.layers)
        except Exception:  # a subclassed model with no tracked layers
            return []
    if isinstance(layer, keras.layers.Bidirectional):
        return [layer.forward_layer, layer.backward_layer]
    if isinstance(layer, keras.layers.TimeDistributed):
        return [layer.layer]
    return None


def _tree(layer):
    """`(layer, is_container, frozen)` for `layer` and every layer under it, parents first.

    Containers (see `_children`) are expanded; every other layer is a leaf, even
    one with sublayers of its own: an LSTM's cell is constrained through the LSTM,
    and a custom layer is constrained as a whole or not at all. `frozen` says
    whether the layer or a container above it is not trainable.

    This is not a walk of the model's graph: a constraint belongs to every layer
    that owns a kernel, whether or not it is a node of a graph (the two layers of a
    `Bidirectional`, the layers of a subclassed model), and neither order nor
    connections matter.
    """
    return _graph_walk.walk(layer, _children)


def _leaves(layer):
    """All leaf layers under `layer`, containers expanded, without duplicates."""
    out = []
    for node, is_container, _ in _tree(layer):
        if not is_container and all(existing is not node for existing in out):
            out.append(node)
    return out


def _containers(layer, name=None):
    """The containers under `layer` (itself included), or those called `name`."""
    return [node for node, is_container, _ in _tree(layer)
            if is_container and (name is None or node.name == name)]


def _frozen_ids(layer):
    """Ids of leaf layers that are frozen or under a non-trainable container."""
    return {id(node) for node, is_container, frozen in _tree(layer)
            if frozen and not is_container}


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #
def apply_max_norm(
    model,
    max_value=2.0,
    *,
    exclude=None,
    trainable_only=True,
    on_unsupported="raise",
):
    """Puts a max-norm constraint on every kernel of an existing model, in place.

    Each unit's incoming weight vector is bounded, `||w|| <= max_value`, and
    re-projected by the optimizer after every update, with the axes that are
    right for each layer type's kernel layout (`keras.constraints.MaxNorm`, whose
    default `axis=0` is only right for `Dense`):

    | layer | kernel shape | norm over axes (one norm per) |
    |---|---|---|
    | `Dense` | `(in, units)` | `0` (unit) |
    | `EinsumDense` | per equation | the kernel axes absent from the output |
    | `Conv1D/2D/3D` | `(*kernel_size, in / groups, filters)` | all but the last (filter) |
    | `Conv1D/2D/3DTranspose` | `(*kernel_size, filters, in)` | all but `-2` (filter) |
    | `DepthwiseConv1D/2D` | `(*kernel_size, in, multiplier)` | the spatial axes (output channel) |
    | `SeparableConv1D/2D` | depthwise and pointwise kernels | as depthwise and `Conv` |
    | `SimpleRNN`, `LSTM`, `GRU` | `(in, gates * units)` and recurrent | `0`, for each kernel |
    | `ConvLSTM1D/2D/3D` | `(*kernel_size, in, 4 * filters)` and recurrent | all but the last |

    Nested models, `Bidirectional` and `TimeDistributed` are searched. Layers
    without incoming-weight kernels (BatchNormalization, Embedding, PReLU,
    pooling, ...) are left alone; biases are never constrained.

    The constraint is stored both on the layer (`kernel_constraint` or its
    equivalent, so that it is saved with the model) and on the existing kernel
    variable (Keras 3 optimizers read `variable.constraint` after each update, so
    changing the layer attribute of a built layer alone would do nothing). The
    model's compiled train function is reset so that the next `fit` uses it.
    Weights are projected from the next optimizer step on, not immediately.

    Args:
        model: a `keras.Model` or layer, built or not.
        max_value: float > 0, the bound on each unit's incoming weight norm.
            Defaults to `2.0`.
        exclude: list of str or None, names of layers (or nested models) to
            leave alone, for example the output layer. Defaults to `None`.
        trainable_only: bool, skip frozen layers (`trainable=False`, such as a
            frozen pretrained base): constraining them would clip pretrained
            kernels at the first step after unfreezing. Defaults to `True`.
        on_unsupported: str, what to do with a layer that has a kernel whose
            layout is unknown (a custom layer, `MultiHeadAttention`, a LoRA or
            quantized layer): `"raise"` or `"skip"` it. Defaults to `"raise"`.

    Returns:
        The same `model`, for chaining.

    Raises:
        TypeError: if `model` is not a Keras layer or model.
        ValueError: if `max_value <= 0`, `exclude` names an unknown layer, a
            layer already has another kind of constraint, or (with
            `on_unsupported="raise"`) a layer's kernel layout is unknown.

    Example:

    >>> import keras, keras_recipes
    >>> model = keras.Sequential([
    ...     keras.Input((28, 28, 1)),
    ...     keras.layers.Conv2D(8, 3, activation="relu"),
    ...     keras.layers.Flatten(),
    ...     keras.layers.Dense(10, activation="softmax", name="output"),
    ... ])
    >>> model = keras_recipes.constraints.apply_max_norm(model, 2.0, exclude=["output"])
    >>> model.layers[0].kernel_constraint.axis
    (0, 1, 2)
    >>> model.layers[-1].kernel_constraint is None
    True
    """
    if not isinstance(model, keras.layers.Layer):
        v.fail("model", model, "a keras.Model or keras.layers.Layer", error=TypeError)
    max_value = v.check_number("max_value", max_value, low=0, low_inclusive=False)
    v.check_bool("trainable_only", trainable_only)
    on_unsupported = v.check_choice("on_unsupported", on_unsupported, _ON_UNSUPPORTED)
    leaves = _leaves(model)
    excluded_ids = _excluded_ids(model, leaves, exclude)
    frozen_ids = _frozen_ids(model)

    planned = []
    for layer in leaves:
        if id(layer) in excluded_ids or (trainable_only and id(layer) in frozen_ids):
            continue
        specs = _weight_specs(layer)
        if specs is None:
            if on_unsupported == "skip":
                continue
            v.fail(
                "model",
                model.name,
                "a model whose kernels apply_max_norm knows how to constrain",
                hint=f"(layer `{layer.name}` of type {type(layer).__name__} has a kernel "
                "of unknown layout). Pass exclude=" + repr([layer.name])
                + ' or on_unsupported="skip", or set its constraint yourself',
            )
        for owner, attribute, _, _ in specs:
            current = getattr(owner, attribute, None)
            if current is not None and not isinstance(current, keras.constraints.MaxNorm):
                v.fail(
                    "model",
                    model.name,
                    "a model whose constrained layers have no constraint other than MaxNorm",
                    hint=f"(layer `{layer.name}` has {attribute}={type(current).__name__}, "
                    "which apply_max_norm would replace). Pass exclude="
                    + repr([layer.name]) + " or remove that constraint first",
                )
        planned.extend(specs)

    for owner, attribute, variable_attribute, axes in planned:
        constraint = keras.constraints.MaxNorm(max_value=max_value,
                                               axis=axes[0] if len(axes) == 1 else axes)
        setattr(owner, attribute, constraint)
        variable = _variable(owner, variable_attribute)
        if variable is not None:
            variable.constraint = constraint
    if planned and isinstance(model, keras.Model):
        # The compiled train step read the constraints when it was traced.
        model.train_function = None
    return model


def _variable(owner, name):
    """The built kernel variable `name` of `owner`, or None before build.

    The public attribute is the variable itself for every layer `_weight_specs`
    accepts (LoRA-enabled and quantized layers, whose `kernel` is computed, are
    refused there).
    """
    if not owner.built:
        return None
    value = getattr(owner, name, None)
    return value if isinstance(value, keras.Variable) else None


def _excluded_ids(model, leaves, exclude):
    if exclude is None:
        return set()
    if isinstance(exclude, str) or not isinstance(exclude, (list, tuple, set)):
        v.fail("exclude", exclude, "a list of layer names or None", error=TypeError)
    by_name = {}
    for layer in leaves:
        by_name.setdefault(layer.name, []).append(layer)
    containers = {container.name for container in _containers(model)}
    ids = set()
    valid = sorted(set(by_name) | set(containers))
    for name in exclude:
        if not isinstance(name, str):
            v.fail("exclude", exclude, "a list of layer names (str)", error=TypeError)
        if name not in by_name and name not in containers:
            v.fail("exclude", name, "the name of a layer of the model",
                   hint=v.did_you_mean(name, {n: n for n in valid}) or
                   f"Layer names: {valid}")
        for layer in by_name.get(name, []):
            ids.add(id(layer))
        if name in containers:
            for container in _containers(model, name):
                ids.update(id(leaf) for leaf in _leaves(container))
    return ids
