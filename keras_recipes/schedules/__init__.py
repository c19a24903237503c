"""Learning-rate and momentum schedules: the 1cycle, and the chapter's decays stretched over
a span of steps."""

from keras_recipes.schedules.decay import (
    ExponentialDecay,
    PiecewiseConstantDecay,
    PowerDecay,
    WarmupCosineDecay,
)
from keras_recipes.schedules.one_cycle import OneCycle, OneCycleMomentum

__all__ = ["ExponentialDecay", "OneCycle", "OneCycleMomentum", "PiecewiseConstantDecay",
           "PowerDecay", "WarmupCosineDecay"]
