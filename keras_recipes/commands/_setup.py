"""What the commands share: the config of a run, the data and the model it builds, and the
folders it writes to; each error a one-line message naming the config key."""

from __future__ import annotations

import inspect
import json
import pathlib

__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "RunError", "build",
           "fit_data", "keep_paths_inside", "load_data", "load_model_files",
           "names_a_key", "run_config", "test_data", "usage_error"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class RunError(Exception):
    """A valid config that cannot run here (e.g. a download failed): exit 1, one line."""


def usage_error(message):
    """Prints a usage error (one line) and returns the exit code for it."""
    import sys

    print(f"keras-recipes: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def run_config(args):
    """The validated `RunConfig` of a command: its config, `--set`, `--dataset`, `--seed`."""
    from keras_recipes.config import load_config

    overrides = list(args.overrides)
    if args.dataset is not None:
        overrides.append(f"dataset.name={json.dumps(args.dataset)}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    return load_config(args.config, overrides)


def build(config, distribution=None):
    """Loads the data and builds the model; argument errors name the config key.

    Args:
        config: the `RunConfig`.
        distribution: a `keras.distribution` distribution to build in (the processes of
            a run on several), or None.
    """
    from keras_recipes import _validation
    from keras_recipes.config import ConfigError, explain
    from keras_recipes.models.registry import get_recipe_spec

    spec = get_recipe_spec(config.recipe)
    model_kwargs = load_model_files(config, spec)
    if distribution is not None:
        model_kwargs["distribution"] = distribution
    data = load_data(config.dataset, config.seed, config.source,
                     batch_size=config.fit["batch_size"], model_task=model_kwargs.get("task"))
    if data.num_classes is None and model_kwargs.get("task") == "auto":
        model_kwargs["task"] = "regression"  # what the dataset's targets are
    try:
        model = spec.build(data.input_shape, data.num_classes, seed=config.seed, **model_kwargs)
    except (ValueError, TypeError) as error:
        if _validation.argument_of(error) == "num_classes":  # the data's, not a setting
            targets = (f"{data.num_classes} classes" if data.num_classes is not None
                       else "regression targets (numbers)")
            raise ConfigError(
                f"{config.source}: model.task: {model_kwargs.get('task')!r} does not fit "
                f"dataset {data.name!r}, which has {targets}; set model.task to auto (or say "
                "what the targets are with dataset.task)") from None
        raise ConfigError(explain(error, config, "model")) from None
    except ConnectionError as error:  # weights="imagenet" offline
        raise RunError(f"{config.source}: model.weights: {error} (set model.weights to such "
                        "a path or to null, e.g. --set model.weights=null)") from None
    return data, model


def load_model_files(config, spec):
    """The model keyword arguments, with each `.keras` path a recipe takes loaded."""
    from keras_recipes.config import ConfigError

    kwargs = dict(config.model)
    for key in spec.model_files:
        value = kwargs.get(key)
        if not (isinstance(value, str) and value.lower().endswith(".keras")):
            continue
        path = pathlib.Path(value)
        if not path.is_file():
            raise ConfigError(f"{config.source}: model.{key}: no such model file: {value!r}")
        import keras

        import keras_recipes  # noqa: F401  (registers the recipe classes for loading)

        try:
            kwargs[key] = keras.models.load_model(path, compile=False, safe_mode=True)
        except Exception as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise ConfigError(f"{config.source}: model.{key}: cannot load {value!r}: "
                              f"{type(error).__name__}: {first_line}") from None
    return kwargs


def load_data(dataset, seed, source=None, *, batch_size=32, model_task=None):
    """`datasets.load(**dataset, seed=seed, batch_size=batch_size)`; errors become one-line
    CLI errors naming the `dataset` key. A `model.task` that says what the targets are
    (`regression`, `multiclass`, `binary`) answers `dataset.task: auto`."""
    from keras_recipes import _validation, datasets
    from keras_recipes.config import ConfigError

    where = f"{source}: " if source else ""
    dataset = dict(dataset)
    if dataset.get("task", "auto") == "auto" and model_task in _DATA_TASKS:
        dataset["task"] = _DATA_TASKS[model_task]
    try:
        return datasets.load(**dataset, seed=seed, batch_size=batch_size)
    except (ValueError, TypeError) as error:
        key = _validation.argument_of(error)
        key = f".{key}" if key in inspect.signature(datasets.load).parameters else ""
        raise ConfigError(f"{where}dataset{key}: {error}") from None
    except ConnectionError as error:  # a tfds dataset not prepared, offline
        if _validation.argument_of(error) != "data_dir":
            raise RunError(_data_failure(where, dataset, error)) from None
        raise RunError(f"{where}dataset.data_dir: {error}") from None
    except ImportError as error:
        if "keras-recipes[" in str(error):  # ours: names the extra to install
            raise
        raise RunError(_data_failure(where, dataset, error)) from None
    except Exception as error:  # a download that failed, a broken tfds install, ...
        raise RunError(_data_failure(where, dataset, error)) from None


# The task a config's `model.task` gives the dataset's targets.
_DATA_TASKS = {"regression": "regression", "multiclass": "classification",
               "binary": "classification"}


def fit_data(data):
    """`(train_data, validation_data)` as the recipes' training functions take them: `(x, y)`
    arrays for a dataset held in memory, the `tf.data` batches of a streamed one."""
    if data.streamed:
        return data.train, data.validation
    return (data.x_train, data.y_train), (data.x_val, data.y_val)


def test_data(data):
    """`(x, y)` of the test split for `evaluate`: arrays, or the test batches and None."""
    if data.streamed:
        return data.test, None
    return data.x_test, data.y_test


def _data_failure(where, dataset, error):
    name = str(dataset.get("name"))
    message = f"{where}dataset.name: cannot load {name!r}: {type(error).__name__}: " + (
        str(error).strip().splitlines() or [""])[0]
    if (pathlib.Path(name).suffix.lower() not in (".npz", ".csv") and name != "digits"
            and not pathlib.Path(name).is_dir()):
        message += (". A TensorFlow Datasets name is downloaded and prepared on first use, "
                    "which needs the internet; offline, set dataset.data_dir to a folder "
                    "holding the prepared dataset")
    return message


def names_a_key(error, settings):
    """Whether an argument error is about a key of a config section (`settings`)."""
    from keras_recipes import _validation

    return _validation.argument_of(error) in settings


def keep_paths_inside(config, output):
    """Resolves a config's `model.backup_dir` inside the output folder, refusing escapes."""
    from keras_recipes.config import ConfigError

    backup_dir = config.model.get("backup_dir")
    if backup_dir is None:
        return
    root = output.resolve()
    resolved = (root / str(backup_dir)).resolve()
    if resolved != root and root not in resolved.parents:
        raise ConfigError(f"{config.source}: model.backup_dir: {backup_dir!r} resolves to "
                          f"{resolved}, outside the output folder {root}; use a folder name "
                          "relative to the output folder")
    if resolved == root:
        raise ConfigError(f"{config.source}: model.backup_dir: {backup_dir!r} is the output "
                          "folder itself, which holds the run's record and report; use a "
                          "folder of its own inside it, e.g. --set model.backup_dir=backup")
    config.model["backup_dir"] = str(resolved)
