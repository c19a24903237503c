"""Models saved by the previous release (0.1.0) still load, predict and train.

The files were written once by `tests/fixtures/make_previous_release.py` with main as it
was before the recipe object; `expected.json` holds what each model carried then.
"""

import json
import pathlib
import sys

import keras
import numpy as np
import pytest

import keras_recipes  # noqa: F401  (registers the recipe classes)

HERE = pathlib.Path(__file__).parent / "fixtures"
sys.path.insert(0, str(HERE))
import previous_release_models  # noqa: E402, F401  (registers PreviousReleaseNet)

FILES = HERE / "previous_release"
EXPECTED = json.loads((FILES / "expected.json").read_text())
INPUTS = np.load(FILES / "inputs.npz")


def _inputs(name):
    return INPUTS["images"] if name == "transfer" else INPUTS["x"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_model_of_the_previous_release_loads_with_its_state(name):
    expected = EXPECTED[name]
    model = keras.models.load_model(FILES / f"{name}.keras")
    assert type(model).__name__ == expected["class"]
    np.testing.assert_allclose(model.predict(_inputs(name), verbose=0),
                               expected["predictions"], rtol=1e-5, atol=1e-6)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == expected["iterations"]
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
                               expected["learning_rate"], rtol=1e-5)


@pytest.mark.train
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_model_of_the_previous_release_trains_on(name):
    model = keras.models.load_model(FILES / f"{name}.keras")
    x = np.concatenate([_inputs(name)] * 4)
    y = np.arange(len(x)) % 3
    before = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert len(history.epoch) == 2
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == before + 4
