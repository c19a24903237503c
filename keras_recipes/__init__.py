"""keras-recipes: ready-made, tested Keras 3 recipes for training deep networks."""

__version__ = "0.1.0"

from keras_recipes import (  # noqa: E402
    callbacks,
    constraints,
    datasets,
    layers,
    losses,
    optimizers,
    plots,
    schedules,
    uncertainty,
)
from keras_recipes._processes import join_processes  # noqa: E402
from keras_recipes.constraints import apply_max_norm  # noqa: E402
from keras_recipes.diagnostics import DiagnosisReport, diagnose  # noqa: E402
from keras_recipes.lr_finder import LRFinderResult, find_learning_rate  # noqa: E402
from keras_recipes.models import (  # noqa: E402
    RecipeModel,
    build_default_dnn,
    build_plain_dnn,
    build_self_normalizing_dnn,
    compile_recipe,
)
from keras_recipes.models.registry import (  # noqa: E402
    RecipeSpec,
    get_recipe,
    get_recipe_spec,
    list_recipes,
)
from keras_recipes.models.transfer import build_transfer_model  # noqa: E402
from keras_recipes.recipe import Recipe  # noqa: E402
from keras_recipes.training import fine_tune  # noqa: E402
from keras_recipes.uncertainty import (  # noqa: E402
    MCDropoutPredictor,
    MCDropoutResult,
    expected_calibration_error,
    reliability_diagram,
)

__all__ = [
    "__version__",
    "callbacks",
    "constraints",
    "datasets",
    "layers",
    "losses",
    "uncertainty",
    "optimizers",
    "plots",
    "schedules",
    "Recipe",
    "RecipeModel",
    "build_default_dnn",
    "build_plain_dnn",
    "build_self_normalizing_dnn",
    "compile_recipe",
    "build_transfer_model",
    "fine_tune",
    "join_processes",
    "get_recipe",
    "get_recipe_spec",
    "RecipeSpec",
    "list_recipes",
    "diagnose",
    "DiagnosisReport",
    "find_learning_rate",
    "LRFinderResult",
    "apply_max_norm",
    "MCDropoutPredictor",
    "MCDropoutResult",
    "expected_calibration_error",
    "reliability_diagram",
]
