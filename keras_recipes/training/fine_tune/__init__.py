"""`fine_tune` and what it is made of, one job per module:

- `fine_tuning`: the public `fine_tune`, a short composition of the two phases (not
  named `fine_tune.py`, which the function would shadow);
- `arguments`: its argument checks (the registry reuses them) and the phases' recipe;
- `selection`: which layers each phase trains (BatchNormalization kept frozen);
- `phase_optimizers`: the phases' learning rates, discriminative rates, the recompile;
- `phases`: one phase (recompile + `fit`), and the history of all phases;
- `keep_best`: the guard that ends on the best weights of both phases;
- `resume`: what lets an interrupted `fine_tune` resume in its phase;
- `distribution`: the distribution `fine_tune` trains in.
"""

from keras_recipes.training.fine_tune.fine_tuning import fine_tune

__all__ = ["fine_tune"]
