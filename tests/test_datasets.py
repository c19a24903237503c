import re

import numpy as np
import pytest

from keras_recipes import datasets


def test_digits_splits_are_stratified_standardised_on_train_only():
    data = datasets.load("digits", validation_split=0.2, test_split=0.25, seed=1)
    assert data.input_shape == (64,) and data.num_classes == 10
    total = len(data.x_train) + len(data.x_val) + len(data.x_test)
    assert total == 1797 and len(data.x_test) == 450
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0, atol=1e-4)
    stds = data.x_train.std(axis=0)
    assert np.all((np.abs(stds - 1) < 1e-3) | (stds < 1e-6))  # constant pixels stay at 0
    assert np.abs(data.x_test.mean(axis=0)).max() > 1e-3  # test statistics were not used
    assert set(np.unique(data.y_val)) == set(range(10))


def test_digits_raw_pixels_without_standardisation():
    data = datasets.load("digits", standardize=False)
    assert data.x_train.min() == 0 and data.x_train.max() == 16


def test_load_rejects_unknown_dataset_with_closest_name():
    with pytest.raises(ValueError, match=re.escape(
            "Argument `name` must be one of 'digits'. Received: name='digit'. "
            "Did you mean 'digits'?")):
        datasets.load("digit")
    with pytest.raises(ValueError, match=re.escape(
            "Argument `test_split` must be in the range (0, 1). Received: test_split=1.0")):
        datasets.load("digits", test_split=1.0)
