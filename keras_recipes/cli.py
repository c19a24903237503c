"""The `keras-recipes` command line: parses the command and runs it.

Each recipe trains with its own training function (`model.fit`, or `fine_tune`
in two phases for `transfer_learning`; see `keras_recipes.models.registry`); the
commands themselves live in `keras_recipes.commands`, imported when they run, so
that `list` and `--help` import no backend. The Keras backend of `train`, `show` and
`lr-find` is chosen per recipe by the console script (`keras_recipes_cli`) before this
package, and so Keras, is imported (`keras_recipes._backend_choice`); called here in a
process that imported Keras already, they run on its backend and say so.

Exit codes: 0 success, 1 training failure (or a download that failed: a
dataset or pretrained weights), 2 bad usage or config (one line on stderr, no
traceback), 130 interrupted with Ctrl-C (what finished is saved).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pathlib
import sys

from keras_recipes.commands._setup import (  # stdlib only: `list` stays backend-free
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    usage_error,
)

__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "main"]

# command -> (module of keras_recipes.commands, function)
_COMMANDS = {"train": ("train", "train"), "show": ("show", "show"),
             "evaluate": ("evaluate", "evaluate"), "lr-find": ("lr_find", "lr_find")}


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
    from keras_recipes.commands._run_folder import RunFolderError
    from keras_recipes.commands._setup import RunError
    from keras_recipes.config import ConfigError

    module, function = _COMMANDS[args.command]
    command = getattr(importlib.import_module(f"keras_recipes.commands.{module}"), function)
    try:
        return command(args)
    except (ConfigError, ImportError, RunFolderError) as error:
        return usage_error(error)
    except RunError as error:
        print(f"keras-recipes: error: {error}", file=sys.stderr)
        return EXIT_FAILURE




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


if __name__ == "__main__":
    sys.exit(main())
