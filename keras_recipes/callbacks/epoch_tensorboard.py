"""`EpochTensorBoard`: the losses, metrics, learning rate and momentum of each epoch, as
TensorBoard scalars."""

from __future__ import annotations

import os

import keras

from keras_recipes import _keras_internals as internals
from keras_recipes import _validation as v
from keras_recipes.callbacks._summaries import summary_writer, write_scalars

__all__ = ["EpochTensorBoard", "optimizer_scalars"]

# The momentum of each optimizer family: `beta_1` (Adam, AdamW, Nadam, Adamax, Lion),
# `momentum` (SGD, RMSprop).
_MOMENTUM_NAMES = ("beta_1", "momentum")


def optimizer_scalars(optimizer):
    """The learning rate and momentum an optimizer trains with at its current step.

    A schedule is evaluated at the optimizer's step, as the train step evaluates it:
    the 1cycle's learning rate and momentum / `beta_1` included.

    Args:
        optimizer: a `keras.optimizers.Optimizer` (a `LossScaleOptimizer` is
            unwrapped; a `MultiOptimizer` gives each optimizer's values, their names
            suffixed with the optimizer's name, as Keras's `TensorBoard` does).

    Returns:
        dict, `{"learning_rate": ..., "beta_1" or "momentum": ...}` of floats; an
        optimizer without momentum (Adagrad) has only its learning rate.

    Example:

    >>> import keras
    >>> from keras_recipes.callbacks.epoch_tensorboard import optimizer_scalars
    >>> values = optimizer_scalars(keras.optimizers.SGD(0.1, momentum=0.9))
    >>> {name: round(value, 6) for name, value in values.items()}
    {'learning_rate': 0.1, 'momentum': 0.9}
    """
    optimizers = internals.component_optimizers(optimizer)
    scalars = {}
    for inner in optimizers:
        suffix = f"_{inner.name}" if len(optimizers) > 1 else ""
        scalars[f"learning_rate{suffix}"] = _number(inner.learning_rate)
        for name in _MOMENTUM_NAMES:
            if hasattr(inner, name):
                scalars[f"{name}{suffix}"] = _number(getattr(inner, name))
                break
    return scalars


def _number(value):
    return float(keras.ops.convert_to_numpy(value))


class EpochTensorBoard(keras.callbacks.Callback):
    """Writes each epoch's losses, metrics, learning rate and momentum for TensorBoard.

    The scalars Keras's `keras.callbacks.TensorBoard(update_freq="epoch")` writes,
    in its layout (`<log_dir>/train` and `<log_dir>/validation`, tags
    `epoch_loss`, `epoch_accuracy`, ..., `epoch_learning_rate`), plus the
    optimizer's momentum: `epoch_beta_1` for the Adam family, `epoch_momentum`
    for SGD and RMSprop, so a 1cycle shows both of its curves. Values are those
    at the end of the epoch, with a schedule evaluated at the optimizer's step.

    Unlike Keras's callback, it needs only TensorFlow (Keras's calls
    `tf.summary.scalar`, which needs the `tensorboard` package as well, and
    TensorFlow 2.21 no longer installs it) and works on every backend where
    TensorFlow is installed. It has no batch hook, so a recipe model keeps running
    several batches per compiled call. Keras's own `TensorBoard` with
    `update_freq="epoch"` (its default) and no profiling keeps that too.

    The step of each scalar is the epoch. A `fit` whose epochs start after the
    last step written keeps its own numbering (a resumed `fit`, or
    `initial_epoch=`); one that starts again from an earlier epoch follows the
    steps already written (`fine_tune`'s second phase after its first).

    Args:
        log_dir: str or path, the folder of the event files (`tensorboard
            --logdir <log_dir>` shows them).

    Raises:
        TypeError: if `log_dir` is not a path.
        ImportError: at the start of `fit`, when TensorFlow is not installed.

    Example:

    >>> import tempfile, numpy as np, keras_recipes
    >>> from keras_recipes.callbacks import EpochTensorBoard
    >>> model = keras_recipes.build_default_dnn((8,), 3, num_hidden_layers=1, seed=0)
    >>> x, y = np.random.rand(64, 8).astype("float32"), np.arange(64) % 3
    >>> log_dir = tempfile.mkdtemp()
    >>> history = model.fit(x, y, epochs=2, verbose=0,
    ...                     callbacks=[EpochTensorBoard(log_dir)])
    """

    def __init__(self, log_dir):
        super().__init__()
        if not isinstance(log_dir, (str, os.PathLike)):
            v.fail("log_dir", log_dir, "a folder path (str or os.PathLike)", error=TypeError)
        self.log_dir = os.fspath(log_dir)
        self._writers = {}
        self._last_step = -1
        self._offset = None  # this fit's step minus its epoch, fixed at its first epoch

    def _writer(self, name):
        if name not in self._writers:
            self._writers[name] = summary_writer(
                os.path.join(self.log_dir, name), f"EpochTensorBoard({self.log_dir!r})")
        return self._writers[name]

    def on_train_begin(self, logs=None):
        self._offset = None
        self._writer("train")  # fails now, not after the first epoch, without TensorFlow

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self._offset is None:
            self._offset = 0 if epoch > self._last_step else self._last_step + 1 - epoch
        step = self._last_step = self._offset + epoch
        train = {f"epoch_{name}": value for name, value in logs.items()
                 if not name.startswith("val_")}
        if self.model.optimizer is not None:
            train.update({f"epoch_{name}": value
                          for name, value in optimizer_scalars(self.model.optimizer).items()})
        write_scalars(self._writer("train"), step, train)
        validation = {f"epoch_{name[4:]}": value for name, value in logs.items()
                      if name.startswith("val_")}
        if validation:
            write_scalars(self._writer("validation"), step, validation)

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.flush()
