"""What `diagnose(model, x, y)` and `TrainingMonitor` measure, and how.

`measure(model, batches)` runs a few batches through the model in training mode and
returns a `Measurement`: per layer the outputs' mean and std, dead ReLU units,
saturated sigmoid/tanh outputs, gradient norms (`_gradients`), NaN/Inf, and the
inputs of the first layer with weights. The model is left exactly as it was.
Activations are read through a probe model over the layers' outputs (Keras's public
model API) for functional and Sequential models, and layer by layer for a subclassed
model whose `layers` form a chain.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
from keras import ops

from keras_recipes import _batches
from keras_recipes import _keras_internals as internals
from keras_recipes import _training_state as state
from keras_recipes.diagnostics._gradients import gradients, logits_loss
from keras_recipes.diagnostics._graph import (
    HARD_ZERO_ACTIVATIONS,
    SATURATING_ACTIVATIONS,
    is_weight_layer,
    own_activation,
    recurrent_layer,
)
from keras_recipes.diagnostics._seen import layer_graph
from keras_recipes.diagnostics.report import LayerStatistics
from keras_recipes.optimizers.span import one_whole_cycle

__all__ = ["Measurement", "measure", "sanity_training"]

_SIGMOID_SATURATION = 0.01  # output within this of 0 or 1
_TANH_SATURATION = 0.99  # |output| above this


@dataclasses.dataclass
class Measurement:
    """What `measure` found on a list of batches.

    Attributes:
        layers: list of `LayerStatistics`.
        gradient_norm_ratio: float or None, the RMS gradient of the first layer
            with weights divided by that of the last one.
        input_statistics: dict or None, the inputs of the first layer with weights.
        initial_losses: list of float, the loss of each batch before any training.
        batch_size: int or None, the batch size of the first batch.
        notes: list of str, what could not be measured.
        losses: list of float, the losses of the sanity training (filled by `diagnose`).
    """

    layers: list
    gradient_norm_ratio: float | None
    input_statistics: dict | None
    initial_losses: list
    batch_size: int | None = None
    notes: list = dataclasses.field(default_factory=list)
    losses: list = dataclasses.field(default_factory=list)


class _Accumulator:
    """Streaming statistics of one layer's output over several batches."""

    def __init__(self, activation):
        self.activation = activation
        self.count = 0
        self.total = 0.0
        self.total_sq = 0.0
        self.nonfinite = 0
        self.alive = None  # per unit: non-zero somewhere
        self.saturated = 0

    def update(self, values):
        values = np.asarray(values, dtype="float64")
        finite = np.isfinite(values)
        self.nonfinite += int(values.size - finite.sum())
        clean = np.where(finite, values, 0.0)
        self.count += int(finite.sum())
        self.total += float(clean.sum())
        self.total_sq += float((clean**2).sum())
        if self.activation in HARD_ZERO_ACTIVATIONS and values.ndim >= 2:
            alive = np.any(values.reshape(-1, values.shape[-1]) != 0, axis=0)
            self.alive = alive if self.alive is None else self.alive | alive
        if self.activation in ("sigmoid", "hard_sigmoid"):
            self.saturated += int(
                np.sum((clean < _SIGMOID_SATURATION) | (clean > 1 - _SIGMOID_SATURATION))
            )
        elif self.activation in SATURATING_ACTIVATIONS:
            self.saturated += int(np.sum(np.abs(clean) > _TANH_SATURATION))

    def result(self, name):
        mean = self.total / self.count if self.count else math.nan
        variance = self.total_sq / self.count - mean**2 if self.count else math.nan
        std = math.sqrt(max(variance, 0.0)) if self.count else math.nan
        dead = None
        if self.alive is not None:
            dead = float(1.0 - self.alive.mean())
        saturated = None
        if self.activation in SATURATING_ACTIVATIONS:
            saturated = self.saturated / self.count if self.count else math.nan
        return LayerStatistics(
            layer=name,
            activation=self.activation,
            mean=mean,
            std=std,
            dead_fraction=dead,
            saturated_fraction=saturated,
            nonfinite=self.nonfinite,
        )


def _has_weights(layer):
    """Layers with weights measured as one unit: kernels, recurrent layers, nested models."""
    return (
        is_weight_layer(layer)
        or isinstance(layer, keras.Model)
        or recurrent_layer(layer) is not None
    )


def _is_numeric(array):
    # bfloat16 (ml_dtypes, under a mixed_bfloat16 policy) is not a numpy number type.
    return array.dtype.kind in "biuf" or "float" in array.dtype.name


def _first_weight_layer(graph):
    for layer in graph.layers:
        if _has_weights(layer):
            return layer
    return None


def _probe_targets(graph):
    """Layers whose outputs are measured: layers with weights, activations, nested models."""
    targets = []
    for layer in graph.layers:
        if not isinstance(layer, keras.layers.Layer):
            continue
        if _has_weights(layer):
            targets.append(layer)
        elif own_activation(layer) is not None:
            targets.append(layer)
    return targets


def _measure_activations(model, graph, batches, cache):
    """Per-layer statistics of the outputs in training mode, plus the inputs' statistics."""
    targets = _probe_targets(graph)
    first = _first_weight_layer(graph)
    accumulators = {
        id(layer): _Accumulator(None if isinstance(layer, keras.Model) else own_activation(layer))
        for layer in targets
    }
    input_values = []
    if graph.exact:
        outputs = [graph.first_node_output(layer) for layer in targets]
        first_input = graph.first_node_input(first) if first is not None else None
        if first_input is not None:
            outputs.append(first_input)
        probe = cache.get("probe")
        if probe is None:
            probe = cache["probe"] = keras.Model(
                internals.functional_graph(graph.model).input, outputs)
        for bx, _, _ in batches:
            values = probe(bx, training=True)
            values = list(values) if isinstance(values, (list, tuple)) else [values]
            if first_input is not None:
                input_values.append(ops.convert_to_numpy(values.pop()))
            for layer, value in zip(targets, values):
                accumulators[id(layer)].update(ops.convert_to_numpy(value))
    else:
        # A chain of layers (e.g. a subclassed model): run them one by one.
        for bx, _, _ in batches:
            value = bx
            for layer in graph.layers:
                if layer is first:
                    input_values.append(ops.convert_to_numpy(value))
                value = layer(value, training=True)
                if id(layer) in accumulators:
                    accumulators[id(layer)].update(ops.convert_to_numpy(value))
    stats = [accumulators[id(layer)].result(layer.name) for layer in targets]
    input_statistics = None
    if input_values and all(_is_numeric(a) for a in input_values):
        data = np.concatenate([a.reshape(-1, a.shape[-1]) for a in input_values]).astype(
            "float64"
        )
        data = data[np.all(np.isfinite(data), axis=1)]
        if data.size:
            mean, std = data.mean(axis=0), data.std(axis=0)
            rms = np.sqrt(mean**2 + std**2)
            input_statistics = {
                "layer": first.name,
                "max_rms": float(rms.max()),
                "max_abs_mean": float(np.abs(mean).max()),
                "max_std": float(std.max()),
                "num_features": int(data.shape[1]),
            }
    return stats, input_statistics


def _measure_gradients(model, graph, batches):
    """Per-layer gradient norm and RMS averaged over the batches; the first loss."""
    layers = [
        layer for layer in graph.layers
        if _has_weights(layer) and layer.trainable_weights
    ]
    index = {id(variable): i for i, variable in enumerate(model.trainable_variables)}
    norms = {id(layer): [] for layer in layers}
    sizes = {id(layer): sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
             for layer in layers}
    nonfinite = {id(layer): 0 for layer in layers}
    losses = []
    recorder = logits_loss(model, graph)
    for bx, by, bsw in batches:
        loss, grads = gradients(model, bx, by, bsw, recorder)
        losses.append(loss)
        for layer in layers:
            total = 0.0
            for weight in layer.trainable_weights:
                g = grads[index[id(weight)]] if id(weight) in index else None
                if g is None:
                    continue
                nonfinite[id(layer)] += int(np.size(g) - np.isfinite(g).sum())
                total += float(np.sum(np.square(g)))
            norms[id(layer)].append(math.sqrt(total) if math.isfinite(total) else math.inf)
    result = {}
    for layer in layers:
        norm = float(np.mean(norms[id(layer)])) if norms[id(layer)] else math.nan
        result[id(layer)] = (
            norm,
            norm / math.sqrt(max(sizes[id(layer)], 1)),
            nonfinite[id(layer)],
        )
    return layers, result, losses


def sanity_training(model, batches, num_steps):
    """The losses of `num_steps` training steps cycling over `batches`; the model is restored.

    A recipe model's 1cycle runs whole over the steps, as in a `fit` of that many steps.
    """
    losses = []
    with state.preserved_training_state(model), one_whole_cycle(model, num_steps):
        for step in range(num_steps):
            bx, by, bsw = batches[step % len(batches)]
            logs = model.train_on_batch(bx, by, sample_weight=bsw, return_dict=True)
            losses.append(state.loss_value(logs, "diagnose"))
            if not math.isfinite(losses[-1]):
                break
    return losses


def measure(model, batches, graph=None, cache=None):
    """Layer statistics and gradient ratio of `model` on `batches`; the model is unchanged.

    Used by `diagnose` and by `keras_recipes.callbacks.TrainingMonitor`.

    Args:
        model: a built `keras.Model` with a compiled loss.
        batches: list of `(x, y, sample_weight)` tuples.
        graph: the model's `LayerGraph`, or None to read it (`_seen.layer_graph`).
        cache: optional dict that keeps the probe model between calls.

    Returns:
        A `Measurement` (its `losses` empty: no training happens here).
    """
    graph = graph or layer_graph(model)
    cache = {} if cache is None else cache
    notes = []
    with state.preserved_model_state(model):
        if graph.exact or internals.is_graph_model(graph.model):
            stats, input_stats = _measure_activations(model, graph, batches, cache)
        else:
            stats, input_stats = [], None
            notes.append(
                "activation statistics need a Functional or Sequential model; only gradients "
                "were measured"
            )
    with state.preserved_model_state(model):
        layers, norms, losses = _measure_gradients(model, graph, batches)
    by_name = {s.layer: s for s in stats}
    for layer in layers:
        norm, rms, nonfinite = norms[id(layer)]
        s = by_name.get(layer.name)
        if s is None:
            s = LayerStatistics(layer=layer.name, activation=own_activation(layer))
            stats.append(s)
            by_name[layer.name] = s
        s.gradient_norm, s.gradient_rms = norm, rms
        s.nonfinite += nonfinite
    ratio = None
    if len(layers) >= 2:
        first, last = norms[id(layers[0])][1], norms[id(layers[-1])][1]
        if math.isfinite(first) and math.isfinite(last) and last > 0:
            ratio = first / last
        elif not math.isfinite(first):
            ratio = math.inf
    return Measurement(
        layers=stats,
        gradient_norm_ratio=ratio,
        input_statistics=input_stats,
        initial_losses=losses,
        batch_size=_batches.batch_size_of(batches[0]) if batches else None,
        notes=notes,
    )
