"""The loss gradient of one batch on every backend, as `diagnose` measures it.

`gradients(model, x, y, sample_weight)` returns the unscaled training loss and its
gradient with respect to `model.trainable_variables` (`tf.GradientTape`,
`jax.value_and_grad`, `torch.autograd.grad`), without assigning anything to the
model. A Keras crossentropy on a softmax/sigmoid output is computed from the logits
(`logits_loss`), so that saturated outputs do not read as "no gradient".
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_recipes import _keras_internals as internals
from keras_recipes.diagnostics._graph import activation_name

__all__ = ["LogitsLoss", "gradients", "logits_loss"]

# Keras crossentropies that TensorFlow's backend computes from the logits of a
# softmax/sigmoid output: loss function -> (output activation, from-logits class).
_LOGIT_CROSSENTROPIES = (
    (
        keras.losses.sparse_categorical_crossentropy,
        keras.losses.SparseCategoricalCrossentropy,
        "softmax",
    ),
    (keras.losses.categorical_crossentropy, keras.losses.CategoricalCrossentropy, "softmax"),
    (keras.losses.binary_crossentropy, keras.losses.BinaryCrossentropy, "sigmoid"),
)


class LogitsLoss:
    """The model's crossentropy computed from the logits of its softmax/sigmoid output layer.

    Keras's TensorFlow backend computes `crossentropy(y, softmax(z))` from the
    logits `z` (the softmax output carries them); its JAX and PyTorch
    backends compute it from the probabilities clipped to
    `[epsilon, 1 - epsilon]`. The two agree, in value and gradient, until the
    output saturates; then the clipped version has a gradient of exactly zero,
    which would hide exploding activations behind "no gradient at all". The
    gradient statistics therefore use the logits on every backend.
    """

    def __init__(self, layer, loss):
        self.layer = layer
        self.loss = loss
        self.logits = None

    def __enter__(self):
        original = self.original = self.layer.activation

        def recording_activation(x):
            self.logits = x
            self.output = original(x)
            return self.output

        self.logits = self.output = None
        self.layer.activation = recording_activation
        return self

    def __exit__(self, *exc):
        self.layer.activation = self.original
        return False


def logits_loss(model, graph):
    """A `LogitsLoss` when the model's loss is a Keras crossentropy on a softmax/sigmoid
    output layer (one output, no loss weights, `compute_loss` not overridden), else None."""
    if type(model).compute_loss is not keras.Model.compute_loss:
        return None
    if internals.compile_loss_weights(model) is not None:
        return None
    loss = getattr(model, "loss", None)
    if isinstance(loss, (list, tuple)) and len(loss) == 1:
        loss = loss[0]
    elif isinstance(loss, dict) and len(loss) == 1:
        loss = next(iter(loss.values()))
    if isinstance(loss, str):
        try:
            loss = keras.losses.get(loss)
        except (ValueError, TypeError):
            return None
    config, activation, logits_class = None, None, None
    for fn, cls, act in _LOGIT_CROSSENTROPIES:
        if loss is fn:
            config, activation, logits_class = {}, act, cls
        elif type(loss) is cls:
            config = loss.get_config()
            if config.get("from_logits"):
                return None
            activation, logits_class = act, cls
    if logits_class is None:
        return None
    outputs = [layer for layer in graph.layers if id(layer) in graph.outputs]
    if len(outputs) != 1 or len(keras.tree.flatten(getattr(model, "outputs", None) or [0])) != 1:
        return None
    layer = outputs[0]
    if not isinstance(layer, keras.layers.Layer) or isinstance(layer, keras.Model):
        return None
    if not callable(getattr(layer, "activation", None)):
        return None
    if activation_name(layer.activation) != activation:
        return None
    return LogitsLoss(layer, logits_class.from_config({**config, "from_logits": True}))


def _forward_loss(model, x, y, sample_weight, recorder):
    """The training-mode loss of one batch, inside the caller's autodiff context."""
    if recorder is None:
        y_pred = model(x, training=True)
        return internals.compute_training_loss(model, x, y, y_pred, sample_weight)
    with recorder:
        y_pred = model(x, training=True)
    if (
        recorder.logits is None
        or recorder.output is not y_pred
        or internals.get_keras_mask(y_pred) is not None
    ):
        # The recorded softmax is not what the model returns (or the output is
        # masked): use the model's own loss.
        return internals.compute_training_loss(model, x, y, y_pred, sample_weight)
    loss = recorder.loss(y, recorder.logits, sample_weight=sample_weight)
    for extra in model.losses:  # regularization and `add_loss` terms, as compute_loss adds
        loss = loss + ops.cast(ops.sum(extra), loss.dtype)
    return loss


def gradients(model, x, y, sample_weight, recorder=None):
    """Loss and gradients w.r.t. `model.trainable_variables` for one batch (any backend).

    The loss is the unscaled training loss (no loss scaling), computed in
    training mode; nothing is assigned to the model's variables on JAX, and
    on PyTorch the variables' `.grad` fields are left untouched.
    """
    backend = keras.backend.backend()
    variables = model.trainable_variables
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = _forward_loss(model, x, y, sample_weight, recorder)
        grads = tape.gradient(loss, [variable.value for variable in variables])
    elif backend == "jax":
        import jax

        def loss_fn(values):
            # Reads the trainable variables from `values`; every assignment
            # (BatchNorm statistics, seed states) stays inside the scope.
            mapping = list(zip(variables, values))
            with keras.StatelessScope(state_mapping=mapping, collect_losses=True):
                return _forward_loss(model, x, y, sample_weight, recorder)

        loss, grads = jax.value_and_grad(loss_fn)([variable.value for variable in variables])
    elif backend == "torch":
        import torch

        with torch.enable_grad():
            loss = _forward_loss(model, x, y, sample_weight, recorder)
            parameters = [variable.value for variable in variables]
            if parameters and loss.requires_grad:
                grads = torch.autograd.grad(loss, parameters, allow_unused=True)
            else:
                grads = [None] * len(parameters)
        loss = loss.detach()
    else:
        raise NotImplementedError(
            f"diagnose() measures gradients on the TensorFlow, JAX and PyTorch backends; "
            f"the current backend is {backend!r}."
        )
    grads = [
        None if g is None else np.asarray(ops.convert_to_numpy(g), dtype="float64") for g in grads
    ]
    return float(np.asarray(ops.convert_to_numpy(loss))), grads
