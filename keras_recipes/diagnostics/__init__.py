"""Diagnostics that explain a failing run: a recipe lint and activation/gradient statistics.

`diagnose(model)` checks the model against the cautions of the "training deep
networks" chapter (initializer matched to the activation, what breaks
self-normalisation, saturating activations in deep networks, bias before
BatchNorm, gradient clipping, AdaGrad, pretrained bases, learning rate).

`diagnose(model, x, y)` also runs a few batches through the model and measures,
per layer, the activations' mean and standard deviation, the fraction of dead
ReLU units and of saturated sigmoid/tanh units, the gradient norms and their
first-to-last ratio, NaN and Inf, and a short training sanity check; what it
finds is mapped to the usual symptom table (loss not falling, dying ReLU,
exploding or vanishing gradients, unnormalised inputs, unstable BatchNorm with
tiny batches). The model is left exactly as it was.

Keras ships nothing like this; the measurements use Keras's public model API
(a probe model over the layers' outputs) and the backend's automatic
differentiation (`tf.GradientTape`, `jax.value_and_grad`, `torch.autograd.grad`),
so they work on the TensorFlow, JAX and PyTorch backends alike.

Modules: `report` (what `diagnose` returns), `rules` (the static lint,
`STATIC_RULES`), `symptoms` (the symptom table, `DYNAMIC_RULES`, shared with
`TrainingMonitor`); `_graph`, `_measure` and `_gradients` are internal.
"""

from __future__ import annotations

import keras

from keras_recipes import _batches
from keras_recipes import _training_state as state
from keras_recipes import _validation as v
from keras_recipes.diagnostics._measure import measure, sanity_training
from keras_recipes.diagnostics.report import DiagnosisReport, Finding, LayerStatistics
from keras_recipes.diagnostics.rules import STATIC_RULES, lint
from keras_recipes.diagnostics.symptoms import (
    DYNAMIC_RULES,
    batch_normalization_finding,
    symptom_findings,
)

__all__ = [
    "DYNAMIC_RULES",
    "DiagnosisReport",
    "Finding",
    "LayerStatistics",
    "STATIC_RULES",
    "diagnose",
]


def diagnose(
    model,
    x=None,
    y=None,
    *,
    sample_weight=None,
    batch_size=32,
    num_batches=4,
    num_steps=20,
    seed=None,
    callbacks=None,
    verbose=0,
):
    """Explains what is likely to go wrong when training `model`.

    Without data, a static lint of the chapter's cautions; each finding has a
    severity, the layer it concerns, why it matters and the fix:

    - `initializer_mismatch`: the chapter's pairing of initializations and
      activations broken: a ReLU-family activation (ReLU, leaky ReLU, PReLU,
      ELU, GELU, Swish, Mish, ...) with Glorot initialization, SELU without
      LeCun initialization, or a hidden tanh/sigmoid with He initialization
      (Glorot is theirs; LeCun, Glorot's fan-in form, is accepted), in Dense
      layers, convolutions (the
      depthwise and pointwise kernels of depthwise and separable ones too)
      and recurrent layers (their input kernel). The activation is looked up
      through BatchNormalization/Dropout, so
      `Conv2D -> BatchNormalization -> ELU` counts as ELU.
    - `selu_with_dropout`, `selu_with_regularization`,
      `selu_with_batch_normalization`, `selu_with_skip_connection`,
      `selu_with_recurrent_layer`: what breaks self-normalisation in a SELU
      network (plain Dropout, L1/L2, BatchNorm, a non-sequential
      architecture: merged branches or a recurrent layer).
    - `saturating_activation_in_deep_network`: sigmoid/tanh in a hidden layer
      of a network with 5 or more layers with weights (the tanh inside LSTM
      and GRU layers is expected and not reported).
    - `bias_before_batch_normalization` (info): a bias the BatchNorm cancels.
    - `batch_normalization_after_activation` (info): BatchNormalization right
      after an activation instead of between the layer and its activation.
    - `clipvalue_instead_of_clipnorm`: gradient clipping by value.
    - `adagrad_on_deep_network`: AdaGrad with 5 or more layers with weights.
    - `trainable_pretrained_base`: a nested model (a reused base) with
      trainable weights while the learning rate is at least the optimizer's
      default, i.e. not a fine-tuning learning rate.
    - `pretrained_base_training_mode`: a nested model containing
      BatchNormalization called without `training=False`.
    - `learning_rate_too_large`: a peak learning rate above 0.03 for the Adam
      family and RMSprop, 3e-3 for Lion, 1.0 for SGD and Adagrad.
    - `schedule_with_learning_rate_callback` (error, needs `callbacks`): an
      optimizer created with a `LearningRateSchedule` trained with
      `ReduceLROnPlateau` or `LearningRateScheduler`, whose learning-rate
      writes the optimizer refuses (`fit` raises a `TypeError`, for
      `ReduceLROnPlateau` only after `patience` epochs).

    With data, it also runs `num_batches` batches through the model in
    training mode and measures per layer the outputs' mean and std, the
    fraction of dead ReLU units (zero for every sample), the fraction of
    saturated sigmoid/tanh outputs, the gradient norm of each layer with
    weights (and their RMS ratio from the first to the last layer), and
    NaN/Inf; then trains `num_steps` steps on those batches (a model that
    cannot overfit a few batches has a problem). These map to symptoms:

    - `nan_or_inf` (error): NaN or Inf in the loss, outputs or gradients.
    - `exploding_gradients` (error): a gradient norm above 1e4 or not finite,
      or a first/last RMS gradient ratio above 100.
    - `vanishing_gradients`: a first/last RMS gradient ratio below 1e-3, or
      half of a sigmoid/tanh layer's outputs saturated.
    - `dying_relu`: half or more of a ReLU layer's units dead.
    - `unnormalized_inputs`: a feature entering the first layer with weights
      has an RMS (sqrt(mean^2 + std^2)) above 5.
    - `unstable_batch_normalization`: BatchNormalization with batches smaller
      than 16 (pass the batch size you train with: the size of the data's
      batches, or `batch_size`, which is also checked without data); under 8
      its fix is the chapter's notes' advice, LayerNormalization or
      GroupNormalization (`build_default_dnn(normalization="layer")` or
      `"group"`), which do not depend on the batch.
    - `loss_not_falling`: the mean loss of the last training steps is less
      than 1% below that of the first ones.

    The layer rules look at the model's own layers: through its functional
    graph, or, for a subclassed model, as the chain of the layers it holds in
    the order they were assigned (looking into layers of your own that hold
    other layers, such as a residual block), since its `call` cannot be
    read; rules about what follows a layer assume that order is the order of
    the calls. A nested model is treated as one block, a (pretrained) base,
    and checked by the base rules only. The model `compile_recipe` returns
    for a subclassed model (a `RecipeWrapper`) is read as the model of yours
    it calls: your layers are linted and measured, as if you had compiled
    your model yourself.

    The gradients are those of the unscaled training loss. When that loss is
    a Keras crossentropy (`sparse_categorical_crossentropy`,
    `categorical_crossentropy`, `binary_crossentropy`) on a softmax/sigmoid
    output layer, it is computed from that layer's logits on every backend,
    as Keras's TensorFlow backend computes it anyway. (Keras's JAX and
    PyTorch backends compute it from the probabilities clipped to
    `[1e-7, 1 - 1e-7]`, whose gradient is exactly zero once the output
    saturates: exploding activations would then read as "no gradient".)

    The model is left exactly as it was: weights, BatchNorm statistics, seed
    states, metrics and optimizer state are restored (see
    `find_learning_rate`; an unbuilt optimizer is built as the first `fit`
    would build it), and so is torch's global random generator, from which
    unseeded dropout layers draw on the PyTorch backend. Activation
    statistics need a Functional or Sequential model (or a subclassed one
    whose `layers` form a chain); gradients work for any model.

    Works with a mixed-precision policy (e.g. `"mixed_bfloat16"`: the
    statistics are computed in float64 from the low-precision outputs) and
    with an optimizer using `use_ema` or `gradient_accumulation_steps` (the
    sanity check's `num_steps` are training batches, so with accumulation
    over `k` batches they make `num_steps // k` updates).

    Backends: TensorFlow, JAX and PyTorch. One PyTorch caveat: Keras's first
    `fit` of a model whose loss and metrics are not built yet draws once from
    torch's global generator; once `diagnose(model, x, y)` has built them, that
    draw no longer happens, so the masks of *unseeded* dropout layers (not the
    weights or the optimizer state) in the following `fit` differ from a run
    without `diagnose`. Give dropout layers a `seed` for bit-identical runs.

    Args:
        model: a `keras.Model` (compiled, when data is given).
        x: optional input data: numpy array(s), a `tf.data.Dataset` or a
            `keras.utils.PyDataset`. Defaults to `None` (static lint only).
        y: optional targets for array inputs. Defaults to `None`.
        sample_weight: optional per-sample weights for array inputs.
            Defaults to `None`.
        batch_size: int, batch size for array inputs; use the one you train
            with. Without data, it is the batch size checked against
            BatchNormalization (`unstable_batch_normalization`).
            Defaults to `32`.
        num_batches: int, the number of batches measured. Defaults to `4`.
        num_steps: int, the number of training steps of the sanity check
            (0 to skip it). Defaults to `20`.
        seed: int or `None`, seed of the sample drawn from array inputs.
            Defaults to `None`.
        callbacks: list of `keras.callbacks.Callback` or `None`, the callbacks
            you will pass to `fit`; they are checked against the optimizer
            (see `schedule_with_learning_rate_callback`), never called.
            Defaults to `None`.
        verbose: 0 (silent), 1 or 2 (either prints the report) or `"auto"` (1).
            Defaults to `0`.

    Returns:
        A `DiagnosisReport`: `print(report)` for the readable report,
        `report.findings`, `report.layers`, `report.to_dict()` for data.

    Raises:
        TypeError: if `model` is not a `keras.Model`, `x` is not data or
            `callbacks` is not a list of `keras.callbacks.Callback`.
        ValueError: if data is given for a model that is not compiled, or an
            argument is out of range.

    Example:

    >>> import keras, keras_recipes
    >>> model = keras.Sequential([
    ...     keras.Input((8,)),
    ...     keras.layers.Dense(32, activation="relu"),  # Glorot by default
    ...     keras.layers.Dense(1),
    ... ])
    >>> report = keras_recipes.diagnose(model)
    >>> sorted(report.rules)
    ['initializer_mismatch']
    """
    if not isinstance(model, keras.Model):
        v.fail("model", model, "a keras.Model", error=TypeError)
    batch_size = v.check_int("batch_size", batch_size, min_value=1)
    num_batches = v.check_int("num_batches", num_batches, min_value=1)
    num_steps = v.check_int("num_steps", num_steps, min_value=0)
    verbose = v.check_verbose(verbose)
    seed = v.check_seed(seed)
    callbacks = _check_callbacks(callbacks)
    if x is None and (y is not None or sample_weight is not None):
        v.fail("x", None, "given when `y` or `sample_weight` is given")
    if x is not None and (
        getattr(model, "optimizer", None) is None or not getattr(model, "compiled", False)
    ):
        v.fail(
            "model",
            model,
            "a compiled keras.Model when data is given",
            hint="Call `model.compile(optimizer=..., loss=...)` first, or call "
            "`diagnose(model)` without data for the static checks only",
        )
    if x is None:
        _, findings = lint(model, callbacks)
        finding = batch_normalization_finding(model, batch_size)
        if finding is not None:
            findings.append(finding)
        report = DiagnosisReport(model.name, findings)
    else:
        batches = _batches.collect_batches(x, y, sample_weight, batch_size, num_batches, seed)
        state.build_for_training(model, batches[0])
        graph, findings = lint(model, callbacks)
        measurement = measure(model, batches, graph)
        if num_steps:
            measurement.losses = sanity_training(model, batches, num_steps)
        findings += symptom_findings(model, measurement)
        report = DiagnosisReport(
            model.name,
            findings,
            measurement.layers,
            measurement.gradient_norm_ratio,
            measurement.losses,
            measurement.input_statistics,
            measurement.batch_size,
            measurement.notes,
        )
    if verbose:
        print(report)
    return report


def _check_callbacks(callbacks):
    if callbacks is None:
        return []
    if isinstance(callbacks, keras.callbacks.CallbackList):
        callbacks = callbacks.callbacks
    if not isinstance(callbacks, (list, tuple)) or not all(
        isinstance(callback, keras.callbacks.Callback) for callback in callbacks
    ):
        v.fail(
            "callbacks",
            callbacks,
            "a list of keras.callbacks.Callback (the callbacks passed to `fit`) or None",
            error=TypeError,
        )
    return list(callbacks)
