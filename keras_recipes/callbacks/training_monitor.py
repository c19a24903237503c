"""`TrainingMonitor`: the statistics of `keras_recipes.diagnose`, logged during `fit`."""

from __future__ import annotations

import math
import os
import warnings

import keras

from keras_recipes import _batches
from keras_recipes import _validation as v
from keras_recipes.callbacks._summaries import summary_writer, write_scalars
from keras_recipes.diagnostics import symptoms
from keras_recipes.diagnostics._measure import measure
from keras_recipes.diagnostics._seen import layer_graph

__all__ = ["TrainingMonitor", "TrainingMonitorWarning"]

_LAYER_STATS = ("mean", "std", "dead_fraction", "saturated_fraction", "gradient_norm")


class TrainingMonitorWarning(UserWarning):
    """Issued by `TrainingMonitor` when a layer dies or the gradients explode."""


class TrainingMonitor(keras.callbacks.Callback):
    """Logs activation and gradient statistics every few epochs and warns early.

    At the end of every `every_n_epochs`-th epoch the monitor runs a fixed
    probe sample (`num_batches` batches drawn once from `x`, `y`) through the
    model in training mode and measures what `keras_recipes.diagnose`
    measures: per layer the outputs' mean and std, the fraction of dead ReLU
    units, the fraction of saturated sigmoid/tanh outputs, the gradient norm of
    each layer with weights and the first/last RMS gradient ratio, and NaN/Inf.
    The measurement leaves the model exactly as it was (BatchNorm statistics
    and dropout seed states are restored, and on PyTorch torch's global random
    generator, which unseeded dropout draws from), so training with the
    monitor gives the same weights as training without it. It works on the
    TensorFlow, JAX and PyTorch backends; gradients are measured as
    `keras_recipes.diagnose` measures them (a softmax/sigmoid crossentropy
    through its logits on every backend).

    The statistics go into `model.fit(...).history`, like `validation_freq`
    metrics (only on the epochs that are monitored), but not into the epoch
    `logs`, so the progress bar's epoch line stays short (`verbose=1` prints a
    one-line summary instead):

    - always: `monitor_max_dead_fraction`, `monitor_max_saturated_fraction`,
      `monitor_max_gradient_norm`, `monitor_gradient_norm_ratio`,
      `monitor_nonfinite`;
    - with `log_layers=True`: `monitor_<layer>_<stat>` for `stat` in `mean`,
      `std`, `dead_fraction`, `saturated_fraction`, `gradient_norm` (where
      defined).

    With a `log_dir`, every statistic is also written as a TensorBoard scalar
    (`<log_dir>/monitor`, tags `<layer>/<stat>`; needs TensorFlow). Each
    record is also kept in `monitor.records`.

    It warns (a `TrainingMonitorWarning`, through Python's `warnings`; no
    filter is changed) as soon as a layer dies (a fraction of dead ReLU units
    of at least `dead_fraction_threshold`), or the gradients explode (a
    gradient norm above `gradient_norm_threshold`, a first/last RMS gradient
    ratio above `gradient_ratio_threshold`, or NaN/Inf), once per layer and
    problem. It also warns once when the model has BatchNormalization and `fit`
    trains with batches under 16 (`diagnose`'s `unstable_batch_normalization`;
    under 8 it advises LayerNormalization or GroupNormalization, as the
    chapter's notes do). Keras does not tell callbacks `fit`'s batch size: the
    `fit` of a recipe model (a factory's, or `compile_recipe`'s) sets
    `fit_batch_size` itself; for another model pass it. It is an epoch-level
    callback: nothing runs between batches.

    Args:
        x: input data of the probe sample: numpy array(s), a
            `tf.data.Dataset` or a `keras.utils.PyDataset`.
        y: targets for array inputs. Defaults to `None`.
        sample_weight: optional per-sample weights for array inputs.
            Defaults to `None`.
        every_n_epochs: int, how often to measure. Defaults to `1`.
        batch_size: int, batch size of the probe batches (array inputs).
            Defaults to `32`.
        num_batches: int, the number of probe batches. Defaults to `2`.
        log_dir: str or `None`, a TensorBoard log directory. Defaults to `None`.
        log_layers: bool, whether to add the per-layer statistics to the history
            (the summary keys are always added). Defaults to `True`.
        dead_fraction_threshold: float in (0, 1], the fraction of dead units
            from which a layer counts as dead. Defaults to `0.5`.
        gradient_norm_threshold: float > 0, the gradient norm above which
            gradients count as exploding. Defaults to `1e4`.
        gradient_ratio_threshold: float > 1, the first/last RMS gradient ratio
            above which gradients count as exploding. Defaults to `100.0`.
        seed: int or `None`, seed of the probe sample drawn from arrays.
            Defaults to `None`.
        fit_batch_size: int or `None`, the batch size `fit` trains with, for
            the BatchNormalization check (`None`: unknown, no check; a recipe
            model's `fit` sets it). Defaults to `None`.
        verbose: 0 (silent), 1 or 2 (either prints one line per measurement) or
            `"auto"` (1), as Keras's `fit` takes it. Defaults to `0`.

    Raises:
        TypeError: if `x` is not data or an argument has the wrong type.
        ValueError: if an argument is out of range.

    Example:

    >>> import numpy as np, keras
    >>> from keras_recipes.callbacks import TrainingMonitor
    >>> x = np.random.default_rng(0).normal(size=(256, 8)).astype("float32")
    >>> y = (x[:, 0] > 0).astype("int32")
    >>> model = keras.Sequential([
    ...     keras.Input((8,)),
    ...     keras.layers.Dense(16, activation="relu", kernel_initializer="he_normal"),
    ...     keras.layers.Dense(2, activation="softmax"),
    ... ])
    >>> model.compile("adam", "sparse_categorical_crossentropy")
    >>> history = model.fit(x, y, epochs=2, verbose=0,
    ...                     callbacks=[TrainingMonitor(x[:64], y[:64])])
    >>> len(history.history["monitor_max_dead_fraction"])
    2
    """

    def __init__(
        self,
        x,
        y=None,
        *,
        sample_weight=None,
        every_n_epochs=1,
        batch_size=32,
        num_batches=2,
        log_dir=None,
        log_layers=True,
        dead_fraction_threshold=symptoms.DEAD_FRACTION_THRESHOLD,
        gradient_norm_threshold=symptoms.EXPLODING_GRADIENT_NORM,
        gradient_ratio_threshold=symptoms.EXPLODING_GRADIENT_RATIO,
        seed=None,
        fit_batch_size=None,
        verbose=0,
    ):
        super().__init__()
        self.every_n_epochs = v.check_int("every_n_epochs", every_n_epochs, min_value=1)
        batch_size = v.check_int("batch_size", batch_size, min_value=1)
        num_batches = v.check_int("num_batches", num_batches, min_value=1)
        if log_dir is not None and not isinstance(log_dir, (str, os.PathLike)):
            v.fail("log_dir", log_dir, "a path (str or os.PathLike) or None", error=TypeError)
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.log_layers = v.check_bool("log_layers", log_layers)
        self.dead_fraction_threshold = v.check_number(
            "dead_fraction_threshold", dead_fraction_threshold, low=0, high=1,
            low_inclusive=False,
        )
        self.gradient_norm_threshold = v.check_number(
            "gradient_norm_threshold", gradient_norm_threshold, low=0, low_inclusive=False
        )
        self.gradient_ratio_threshold = v.check_number(
            "gradient_ratio_threshold", gradient_ratio_threshold, low=1, low_inclusive=False
        )
        seed = v.check_seed(seed)
        self.fit_batch_size = v.check_int("fit_batch_size", fit_batch_size, min_value=1,
                                          allow_none=True)
        self.verbose = v.check_verbose(verbose)
        self._batches = _batches.collect_batches(x, y, sample_weight, batch_size, num_batches, seed)
        self.records = []
        self._warned = set()
        self._graph = None
        self._cache = {}
        self._writer = None

    def on_train_begin(self, logs=None):
        self._graph = None  # read at the first measurement, once the model is built
        self._cache = {}
        self._open_writer()

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        if self._graph is None:
            self._graph = layer_graph(self.model)
            self._cache = {}
        measurement = measure(self.model, self._batches, self._graph, self._cache)
        stats, ratio = measurement.layers, measurement.gradient_norm_ratio
        losses = measurement.initial_losses
        values = self._summary(stats, ratio)
        layer_values = {
            (s.layer, name): getattr(s, name)
            for s in stats
            for name in _LAYER_STATS
            if getattr(s, name) is not None
        }
        self.records.append(
            {"epoch": epoch, "layers": stats, "gradient_norm_ratio": ratio,
             "loss": float(sum(losses) / len(losses)) if losses else math.nan, **values}
        )
        logged = {f"monitor_{key}": value for key, value in values.items()}
        if self.log_layers:
            logged.update({f"monitor_{layer}_{name}": value
                           for (layer, name), value in layer_values.items()})
        # Into the history of this `fit` directly, not through `logs`: the progress bar
        # prints every log, and some 25 statistics made each epoch line unreadable.
        history = getattr(getattr(self.model, "history", None), "history", None)
        if isinstance(history, dict):
            for key, value in logged.items():
                history.setdefault(key, []).append(value)
        elif logs is not None:
            logs.update(logged)
        self._open_writer()
        if self._writer is not None:
            self._write_tensorboard(epoch, values, layer_values)
        if self.verbose:
            print(
                f"TrainingMonitor epoch {epoch + 1}: max dead {values['max_dead_fraction']:.0%}, "
                f"max saturated {values['max_saturated_fraction']:.0%}, max gradient norm "
                f"{values['max_gradient_norm']:.3g}, gradient ratio first/last "
                f"{values['gradient_norm_ratio']:.3g}"
            )
        self._warn(epoch, stats, ratio)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()

    def _open_writer(self):
        if self.log_dir is None or self._writer is not None:
            return
        self._writer = summary_writer(os.path.join(self.log_dir, "monitor"),
                                      "TrainingMonitor(log_dir=...) (or pass log_dir=None)")

    @staticmethod
    def _summary(stats, ratio):
        def largest(name):
            found = [getattr(s, name) for s in stats if getattr(s, name) is not None]
            return float(max(found)) if found else 0.0

        return {
            "max_dead_fraction": largest("dead_fraction"),
            "max_saturated_fraction": largest("saturated_fraction"),
            "max_gradient_norm": largest("gradient_norm"),
            "gradient_norm_ratio": math.nan if ratio is None else float(ratio),
            "nonfinite": float(sum(s.nonfinite for s in stats)),
        }

    def _write_tensorboard(self, epoch, values, layer_values):
        scalars = {f"monitor/{key}": value for key, value in values.items()}
        scalars.update({f"{layer}/{name}": value for (layer, name), value in layer_values.items()})
        write_scalars(self._writer, epoch, scalars)

    def _warn_once(self, key, message):
        if key in self._warned:
            return
        self._warned.add(key)
        warnings.warn(message, TrainingMonitorWarning, stacklevel=3)

    def _warn(self, epoch, stats, ratio):
        # The detectors, thresholds' defaults and texts of diagnose's symptom table.
        prefix = f"TrainingMonitor, epoch {epoch + 1}:"
        dead, nonfinite = symptoms.DYING_RELU, symptoms.NAN_OR_INF
        exploding = symptoms.EXPLODING_GRADIENTS
        for s in symptoms.dead_layers(stats, self.dead_fraction_threshold):
            self._warn_once(
                ("dead", s.layer),
                f"{prefix} layer '{s.layer}' died: {s.dead_fraction:.0%} of its ReLU units "
                f"output 0 for every probe sample. {dead.why} Fix: {dead.fix}",
            )
        for s in symptoms.nonfinite_layers(stats):
            self._warn_once(
                ("nonfinite", s.layer),
                f"{prefix} NaN/Inf in the outputs or gradients of layer '{s.layer}'. "
                f"{nonfinite.why} Fix: {nonfinite.fix}",
            )
        for s in symptoms.exploding_layers(stats, self.gradient_norm_threshold):
            self._warn_once(
                ("exploding", s.layer),
                f"{prefix} gradients explode at layer '{s.layer}' (gradient norm "
                f"{s.gradient_norm:.3g} > {self.gradient_norm_threshold:g}). "
                f"{exploding.why} Fix: {exploding.fix}",
            )
        if ratio is not None and ratio > self.gradient_ratio_threshold:
            self._warn_once(
                ("exploding", "<ratio>"),
                f"{prefix} gradients explode towards the lower layers (RMS gradient ratio "
                f"first/last {ratio:.3g} > {self.gradient_ratio_threshold:g}). "
                f"{exploding.why} Fix: {exploding.fix}",
            )
        small_batch = symptoms.batch_normalization_finding(self._graph.model,
                                                           self.fit_batch_size)
        if small_batch is not None:
            self._warn_once(("batch_normalization",),
                            f"{prefix} {small_batch.message}. {small_batch.why} "
                            f"Fix: {small_batch.fix}")
