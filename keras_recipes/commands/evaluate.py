"""`keras-recipes evaluate`: a saved model on a dataset's test split."""

from __future__ import annotations

import pathlib

from keras_recipes.commands._setup import EXIT_OK, load_data, test_data

__all__ = ["evaluate"]


def evaluate(args):
    """Evaluates a run's model (or any .keras file) on a test split, saying which split."""
    import keras
    import yaml

    from keras_recipes.config import ConfigError

    path = pathlib.Path(args.model)
    run = path
    if path.is_dir():
        path = path / "model.keras"
    elif (path.parent / "config.yaml").is_file() and (path.parent / "metrics.json").is_file():
        run = path.parent  # the model.keras of a run folder: that run's data and split
    if not path.is_file():
        raise ConfigError(f"{args.model}: no such model file (expected a .keras file or a run "
                          "folder with model.keras)")
    if path.suffix.lower() != ".keras":
        raise ConfigError(f"{args.model}: not a Keras model (expected a .keras file or a run "
                          "folder with model.keras)")
    run_settings = {}
    if (run / "config.yaml").is_file():
        try:
            run_settings = yaml.safe_load((run / "config.yaml").read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{run / 'config.yaml'}: not a run's config: "
                              f"{str(error).splitlines()[0]}") from None
        if not isinstance(run_settings, dict):
            raise ConfigError(f"{run / 'config.yaml'}: not a run's config")
    dataset = dict(run_settings.get("dataset") or {"name": "digits"})
    if args.dataset is not None:
        # Another dataset, prepared as the run's was (image size, standardisation, ...).
        if not str(args.dataset).lower().endswith(".csv"):
            dataset.pop("label", None)
        dataset["name"] = args.dataset
    if args.seed is not None:
        seed, origin = args.seed, "--seed"
    elif "seed" in run_settings:
        seed, origin = run_settings["seed"], f"the run's, from {run / 'config.yaml'}"
    else:
        seed, origin = 0, "the default: no run config.yaml beside the model"
    batch_size = (run_settings.get("fit") or {}).get("batch_size", 32)
    data = load_data(dataset, seed, batch_size=batch_size)
    import keras_recipes  # noqa: F401  (registers the recipe classes for loading)

    try:
        model = keras.models.load_model(path, safe_mode=True)
    except Exception as error:
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise ConfigError(f"{args.model}: cannot load {str(path)!r}: {type(error).__name__}: "
                          f"{first_line}") from None
    _check_data_fits(model, data, args.model)
    results = model.evaluate(*test_data(data), verbose=0, return_dict=True)
    print(f"Evaluated {path} on the {data.name} test split ({len(data.y_test)} samples, "
          f"split seed {seed}: {origin})")
    for key, value in results.items():
        print(f"  test_{key}  {float(value):.4f}")
    return EXIT_OK


def _check_data_fits(model, data, where):
    """Refuses a test split the model cannot be scored on, as `fit` refuses its data: inputs
    of another shape, labels outside its classes (Keras would report NaN and exit 0)."""
    import numpy as np

    from keras_recipes.config import ConfigError
    from keras_recipes.training._fit_checks import model_num_classes

    inputs = getattr(model, "inputs", None) or ()
    if len(inputs) == 1:
        expected = tuple(inputs[0].shape[1:])
        if len(expected) != len(data.input_shape) or any(
                e is not None and e != d for e, d in zip(expected, data.input_shape)):
            raise ConfigError(
                f"{where}: the inputs of dataset {data.name!r} have shape {data.input_shape}, "
                f"but the model takes {expected}: evaluate it on data like its training data "
                "(--dataset; the run's dataset settings, such as dataset.image_size, are "
                "kept)")
    num_classes = model_num_classes(model)
    if num_classes is None:
        return
    y = data.y_test
    if data.num_classes is None or np.any(y != np.round(y)):
        raise ConfigError(f"{where}: dataset {data.name!r} has regression targets, but the "
                          f"model is a classifier of {num_classes} classes: evaluate it on "
                          "labelled data (--dataset)")
    if y.min() < 0 or y.max() >= num_classes:
        raise ConfigError(
            f"{where}: the test labels of dataset {data.name!r} run from {int(y.min())} to "
            f"{int(y.max())}, but the model has {num_classes} classes (labels 0 to "
            f"{num_classes - 1}): evaluate it on a dataset of its classes (--dataset)")
