"""The learning-rate range test ("LR finder"): `find_learning_rate`.

Trains a compiled model for a few batches while the learning rate grows
exponentially and records the loss. The ramp runs inside the compiled train step:
the optimizer's learning rate is swapped for an exponential-ramp
`LearningRateSchedule` evaluated from `iterations`, and a fresh train function is
traced for the run (a Python write of the learning rate between batches is ignored
by compiled training on some backends, and refused on optimizers built with a
schedule). The model comes back exactly as it was (`keras_recipes._training_state`).
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
from keras import ops

from keras_recipes import _batches
from keras_recipes import _keras_internals as internals
from keras_recipes import _training_state as state
from keras_recipes import _validation as v
from keras_recipes.lr_finder.result import LRFinderResult
from keras_recipes.lr_finder.suggestions import SUGGESTION_METHODS, LossSmoother

__all__ = ["find_learning_rate", "ramp_learning_rates"]


class _ExponentialRamp(keras.optimizers.schedules.LearningRateSchedule):
    """`min * (max / min) ** (update / (num_steps - 1))`; used only during the run.

    `update` counts optimizer updates from `start_step`: the schedule is evaluated at
    the optimizer's batch counter, which under `gradient_accumulation_steps` advances
    `steps_per_update` times per update.
    """

    def __init__(self, min_learning_rate, max_learning_rate, num_steps, start_step,
                 steps_per_update=1):
        self.min_learning_rate = float(min_learning_rate)
        self.max_learning_rate = float(max_learning_rate)
        self.num_steps = int(num_steps)
        self.start_step = int(start_step)
        self.steps_per_update = int(steps_per_update)

    def __call__(self, step):
        update = ops.cast(step, "float32") - float(self.start_step)
        if self.steps_per_update > 1:
            update = ops.floor(update / float(self.steps_per_update))
        progress = update / float(self.num_steps - 1)
        log_ratio = math.log(self.max_learning_rate / self.min_learning_rate)
        return self.min_learning_rate * ops.exp(log_ratio * progress)

    def get_config(self):
        return {
            "min_learning_rate": self.min_learning_rate,
            "max_learning_rate": self.max_learning_rate,
            "num_steps": self.num_steps,
            "start_step": self.start_step,
            "steps_per_update": self.steps_per_update,
        }


def _accumulation_steps(optimizer):
    steps = getattr(internals.inner_optimizer(optimizer), "gradient_accumulation_steps", None)
    return int(steps) if steps else 1


def ramp_learning_rates(min_learning_rate, max_learning_rate, num_steps):
    """The learning rate of each step of the range test, as a float64 numpy array.

    `learning_rates[i] = min_learning_rate * (max_learning_rate / min_learning_rate)
    ** (i / (num_steps - 1))`: geometric, from `min_learning_rate` to
    `max_learning_rate` inclusive.

    Args:
        min_learning_rate: float > 0, the first learning rate.
        max_learning_rate: float, the last learning rate.
        num_steps: int, the number of steps.

    Returns:
        A float64 numpy array of `num_steps` learning rates.

    Example:

    >>> from keras_recipes.lr_finder import ramp_learning_rates
    >>> ramp_learning_rates(1e-3, 1e-1, 3).round(6).tolist()
    [0.001, 0.01, 0.1]
    """
    steps = np.arange(num_steps, dtype="float64")
    ratio = max_learning_rate / min_learning_rate
    return min_learning_rate * ratio ** (steps / max(num_steps - 1, 1))



def find_learning_rate(
    model,
    x,
    y=None,
    min_learning_rate=1e-7,
    max_learning_rate=10.0,
    num_steps=100,
    batch_size=32,
    *,
    sample_weight=None,
    smoothing=0.98,
    divergence_factor=4.0,
    method="valley",
    shuffle=True,
    seed=None,
    verbose=0,
):
    """Runs a learning-rate range test and suggests a learning rate.

    Trains `model` for up to `num_steps` batches while the learning rate grows
    exponentially from `min_learning_rate` to `max_learning_rate`, records the
    training loss of every batch, smooths it (debiased exponential moving
    average) and stops early once the smoothed loss exceeds
    `divergence_factor` times its best value or is NaN/Inf (Smith, 2017; the
    procedure of fastai's `lr_find`). The suggestion is computed from the
    smoothed curve by `method`.

    Works with any compiled Keras model and optimizer, including one whose
    learning rate is a `LearningRateSchedule`: the ramp replaces the learning
    rate inside the compiled train step for the duration of the test (Keras
    would refuse to set the learning rate of such an optimizer, and a Python
    write between batches has no effect in compiled training on some backends).

    Afterwards the model is exactly as before: weights, BatchNorm statistics,
    dropout seed states, metric state, and the optimizer's iterations, slot
    variables and learning rate (or schedule) are restored, also when the run
    raises or is interrupted (`KeyboardInterrupt`). An optimizer that was not
    built yet is built first, exactly as the first `fit` would build it, so
    training after the test is identical to training without it. On the
    PyTorch backend torch's global random generator, from which unseeded
    dropout layers draw their masks, is restored too.

    Works with a mixed-precision policy (e.g. `"mixed_bfloat16"`; the
    loss-scale optimizer of `"mixed_float16"` is unwrapped), an optimizer with
    `use_ema=True` (its moving averages are restored too) and one with
    `gradient_accumulation_steps` (see `num_steps`).

    Backends: TensorFlow, JAX and PyTorch. One PyTorch caveat: Keras's first
    `fit` of a model whose loss and metrics are not built yet draws once from
    torch's global generator; once the finder has built them, that draw no
    longer happens, so the masks of *unseeded* dropout layers (not the weights
    or the optimizer state) in the following `fit` differ from a run without
    the finder. Give dropout layers a `seed` for bit-identical runs.

    Args:
        model: a compiled `keras.Model`.
        x: input data: a numpy array (or a list/dict of arrays), a
            `tf.data.Dataset` or a `keras.utils.PyDataset` yielding
            `(x, y)` or `(x, y, sample_weight)` batches. Datasets are
            iterated again from the start if they run out before `num_steps`.
        y: target array, or `None` when `x` is a dataset (or the model needs
            no targets). Defaults to `None`.
        min_learning_rate: float > 0, the first learning rate. Defaults to `1e-7`.
        max_learning_rate: float > `min_learning_rate`, the last learning rate.
            Defaults to `10.0`.
        num_steps: int >= 5, the number of steps in the ramp. A step is one
            optimizer update: one batch, or `gradient_accumulation_steps`
            batches for an optimizer that accumulates gradients (the loss of
            the step is then their mean). Defaults to `100`.
        batch_size: int, batch size for array inputs (ignored for datasets).
            Only full batches are used. Defaults to `32`.
        sample_weight: optional array of per-sample weights for array inputs.
            Defaults to `None`.
        smoothing: float in [0, 1), the weight of the past in the moving
            average of the loss. Defaults to `0.98`.
        divergence_factor: float > 1 or `None`; stop once the smoothed loss
            exceeds this multiple of its best value (checked while the best
            value is positive). `None` runs all `num_steps` unless the loss is
            NaN/Inf. Defaults to `4.0`.
        method: str, the rule behind `result.suggestion`: `"valley"`,
            `"minimum"`, `"steepest"` or `"one_cycle"` (the peak of a 1cycle,
            the rule of `learning_rate="find"` under the 1cycle; all four are
            computed). Defaults to `"valley"`.
        shuffle: bool, whether to shuffle array inputs. Defaults to `True`.
        seed: int or `None`, seed of the shuffling (a private generator: the
            global numpy state is not touched). Defaults to `None`.
        verbose: 0 (silent), 1 or 2 (either prints one summary line) or `"auto"`
            (1). Defaults to `0`.

    Returns:
        An `LRFinderResult`; `result.suggestion` is a Python float.

    Raises:
        TypeError: if `model` is not a `keras.Model` or `x` is not array-like
            or a dataset.
        ValueError: if the model is not compiled, an argument is out of range,
            the data are empty or of mismatched lengths, or the loss was not
            finite long enough to suggest anything.

    Example:

    >>> import numpy as np, keras, keras_recipes
    >>> x = np.random.default_rng(0).normal(size=(256, 8)).astype("float32")
    >>> y = x @ np.ones((8, 1), "float32")
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> result = keras_recipes.find_learning_rate(model, x, y, num_steps=50, seed=0)
    >>> isinstance(result.suggestion, float)
    True
    """
    state.check_compiled_model(model)
    min_learning_rate = v.check_number(
        "min_learning_rate", min_learning_rate, low=0, low_inclusive=False
    )
    max_learning_rate = v.check_number(
        "max_learning_rate", max_learning_rate, low=0, low_inclusive=False
    )
    if max_learning_rate <= min_learning_rate:
        v.fail(
            "max_learning_rate",
            max_learning_rate,
            f"greater than min_learning_rate={min_learning_rate}",
        )
    num_steps = v.check_int("num_steps", num_steps, min_value=5)
    batch_size = v.check_int("batch_size", batch_size, min_value=1)
    smoothing = v.check_number("smoothing", smoothing, low=0, high=1, high_inclusive=False)
    if divergence_factor is not None:
        divergence_factor = v.check_number(
            "divergence_factor", divergence_factor, low=1, low_inclusive=False, allow_none=True
        )
    method = v.check_choice("method", method, SUGGESTION_METHODS)
    v.check_bool("shuffle", shuffle)
    seed = v.check_seed(seed)
    verbose = v.check_verbose(verbose)

    batches = _batches.batches(x, y, sample_weight, batch_size, shuffle, seed)
    first = next(batches)
    learning_rates = ramp_learning_rates(min_learning_rate, max_learning_rate, num_steps)
    losses, smoothed = [], []
    stopped_early = False
    started = time.perf_counter()
    state.build_for_training(model, first)
    with state.preserved_training_state(model):
        # Under gradient accumulation a step of the ramp is one optimizer update,
        # made of `accumulation` batches (fewer for the first one if the optimizer
        # is in the middle of a window); its loss is the mean over those batches.
        accumulation = _accumulation_steps(model.optimizer)
        seen = internals.batch_iterations(model.optimizer)
        window_start = seen - seen % accumulation
        internals.set_learning_rate_object(
            model.optimizer,
            _ExponentialRamp(
                min_learning_rate, max_learning_rate, num_steps, window_start, accumulation
            ),
        )
        model.make_train_function(force=True)
        smoother, best = LossSmoother(smoothing), math.inf
        pending = [first]
        for step in range(num_steps):
            window = accumulation - (seen % accumulation if step == 0 else 0)
            window_losses = []
            for _ in range(window):
                bx, by, bsw = pending.pop() if pending else next(batches)
                logs = model.train_on_batch(bx, by, sample_weight=bsw, return_dict=True)
                window_losses.append(state.loss_value(logs))
            loss = window_losses[0] if window == 1 else float(np.mean(window_losses))
            value = smoother.update(loss)
            losses.append(loss)
            smoothed.append(value)
            if not math.isfinite(value):
                stopped_early = True
                break
            best = min(best, value)
            if divergence_factor is not None and best > 0 and value > divergence_factor * best:
                stopped_early = True
                break
    elapsed = time.perf_counter() - started
    result = LRFinderResult(
        learning_rates[: len(losses)],
        losses,
        smoothed,
        method=method,
        stopped_early=stopped_early,
        elapsed=elapsed,
    )
    if result.suggestion is None:
        raise ValueError(
            "The learning-rate range test recorded fewer than 2 finite losses "
            f"(losses: {losses[:5]}), so it cannot suggest a learning rate. "
            f"Lower `min_learning_rate` (received: min_learning_rate={min_learning_rate}) "
            "or check the data and the loss for NaN/Inf. The model was restored."
        )
    if verbose:
        print(
            f"find_learning_rate: {len(losses)} steps in {elapsed:.1f}s "
            f"({'stopped early, loss diverged' if stopped_early else 'full ramp'}); "
            f"suggestion ({method}): {result.suggestion:.3g} "
            f"[valley {result.valley:.3g}, minimum {result.minimum:.3g}, "
            f"steepest {result.steepest:.3g}, one_cycle {result.one_cycle:.3g}]"
        )
    return result
