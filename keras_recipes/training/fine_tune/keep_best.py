"""The guard of phase 2: `fine_tune` ends on the best weights seen across both phases.

Fine-tuning can make a pretrained base worse (too high a learning rate, too few
images, too many layers unfrozen). With validation data, the model as phase 2
starts (the head trained on the frozen base) is scored once on it; each phase-2
epoch is scored by its `val_loss`; when phase 2 ends, the model takes the weights of
the best of them all -- the head's own when no phase-2 epoch beat them. Without
validation data there is nothing to compare, and the model stays as phase 2 leaves
it.
"""

from __future__ import annotations

import math

import keras

from keras_recipes.callbacks.resumable import Resumable

__all__ = ["KeepBest"]

_MONITOR = "val_loss"


class KeepBest(Resumable, keras.callbacks.Callback):
    """Phase 2's callback that restores the best weights of both phases when it ends.

    Its state (the head's score, the best epoch, its value and weights) is
    `Resumable`: the recipe's backup keeps it, so that a resumed phase 2 still
    compares with the head's score and restores the best epoch it had finished
    before the interruption.

    Args:
        validation_data: `fit`'s validation data (tuple of arrays or a dataset).
        batch_size: int or None, the batch size to score array data with.
        phase_1_epoch: int or None, the epoch of phase 1 (from 0) whose weights phase 2
            starts from (None without a phase 1); it goes to the outcome.
    """

    def __init__(self, validation_data, batch_size=None, phase_1_epoch=None):
        super().__init__()
        self.phase_1_epoch = phase_1_epoch
        self.validation_data = validation_data
        self.batch_size = batch_size
        self.outcome = None
        self.last_epoch = None
        self.reference = None
        self.best = None
        self.best_weights = None

    def start(self, model):
        """Scores the model as phase 2 starts and keeps its weights. Call after the
        phase-2 recompile, before `fit` (a resumed run restores the rest)."""
        self.start_weights = model.get_weights()
        self.best_weights = None
        self.reference = self._score(model)
        self.best = {"epoch": None, "value": self.reference}

    def get_state(self):
        return {"reference": self.reference, "best_epoch": self.best["epoch"],
                "best_value": self.best["value"], "best_weights": self.best_weights}

    def set_state(self, state):
        self.reference = state["reference"]
        self.best = {"epoch": state["best_epoch"], "value": state["best_value"]}
        self.best_weights = state["best_weights"]

    def _score(self, model):
        data = self.validation_data
        if isinstance(data, (tuple, list)):
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(tuple(data))
            logs = model.evaluate(x, y, sample_weight=sample_weight, batch_size=self.batch_size,
                                  verbose=0, return_dict=True)
        else:
            logs = model.evaluate(data, verbose=0, return_dict=True)
        return float(logs["loss"])

    def on_epoch_end(self, epoch, logs=None):
        self.last_epoch = epoch
        value = (logs or {}).get(_MONITOR)
        if value is None or not math.isfinite(float(value)) or value >= self.best["value"]:
            return
        self.best = {"epoch": int(epoch), "value": float(value)}
        self.best_weights = self.model.get_weights()

    def restore(self, model):
        """Gives `model` the best weights seen. Call once phase 2's `fit` has returned:
        after every callback, Keras's `EarlyStopping` (which restores the best weights
        of phase 2 alone when its `fit` ends) included.

        Returns:
            dict, the outcome: `monitor`, `phase` (1: the head's weights were kept),
            `phase_1_epoch` (the epoch of phase 1, from 0, whose weights phase 2
            started from, or None without a phase 1), `phase_2_epoch` (the best
            epoch of phase 2, counted from 0, or None), `value` (its score),
            `phase_1_value` (the head's) and `restored` (whether the weights are not
            those of phase 2's last epoch).
        """
        epoch = self.best["epoch"]
        restored = epoch is None or epoch != self.last_epoch
        model.set_weights(self.start_weights if epoch is None else self.best_weights)
        self.outcome = {"monitor": _MONITOR, "phase": 1 if epoch is None else 2,
                        "phase_1_epoch": self.phase_1_epoch, "phase_2_epoch": epoch,
                        "value": self.best["value"],
                        "phase_1_value": self.reference, "restored": restored}
        return self.outcome
