"""The learning-rate range test ("LR finder") and its suggestion rules.

`find_learning_rate` trains a compiled model for a few batches while the learning
rate grows exponentially, records the loss, and suggests a learning rate. The
model comes back exactly as it was: weights, non-trainable state (BatchNorm
statistics, dropout seeds), metric state and optimizer state (iterations, slots,
learning rate or schedule), also when the run raises or is interrupted.

Keras ships no LR finder. The suggestion rules `valley`, `minimum` and `steepest`
follow fastai's `lr_find` and are pure functions of the recorded curve; `one_cycle`
(the rule of `learning_rate="find"` under the 1cycle) reads the raw losses averaged
without lag (`lag_free_losses`).

Modules: `range_test` (the test itself), `suggestions` (the rules and the loss
smoothing), `result` (`LRFinderResult` and its plot).
"""

from keras_recipes.lr_finder.range_test import find_learning_rate, ramp_learning_rates
from keras_recipes.lr_finder.result import LRFinderResult
from keras_recipes.lr_finder.suggestions import (
    SUGGESTION_METHODS,
    LossSmoother,
    lag_free_losses,
    minimum,
    one_cycle,
    smooth_losses,
    steepest,
    valley,
)

__all__ = [
    "SUGGESTION_METHODS",
    "LRFinderResult",
    "LossSmoother",
    "find_learning_rate",
    "lag_free_losses",
    "minimum",
    "one_cycle",
    "ramp_learning_rates",
    "smooth_losses",
    "steepest",
    "valley",
]
