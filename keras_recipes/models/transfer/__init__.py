"""Transfer learning's architecture: a pretrained base with a new head.

One job per module:

- `build`: `build_transfer_model`, the base frozen under a new head, compiled;
- `base`: the base: `keras.applications` names, families and input sizes, building
  an application, a model of yours cut at its features, pooling;
- `preprocessing`: each application family's `preprocess_input` as a layer;
- `recipe`: `transfer_learning_recipe`, the registry's form of `build_transfer_model`.

Its training, `fine_tune`, lives in `keras_recipes.training.fine_tune` (and is
re-exported here, where it was before).
"""

from keras_recipes.models.transfer.build import build_transfer_model
from keras_recipes.models.transfer.preprocessing import ApplicationPreprocessing
from keras_recipes.models.transfer.recipe import transfer_learning_recipe
from keras_recipes.training.fine_tune import fine_tune

__all__ = ["ApplicationPreprocessing", "build_transfer_model", "fine_tune",
           "transfer_learning_recipe"]
