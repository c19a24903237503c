"""The compiled samplers: a model run with only its dropout layers sampling.

Both are `keras.Model`s around the user's model, compiled for `predict`, whose
outputs are the Monte-Carlo statistics (`mc_statistics`); the dropout layers
sample through seeded copies, so that the random state of the user's layers is
left alone.

- `GraphSampler` (Functional and Sequential models, the fast path) replays the
  model's graph, calling its own layers, never changing them: non-dropout layers
  with `training=False`, dropout layers through the copies. The layers before the
  first dropout layer run once per input; from there on every tensor is tiled
  `num_samples` times, so that all samples of a chunk are one batch of one call.
- `DropoutSampler` (any model, subclassed included) calls the model with
  `training=False` on its inputs tiled `num_samples` times, while the `call` of
  each dropout layer is replaced, for the duration of that call, by one that
  samples; BatchNormalization and every other layer stay in inference mode.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

import keras
import numpy as np
from keras import ops

from keras_recipes import _keras_internals as ki
from keras_recipes.layers import MCAlphaDropout, MCDropout
from keras_recipes.uncertainty.statistics import mc_statistics

__all__ = [
    "DropoutSampler",
    "GraphSampler",
    "SamplerOptions",
    "classifier_kind",
    "compile_sampler",
    "make_clones",
    "sample_dropout",
    "seed_clones",
    "statistics_output",
]

# Dropout classes whose behaviour `sample_dropout` reproduces with shared masks;
# other subclasses run their own `call` in training mode.
_NATIVE_DROPOUT = (
    keras.layers.Dropout,
    keras.layers.AlphaDropout,
    keras.layers.GaussianDropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    MCDropout,
    MCAlphaDropout,
)

# AlphaDropout's negative saturation value, SELU's -scale * alpha.
_ALPHA_P = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946


def make_clones(layers):
    """Copies of the dropout `layers` whose seed generators the sampler owns."""
    clones = []
    for layer in layers:
        config = layer.get_config()
        config["name"] = f"{layer.name}_mc"
        if "seed" in config:  # the state is set per call; avoid Python's global RNG
            config["seed"] = 0
        clones.append(type(layer).from_config(config))
    return clones


def seed_clones(clones, seed):
    """Sets each dropout copy's generator: from `seed`, or fresh OS entropy for None."""
    generators = [getattr(layer, "seed_generator", None) for layer in clones]
    states = np.random.SeedSequence(seed).generate_state(len(generators) or 1)
    for generator, state in zip(generators, states):
        if generator is not None:
            value = np.array([int(state) & 0x7FFFFFFF, 0])
            generator.state.assign(ops.cast(value, generator.state.dtype))


def compile_sampler(sampler, jit_compile):
    """Compiles `sampler` for `predict`; `"auto"` avoids XLA on TensorFlow."""
    if jit_compile == "auto" and keras.backend.backend() == "tensorflow":
        # XLA's random number generation on CPU is several times slower than
        # TensorFlow's kernels; the sampler is a tf.function either way.
        jit_compile = False
    sampler.compile(jit_compile=jit_compile)
    return sampler


def sample_dropout(layer, generator, x, num_samples, share_masks):
    """Applies `layer`'s dropout to the tiled `x`, with masks of shape `(B or 1, S, ...)`.

    Row `b * num_samples + s` of `x` is input b, sample s. With `share_masks` the
    inputs of the batch share their `num_samples` masks.
    """
    rate = float(layer.rate)
    if rate == 0.0 or generator is None:
        return x
    shape = ops.shape(x)
    if isinstance(layer, keras.layers.GaussianDropout):
        noise_shape = None
    else:
        noise_shape = ki.dropout_noise_shape(layer, x)
    rest = [
        shape[i] if noise_shape is None or noise_shape[i] is None else noise_shape[i]
        for i in range(1, len(shape))
    ]
    shared = share_masks or (noise_shape is not None and noise_shape[0] == 1)
    batch = 1 if shared else shape[0] // num_samples
    mask_shape = (batch, num_samples, *rest)
    y = ops.reshape(x, (-1, num_samples, *shape[1:]))
    dtype = y.dtype
    if isinstance(layer, keras.layers.GaussianDropout):
        stddev = math.sqrt(rate / (1.0 - rate))
        noise = keras.random.normal(mask_shape, mean=1.0, stddev=stddev, seed=generator)
        y = y * ops.cast(noise, dtype)
    else:
        keep = ops.greater_equal(keras.random.uniform(mask_shape, seed=generator), rate)
        if isinstance(layer, keras.layers.AlphaDropout):
            # Keras's AlphaDropout, written out.
            a = ((1 - rate) * (1 + rate * _ALPHA_P**2)) ** -0.5
            b = -a * _ALPHA_P * rate
            kept = ops.cast(keep, dtype)
            y = a * (y * kept + _ALPHA_P * (1 - kept)) + b
        else:
            # Scale the (small, when shared) mask rather than the activations:
            # one pass over the sampled tensor.
            y = y * (ops.cast(keep, dtype) * (1.0 / (1.0 - rate)))
    outputs = ops.reshape(y, shape)
    mask = ki.get_keras_mask(x)
    if mask is not None:  # dropout layers pass masks through
        ki.set_keras_mask(outputs, mask)
    return outputs


class _Run:
    """Per-call state: which tensors are already tiled `num_samples` times."""

    def __init__(self, sampler, num_samples=None):
        self.sampler = sampler
        self.num_samples = num_samples or sampler.num_samples
        self.tiled = {}
        self.tiles = {}

    def is_tiled(self, tensor):
        return id(tensor) in self.tiled

    def mark(self, tensors):
        for tensor in keras.tree.flatten(tensors):
            if ops.is_tensor(tensor):
                self.tiled[id(tensor)] = tensor

    def tile(self, tensor):
        """Repeats each row `num_samples` times: row `b * S + s` is input b, sample s."""
        if not ops.is_tensor(tensor) or self.is_tiled(tensor) or self.num_samples == 1:
            return tensor
        cached = self.tiles.get(id(tensor))
        if cached is not None and cached[0] is tensor:
            return cached[1]
        tiled = ops.repeat(tensor, self.num_samples, axis=0)
        mask = ki.get_keras_mask(tensor)
        if mask is not None:
            ki.set_keras_mask(tiled, ops.repeat(mask, self.num_samples, axis=0))
        self.tiles[id(tensor)] = (tensor, tiled)
        self.mark(tiled)
        return tiled

    def run_model(self, model, inputs, top_level=False):
        graph = ki.functional_graph(model)
        if graph is None:  # a Sequential model without a graph: a chain of layers
            x = inputs
            for layer in model.layers:
                x = self.operation_fn(layer)(x)
            return x
        if top_level:
            flat = ki.standardize_inputs(graph, inputs)
        else:
            flat = keras.tree.flatten(inputs)
            if len(flat) != len(graph.inputs):
                flat = ki.standardize_inputs(graph, inputs)
        outputs = ki.run_through_graph(graph, flat, operation_fn=self.operation_fn)
        flat_outputs = keras.tree.flatten(outputs)
        return flat_outputs[0] if len(flat_outputs) == 1 else outputs

    def operation_fn(self, op):
        sampler = self.sampler
        index = sampler.clone_index.get(id(op))
        if index is not None:
            clone = sampler.mc_layers[index]

            def call_dropout(inputs, *args, **kwargs):
                x = self.tile(inputs)
                if type(op) in _NATIVE_DROPOUT and not args:
                    generator = getattr(clone, "seed_generator", None)
                    outputs = sample_dropout(op, generator, x, self.num_samples,
                                             sampler.options.share_masks)
                else:  # an unknown subclass: its own call, forced into training mode
                    kwargs["training"] = True
                    outputs = clone(x, *args, **kwargs)
                self.mark(outputs)
                return outputs

            return call_dropout

        if id(op) in sampler.inline_ids:

            def call_nested(*args, **kwargs):
                inputs = args[0] if args else kwargs["inputs"]
                return self.run_model(op, inputs)

            return call_nested

        def call_deterministic(*args, **kwargs):
            tensors = keras.tree.flatten((args, kwargs))
            tiled = any(self.is_tiled(t) for t in tensors if ops.is_tensor(t))
            if tiled:
                args, kwargs = keras.tree.map_structure(self.tile, (args, kwargs))
            if ki.takes_training_argument(op):
                kwargs["training"] = False
            outputs = op(*args, **kwargs)
            if tiled:
                self.mark(outputs)
            return outputs

        return call_deterministic


@dataclasses.dataclass(frozen=True)
class SamplerOptions:
    """What a sampler draws and returns, as `MCDropoutPredictor` asks for it.

    Attributes:
        num_samples: int, the samples per input.
        kind: str, as in `mc_statistics`, or `"classifier"` (see `statistics_output`).
        from_logits: bool, whether the outputs are logits.
        return_samples: bool, whether the samples are returned beside the statistics.
        share_masks: bool, whether the inputs of a batch share their dropout masks.
    """

    num_samples: int
    kind: str
    from_logits: bool
    return_samples: bool
    share_masks: bool


class _Sampler(keras.Model):
    """What both samplers hold: the target, the seeded dropout copies, the options."""

    def __init__(self, target, clones, options):
        super().__init__(name="mc_dropout_sampler")
        self.target = target
        self.mc_layers = list(clones)
        self.options = options
        self.built = True

    @property
    def num_samples(self):
        """int, the samples per input."""
        return self.options.num_samples

    def deterministic(self):
        """Whether nothing is random (every rate is 0): one pass, copied, so std is 0."""
        return all(float(layer.rate) == 0.0 for layer in self.mc_layers)

    def call(self, inputs):
        if self.deterministic():
            y = self._one_pass(inputs)
            y = ops.repeat(ops.expand_dims(y, 1), self.num_samples, axis=1)
        else:
            y = self._sampled_pass(inputs)
            shape = ops.shape(y)
            y = ops.reshape(y, (-1, self.num_samples) + tuple(shape[1:]))
        options = self.options
        return statistics_output(y, options.kind, options.from_logits, options.return_samples)

    def _one_pass(self, inputs):
        """The target's output for `inputs` with nothing random, shape `(batch, ...)`."""
        raise NotImplementedError

    def _sampled_pass(self, inputs):
        """The target's outputs for `inputs` with the dropout layers sampling, shape
        `(batch * num_samples, ...)`: row `b * num_samples + s` is input b, sample s."""
        raise NotImplementedError


class GraphSampler(_Sampler):
    """Runs a graph model with its dropout layers on; outputs MC statistics.

    The target's layers are called, never changed: non-dropout layers with
    `training=False`, dropout layers through seeded copies with `training=True`.

    Args:
        target: the Functional or Sequential model.
        clones: the copies of the dropout layers to sample (`make_clones`).
        clone_ids: the ids of the target's dropout layers, in the order of `clones`.
        inline_ids: ids of the graph models (the target and nested ones) that
            contain a sampled layer, so are replayed rather than called.
        options: the `SamplerOptions`.
    """

    def __init__(self, target, clones, clone_ids, inline_ids, options):
        super().__init__(target, clones, options)
        self.clone_index = {layer_id: i for i, layer_id in enumerate(clone_ids)}
        self.inline_ids = set(inline_ids)

    def _one_pass(self, inputs):
        return _Run(self, num_samples=1).run_model(self.target, inputs, top_level=True)

    def _sampled_pass(self, inputs):
        run = _Run(self)
        return run.tile(run.run_model(self.target, inputs, top_level=True))


def statistics_output(y, kind, from_logits, return_samples):
    """The sampler's outputs for samples `y` of shape `(batch, num_samples, ...)`.

    `kind` is as in `mc_statistics`, or `"classifier"`: sigmoid for one output
    unit, else softmax (for a model whose output shape is known only now).
    """
    if kind == "classifier":
        kind = classifier_kind(y.shape[-1] if len(y.shape) > 2 else None)
    out = mc_statistics(y, kind, from_logits)
    if return_samples:
        out["samples"] = out.pop("probabilities", ops.cast(y, "float32"))
    else:
        out.pop("probabilities", None)
    return out


def classifier_kind(units):
    """`"sigmoid"` for a classifier with one output unit, else `"softmax"`."""
    return "sigmoid" if units == 1 else "softmax"


class _Sampling:
    """The `call`s that make a model's dropout layers sample (not a tracked layer)."""

    def __init__(self, layers, clones, num_samples, share_masks):
        self.layers = list(layers)
        self.clones = list(clones)
        self.num_samples = num_samples
        self.share_masks = share_masks

    def sampling_call(self, layer, clone):
        """A `call` for `layer` that always samples, from `clone`'s generator."""
        native = type(layer) in _NATIVE_DROPOUT

        def call(inputs, *args, training=None, **kwargs):
            if native and not args and not kwargs:
                generator = getattr(clone, "seed_generator", None)
                return sample_dropout(layer, generator, inputs, self.num_samples,
                                      self.share_masks)
            # an unknown subclass: its own call, forced into training mode
            return clone(inputs, *args, training=True, **kwargs)

        return call

    @contextlib.contextmanager
    def active(self):
        """Swaps in the sampling calls; restores each layer exactly, whatever happens."""
        saved = []
        try:
            for layer, clone in zip(self.layers, self.clones):
                saved.append((layer, ki.instance_attribute(layer, "call")))
                layer.call = self.sampling_call(layer, clone)
            yield
        finally:
            for layer, previous in reversed(saved):
                if previous is None:
                    del layer.call
                else:
                    layer.call = previous


class DropoutSampler(_Sampler):
    """Runs any model with only its dropout layers sampling; outputs MC statistics.

    The model is called with `training=False` on its inputs tiled `num_samples`
    times, while each selected dropout layer's `call` samples (`sample_dropout`,
    from a seeded copy's generator). BatchNormalization stays in inference mode
    and its moving statistics are not updated; the model is left as it was.

    Args:
        target: a built `keras.Model` (subclassed or not) with a single output.
        layers: the target's dropout layers to sample.
        clones: their copies (`make_clones`), in the same order.
        options: the `SamplerOptions`.
    """

    def __init__(self, target, layers, clones, options):
        super().__init__(target, clones, options)
        self.sampling = _Sampling(layers, clones, options.num_samples, options.share_masks)

    def _one_pass(self, inputs):
        return self._single_output(self.target(inputs, training=False))

    def _sampled_pass(self, inputs):
        tiled = keras.tree.map_structure(
            lambda t: ops.repeat(t, self.num_samples, axis=0) if ops.is_tensor(t) else t,
            inputs)
        with self.sampling.active():
            return self._single_output(self.target(tiled, training=False))

    def _single_output(self, outputs):
        flat = keras.tree.flatten(outputs)
        if len(flat) != 1:
            raise ValueError(
                "Argument `model` must be a model with a single output. Received: "
                f"model='{self.target.name}' (it returns {len(flat)} tensors). Predict "
                "one output at a time, for instance with a model that returns only it."
            )
        return flat[0]
