"""Transfer learning: a pretrained base with a new head, then two-phase fine-tuning.

One job per module:

- `build`: `build_transfer_model`, the base frozen under a new head, compiled;
- `base`: the base: `keras.applications` names, families and input sizes, building
  an application, a model of yours cut at its features, pooling;
- `preprocessing`: each application family's `preprocess_input` as a layer;
- `fine_tuning`: the public `fine_tune`, a short composition of the two phases (not
  named `fine_tune.py`, which the function would shadow);
- `arguments`: `fine_tune`'s argument checks (the registry reuses them);
- `selection`: which layers each phase trains (BatchNormalization kept frozen);
- `optimizers`: the phases' optimizers and learning rates, discriminative rates;
- `phases`: one phase (recompile + `fit`), and the history of all phases;
- `resume`: the backup that lets an interrupted `fine_tune` resume in its phase;
- `distribution`: the distribution `fine_tune` trains in;
- `recipe`: `transfer_learning_recipe`, the registry's form of `build_transfer_model`.
"""

from keras_recipes.models.transfer.build import build_transfer_model
from keras_recipes.models.transfer.fine_tuning import fine_tune
from keras_recipes.models.transfer.preprocessing import ApplicationPreprocessing
from keras_recipes.models.transfer.recipe import transfer_learning_recipe

__all__ = ["ApplicationPreprocessing", "build_transfer_model", "fine_tune",
           "transfer_learning_recipe"]
