import re

import numpy as np
import pytest

from keras_recipes import datasets
from keras_recipes.datasets import statistics


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


# --- folders of images (streamed) --------------------------------------------------------


def _arrays(dataset):
    """Every (x, y) of a tf.data dataset of batches, concatenated."""
    xs, ys = zip(*dataset.as_numpy_iterator())
    return np.concatenate(xs), np.concatenate(ys)


def test_folder_classes_splits_and_both_views(image_folder):
    data = datasets.load(image_folder, image_size=(8, 8), seed=1, batch_size=16)
    assert data.streamed and data.class_names == ("cat", "dog", "eel")
    assert data.num_classes == 3 and data.input_shape == (8, 8, 3) and data.image_size == (8, 8)
    # 60 images: 12 for testing, 7 of the 48 left for validation (stratified: 4 + 4 + 4, 2+2+2).
    assert [len(data.y_train), len(data.y_val), len(data.y_test)] == [42, 6, 12]
    for y in (data.y_train, data.y_val, data.y_test):
        assert np.bincount(y).tolist() == [len(y) // 3] * 3 and y.dtype == np.int64
    x, y = _arrays(data.test)
    np.testing.assert_array_equal(y, data.y_test)  # the test stream keeps y_test's order
    np.testing.assert_allclose(x, data.x_test)  # x_test: the same stream, read into memory
    first = next(iter(data.train))
    assert tuple(first[0].shape) == (16, 8, 8, 3) and first[0].dtype == "float32"
    # Each class brightens its own channel: labels follow the sub-folders' order.
    raw = datasets.load(image_folder, image_size=(8, 8), seed=1, standardize=False)
    brightest = raw.x_train.mean(axis=(1, 2)).argmax(axis=1)
    np.testing.assert_array_equal(brightest, raw.y_train)


def test_folder_is_standardised_with_one_pass_over_the_training_split(image_folder):
    raw = datasets.load(image_folder, image_size=(8, 8), standardize=False)
    data = datasets.load(image_folder, image_size=(8, 8))
    mean, std = raw.x_train.mean(axis=0), raw.x_train.std(axis=0)
    np.testing.assert_allclose(data.preprocessing.mean, mean, rtol=1e-5)
    np.testing.assert_allclose(data.preprocessing.scale, std, rtol=1e-4)
    np.testing.assert_allclose(data.x_val, (raw.x_val - mean) / std, atol=1e-4)
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0, atol=1e-4)


def test_folder_training_stream_is_reshuffled_each_pass_and_seeded(image_folder):
    data = datasets.load(image_folder, image_size=(4, 4), standardize=False, batch_size=64)
    first, second = (next(iter(data.train))[1] for _ in range(2))
    assert sorted(first) == sorted(second) == sorted(data.y_train)
    assert not np.array_equal(first, second)  # a new order at each pass
    again = datasets.load(image_folder, image_size=(4, 4), standardize=False, batch_size=64)
    np.testing.assert_array_equal(next(iter(again.train))[1], first)  # the same seed


def test_folder_reads_every_format_keras_reads_and_skips_hidden_files(tmp_path):
    import image_folders

    root = image_folders.write_image_folder(tmp_path / "mixed", per_class=8,
                                            formats=("png", "jpg", "bmp", "gif"))
    (root / "cat" / "nested").mkdir()
    (root / "cat" / "cat_000.png").rename(root / "cat" / "nested" / "cat_000.png")
    (root / ".ipynb_checkpoints").mkdir()  # not a class
    (root / "dog" / ".hidden.png").write_bytes(b"not an image")
    (root / "dog" / "notes.txt").write_text("not an image either")
    data = datasets.load(root, standardize=False)
    assert data.class_names == ("cat", "dog", "eel") and data.input_shape == (12, 12, 3)
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == 24
    gray = datasets.load(root, color_mode="grayscale", image_size=(6, 6))
    assert gray.input_shape == (6, 6, 1)


@pytest.mark.parametrize("setup, message", [
    (lambda root: None, "Argument `name` must be a folder of class sub-folders holding images "
     "(jpg, png, bmp, gif), as keras.utils.image_dataset_from_directory reads. Received: "
     "name='{root}'. It has 0 sub-folders (at least two classes are needed)"),
    (lambda root: (root / "cat").mkdir() or (root / "dog").mkdir(),
     "Its sub-folder 'cat' holds no image with one of the extensions .bmp, .gif, .jpeg, "
     ".jpg, .png"),
    (lambda root: _two_classes(root).joinpath("cat", "broken.jpg").write_text("<html>"),
     "'cat/broken.jpg' is not an image TensorFlow can decode (its first bytes are those of "
     "no jpg, png, bmp or gif file): remove it"),
])
def test_bad_folders_are_refused_naming_name(tmp_path, setup, message):
    root = tmp_path / "images"
    root.mkdir()
    setup(root)
    with pytest.raises(ValueError) as raised:
        datasets.load(root)
    assert message.format(root=root) in str(raised.value)
    assert raised.value.argument == "name" and "\n" not in str(raised.value)


def _two_classes(root):
    import image_folders

    return image_folders.write_image_folder(root, per_class=3, classes=("cat", "dog"))


def test_a_path_that_does_not_exist_is_not_taken_for_a_tfds_name(tmp_path):
    with pytest.raises(ValueError, match=re.escape(
            "Argument `name` must be an existing folder of images, a .npz / .csv file, "
            f"'digits' or a TensorFlow Datasets name. Received: name='{tmp_path}/absent'. "
            "No such folder")):
        datasets.load(tmp_path / "absent")


def test_settings_of_other_sources_are_refused(image_folder, tmp_path):
    with pytest.raises(ValueError, match=re.escape(
            "Argument `label` must be None for a folder of images. Received: label='y' (it "
            "names the label column of a .csv file)")):
        datasets.load(image_folder, label="y")
    with pytest.raises(ValueError, match=re.escape(
            "Argument `color_mode` must be 'rgb' for the digits. Received: "
            "color_mode='grayscale'")):
        datasets.load("digits", color_mode="grayscale")


# --- tfds (streamed) ---------------------------------------------------------------------


def test_tfds_is_streamed_and_standardised_with_training_statistics(local_tfds_builder,
                                                                     tmp_path):
    data_dir = str(tmp_path / "tfds")
    raw = datasets.load(local_tfds_builder, data_dir=data_dir, image_size=(8, 8),
                        standardize=False)
    data = datasets.load(local_tfds_builder, data_dir=data_dir, image_size=(8, 8))
    assert data.streamed and data.class_names == ("0", "1", "2", "3", "4")
    mean, std = raw.x_train.mean(axis=0), raw.x_train.std(axis=0)
    np.testing.assert_allclose(data.x_test, (raw.x_test - mean) / std, atol=1e-4)
    x, y = _arrays(data.validation)
    np.testing.assert_array_equal(y, data.y_val)
    np.testing.assert_allclose(x, data.x_val)


def test_unprepared_tfds_dataset_without_network_fails_in_seconds_naming_data_dir(
        local_tfds_builder, tmp_path, monkeypatch):
    import time

    import local_tfds
    from tensorflow_datasets.core.download import downloader

    from keras_recipes.datasets import _tfds

    monkeypatch.setattr(_tfds, "network_reachable", lambda: False)
    retries = downloader.MAX_RETRIES
    started = time.perf_counter()
    with pytest.raises(ConnectionError) as raised:
        datasets.load(local_tfds.DOWNLOADING_NAME, data_dir=str(tmp_path))
    assert time.perf_counter() - started < 20  # tfds alone retried for 3.4 minutes
    message = str(raised.value)
    assert raised.value.argument == "data_dir" and "\n" not in message
    assert message.startswith(
        "Argument `data_dir` must be a folder holding the prepared dataset 'local_downloaded' "
        f"when there is no network. Received: data_dir='{tmp_path}' (it is not prepared in "
        f"{tmp_path}/local_downloaded/1.0.0, and TensorFlow Datasets could not download it: ")
    assert message.endswith("Prepare it where there is a network (tfds build local_downloaded "
                            "--data_dir FOLDER) and copy FOLDER here")
    assert downloader.MAX_RETRIES == retries  # tfds's setting given back
    # A builder that downloads nothing prepares offline as ever.
    data = datasets.load(local_tfds_builder, data_dir=str(tmp_path), image_size=(8, 8))
    assert data.num_classes == 5


def test_tfds_images_of_varying_size_need_image_size():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=10):
        with pytest.raises(ValueError, match=re.escape(
                "Argument `image_size` must be a pair of positive integers for 'tf_flowers', "
                "whose images differ in size (shape (None, None, 3)), e.g. [160, 160]. "
                "Received: image_size=None")):
            datasets.load("tf_flowers")


# --- labels and task ---------------------------------------------------------------------


def _csv(tmp_path, header, rows):
    path = tmp_path / "table.csv"
    path.write_text("\n".join([header] + [",".join(map(str, row)) for row in rows]) + "\n")
    return path


def test_csv_without_a_label_column_is_refused_naming_label(tmp_path):
    path = _csv(tmp_path, "a,b,c", [(i, 2 * i, i % 2) for i in range(20)])
    with pytest.raises(ValueError) as raised:
        datasets.load(path)
    assert str(raised.value) == (
        "Argument `label` must be the name of the label column of table.csv, which has none "
        "of the usual names (label, labels, class, target, y). Received: label=None. Its "
        "columns: a, b, c")
    data = datasets.load(path, label="c", standardize=False)
    assert data.num_classes == 2 and data.input_shape == (2,)
    with pytest.raises(ValueError, match=re.escape(
            "Argument `label` must be the name of a column of table.csv. Received: label='C'. "
            "Its columns: a, b, c. Did you mean 'c'?")):
        datasets.load(path, label="C")


def test_integer_targets_that_could_be_measurements_need_task(tmp_path):
    rng = np.random.default_rng(0)
    ages = rng.integers(18, 81, 200)
    path = _csv(tmp_path, "height,age", [(170 + a % 7, a) for a in ages])
    with pytest.raises(ValueError) as raised:
        datasets.load(path, label="age")
    assert raised.value.argument == "task" and str(raised.value) == (
        f"Argument `task` must be 'classification' or 'regression'. Received: task='auto'. "
        f"The targets of '{path}' are whole numbers from {ages.min()} to {ages.max()} "
        f"({len(np.unique(ages))} distinct values): they may be measurements (ages, counts) or "
        "class labels, and only class labels 0, 1, ..., K-1 (K <= 32, each present) are "
        "taken as classes without being told")
    data = datasets.load(path, label="age", task="regression")
    assert data.num_classes is None and data.y_train.dtype == np.float32
    classes = datasets.load(path, label="age", task="classification")
    assert classes.num_classes == ages.max() + 1


@pytest.mark.parametrize("labels, num_classes", [
    (np.arange(200) % 2, 2), (np.arange(200) % 32, 32), (np.arange(200) % 10 + 0.5, None)])
def test_targets_whose_task_is_clear_need_no_task(tmp_path, labels, num_classes):
    path = _npz(tmp_path, x=np.random.default_rng(0).normal(size=(200, 3)), y=labels)
    assert datasets.load(path).num_classes == num_classes


@pytest.mark.parametrize("labels", [np.arange(200) % 33, np.arange(200) % 10 + 1])
def test_integer_targets_beyond_the_rule_need_task(tmp_path, labels):
    path = _npz(tmp_path, x=np.random.default_rng(0).normal(size=(200, 3)), y=labels)
    with pytest.raises(ValueError, match="Argument `task` must be 'classification' or "):
        datasets.load(path)
    with pytest.raises(ValueError, match=re.escape(
            "Argument `task` must be 'regression' for targets that are not whole numbers. "
            "Received: task='classification'")):
        datasets.load(_npz(tmp_path, x=np.zeros((10, 2)), y=np.arange(10) / 3),
                      task="classification")


def test_max_train_samples_is_a_stratified_draw_of_a_class_sorted_file(tmp_path):
    labels = np.repeat([0, 1, 2, 3], [100, 100, 50, 50])  # sorted by class
    path = _npz(tmp_path, x=np.random.default_rng(0).normal(size=(300, 3)), y=labels)
    data = datasets.load(path, max_train_samples=60, standardize=False, seed=2)
    assert np.bincount(data.y_train).tolist() == [20, 20, 10, 10]
    tiny = datasets.load(path, max_train_samples=4, seed=2)
    assert sorted(tiny.y_train.tolist()) == [0, 1, 2, 3]  # every class, when it can


# --- whitening ---------------------------------------------------------------------------


def _correlated(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    mixing = np.array([[2.0, 0.0, 0.0, 0.0], [1.5, 0.5, 0.0, 0.0], [0.3, -1.0, 1.0, 0.0],
                       [0.0, 0.2, 0.4, 3.0]])
    return rng.normal(size=(n, 4)) @ mixing.T + [5.0, -2.0, 0.0, 1.0]


def test_whitening_matrix_closed_form():
    from keras_recipes.datasets import whitening_matrix

    covariance = np.array([[2.0, 1.0], [1.0, 2.0]])  # eigenvalues 3 and 1
    a, b = 1 / np.sqrt(3), 1.0
    np.testing.assert_allclose(whitening_matrix(covariance), [[a + b, a - b], [a - b, a + b]]
                               / np.array(2.0), rtol=1e-4)
    pca = whitening_matrix(covariance, "pca")
    np.testing.assert_allclose(np.abs(pca), np.full((2, 2), 1 / np.sqrt(2)) / [[np.sqrt(3), 1]],
                               rtol=1e-4)  # largest variance first
    with pytest.raises(ValueError, match=re.escape(
            "Argument `method` must be one of 'zca', 'pca'. Received: method='pcaa'. Did you "
            "mean 'pca'?")):
        whitening_matrix(covariance, "pcaa")


@pytest.mark.parametrize("whiten", ["zca", "pca"])
def test_whitened_training_data_has_identity_covariance(tmp_path, whiten):
    x = _correlated()
    path = _npz(tmp_path, x=x, y=(x[:, 0] > 5).astype("int64"))
    data = datasets.load(path, whiten=whiten)
    raw = datasets.load(path, standardize=False)
    # Up to epsilon: the covariance is l / (l + eps) along each eigenvector (eigenvalue l).
    covariance = np.cov(raw.x_train.T, bias=True)
    epsilon = statistics.EPSILON * np.trace(covariance) / 4
    tolerance = 1.01 * epsilon / np.linalg.eigvalsh(covariance).min()
    assert 1e-5 < tolerance < 1e-3
    np.testing.assert_allclose(np.cov(data.x_train.T, bias=True), np.eye(4), atol=tolerance)
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0, atol=1e-4)
    matrix = data.preprocessing.scale
    if whiten == "zca":
        np.testing.assert_allclose(matrix, matrix.T, atol=1e-6)  # ZCA is symmetric
    # The other splits go through the training split's matrix, not their own.
    expected = (raw.x_val - raw.x_train.mean(axis=0)) @ matrix
    np.testing.assert_allclose(data.x_val, expected, atol=1e-3)
    assert np.abs(np.cov(data.x_val.T) - np.eye(4)).max() > 1e-3


def test_zca_keeps_images_streamed_whitening_matches_in_memory(tmp_path):
    import image_folders

    root = image_folders.write_image_folder(tmp_path / "images", per_class=40, size=(4, 4),
                                            channels=1)
    data = datasets.load(root, image_size=(4, 4), color_mode="grayscale", whiten="zca")
    assert data.streamed and data.input_shape == (4, 4, 1)  # images stay images
    flat = data.x_train.reshape(len(data.x_train), -1)
    np.testing.assert_allclose(np.cov(flat.T, bias=True), np.eye(16), atol=1e-3)
    raw = datasets.load(root, image_size=(4, 4), color_mode="grayscale", standardize=False)
    covariance = np.cov(raw.x_train.reshape(len(raw.x_train), -1).T, bias=True)
    np.testing.assert_allclose(data.preprocessing.scale,
                               datasets.whitening_matrix(covariance), rtol=1e-3, atol=1e-4)
    pca = datasets.load(root, image_size=(4, 4), color_mode="grayscale", whiten="pca")
    assert pca.input_shape == (16,)
    np.testing.assert_allclose(np.cov(pca.x_train.T, bias=True), np.eye(16), atol=1e-3)


def test_whitening_too_many_features_is_refused_before_reading(image_folder):
    with pytest.raises(ValueError) as raised:
        datasets.load(image_folder, image_size=(40, 40), whiten="zca")
    assert str(raised.value) == (
        "Argument `whiten` must be None for inputs of this size. Received: whiten='zca'. Their "
        "4,800 features (40x40x3) would need a 4,800 x 4,800 covariance (0.2 GB); whitening "
        "takes at most 4,096 features (e.g. image_size [32, 32] for RGB images)")


def test_running_moments_merge_batches_exactly():
    from keras_recipes.datasets import RunningMoments

    x = _correlated(n=1000)
    moments = RunningMoments(covariance=True)
    for batch in np.array_split(x, 7):
        moments.update(batch)
    np.testing.assert_allclose(moments.mean, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(moments.covariance, np.cov(x.T, bias=True), rtol=1e-10)
    np.testing.assert_allclose(moments.variance, x.var(axis=0), rtol=1e-10)


# --- every tool reads the streams --------------------------------------------------------


@pytest.mark.train
def test_default_dnn_lr_finder_diagnose_and_mc_dropout_read_a_folders_streams(image_folder):
    import keras_recipes
    from keras_recipes.uncertainty import MCDropoutPredictor

    data = datasets.load(image_folder, image_size=(8, 8), batch_size=8)
    model = keras_recipes.build_default_dnn(data.input_shape, data.num_classes,
                                            num_hidden_layers=1, units=32, dropout_rate=0.2,
                                            seed=0)
    history = model.fit(data.train, validation_data=data.validation, epochs=4, verbose=0)
    assert len(history.history["val_loss"]) == 4
    assert model.evaluate(data.test, verbose=0, return_dict=True)["accuracy"] > 0.8
    found = keras_recipes.find_learning_rate(model, data.train, num_steps=12)
    assert len(found.learning_rates) > 5 and found.suggestion > 0
    report = keras_recipes.diagnose(model, data.train)
    assert report.findings is not None
    result = MCDropoutPredictor(model, num_samples=4, seed=0).predict(data.test)
    assert result.mean.shape == (len(data.y_test), 3)
    assert np.mean(result.predict_classes() == data.y_test) > 0.8  # in y_test's order


@pytest.mark.train
def test_fine_tune_reads_a_folders_streams(image_folder):
    from test_recipes import conv_base

    import keras_recipes

    data = datasets.load(image_folder, image_size=(8, 8), standardize=False, batch_size=8)
    model = keras_recipes.build_transfer_model(conv_base(rescaling=True), data.num_classes,
                                               learning_rate=0.1, seed=0)
    history = keras_recipes.fine_tune(model, data.train, data.validation, head_epochs=2,
                                      epochs=1, unfreeze=3, verbose=0)
    assert history.history["phase"] == [1, 1, 2]
    assert model.evaluate(data.test, verbose=0, return_dict=True)["accuracy"] > 0.6
