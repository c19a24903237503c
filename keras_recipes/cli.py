"""The `keras-recipes` command line: train a recipe on a dataset and keep what happened."""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import os
import pathlib
import sys
import time

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _parser():
    parser = argparse.ArgumentParser(
        prog="keras-recipes",
        description="Train the deep-learning recipes of Géron's chapter 11 with Keras 3.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train a recipe and write the model, history and settings",
        description="Train a recipe (default: default_dnn on the bundled digits data), print "
        "per-epoch progress and the test accuracy, and write the model, its history and the "
        "resolved settings to an output folder.",
    )
    train.add_argument("recipe", nargs="?", default="default_dnn",
                       help="recipe name (see `keras-recipes list`; default: default_dnn)")
    train.add_argument("--dataset", default="digits", help="dataset name (default: digits)")
    train.add_argument("--epochs", type=int, default=30, help="maximum epochs (default: 30)")
    train.add_argument("--batch-size", type=int, default=32, help="batch size (default: 32)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.add_argument("--output", default=None,
                       help="output folder (default: runs/<recipe>-<timestamp>)")

    commands.add_parser("list", help="list the available recipes")
    return parser


def main(argv=None):
    """Runs the command line; returns the exit code.

    Exit codes: 0 success, 1 training failure, 2 bad usage or configuration.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        if args.command == "list":
            return _list()
        return _train(args)
    except (ValueError, TypeError, ImportError) as error:
        print(f"keras-recipes: error: {error}", file=sys.stderr)
        return EXIT_USAGE


def _list():
    from keras_recipes.models.registry import get_recipe, list_recipes

    for name in list_recipes():
        summary = (get_recipe(name).__doc__ or "").strip().splitlines()[0]
        print(f"{name:20s} {summary}")
    return EXIT_OK


def _train(args):
    import keras

    from keras_recipes import _io, datasets
    from keras_recipes import _validation as v
    from keras_recipes.models.registry import get_recipe

    v.check_int("epochs", args.epochs, min_value=1)
    v.check_int("batch_size", args.batch_size, min_value=1)
    v.check_int("seed", args.seed, min_value=0)
    factory = get_recipe(args.recipe)
    data = datasets.load(args.dataset, seed=args.seed)
    output = pathlib.Path(args.output or _default_output(args.recipe))

    keras.utils.set_random_seed(args.seed)
    model = factory(data.input_shape, data.num_classes, seed=args.seed)
    print(f"Training {args.recipe} on {data.name}: {len(data.x_train)} train, "
          f"{len(data.x_val)} validation, {len(data.x_test)} test samples -> {output}")
    started = time.perf_counter()
    try:
        history = model.fit(
            data.x_train, data.y_train,
            validation_data=(data.x_val, data.y_val),
            epochs=args.epochs, batch_size=args.batch_size, verbose=2,
        )
    except Exception as error:  # a failure of training itself, not of the arguments
        print(f"keras-recipes: training failed: {error}", file=sys.stderr)
        return EXIT_FAILURE
    seconds = time.perf_counter() - started
    test = model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)

    settings = {
        "recipe": args.recipe, "dataset": data.name, "epochs": args.epochs,
        "batch_size": args.batch_size, "seed": args.seed,
        "input_shape": list(data.input_shape), "num_classes": data.num_classes,
    }
    metrics = {f"test_{k}": float(val) for k, val in test.items()}
    metrics.update(epochs_run=len(history.epoch), train_seconds=round(seconds, 2))
    _io.save_model(model, output / "model.keras")
    _io.write_text(output / "history.csv", _history_csv(history.history))
    _io.write_text(output / "settings.json", json.dumps(settings, indent=2) + "\n")
    _io.write_text(output / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    print(f"Test accuracy: {test.get('accuracy', float('nan')):.4f} "
          f"(test loss {test['loss']:.4f}, {len(history.epoch)} epochs, {seconds:.1f} s)")
    print(f"Wrote model.keras, history.csv, settings.json, metrics.json to {output}")
    return EXIT_OK


def _default_output(recipe):
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return pathlib.Path("runs") / f"{recipe}-{stamp}"


def _history_csv(history):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    keys = list(history)
    writer.writerow(["epoch", *keys])
    for epoch in range(len(history[keys[0]]) if keys else 0):
        writer.writerow([epoch + 1, *(history[k][epoch] for k in keys)])
    return buffer.getvalue()


if __name__ == "__main__":
    sys.exit(main())
