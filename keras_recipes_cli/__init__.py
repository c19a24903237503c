"""The `keras-recipes` command, started quickly and quietly.

`import keras_recipes` imports Keras and so its backend: with TensorFlow, seconds of
start-up and C++ log lines written to stderr before any Python setting can filter them.
This launcher lives outside the `keras_recipes` package so that it runs before that
import: it parses the command line against the package's `cli` module loaded alone, answers
`--help`, `list` and bad usage without importing Keras, chooses the Keras backend of a
command that builds a recipe (where `KERAS_BACKEND` does not name one), and imports the
package for every other command with TensorFlow's C++ logging silenced (`--verbose` keeps it).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import types

_NO_MODEL = ("list",)
# Commands that build a recipe from a config: run on the backend chosen for the recipe
# (`keras_recipes._backend_choice`) where KERAS_BACKEND does not name one.
_WITH_CONFIG = ("train", "show", "lr-find")


def main(argv=None):
    """Runs `keras-recipes` with `argv` (default: the process's); returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    verbose = "--verbose" in argv
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "keras_recipes" not in sys.modules:
        cli = _cli_alone()
        try:
            args = cli._parser().parse_args(argv)
        except SystemExit as exit_:  # --help, or bad usage: printed by argparse
            return int(exit_.code or 0)
        if args.command in _NO_MODEL:
            return cli.main(argv)
        if args.command in _WITH_CONFIG:  # before Keras fixes its backend on import
            backend = importlib.import_module("keras_recipes._backend_choice")
            try:
                backend.choose_for_command(args)
            except ValueError as error:  # a backend the config names is not installed
                return cli.usage_error(error)
        for name in [name for name in sys.modules if name.split(".")[0] == "keras_recipes"]:
            del sys.modules[name]  # loaded under the empty package: load them properly
    _fewer_malloc_arenas()
    with contextlib.nullcontext() if verbose else _quiet_stderr():
        cli = importlib.import_module("keras_recipes.cli")
        if importlib.util.find_spec("tensorflow") is not None:
            # On another backend, Keras imports TensorFlow later where it is installed
            # (`keras.utils.set_random_seed` seeds it too): its start-up lines are hidden here.
            importlib.import_module("tensorflow")
    return cli.main(argv)


def _fewer_malloc_arenas():
    """Limits glibc's malloc to 2 arenas in this process, before any thread starts.

    glibc gives threads that allocate at once arenas of their own (up to 8 per core), and
    tf.data's decoding threads leave freed image buffers spread over all of them: a run on a
    streamed folder (3,000 PNGs of 128x128) grew by about 0.1 GB per epoch, to 1.66 GB
    resident after 2 epochs; with 2 arenas it stayed at 1.35 GB. `MALLOC_ARENA_MAX` in the
    environment wins; nothing is done off Linux or without glibc.
    """
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def _cli_alone():
    """`keras_recipes.cli` imported under an empty `keras_recipes` (its __init__ not run)."""
    spec = importlib.util.find_spec("keras_recipes")
    package = types.ModuleType("keras_recipes")
    package.__spec__, package.__path__ = spec, list(spec.submodule_search_locations)
    package.__file__ = spec.origin
    sys.modules["keras_recipes"] = package
    return importlib.import_module("keras_recipes.cli")


@contextlib.contextmanager
def _quiet_stderr():
    """Sends the process's stderr (file descriptor 2) to the null device, then restores it.

    TensorFlow's C++ runtime writes its start-up lines ("All log messages before
    absl::InitializeLog() ...", oneDNN, CUDA) while it is imported, before
    TF_CPP_MIN_LOG_LEVEL applies; Python exceptions are printed after this returns.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
