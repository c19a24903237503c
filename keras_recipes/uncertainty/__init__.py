"""Monte-Carlo Dropout predictions and calibration helpers.

`MCDropoutPredictor` turns any trained Keras model with `Dropout` /
`AlphaDropout` layers (Functional, Sequential or subclassed) into a Monte-Carlo
Dropout predictor (Gal & Ghahramani, 2016) without retraining it and without
touching it:

- Only the dropout layers are stochastic. The chapter's trick
  `model(x, training=True)` also switches BatchNormalization to training mode,
  which normalises each batch with its own statistics (a batch of one collapses
  to BatchNorm's offset) and overwrites the moving statistics of the model.
- In a Functional or Sequential model, the layers that come before the first
  dropout layer are deterministic, so they run once per input; only the rest of
  the network is sampled, `num_samples` times per input, as one large batch
  inside one compiled function. A subclassed model runs whole on the repeated
  inputs, in inference mode, with only its dropout layers made to sample. Inputs
  are processed in chunks of `batch_size`, which bounds memory.

`expected_calibration_error` and `reliability_diagram` show whether MC averaging
made the predicted probabilities better calibrated.

Modules: `predictor` (`MCDropoutPredictor`, `MCDropoutResult`), `statistics`
(`mc_statistics`), `calibration` (`expected_calibration_error`,
`reliability_diagram`, `ReliabilityDiagram`); internal: `_sampler` (the compiled
samplers), `_analysis` (a model's dropout layers and output activation), `_inputs`.
"""

from keras_recipes.uncertainty.calibration import (
    ReliabilityDiagram,
    expected_calibration_error,
    reliability_diagram,
)
from keras_recipes.uncertainty.predictor import MCDropoutPredictor, MCDropoutResult
from keras_recipes.uncertainty.statistics import mc_statistics

__all__ = [
    "MCDropoutPredictor",
    "MCDropoutResult",
    "ReliabilityDiagram",
    "expected_calibration_error",
    "mc_statistics",
    "reliability_diagram",
]
