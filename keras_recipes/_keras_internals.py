"""The one module that touches Keras private attributes or imports `keras.src`.

Everything else in keras_recipes uses public Keras APIs only and calls the functions
here where no public API exists. Each function says which public API is missing.
Tested against the released Keras and against the nightly (see `.ci/run`), so that a
change inside Keras breaks here, in one place, and nowhere else.

Sections: optimizers; layers and models; the graph of a functional model; masks;
the state of `fit`.
"""

from __future__ import annotations

import contextlib

import keras

# Masks travel on tensors as a private attribute; Keras exports no accessor (3.15, nor the
# 3.16 nightly 3.16.0.dev2026102704).
from keras.src.backend.common.masking import get_keras_mask, set_keras_mask  # noqa: F401

# `keras.Model` is a factory that returns a `Functional` for inputs/outputs, but
# the class itself is not exported: without it, a functional model cannot be told
# from a subclassed one by type. (Not exported in the 3.16 nightly either.)
from keras.src.models.functional import Functional

__all__ = [
    "BuildsBeforeTracing",
    "Functional",
    "clear_initial_epoch",
    "component_optimizers",
    "default_optimizer",
    "dropout_noise_shape",
    "distribute_strategy",
    "flatten_layers",
    "functional_graph",
    "get_keras_mask",
    "graph_nodes",
    "graph_output_operations",
    "inbound_nodes",
    "initial_epoch",
    "inner_optimizer",
    "is_graph_model",
    "is_multi_optimizer",
    "learning_rate_object",
    "producer",
    "run_through_graph",
    "set_keras_mask",
    "set_initial_epoch",
    "set_learning_rate_object",
    "standardize_inputs",
    "symbolic_build",
    "takes_training_argument",
]

# --- optimizers -----------------------------------------------------------------------------

_MultiOptimizer = getattr(keras.optimizers, "MultiOptimizer", None)  # Keras >= 3.15


def inner_optimizer(optimizer):
    """The optimizer that owns the learning rate (unwraps `LossScaleOptimizer`).

    Public: `LossScaleOptimizer.inner_optimizer`; kept here so unwrapping is written once.
    """
    while hasattr(optimizer, "inner_optimizer"):
        optimizer = optimizer.inner_optimizer
    return optimizer


def is_multi_optimizer(optimizer):
    """Whether `optimizer` is a `keras.optimizers.MultiOptimizer`."""
    return _MultiOptimizer is not None and isinstance(optimizer, _MultiOptimizer)


def component_optimizers(optimizer):
    """The optimizers that update variables: those of a `MultiOptimizer`, or the
    (unwrapped) `optimizer` itself."""
    optimizer = inner_optimizer(optimizer)
    if is_multi_optimizer(optimizer):
        return [inner_optimizer(o) for o in optimizer.optimizers]
    return [optimizer]


def default_optimizer(optimizer):
    """A `MultiOptimizer`'s optimizer for the variables it does not map (the head);
    any other optimizer itself.

    Private: `MultiOptimizer._optimizer_map.default_optimizer`; no public accessor.
    """
    optimizer = inner_optimizer(optimizer)
    if not is_multi_optimizer(optimizer):
        return optimizer
    optimizer_map = getattr(optimizer, "_optimizer_map", None)
    default = getattr(optimizer_map, "default_optimizer", None)
    return inner_optimizer(default if default is not None else optimizer.optimizers[0])


def learning_rate_object(optimizer):
    """The learning rate as given: a `LearningRateSchedule`, or the variable holding a
    constant rate.

    Private: `optimizer._learning_rate`. The public `optimizer.learning_rate` evaluates
    a schedule at the current step, so it cannot say which schedule is attached.
    """
    return inner_optimizer(optimizer)._learning_rate


def set_learning_rate_object(optimizer, value):
    """Attaches `value` (a schedule or the saved variable) as the learning rate.

    Private: the public `learning_rate` setter refuses to replace a schedule
    (and to put one in place of a float rate).
    """
    inner_optimizer(optimizer)._learning_rate = value


# --- layers and models ----------------------------------------------------------------------


def flatten_layers(layer, include_self=True):
    """`layer` and every layer tracked inside it, parents before children.

    Private: `Layer._flatten_layers`; the public `Model.layers` lists only the top
    level, and plain layers expose no sublayers at all.
    """
    return list(layer._flatten_layers(include_self=include_self, recursive=True))


def functional_graph(model):
    """The `Functional` graph that runs `model`, or None for a subclassed model (or a
    Sequential model not built on an input shape).

    Private: `Sequential._functional`; Keras exports no way to reach the graph
    Sequential builds for itself.
    """
    if isinstance(model, Functional):
        return model
    if isinstance(model, keras.Sequential):
        graph = getattr(model, "_functional", None)
        return graph if isinstance(graph, Functional) else None
    return None


def is_graph_model(model):
    """Whether `model` is functional or Sequential: its graph can be read and replayed."""
    return isinstance(model, (Functional, keras.Sequential))


def takes_training_argument(operation):
    """Whether calling `operation` accepts a `training` argument (False for plain ops).

    Private: `Layer._call_context_args`; Keras exports no way to ask which call-context
    arguments (`training`, ...) a layer's `call` takes.
    """
    return "training" in getattr(operation, "_call_context_args", ())


def dropout_noise_shape(layer, inputs):
    """The `noise_shape` that dropout `layer` uses on `inputs` (None: one draw per unit).

    Private: `SpatialDropout1D/2D/3D._get_noise_shape`; those layers compute their
    noise shape from the input at call time and expose no public accessor. Other
    dropout layers return their public `noise_shape`.
    """
    get_noise_shape = getattr(layer, "_get_noise_shape", None)
    if get_noise_shape is not None:
        return get_noise_shape(inputs)
    return getattr(layer, "noise_shape", None)


def distribute_strategy(model):
    """The `tf.distribute.Strategy` in whose scope `model` was created (TensorFlow), or None.

    Private: `Model._distribute_strategy`; Keras exports no accessor (only
    `tf.distribute.get_strategy()` for the scope active now).
    """
    return getattr(model, "_distribute_strategy", None)


# --- the graph of a functional model --------------------------------------------------------


def graph_nodes(model):
    """The call nodes of `model`'s graph in topological order (inputs first), or None.

    Each node has the public attributes `operation`, `parent_nodes`,
    `arguments.keras_tensors` (its inputs) and `output_tensors`. Input layers are
    left out. Returns None when the model has no graph (see `functional_graph`).

    Private: `Functional._nodes_by_depth`; `Functional.operations` lists operations
    but not the nodes that connect them.
    """
    graph = functional_graph(model)
    if graph is None:
        return None
    by_depth = graph._nodes_by_depth
    nodes = []
    for depth in sorted(by_depth, reverse=True):
        for node in by_depth[depth]:
            if not isinstance(node.operation, keras.layers.InputLayer):
                nodes.append(node)
    return nodes


def producer(tensor):
    """The `(operation, node)` that computed a symbolic tensor.

    Private: `KerasTensor._keras_history` and `Operation._inbound_nodes`; no public
    API maps a symbolic tensor back to what produced it.
    """
    operation, node_index, _ = tensor._keras_history
    return operation, operation._inbound_nodes[node_index]


def inbound_nodes(layer):
    """The nodes at which `layer` was called, in order.

    Private: `Operation._inbound_nodes`.
    """
    return list(layer._inbound_nodes)


def graph_output_operations(model):
    """The operations producing `model`'s outputs, in output order (empty if no graph)."""
    graph = functional_graph(model)
    if graph is None:
        return []
    return [producer(tensor)[0] for tensor in keras.tree.flatten(graph.outputs)]


def standardize_inputs(graph, inputs):
    """`inputs` as the flat list `graph` expects (dicts by name, nested structures).

    Private: `Functional._standardize_inputs`; no public equivalent.
    """
    return graph._standardize_inputs(inputs)


def run_through_graph(graph, flat_inputs, operation_fn):
    """Replays `graph` on `flat_inputs`, calling `operation_fn(op)(*args, **kwargs)` in
    place of each operation.

    Private: `Functional._run_through_graph`; Keras has no public way to run a graph
    with some operations substituted (cloning rebuilds the layers instead).
    """
    return graph._run_through_graph(flat_inputs, operation_fn=operation_fn)


# --- the state of `fit` ---------------------------------------------------------------------


def initial_epoch(model):
    """The epoch `BackupAndRestore` resumes at in the current `fit`, or None.

    Private: `Model._initial_epoch`, set by `BackupAndRestore.on_train_begin`.
    """
    return getattr(model, "_initial_epoch", None)


def set_initial_epoch(model, epoch):
    """Makes the current `fit` start at `epoch`, as `BackupAndRestore.on_train_begin` does.

    Private: `Model._initial_epoch`, which `fit` reads after `on_train_begin`; our
    `AtomicBackupAndRestore` restores its own files and must resume the run the same way.
    """
    model._initial_epoch = epoch


def clear_initial_epoch(model):
    """Forgets a resumed epoch after `fit`.

    Works around a Keras 3.15 bug: `BackupAndRestore` leaves `model._initial_epoch`
    set, so every later `fit` of a resumed model starts at that epoch. Still needed with
    Keras 3.16: in the nightly (3.16.0.dev2026102704) `BackupAndRestore` is unchanged and
    `fit` still reads `self._initial_epoch or initial_epoch` without ever resetting it.
    """
    model._initial_epoch = None


def symbolic_build(model, batch):
    """Builds the model, its compiled loss/metrics and optimizer variables as the first
    `fit` would, on one batch of data.

    Private: `Trainer._symbolic_build`; the public `model.build` builds neither the
    optimizer nor the compiled metrics.
    """
    build = getattr(model, "_symbolic_build", None)
    if build is not None:
        build(data_batch=batch)
    elif not model.optimizer.built:  # pragma: no cover - older Keras
        model.optimizer.build(model.trainable_variables)


class BuildsBeforeTracing:
    """Mixed in before `keras.Model`: on TensorFlow, `fit` and `evaluate` build the
    optimizer and the compiled loss/metrics from the shapes of their data before tracing.

    Keras gets this wrong for speed: on TensorFlow without a distribution strategy it
    leaves them to the first trace of the train (or test) step, which then creates
    variables, so `tf.function` traces the step a second time (it must, to lift their
    initializers). A first `fit` of a small model took about twice as long. Keras already
    builds this way on JAX and under a `tf.distribute` strategy; so does this, elsewhere
    deferring to Keras (and to the first trace where the symbolic build fails, as Keras
    does). Private: overrides `TensorFlowTrainer._maybe_symbolic_build`.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is not None or not _training_state_unbuilt(self):
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        if data_batch is None:
            # The shapes of the batches, not a batch: taking one would start an extra pass
            # over the data (another shuffle order for the epochs, one more batch decoded).
            # Private: `TFEpochIterator._distributed_dataset`, the `tf.data.Dataset` it reads.
            dataset = getattr(iterator, "_distributed_dataset", None)
            data_batch = getattr(dataset, "element_spec", None)
        if data_batch is not None:
            # Where it fails, the first trace builds them instead, as Keras does.
            with contextlib.suppress(Exception):
                self._symbolic_build(data_batch=data_batch)
        return None


def _training_state_unbuilt(model):
    unbuilt = [getattr(model, "_compile_metrics", None), getattr(model, "_compile_loss", None),
               model.optimizer]
    return any(part is not None and not part.built for part in unbuilt)


# --- the compiled loss (used by diagnostics) ------------------------------------------------

__all__ += ["compile_loss_weights", "compute_training_loss"]


def compile_loss_weights(model):
    """The `loss_weights` given to `compile`, or None.

    Private: `Trainer._compile_loss._user_loss_weights`; `compile` keeps no public copy.
    """
    return getattr(getattr(model, "_compile_loss", None), "_user_loss_weights", None)


def compute_training_loss(model, x, y, y_pred, sample_weight):
    """The model's training loss of one batch, computed as `train_step` computes it.

    Private: `Trainer._compute_loss`, the wrapper that passes `training=True` to a
    `compute_loss` override that accepts it (and leaves it out for an older
    signature); the public `compute_loss` cannot be called that way for both.
    """
    compute = getattr(model, "_compute_loss", None)
    if compute is None:  # pragma: no cover - older Keras
        return model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
    return compute(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)


# --- the layers a subclassed model holds (used by diagnostics) ------------------------------

__all__ += ["child_layers"]


def child_layers(layer):
    """The layers tracked directly by `layer` (its attributes), in tracking order.

    Private: `Layer._flatten_layers(recursive=False)`; a plain `keras.layers.Layer`
    has no public list of its sublayers (`Model.layers` exists for models only).
    """
    return list(layer._flatten_layers(include_self=False, recursive=False))


# --- the batch counter of an accumulating optimizer (used by the LR finder) -----------------

__all__ += ["batch_iterations"]


def batch_iterations(optimizer):
    """The number of batches the optimizer has seen, as an int.

    Private: `optimizer._iterations`. With `gradient_accumulation_steps` the public
    `iterations` counts updates (batches // steps), while a `LearningRateSchedule`
    is evaluated at this batch counter.
    """
    return int(keras.ops.convert_to_numpy(inner_optimizer(optimizer)._iterations))


# --- callbacks ------------------------------------------------------------------------------

__all__ += ["tensorboard_profiles"]


def tensorboard_profiles(callback):
    """Whether a `keras.callbacks.TensorBoard` profiles batches (`profile_batch`).

    Private: `TensorBoard._should_trace`; the callback does not keep `profile_batch`
    under a public name (3.15, nor the 3.16 nightly).
    """
    return bool(getattr(callback, "_should_trace", True))


# --- attributes kept out of Keras's tracking ------------------------------------------------

__all__ += ["instance_attribute", "set_instance_attribute"]


def instance_attribute(obj, name, default=None):
    """The value stored on `obj` itself under `name` (not its class's), or `default`.

    Reads the instance `__dict__`: a layer whose `call` was replaced on the instance
    (MC Dropout's sampling) must be told from one using its class's, to restore it
    exactly; `getattr` cannot tell them apart.
    """
    return obj.__dict__.get(name, default)


def set_instance_attribute(obj, name, value):
    """Stores `value` on `obj` itself, past Keras's attribute tracking.

    Writes the instance `__dict__`: Keras layers and optimizers route `setattr`
    through a tracker that wraps and records what is assigned, and a scheduled
    hyperparameter (momentum / `beta_1` following a schedule) is read through a
    descriptor of the optimizer's class, which a plain assignment would call again.
    Keras has no public way to store an untracked value.
    """
    obj.__dict__[name] = value
