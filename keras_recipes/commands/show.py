"""`keras-recipes show`: a config with every default filled in, its model section checked."""

from __future__ import annotations

from keras_recipes.commands._setup import EXIT_OK, run_config

__all__ = ["check_model_settings", "show"]


def show(args):
    """`keras-recipes show`: prints the resolved config after checking its model section."""
    import yaml

    config = run_config(args)
    check_model_settings(config)
    print(f"# {config.source}, resolved")
    print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
    return EXIT_OK


def check_model_settings(config):
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
