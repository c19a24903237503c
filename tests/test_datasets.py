import re

import numpy as np
import pytest

from keras_recipes import datasets


def test_digits_splits_are_stratified_standardised_on_train_only():
    data = datasets.load("digits", validation_split=0.2, test_split=0.25, seed=1)
    assert data.input_shape == (64,) and data.num_classes == 10
    total = len(data.x_train) + len(data.x_val) + len(data.x_test)
    assert total == 1797 and abs(len(data.x_test) - 0.25 * 1797) <= 5
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
            "Argument `name` must be 'digits', a folder of images, a .npz / .csv path, or a "
            "TensorFlow Datasets name. Received: name='digit'. Did you mean 'digits'?")):
        datasets.load("digit")
    with pytest.raises(ValueError, match=re.escape(
            "Argument `test_split` must be in the range (0, 1). Received: test_split=1.0")):
        datasets.load("digits", test_split=1.0)


def _npz(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return str(path)


def test_npz_with_its_own_test_split(tmp_path):
    rng = np.random.default_rng(0)
    path = _npz(tmp_path, x_train=rng.normal(size=(100, 4, 4)), y_train=rng.integers(0, 3, 100),
                x_test=rng.normal(size=(20, 4, 4)), y_test=rng.integers(0, 3, 20))
    data = datasets.load(path, validation_split=0.2)
    assert data.input_shape == (4, 4) and data.num_classes == 3
    assert len(data.x_test) == 20 and len(data.x_train) + len(data.x_val) == 100


def test_npz_with_x_and_y_only_and_regression_targets(tmp_path):
    rng = np.random.default_rng(0)
    path = _npz(tmp_path, x=rng.normal(size=(50, 3)), y=rng.normal(size=50))
    data = datasets.load(path, standardize=False)
    assert data.num_classes is None
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 50


def test_csv_with_a_label_column(tmp_path):
    path = tmp_path / "table.csv"
    rows = ["a,label,b"] + [f"{i},{i % 2},{2 * i}" for i in range(40)]
    path.write_text("\n".join(rows) + "\n")
    data = datasets.load(str(path), standardize=False)
    assert data.input_shape == (2,) and data.num_classes == 2
    x = np.concatenate([data.x_train, data.x_val, data.x_test])
    np.testing.assert_array_equal(np.sort(x[:, 1]), np.sort(2 * x[:, 0]))


@pytest.mark.parametrize("arrays, message", [
    (dict(inputs=np.zeros((3, 2))), "a .npz file with arrays `x_train` and `y_train`"),
    (dict(x=np.array([[1.0, np.nan]] * 10), y=np.zeros(10)), "inputs must be finite numbers"),
    (dict(x=np.zeros((10, 2)), y=np.zeros(9)), "10 inputs but 9 labels"),
])
def test_bad_files_are_explained(tmp_path, arrays, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        datasets.load(_npz(tmp_path, **arrays))


def test_missing_file_and_pickled_npz_are_refused(tmp_path):
    with pytest.raises(ValueError, match=re.escape("The file was not found")):
        datasets.load(str(tmp_path / "absent.npz"))
    path = tmp_path / "objects.npz"
    np.savez(path, x=np.array([{"a": 1}] * 4, dtype=object), y=np.zeros(4))
    with pytest.raises(ValueError, match="allow_pickle"):
        datasets.load(str(path))


def test_tfds_dataset_under_mock_data_keeps_image_shape():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=60):
        data = datasets.load("mnist", validation_split=0.25)
        resized = datasets.load("mnist", image_size=(14, 14), standardize=False)
    assert data.input_shape == (28, 28, 1) and data.num_classes == 10
    assert len(data.x_test) == 60 and len(data.x_train) + len(data.x_val) == 60
    assert resized.input_shape == (14, 14, 1) and resized.x_train.max() > 1


def test_tfds_builder_of_a_package_prepares_and_loads_offline(local_tfds_builder, tmp_path):
    # The real tfds path, as `tfds.load("tf_flowers")` takes it (not mock_data): the
    # builder's code path, download_and_prepare into data_dir, reading the files back.
    data = datasets.load(local_tfds_builder, data_dir=str(tmp_path), image_size=(8, 8),
                         standardize=False, seed=0)
    assert data.input_shape == (8, 8, 3) and data.num_classes == 5
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 100
    assert (tmp_path / local_tfds_builder / "1.0.0").is_dir()  # prepared there
    again = datasets.load(local_tfds_builder, data_dir=str(tmp_path), image_size=(8, 8),
                          standardize=False, seed=0)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    red = data.x_train[..., 0].mean(axis=(1, 2))  # classes 0 and 3 have a bright red channel
    assert red[np.isin(data.y_train, (0, 3))].min() > red[~np.isin(data.y_train, (0, 3))].max()


def test_tfds_missing_module_is_named_with_the_install_command(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")

    def fresh_install(*args, **kwargs):  # tensorflow-datasets 4.9.10 without importlib_resources
        raise ModuleNotFoundError("No module named 'importlib_resources'",
                                  name="importlib_resources")

    monkeypatch.setattr(tfds, "builder", fresh_install)
    with pytest.raises(ImportError) as raised:
        datasets.load("mnist")
    assert str(raised.value) == (
        "Loading 'mnist' with TensorFlow Datasets needs the Python module "
        "'importlib_resources', which is not installed: pip install importlib_resources "
        '(pip install "keras-recipes[tfds]" installs what tensorflow-datasets itself needs)')


def test_csv_with_the_label_first_under_a_usual_name(tmp_path):
    path = tmp_path / "table.csv"
    rows = ["class,a,b"] + [f"{i % 3},{i / 10},{2 * i}" for i in range(60)]
    path.write_text("\n".join(rows) + "\n")
    data = datasets.load(str(path), standardize=False)
    assert data.input_shape == (2,) and data.num_classes == 3
