"""`keras-recipes evaluate`: a saved model on a dataset's test split."""

from __future__ import annotations

import pathlib

from keras_recipes.commands._setup import EXIT_OK, load_data

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
        dataset = {"name": args.dataset}
    if args.seed is not None:
        seed, origin = args.seed, "--seed"
    elif "seed" in run_settings:
        seed, origin = run_settings["seed"], f"the run's, from {run / 'config.yaml'}"
    else:
        seed, origin = 0, "the default: no run config.yaml beside the model"
    data = load_data(dataset, seed)
    import keras_recipes  # noqa: F401  (registers the recipe classes for loading)

    try:
        model = keras.models.load_model(path, safe_mode=True)
    except Exception as error:
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise ConfigError(f"{args.model}: cannot load {str(path)!r}: {type(error).__name__}: "
                          f"{first_line}") from None
    results = model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)
    print(f"Evaluated {path} on the {data.name} test split ({len(data.x_test)} samples, "
          f"split seed {seed}: {origin})")
    for key, value in results.items():
        print(f"  test_{key}  {float(value):.4f}")
    return EXIT_OK
