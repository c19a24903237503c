"""Stochastic weight averaging over the last epochs of a `fit` (`swa_epochs=`), and the
BatchNormalization statistics recomputed for the averaged weights."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np

from keras_recipes import _batches
from keras_recipes import _keras_internals as ki
from keras_recipes.callbacks.resumable import Resumable

__all__ = ["StochasticWeightAveraging", "update_batch_norm"]


def _trainable_batch_norms(model):
    """The BatchNormalization layers of `model` that a call in training mode updates."""
    return [layer for layer in ki.flatten_layers(model)
            if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]


def update_batch_norm(model, x, batch_size=None, steps=None, validation_split=0.0):
    """Recomputes the moving statistics of `model`'s BatchNormalization layers from data.

    As PyTorch's `torch.optim.swa_utils.update_bn`: one pass over `x` in training
    mode, each trainable BatchNormalization layer's moving mean and variance
    set to the mean, over the batches, of the statistics of each batch (Keras's
    batch variance, the biased one). Nothing else changes: the other weights,
    the other layers' state and the dropout layers' random state are as they
    were. Frozen BatchNormalization layers (`trainable=False`, such as those of
    a pretrained base during `fine_tune`) run in inference mode in Keras 3 and
    are left alone. For weights that no training step produced, such as an
    average of weights (`swa_epochs`), whose activations the moving statistics
    of the last steps do not describe.

    Args:
        model: a built `keras.Model`.
        x: the training inputs, as `fit` takes them (arrays, a `tf.data.Dataset`
            or a `keras.utils.PyDataset`; targets in the batches are ignored).
        batch_size: int or None, for arrays (Keras's 32 when None).
            Defaults to `None`.
        steps: int or None, at most this many batches. Defaults to `None`.
        validation_split: float, for arrays: the fraction at the end left out,
            as `fit` leaves it out. Defaults to `0.0`.

    Returns:
        int, the number of batches the statistics were computed from.

    Example:

    >>> import numpy as np, keras_recipes
    >>> from keras_recipes.callbacks.swa import update_batch_norm
    >>> model = keras_recipes.build_default_dnn((4,), 3, num_hidden_layers=1)
    >>> update_batch_norm(model, np.random.rand(64, 4), batch_size=32)
    2
    """
    layers = _trainable_batch_norms(model)
    if not layers:
        return 0
    statistics = [(layer.moving_mean, layer.moving_variance) for layer in layers]
    targets = {id(variable) for pair in statistics for variable in pair}
    others = [var for var in model.non_trainable_variables if id(var) not in targets]
    kept = [keras.ops.convert_to_numpy(var) for var in others]
    momenta = [layer.momentum for layer in layers]
    sums = [[np.zeros(var.shape, "float64") for var in pair] for pair in statistics]
    count = 0
    try:
        for layer in layers:
            layer.momentum = 0.0  # the moving statistics become those of the batch
        for batch in _batches.one_pass(x, batch_size, steps, validation_split):
            with warnings.catch_warnings():
                # A graph built from a list of one input takes the bare array, as `fit` does.
                warnings.filterwarnings("ignore", message="The structure of `inputs`")
                model(batch, training=True)
            for pair, totals in zip(statistics, sums):
                for variable, total in zip(pair, totals):
                    total += keras.ops.convert_to_numpy(variable)
            count += 1
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        for variable, value in zip(others, kept):
            variable.assign(value)
    if count == 0:
        raise ValueError("update_batch_norm() got no batch of data: the BatchNormalization "
                         "statistics cannot be recomputed. Received: an empty `x`")
    for pair, totals in zip(statistics, sums):
        for variable, total in zip(pair, totals):
            variable.assign((total / count).astype(variable.dtype))
    return count


class StochasticWeightAveraging(Resumable, keras.callbacks.Callback):
    """Averages the weights of the last `swa_epochs` epochs of a `fit` (Izmailov et al., 2018).

    The recipe's `swa_epochs=N` (`keras_recipes.Recipe`): at the end of each of the
    last `N` epochs of the `fit` the trainable weights are added to a running
    sum; once the last epoch has trained -- before its validation, so that its
    `val_loss` and what early stopping sees are the averaged model's -- the
    model takes their mean, and its BatchNormalization statistics are recomputed
    for it (`update_batch_norm`: one pass over the `fit`'s training data in
    training mode), as PyTorch's `update_bn` does; the weights of a model
    averaged without that step are normalised with the statistics of other
    weights. The averaged model is what `fit` leaves.

    During those epochs the learning rate is constant: the recipe's schedule,
    stretched over the `fit`, holds the value it has where the averaging starts
    (the SWA paper's constant rate; `OneCycleSpan` sets it; a schedule of fixed
    `total_steps` runs as given, and `"plateau"`'s `ReduceLROnPlateau` may still
    lower the rate). Early stopping (the recipe's) watches only the
    epochs before them: it may end the `fit` earlier, keeping its best weights,
    and then nothing is averaged; once averaging has begun the `fit` runs to its
    last epoch, and its best weights are not restored over the average. A `fit`
    that ends early in those epochs (a NaN loss, a callback of yours) is left as
    it ends, unaveraged. The running sum is `Resumable`: a run killed and started
    again with `backup_dir` goes on with the same sum.

    Keras 3 has no weight averaging of this kind; TensorFlow Addons' `SWA`
    optimizer wrapper (unmaintained) averaged without recomputing the
    BatchNormalization statistics.

    Args:
        swa_epochs: int >= 1, the epochs averaged (all of a shorter `fit`).
        data: dict or None, the `fit`'s training data: `x`, and optionally
            `batch_size`, `steps_per_epoch`, `validation_split`,
            `validation_data`, as `fit` got them. Needed when the model has
            trainable BatchNormalization layers. Defaults to `None`.
        early_stopping: the recipe's `EarlyStopping` of the same `fit`, or None:
            its best weights are not restored over the average.
            Defaults to `None`.

    Example:

    >>> import numpy as np, keras_recipes
    >>> model = keras_recipes.build_default_dnn((4,), 3, swa_epochs=2)
    >>> x, y = np.random.rand(64, 4), np.arange(64) % 3
    >>> history = model.fit(x, y, epochs=4, verbose=0)  # the mean of epochs 3 and 4
    """

    def __init__(self, swa_epochs, data=None, early_stopping=None):
        super().__init__()
        self.swa_epochs = swa_epochs
        self.data = data
        self.early_stopping = early_stopping
        self._epoch = None
        self._reset()

    def _reset(self):
        self.averaged_epochs, self.sums, self.applied, self.diverged = [], None, False, False

    @property
    def first_epoch(self):
        """int, the first epoch (from 0) of the `fit` that is averaged."""
        return max(self.params["epochs"] - self.swa_epochs, 0)

    def get_state(self):
        return {"averaged_epochs": list(self.averaged_epochs), "applied": self.applied,
                "diverged": self.diverged, "sums": self.sums}

    def set_state(self, state):
        self.averaged_epochs = [int(epoch) for epoch in state["averaged_epochs"]]
        self.applied, self.diverged = bool(state["applied"]), bool(state["diverged"])
        self.sums = None if state["sums"] is None else [np.asarray(s) for s in state["sums"]]

    def on_train_begin(self, logs=None):
        self._reset()
        if self.data is None and _trainable_batch_norms(self.model):
            raise ValueError(
                "`swa_epochs` needs the training data of this `fit` to recompute the "
                "BatchNormalization statistics of the averaged weights, and was given none. "
                "Received: data=None (train a recipe model with its own `fit`, or pass "
                "`data=` to `Recipe.callbacks`)")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_test_begin(self, logs=None):
        # Keras validates each epoch after its training, with fit's callbacks: the last
        # epoch's average is taken here, so that validation scores the averaged model.
        if self._epoch == self.params["epochs"] - 1:
            self._finish_epoch(self._epoch)

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged = True
        self._finish_epoch(epoch)
        self._epoch = None

    def _finish_epoch(self, epoch):
        if epoch < self.first_epoch or self.diverged or self.applied:
            return
        if epoch not in self.averaged_epochs:
            self._add(epoch)
        if epoch == self.params["epochs"] - 1 and not self.diverged:
            self._apply()

    def _add(self, epoch):
        weights = [keras.ops.convert_to_numpy(v) for v in self.model.trainable_variables]
        if not all(np.all(np.isfinite(w)) for w in weights):
            self.diverged = True
            return
        if self.sums is None:
            self.sums = [np.zeros(w.shape, "float64") for w in weights]
        for total, weight in zip(self.sums, weights):
            total += weight
        self.averaged_epochs.append(int(epoch))

    def _apply(self):
        count = len(self.averaged_epochs)
        for variable, total in zip(self.model.trainable_variables, self.sums):
            variable.assign((total / count).astype(variable.dtype))
        if self.data is not None:
            data = self.data
            split = data.get("validation_split") if data.get("validation_data") is None else 0
            update_batch_norm(self.model, data["x"], data.get("batch_size"),
                              data.get("steps_per_epoch"), split or 0.0)
        self.applied = True
        if self.early_stopping is not None:
            self.early_stopping.best_weights = None  # the average is what fit leaves
