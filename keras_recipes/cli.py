"""The `keras-recipes` command line: train a recipe on a dataset and keep what happened.

Each recipe trains with its own training function (`model.fit`, or `fine_tune`
in two phases for `transfer_learning`; see `keras_recipes.models.registry`).

Exit codes: 0 success, 1 training failure (or a download that failed: a
dataset or pretrained weights), 2 bad usage or config (one line on stderr, no
traceback), 130 interrupted with Ctrl-C (what finished is saved).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import pathlib
import sys
import time

__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _RunError(Exception):
    """A valid config that cannot run here (e.g. a download failed): exit 1, one line."""


def _add_config_arguments(parser):
    parser.add_argument("config", nargs="?", default="default_dnn", metavar="CONFIG|RECIPE",
                        help="a YAML config file or a recipe name (default: default_dnn)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help="override a setting, e.g. --set model.units=64 (repeatable)")
    parser.add_argument("--dataset", help="dataset: digits, a .npz/.csv path or a tfds name")
    parser.add_argument("--seed", type=int, help="random seed")


def _parser():
    parser = argparse.ArgumentParser(
        prog="keras-recipes",
        description="Train the deep-learning recipes of Géron's chapter 11 with Keras 3.",
    )
    parser.add_argument("--verbose", action="store_true",
                        help="keep TensorFlow's own log messages (hidden by default)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train a recipe and write its report",
        description="Train a recipe (default: default_dnn on the bundled digits data), print "
        "progress and a summary, and write the model, history, config, metrics, plots and "
        "report.md to an output folder.")
    _add_config_arguments(train)
    train.add_argument("--output", help="output folder (default: runs/<recipe>-<timestamp>)")

    show = commands.add_parser("show", help="print the resolved settings of a config",
                               description="Print a config with every default filled in.")
    _add_config_arguments(show)

    evaluate = commands.add_parser(
        "evaluate", help="evaluate a saved model on a dataset's test split",
        description="Load a .keras model (safe mode) or a run folder and evaluate it on the "
        "test split of a dataset (by default the one the run was trained on).")
    evaluate.add_argument("model", help="a .keras file or a run output folder")
    evaluate.add_argument("--dataset", help="dataset name or path (default: the run's)")
    evaluate.add_argument("--seed", type=int, help="split seed (default: the run's, else 0)")

    lr_find = commands.add_parser(
        "lr-find", help="run the learning-rate range test on a recipe",
        description="Build a recipe as `train` would, run the LR range test on its training "
        "data, print the suggestions and write lr_finder.png and lr_finder.json.")
    _add_config_arguments(lr_find)
    lr_find.add_argument("--output", help="output folder (default: runs/lr-find-<recipe>-<time>)")
    lr_find.add_argument("--num-steps", type=int, default=100, help="ramp length (default 100)")

    commands.add_parser("list", help="list the available recipes",
                        description="List the registered recipes.")
    for command in commands.choices.values():
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="keep TensorFlow's own log messages (hidden by default)")
    return parser


def main(argv=None):
    """Runs the command line; returns the exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.command == "list":  # no backend: see keras_recipes_cli
        return _list(args)
    from keras_recipes.config import ConfigError

    try:
        return {"train": _train, "show": _show, "evaluate": _evaluate, "list": _list,
                "lr-find": _lr_find}[args.command](args)
    except (ConfigError, ImportError) as error:
        return _usage_error(error)
    except _RunError as error:
        print(f"keras-recipes: error: {error}", file=sys.stderr)
        return EXIT_FAILURE


def _usage_error(message):
    print(f"keras-recipes: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _config(args):
    from keras_recipes.config import load_config

    overrides = list(args.overrides)
    if args.dataset is not None:
        overrides.append(f"dataset.name={json.dumps(args.dataset)}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    return load_config(args.config, overrides)


def _list(args):
    # From the shipped configs, one per registered recipe, so that no backend is imported.
    for path in sorted((pathlib.Path(__file__).parent / "configs").glob("*.yaml")):
        print(f"{path.stem:20s} {_first_sentence(path)}")
    return EXIT_OK


def _first_sentence(config_path):
    """The first sentence of a config file's opening comment."""
    comment = []
    for line in config_path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("#").strip())
    text = " ".join(comment)
    end = text.find(". ")
    return text if end < 0 else text[:end + 1]


def _show(args):
    import yaml

    config = _config(args)
    _check_model_settings(config)
    print(f"# {config.source}, resolved")
    print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
    return EXIT_OK


def _check_model_settings(config):
    """Builds the recipe's model on a stand-in input, so `show` validates the model section.

    The factories check their arguments at entry; this needs no data and downloads nothing
    (pretrained weights are left out). A model file of yours (`model.base`) is not loaded.
    """
    from keras_recipes.config import ConfigError, explain
    from keras_recipes.models.registry import get_recipe_spec

    spec = get_recipe_spec(config.recipe)
    kwargs = dict(config.model)
    if any(isinstance(kwargs.get(key), str) and kwargs[key].lower().endswith(".keras")
           for key in spec.model_files):
        return
    if "weights" in kwargs:
        kwargs["weights"] = None
    if kwargs.get("learning_rate") == "find":
        kwargs.pop("learning_rate")
    image_size = config.dataset.get("image_size")
    shape = (*image_size, 3) if spec.model_files and image_size else (32, 32, 3) \
        if spec.model_files else (8,)
    import keras

    try:
        spec.build(shape, 2, seed=config.seed, **kwargs)
    except (ValueError, TypeError) as error:
        raise ConfigError(explain(error, config, "model")) from None
    finally:
        keras.backend.clear_session()


def _build(config):
    """Loads the data and builds the model; argument errors name the config key."""
    from keras_recipes.config import ConfigError, explain
    from keras_recipes.models.registry import get_recipe_spec

    spec = get_recipe_spec(config.recipe)
    model_kwargs = _load_model_files(config, spec)
    data = _load_data(config.dataset, config.seed, config.source)
    try:
        model = spec.build(data.input_shape, data.num_classes, seed=config.seed, **model_kwargs)
    except (ValueError, TypeError) as error:
        raise ConfigError(explain(error, config, "model")) from None
    except ConnectionError as error:  # weights="imagenet" offline
        raise _RunError(f"{config.source}: model.weights: {error} (set model.weights to such "
                        "a path or to null, e.g. --set model.weights=null)") from None
    return data, model


def _load_model_files(config, spec):
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


def _load_data(dataset, seed, source=None):
    """`datasets.load(**dataset, seed=seed)`; errors become one-line CLI errors."""
    from keras_recipes import _validation, datasets
    from keras_recipes.config import ConfigError

    where = f"{source}: " if source else ""
    try:
        return datasets.load(**dataset, seed=seed)
    except (ValueError, TypeError) as error:
        key = _validation.argument_of(error)
        key = f".{key}" if key in dataset else ""
        raise ConfigError(f"{where}dataset{key}: {error}") from None
    except ImportError as error:
        if "keras-recipes[" in str(error):  # ours: names the extra to install
            raise
        raise _RunError(_data_failure(where, dataset, error)) from None
    except Exception as error:  # a download that failed, a broken tfds install, ...
        raise _RunError(_data_failure(where, dataset, error)) from None


def _data_failure(where, dataset, error):
    name = str(dataset.get("name"))
    message = f"{where}dataset.name: cannot load {name!r}: {type(error).__name__}: " + (
        str(error).strip().splitlines() or [""])[0]
    if pathlib.Path(name).suffix.lower() not in (".npz", ".csv") and name != "digits":
        message += (". A TensorFlow Datasets name is downloaded and prepared on first use, "
                    "which needs the internet; offline, set dataset.data_dir to a folder "
                    "holding the prepared dataset")
    return message


def _train(args):
    import keras

    from keras_recipes import report
    from keras_recipes.config import ConfigError, explain
    from keras_recipes.models.registry import get_recipe_spec

    config = _config(args)
    spec = get_recipe_spec(config.recipe)
    if config.report["lr_find"]:
        config.model["learning_rate"] = "find"
    output = pathlib.Path(args.output or _default_output(config.recipe))
    _keep_paths_inside(config, output)
    keras.utils.set_random_seed(config.seed)
    data, model = _build(config)
    image_size = config.dataset.get("image_size")
    if image_size is not None and list(data.input_shape[:2]) != list(image_size):
        # Only tfds images are resized: record the size the model was built at.
        config.dataset["image_size"] = list(data.input_shape[:2])
    if config.report["mc_dropout_samples"]:
        _mc_predictor(model, config)  # a model without dropout is refused before training
    print(f"Training {config.recipe} on {data.name}: {len(data.x_train)} train, "
          f"{len(data.x_val)} validation, {len(data.x_test)} test samples -> {output}")

    from keras_recipes.run_record import run_recorder

    recorder = run_recorder(output, spec.phases(config.fit) if spec.phases else None)
    status, started = "completed", time.perf_counter()
    best = None  # fine_tune's guard: which weights of its two phases it kept
    try:
        trained = spec.train(model, (data.x_train, data.y_train), (data.x_val, data.y_val),
                             callbacks=[recorder], verbose=1 if sys.stdout.isatty() else 2,
                             **config.fit)
        best = (getattr(trained, "params", None) or {}).get("best_weights")
    except KeyboardInterrupt:
        status = "interrupted"
        print("\nInterrupted: saving what finished.", file=sys.stderr)
    except Exception as error:  # a failure of training itself, not of the arguments
        if (isinstance(error, (ValueError, TypeError)) and not recorder.started
                and _names_a_key(error, config.fit)):
            # Checked at the entry of the training function against the model
            # (a layer name to unfreeze, a learning rate that is not lower, ...).
            raise ConfigError(explain(error, config, "fit")) from None
        print(f"keras-recipes: training failed: {type(error).__name__}: {error}",
              file=sys.stderr)
        return EXIT_FAILURE
    seconds = time.perf_counter() - started
    history = recorder.history()  # the whole run's, the epochs before a resume included

    metrics = {"status": status}
    if status == "completed":
        test = model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)
        metrics.update({f"test_{key}": float(value) for key, value in test.items()})
    metrics.update(_training_metrics(history, seconds, recorder.kept_weights(best),
                                     recorder.resumed_at))
    if status == "completed" and not all(map(math.isfinite, _floats(metrics))):
        metrics["status"] = status = "diverged"
    extra_figures = []
    if status == "completed" and config.report["mc_dropout_samples"]:
        extra_figures.append(_mc_dropout_report(model, data, config, metrics))
    finder = getattr(model, "learning_rate_finder_result", None)
    if finder is not None:
        metrics["found_learning_rate"] = float(finder.suggestion)
        extra_figures.append(("lr_finder.png", "Learning-rate range test",
                              lambda ax: finder.plot(ax=ax)))
    report.write_run_report(output, model=model, history=history, metrics=metrics,
                            settings=config.to_dict(), extra_figures=extra_figures,
                            optimizers=recorder.optimizers or None)
    _print_summary(metrics, output)
    if status == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_OK if status == "completed" else EXIT_FAILURE


def _names_a_key(error, settings):
    from keras_recipes import _validation

    return _validation.argument_of(error) in settings


def _keep_paths_inside(config, output):
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
    config.model["backup_dir"] = str(resolved)


def _mc_dropout_report(model, data, config, metrics):
    """MC-Dropout predictions on the test split: metrics and the uncertainty histogram."""
    import numpy as np

    from keras_recipes.uncertainty import expected_calibration_error

    result = _mc_predictor(model, config).predict(data.x_test)
    plain = model.predict(data.x_test, verbose=0)
    metrics["mc_test_accuracy"] = float(np.mean(result.predict_classes() == data.y_test))
    metrics["test_ece"] = float(expected_calibration_error(data.y_test, plain))
    metrics["mc_test_ece"] = float(expected_calibration_error(data.y_test, result.mean))
    correct = result.predict_classes() == data.y_test
    title = f"MC Dropout uncertainty ({config.report['mc_dropout_samples']} samples)"
    return ("uncertainty.png", title,
            lambda ax: _draw_uncertainty(ax, result.entropy, correct, title))


def _draw_uncertainty(ax, entropy, correct, title):
    """Histograms of the predictive entropy of right and wrong predictions, each as shares.

    Each group is normalised to its own size, so that a handful of wrong predictions is as
    visible as hundreds of right ones.
    """
    import numpy as np

    bins = np.linspace(0, max(float(entropy.max()), 1e-6), 30)
    for mask, label, color in ((correct, "correct", "tab:blue"), (~correct, "wrong", "tab:red")):
        if mask.any():
            ax.hist(entropy[mask], bins=bins, weights=np.full(mask.sum(), 1 / mask.sum()),
                    alpha=0.6, color=color, edgecolor=color, label=f"{label} ({mask.sum()})")
    ax.set_xlabel("predictive entropy (nats): higher is less sure")
    ax.set_ylabel("share of the group's test samples")
    ax.set_title(title)
    ax.legend(title="predictions")


def _mc_predictor(model, config):
    from keras_recipes.config import ConfigError
    from keras_recipes.uncertainty import MCDropoutPredictor

    try:
        return MCDropoutPredictor(model, num_samples=config.report["mc_dropout_samples"],
                                  seed=config.seed)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{config.source}: report.mc_dropout_samples: {error}") from None


def _floats(metrics):
    return [value for value in metrics.values() if isinstance(value, float)]


def _training_metrics(history, seconds, kept=None, resumed_at=None):
    """The run's figures: epochs, those of the kept weights' epoch, the lowest `val_loss`.

    Args:
        history: dict of per-epoch lists of the whole run (None where not recorded).
        seconds: float, the training time of this process.
        kept: `(epoch from 1, how)` of the weights the model holds, or None (the
            epoch is None when they are those phase 2 started from, with no phase 1).
        resumed_at: int or None, the epoch (from 1) a resumed run started again at.
    """
    count = len(next((values for key, values in history.items() if key != "phase"), []))
    metrics = {"epochs_run": count, "train_seconds": round(seconds, 2)}
    phases = history.get("phase")
    if phases:
        for phase in sorted(set(phases)):
            metrics[f"phase_{phase}_epochs_run"] = phases.count(phase)
    if resumed_at is not None:
        metrics["resumed_at_epoch"] = resumed_at
    if kept is not None and kept[0] is None:
        metrics["kept_by"] = kept[1]
    elif kept is not None:
        epoch, how = kept
        metrics["kept_epoch"], metrics["kept_by"] = epoch, how
        for key, values in history.items():
            if key != "phase" and values[epoch - 1] is not None:
                metrics[f"kept_{key}"] = float(values[epoch - 1])
    val_loss = [(i, value) for i, value in enumerate(history.get("val_loss") or [])
                if value is not None]
    if val_loss:
        lowest, value = min(val_loss, key=lambda item: (math.isnan(item[1]), item[1]))
        metrics["lowest_val_loss_epoch"] = lowest + 1
        metrics["lowest_val_loss"] = float(value)
    return metrics


def _print_summary(metrics, output):
    from keras_recipes import report

    width = max(len(key) for key in metrics)
    print("\nRun summary")
    for key, value in metrics.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"  {key:<{width}}  {shown}")
    kept = report.kept_weights_text(metrics, markdown=False)
    if kept:
        print(f"Saved model: {kept}")
    if "test_accuracy" in metrics:
        print(f"Test accuracy: {metrics['test_accuracy']:.4f}")
    print(f"Report: {output / 'report.md'}")


def _evaluate(args):
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
    data = _load_data(dataset, seed)
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


def _lr_find(args):
    import keras

    from keras_recipes import _io, _validation
    from keras_recipes.lr_finder import find_learning_rate
    from keras_recipes.report import _figure, _save_figure

    try:
        _validation.check_int("num_steps", args.num_steps, min_value=2)
    except ValueError as error:
        return _usage_error(error)
    config = _config(args)
    output = pathlib.Path(args.output or _default_output(f"lr-find-{config.recipe}"))
    keras.utils.set_random_seed(config.seed)
    data, model = _build(config)
    result = find_learning_rate(model, data.x_train, data.y_train,
                                batch_size=config.fit["batch_size"], num_steps=args.num_steps,
                                seed=config.seed)
    print(f"Learning-rate range test of {config.recipe} on {data.name} "
          f"({len(result.learning_rates)} steps)")
    for name in ("valley", "minimum", "steepest"):
        print(f"  {name:<9} {getattr(result, name):.3g}")
    print(f"Suggested learning rate: {result.suggestion:.3g} ({result.method}); use it with "
          f"--set model.learning_rate={result.suggestion:.3g}")
    figure = _figure()
    result.plot(ax=figure.subplots())
    _save_figure(figure, output / "lr_finder.png")
    _io.write_text(output / "lr_finder.json", json.dumps(result.to_dict(), indent=2) + "\n")
    print(f"Wrote lr_finder.png and lr_finder.json to {output}")
    return EXIT_OK


def _default_output(recipe):
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return pathlib.Path("runs") / f"{recipe}-{stamp}"


if __name__ == "__main__":
    sys.exit(main())
