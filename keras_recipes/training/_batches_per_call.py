"""Several batches per compiled call: a recipe model runs another number than it was
compiled with for one `fit`, `evaluate` or `predict`, and keeps the compiled functions of
each number it ran.

Keras's compiled train, test and predict functions hold `steps_per_execution` as a
constant, so each number of batches per call has functions of its own; `RecipeTraining`
switches to those of the number a call needs (one batch while a callback watches single
batches, a divisor of the requested steps) and back to the compiled number after it.
"""

from __future__ import annotations

import contextlib

__all__ = ["CompiledFunctions", "with_batches_per_call"]


class CompiledFunctions:
    """The compiled functions (train, test, predict) of each number of batches per call,
    kept for one compilation of a model (its optimizer and compile config)."""

    def __init__(self):
        self.compiled_as = None
        self.functions = {}

    def forget_unless_compiled_as(self, model):
        """Drops the kept functions when `model` was compiled anew since they were made."""
        compiled_as = (model.optimizer, model.get_compile_config())
        if (self.compiled_as is None or self.compiled_as[0] is not compiled_as[0]
                or self.compiled_as[1] != compiled_as[1]):
            self.compiled_as, self.functions = compiled_as, {}

    def switch(self, model, current, new):
        """Keeps `model`'s functions for `current` batches per call; gives it those for
        `new` (None: traced when first needed)."""
        self.functions[current] = (model.train_function, model.test_function,
                                   model.predict_function)
        model.steps_per_execution = new
        model.train_function, model.test_function, model.predict_function = (
            self.functions.get(new, (None, None, None)))


@contextlib.contextmanager
def with_batches_per_call(model, kept, count):
    """Runs `count` batches per compiled call of `model` inside the block.

    The functions of each number are kept in `kept` (a `CompiledFunctions`), so that a
    call like an earlier one reuses its functions rather than tracing them again, for as
    long as the model is compiled the same way; the compiled number and its functions are
    back when the block ends, whatever happens in it.

    Args:
        model: a compiled `keras.Model`.
        kept: the model's `CompiledFunctions`.
        count: int, the batches per call inside the block.
    """
    compiled = model.steps_per_execution
    if count == compiled:
        yield
        return
    kept.forget_unless_compiled_as(model)
    kept.switch(model, compiled, count)
    try:
        yield
    finally:
        kept.switch(model, count, compiled)
