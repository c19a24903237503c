"""Which Keras backend a command runs on, chosen before Keras is imported (#25).

Keras fixes its backend when it is first imported, so the `keras-recipes` launcher
(`keras_recipes_cli`) asks `choose_for_command` before it imports the package. Where
neither `KERAS_BACKEND` nor the config's `backend` setting names one, the fastest for the
recipe is taken among those installed: JAX for the dense recipes (their small compiled
steps run with the least overhead on JAX: a median MNIST epoch of the 5x100 default DNN
took 0.80 s on JAX against 2.19 s on TensorFlow, a hand-written jitted JAX loop 0.75 s),
TensorFlow for the others (its convolution kernels, for `transfer_learning`).

Standard library only: the launcher loads it without importing Keras.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import re

__all__ = ["BACKENDS", "CHOSEN", "DENSE_RECIPES", "SETTINGS", "choose_backend",
           "choose_for_command", "describe", "requested"]

BACKENDS = ("tensorflow", "jax", "torch")
SETTINGS = ("auto", *BACKENDS)  # a config's `backend`
# Recipes whose models are stacks of Dense layers (tests/test_cli_backend.py checks that
# every registered recipe is here or in _OTHER_RECIPES, so a new one is decided on purpose).
DENSE_RECIPES = ("baseline", "default_dnn", "self_normalizing")
_OTHER_RECIPES = ("transfer_learning",)
_PREFERENCE = {"dense": ("jax", "tensorflow", "torch"), "other": ("tensorflow", "jax", "torch")}
# Set by the launcher beside KERAS_BACKEND: "<backend>|<why>", so that the command's log
# line tells a chosen backend from one the user set.
CHOSEN = "KERAS_RECIPES_CHOSEN_BACKEND"
_HINT = "set KERAS_BACKEND or the config's backend to choose"


def choose_backend(recipe, setting="auto", *, environ, installed, configured=None):
    """The backend to run a recipe on, and why.

    Args:
        recipe: str, the recipe's registered name.
        setting: str, the config's `backend`: `"auto"` or a backend's name.
        environ: mapping, the process's environment (`KERAS_BACKEND` always wins).
        installed: collection of str, the backends that can be imported.
        configured: str or None, the backend in Keras's `keras.json`; one other than
            `"tensorflow"` (which Keras writes there by itself) is the user's choice.

    Returns:
        `(backend, reason)`: backend a str, or None to leave Keras's default.

    Raises:
        ValueError: if `setting` names a backend that is not installed.
    """
    if environ.get("KERAS_BACKEND"):
        return environ["KERAS_BACKEND"], "KERAS_BACKEND"
    if setting in BACKENDS:
        if setting not in installed:
            raise ValueError(f"backend: {setting!r} is not installed: pip install {setting}, "
                             "or set backend to auto (e.g. --set backend=auto)")
        return setting, "the config's backend setting"
    if configured and configured != "tensorflow":
        return configured, "keras.json"
    kind = "dense" if recipe in DENSE_RECIPES else "other"
    for backend in _PREFERENCE[kind]:
        if backend in installed:
            break
    else:
        return None, "Keras's default"
    if kind == "dense":
        why = ("fastest for dense recipes on CPU" if backend == "jax" else
               "JAX, fastest for dense recipes, is not installed: pip install jax")
    else:
        why = ("TensorFlow's kernels, fastest for convolutional models" if backend == "tensorflow"
               else "TensorFlow, fastest for convolutional models, is not installed")
    return backend, f"auto: {why}; {_HINT}"


def choose_for_command(args, environ=None):
    """Sets `KERAS_BACKEND` for a command with a config (`args.config`, `args.overrides`),
    before Keras is imported; returns the backend (None: Keras's default).

    Raises:
        ValueError: if the config's `backend` names a backend that is not installed.
    """
    environ = os.environ if environ is None else environ
    recipe, setting = requested(args.config, args.overrides)
    installed = [name for name in BACKENDS if importlib.util.find_spec(name) is not None]
    backend, why = choose_backend(recipe, setting, environ=environ, installed=installed,
                                  configured=_keras_json_backend(environ))
    if backend is not None and not environ.get("KERAS_BACKEND"):
        environ["KERAS_BACKEND"] = backend
        environ[CHOSEN] = f"{backend}|{why}"
    return backend


def describe(actual, setting="auto", environ=None):
    """The log line saying which backend a command runs on, and why."""
    environ = os.environ if environ is None else environ
    chosen, _, why = environ.get(CHOSEN, "").partition("|")
    if chosen != actual:
        why = ("KERAS_BACKEND" if environ.get("KERAS_BACKEND") == actual
               else "Keras's configured backend")
    if setting not in ("auto", actual):
        why += f"; the config's backend: {setting} is not used"
    return f"backend: {actual} ({why})"


def requested(config, overrides=()):
    """`(recipe, backend setting)` a command's config and `--set` ask for, read without
    validating anything (the command validates the config later and reports its errors)."""
    raw = {}
    if pathlib.Path(str(config)).suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml

            raw = yaml.safe_load(pathlib.Path(config).read_text(encoding="utf-8"))
        except Exception:  # missing file, bad YAML, no PyYAML: reported by the command
            raw = {}
        raw = raw if isinstance(raw, dict) else {}
    else:
        raw = {"recipe": config}
    for override in overrides:
        match = re.fullmatch(r"\s*(recipe|backend)\s*=\s*['\"]?([\w.-]*)['\"]?\s*", override)
        if match:
            raw[match.group(1)] = match.group(2)
    recipe, setting = str(raw.get("recipe", "default_dnn")), str(raw.get("backend", "auto"))
    return recipe.lower(), setting.lower() if setting.lower() in SETTINGS else "auto"


def _keras_json_backend(environ):
    """The backend named in Keras's `keras.json` (`$KERAS_HOME` or `~/.keras`), or None."""
    home = environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as handle:
            backend = json.load(handle).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return backend if backend in BACKENDS else None
