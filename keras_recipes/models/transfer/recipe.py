"""`transfer_learning_recipe`: `build_transfer_model` called as the registry calls factories."""

from __future__ import annotations

from keras_recipes import _validation as v
from keras_recipes.models.transfer import base as tb
from keras_recipes.models.transfer.build import build_transfer_model

__all__ = ["transfer_learning_recipe"]


def transfer_learning_recipe(input_shape, num_classes=None, *, base="MobileNetV2", **kwargs):
    """Transfer learning: a pretrained base, frozen, with a new head; trained with `fine_tune`.

    The registry's form of `build_transfer_model`, called as
    `factory(input_shape, num_classes, seed=..., **kwargs)` like the other recipes,
    with a default base (`"MobileNetV2"`); every other keyword argument is
    `build_transfer_model`'s, with its defaults. Train the model it returns with
    `keras_recipes.fine_tune`: the head on the frozen base, then the top of the base
    at a lower learning rate (`keras-recipes train transfer_learning` does).

    Args:
        input_shape: tuple of ints, the shape of one image, e.g. `(160, 160, 3)`.
        num_classes: int >= 2, or None for regression. Defaults to `None`.
        base: str or `keras.Model`, as in `build_transfer_model`.
            Defaults to `"MobileNetV2"`.
        **kwargs: the keyword arguments of `build_transfer_model`.

    Returns:
        A compiled `keras_recipes.models.RecipeModel` whose base is frozen.

    Raises:
        ValueError: as `build_transfer_model`, and for an `input_shape` that is
            not an image's (e.g. `(64,)`) with a `keras.applications` base.
        TypeError: as `build_transfer_model`, and for a keyword argument it
            does not take.
        ConnectionError: when `weights="imagenet"` cannot be downloaded.

    Example:

    >>> from keras_recipes.models.transfer import transfer_learning_recipe
    >>> model = transfer_learning_recipe((32, 32, 3), 4, weights=None,
    ...                                  base_kwargs={"alpha": 0.35})
    >>> model.output_shape
    (None, 4)
    """
    if isinstance(base, str) and input_shape is not None:
        # The data decides the shape here: vectors (a .csv file, "digits") would reach
        # the application builder, which fails with an IndexError.
        application = v.check_choice("base", base, tb.application_names())
        shape = v.check_shape("input_shape", input_shape)
        if len(shape) != 3:
            v.fail("input_shape", shape, f"the shape of one image, e.g. (160, 160, 3), for the "
                   f"keras.applications base {application!r}",
                   hint="(transfer learning from a pretrained image model needs image data)")
    return build_transfer_model(base, num_classes, input_shape, **kwargs)
