"""YAML recipes: a file (or a recipe name) -> validated settings -> factory kwargs.

A config is a flat mapping of sections::

    recipe: default_dnn          # a name from keras_recipes.list_recipes()
    seed: 0
    backend: auto                # auto (the fastest for the recipe), tensorflow, jax or torch
    dataset: {name: digits}      # keyword arguments of keras_recipes.datasets.load
    model: {units: 100}          # keyword arguments of the recipe's factory
    fit: {epochs: 30, batch_size: 32}   # keyword arguments of the recipe's training function
    report: {lr_find: false, mc_dropout_samples: 0, tensorboard: false}

The valid `model` keys are the factory's keyword arguments (read from its
signature) and the valid `fit` keys those of the recipe's training function
(`epochs` and `batch_size` for `model.fit`; `head_epochs`, `epochs`,
`unfreeze`, ... for `transfer_learning`, trained with `fine_tune`). Unknown
keys are rejected with the closest valid key; wrong types and values are
rejected with the file, the key and the value. Files are read only with
`yaml.safe_load`.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pathlib
import re
from importlib import resources

from keras_recipes import _validation as v
from keras_recipes import datasets
from keras_recipes._backend_choice import SETTINGS as _BACKENDS
from keras_recipes.models.registry import get_recipe_spec, list_recipes

__all__ = ["ConfigError", "RunConfig", "explain", "load_config", "packaged_config_path"]

_SECTIONS = ("recipe", "seed", "backend", "dataset", "model", "fit", "report")
# `tensorboard`: each epoch's losses, metrics, learning rate and momentum as TensorBoard event
# files under the run folder (`<output>/tensorboard`).
_REPORT_DEFAULTS = {"lr_find": False, "mc_dropout_samples": 0, "tensorboard": False}


class ConfigError(ValueError):
    """A config file, or an override, that cannot be used; the message says where and why."""


@dataclasses.dataclass
class RunConfig:
    """A resolved, validated config.

    Attributes:
        source: str, where it came from (a file path or `recipe:<name>`).
        recipe: str, the registered recipe name.
        seed: int.
        dataset, model, fit, report: dicts of keyword arguments.
        backend: str, `"auto"` or the Keras backend the command line runs on, chosen
            before Keras is imported (`keras_recipes._backend_choice`); an explicit
            `KERAS_BACKEND` wins.
    """

    source: str
    recipe: str
    seed: int
    dataset: dict
    model: dict
    fit: dict
    report: dict
    backend: str = "auto"

    def to_dict(self):
        """The settings as plain data (what `keras-recipes show` prints)."""
        return {"recipe": self.recipe, "seed": self.seed, "backend": self.backend,
                "dataset": dict(self.dataset),
                "model": dict(self.model), "fit": dict(self.fit), "report": dict(self.report)}


def packaged_config_path(name):
    """The path of the config shipped for recipe `name` (inside the installed package)."""
    return resources.files("keras_recipes") / "configs" / f"{name}.yaml"


def load_config(source="default_dnn", overrides=()):
    """Loads and validates a config.

    Args:
        source: str, a registered recipe name (its shipped config is used) or a
            path to a YAML file. Defaults to `"default_dnn"`.
        overrides: iterable of `"section.key=value"` strings; values are parsed
            as YAML (`--set model.units=64`, `--set fit.epochs=3`).

    Returns:
        A `RunConfig` with every default filled in.

    Raises:
        ConfigError: for a missing file, invalid YAML, an unknown key, or a
            wrong type or value; the message names the file, key and value.
        ImportError: if PyYAML is missing.

    Example:

    >>> from keras_recipes.config import load_config
    >>> config = load_config("default_dnn", ["fit.epochs=3"])
    >>> config.fit["epochs"], config.model["activation"]
    (3, 'elu')
    """
    yaml = _yaml()
    where, text = _read(source)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{where}: invalid YAML{at}: {getattr(error, 'problem', error)}") \
            from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of sections "
                          f"({', '.join(_SECTIONS)}), got {type(raw).__name__}")
    raw = copy.deepcopy(raw)
    for override in overrides:
        _apply_override(raw, override, yaml)
    return _validate(raw, where)


def _yaml():
    try:
        import yaml
    except ImportError as error:
        raise ImportError('YAML configs need PyYAML: pip install "keras-recipes[cli]"') from error
    return yaml


def _read(source):
    if not isinstance(source, (str, pathlib.Path)):
        raise ConfigError(f"A config must be a recipe name or a YAML path, got {source!r}")
    source = str(source)
    if source.lower() in list_recipes() and not pathlib.Path(source).suffix:
        path = packaged_config_path(source.lower())
        return f"{source.lower()}.yaml", path.read_text(encoding="utf-8")
    path = pathlib.Path(source)
    if path.suffix.lower() not in (".yaml", ".yml"):
        hint = v.did_you_mean(source.lower(), {n: n for n in list_recipes()})
        raise ConfigError(f"{source!r} is neither a recipe ({', '.join(list_recipes())}) nor a "
                          f"YAML file (.yaml/.yml). {hint}".rstrip())
    if not path.is_file():
        raise ConfigError(f"{source}: no such config file")
    return str(path), path.read_text(encoding="utf-8")


def _apply_override(raw, override, yaml):
    match = re.fullmatch(r"([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?=(.*)", str(override), re.S)
    if not match:
        raise ConfigError(f"--set {override!r}: expected section.key=value (or seed=N), "
                          "e.g. --set model.units=64")
    section, key, text = match.groups()
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"--set {override!r}: the value is not valid YAML") from None
    if key is None:
        raw[section] = value
    else:
        if not isinstance(raw.get(section, {}), dict):
            raise ConfigError(f"--set {override!r}: `{section}` is not a section")
        raw.setdefault(section, {})
        if raw[section] is None:
            raw[section] = {}
        raw[section][key] = value


def _check_keys(where, section, given, valid):
    for key in given:
        if key not in valid:
            hint = v.did_you_mean(str(key), {k: k for k in valid})
            place = f"{section}." if section else ""
            raise ConfigError(
                f"{where}: unknown key `{place}{key}`. Valid keys: {', '.join(valid)}. "
                f"{hint}".rstrip())


def _check_top_level_keys(where, raw, spec):
    """Unknown top-level keys; a key of a section (`units`) gets that section's (`model.units`)."""
    sections = {"model": spec.model_defaults, "fit": spec.fit_defaults,
                "dataset": _dataset_defaults(), "report": _REPORT_DEFAULTS}
    for key in raw:
        owners = [name for name, keys in sections.items() if key in keys]
        if key not in _SECTIONS and owners:
            raise ConfigError(
                f"{where}: unknown key `{key}`. Valid keys: {', '.join(_SECTIONS)}. "
                f"Did you mean {', '.join(f'`{owner}.{key}`' for owner in owners)}?")
    _check_keys(where, "", raw, _SECTIONS)


def _section(raw, where, name):
    value = raw.get(name, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: `{name}` must be a mapping of keyword arguments, "
                          f"got {value!r}")
    return dict(value)


def _validate(raw, where):
    recipe = raw.get("recipe", "default_dnn")
    try:
        spec = get_recipe_spec(recipe)
    except (ValueError, TypeError) as error:
        _check_keys(where, "", raw, _SECTIONS)
        raise ConfigError(f"{where}: recipe: {error}") from None
    _check_top_level_keys(where, raw, spec)
    recipe = spec.name
    seed = raw.get("seed", 0)
    _wrap(where, "seed", v.check_seed, seed, allow_none=False)
    backend = raw.get("backend", "auto")
    _wrap(where, "backend", v.check_choice, "backend", backend, _BACKENDS)

    model_defaults = spec.model_defaults
    dataset_defaults = _dataset_defaults()
    model, dataset = _section(raw, where, "model"), _section(raw, where, "dataset")
    fit, report = _section(raw, where, "fit"), _section(raw, where, "report")
    _check_keys(where, "model", model, model_defaults)
    _check_keys(where, "dataset", dataset, dataset_defaults)
    _check_keys(where, "fit", fit, spec.fit_defaults)
    _check_keys(where, "report", report, _REPORT_DEFAULTS)
    fit = {**spec.fit_defaults, **fit}
    try:
        spec.check_fit(fit)
    except (ValueError, TypeError) as error:
        raise ConfigError(_where_in_section(where, "fit", fit, error)) from None
    if "lr_find" in report:
        _wrap(where, "report.lr_find", v.check_bool, "lr_find", report["lr_find"])
    if "tensorboard" in report:
        _wrap(where, "report.tensorboard", v.check_bool, "tensorboard", report["tensorboard"])
    if "mc_dropout_samples" in report:
        _wrap(where, "report.mc_dropout_samples", v.check_int, "mc_dropout_samples",
              report["mc_dropout_samples"], min_value=0)
    return RunConfig(
        source=where, recipe=recipe, seed=seed, backend=backend.lower(),
        dataset={**dataset_defaults, **dataset}, model={**model_defaults, **model},
        fit=fit, report={**_REPORT_DEFAULTS, **report},
    )


def _dataset_defaults():
    """The `dataset` keys: `datasets.load`'s arguments but the run's `seed` and the batch
    size of its streams, which is `fit.batch_size`."""
    return _defaults(datasets.load, skip=("seed", "batch_size"))


def _defaults(function, skip):
    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if name not in skip and p.default is not inspect.Parameter.empty}


def _where_in_section(where, section, settings, error):
    """`<file>: <section>.<key>: <error>` for an error about a key of the section."""
    key = v.argument_of(error)
    text = _in_cli_words(str(error))
    if key in settings:
        return f"{where}: {section}.{key}: {text}"
    return f"{where}: {section}: {text}"


def _in_cli_words(text):
    """A factory's message as the command line says it: `build_default_dnn` is the
    default_dnn recipe (`keras-recipes train default_dnn`)."""
    for name in list_recipes():
        factory = get_recipe_spec(name).build.__name__
        text = text.replace(f"`{factory}`", f"the {name} recipe (keras-recipes train {name})")
    return text


def _wrap(where, key, check, *args, **kwargs):
    try:
        check(*args, **kwargs)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{where}: {key}: {error}") from None


def explain(error, config, section):
    """Prefixes an argument error raised while using a config section with its file and key.

    Factories, training functions and `datasets.load` raise their argument
    errors with `_validation.fail`, which puts the argument's name on the error
    (`error.argument`); that name is the key within `section`.

    Args:
        error: the `ValueError` or `TypeError` raised.
        config: the `RunConfig` in use.
        section: str, `"model"`, `"fit"` or `"dataset"`, the section whose
            arguments were used.

    Returns:
        str, the message to show.
    """
    return _where_in_section(config.source, section, getattr(config, section), error)
