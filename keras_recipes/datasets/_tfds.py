"""TensorFlow Datasets, streamed: prepared once (or refused at once offline), read per batch.

Only the labels are read into memory (one pass that decodes no image); the inputs are
read from the prepared files at each pass, shuffled as encoded examples through a buffer,
then decoded and resized.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading

import numpy as np

from keras_recipes import _validation as v
from keras_recipes.datasets._source import Part, Source

__all__ = ["SHUFFLE_BUFFER", "network_reachable", "read_tfds"]

# Encoded examples the training split is shuffled through (tfds's files are in a random
# order already; encoded images are small: 1,024 of tf_flowers' are ~60 MB).
SHUFFLE_BUFFER = 1024
_PROBE_HOSTS = (("storage.googleapis.com", 443), ("download.tensorflow.org", 443))
_SPLITS = {"train": "train", "validation": "validation", "test": "test"}


def read_tfds(name, data_dir, image_size, bundled_hint):
    """A TensorFlow Datasets name as a streamed `Source`."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            f"Loading {name!r} needs TensorFlow Datasets: pip install \"keras-recipes[tfds]\" "
            f"(or use 'digits', a folder of images, a .npz or a .csv file). "
            f"{bundled_hint}".rstrip()) from error
    builders = tfds.list_builders()
    if name not in builders:
        v.fail("name", name, "'digits', a folder of images, a .npz / .csv path, or a "
               "TensorFlow Datasets name",
               hint=bundled_hint or v.did_you_mean(name, {n: n for n in builders}))
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        _prepare(builder, name, data_dir)
        return _read(tfds, builder, name, image_size)
    except ModuleNotFoundError as error:
        # tensorflow-datasets imports some modules only when it prepares or reads a
        # dataset (importlib_resources, through etils' epath, is one it does not declare):
        # say which one, not "no internet".
        raise ImportError(
            f"Loading {name!r} with TensorFlow Datasets needs the Python module "
            f"{error.name!r}, which is not installed: pip install {error.name} "
            '(pip install "keras-recipes[tfds]" installs what tensorflow-datasets itself '
            "needs)") from error


def network_reachable(timeout=3.0):
    """Whether a download server answers within `timeout` seconds (a hung name lookup
    counts as no network)."""
    answered = []

    def probe():
        for address in _PROBE_HOSTS:
            try:
                socket.create_connection(address, timeout=timeout).close()
            except OSError:
                continue
            answered.append(address)
            return

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answered)


def _prepare(builder, name, data_dir):
    """Prepares the dataset once; offline, tries without retrying and fails in seconds."""
    if builder.is_prepared():
        return
    if network_reachable():
        builder.download_and_prepare()
        return
    try:
        with _download_retries(0):  # a builder that downloads nothing still prepares
            builder.download_and_prepare()
    except ModuleNotFoundError:
        raise
    except Exception as error:
        first_line = (str(error).strip().splitlines() or [""])[0]
        first_line = first_line if len(first_line) <= 160 else first_line[:157] + "..."
        v.fail("data_dir", data_dir, f"a folder holding the prepared dataset {name!r} when "
               "there is no network",
               hint=f"(it is not prepared in {builder.data_dir}, and TensorFlow Datasets could "
               f"not download it: {type(error).__name__}: {first_line}). Prepare it "
               f"where there is a network (tfds build {name} --data_dir FOLDER) and copy "
               "FOLDER here", error=ConnectionError)


@contextlib.contextmanager
def _download_retries(count):
    """tfds's downloader retries each failed request 10 times with a growing backoff
    (3.4 minutes without network) and has no public setting for it."""
    from tensorflow_datasets.core.download import downloader

    saved = getattr(downloader, "MAX_RETRIES", None)
    if saved is None:
        yield
        return
    downloader.MAX_RETRIES = count
    try:
        yield
    finally:
        downloader.MAX_RETRIES = saved


def _read(tfds, builder, name, image_size):
    info = builder.info
    keys = info.supervised_keys
    if not (isinstance(keys, tuple) and len(keys) == 2 and all(isinstance(k, str) for k in keys)):
        v.fail("name", name, "a TensorFlow Datasets name with supervised keys (input, label)",
               hint=f"Its supervised keys are {keys!r}")
    x_key, y_key = keys
    feature, label = info.features[x_key], info.features[y_key]
    is_image = isinstance(feature, tfds.features.Image)
    shape = tuple(feature.shape)
    if image_size is not None and len(shape) == 3:
        shape = (*image_size, shape[-1])
    elif None in shape:
        v.fail("image_size", image_size, f"a pair of positive integers for {name!r}, whose "
               f"images differ in size (shape {shape}), e.g. [160, 160]")
    else:
        image_size = None  # only images are resized
    decoders = {x_key: tfds.decode.SkipDecoding()} if is_image else None
    splits = set(info.splits.keys()) or {"train", "test"}  # (mock_data: none)
    parts = {}
    for part, split in _SPLITS.items():
        if split not in splits:
            continue
        # Made once: a tf.data dataset is read again at each pass (tfds.testing.mock_data's
        # too, after its context has ended), in the same order (shuffle_files=False).
        examples = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False,
                                      decoders=decoders)
        y = _labels(examples)
        decode = feature.decode_example if is_image else None
        parts[part] = Part(y, stream=functools.partial(_stream, examples, len(y), decode,
                                                        image_size, shape))
    if "train" not in parts:
        v.fail("name", name, "a TensorFlow Datasets name with a `train` split",
               hint=f"Its splits: {', '.join(sorted(splits))}")
    declared = isinstance(label, tfds.features.ClassLabel)
    return Source(parts, shape, num_classes=label.num_classes if declared else None,
                  class_names=tuple(label.names) if declared else None,
                  image_size=tuple(image_size) if image_size else None)


def _labels(dataset):
    """Every label of a split, in order, without decoding its inputs."""
    batches = dataset.map(lambda x, y: y).batch(4096)
    labels = [np.asarray(batch) for batch in batches.as_numpy_iterator()]
    if not labels:
        return np.zeros((0,), dtype="int64")
    return np.concatenate(labels)


def _stream(examples, count, decode, image_size, shape, indices, shuffle_seed):
    """The examples at `indices` of a split, decoded and resized."""
    import tensorflow as tf

    dataset = examples
    if len(indices) < count:
        keep = np.zeros(count, dtype=bool)
        keep[indices] = True
        keep = tf.constant(keep)
        dataset = dataset.enumerate().filter(lambda i, example: tf.gather(keep, i)).map(
            lambda i, example: example)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(indices)))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(min(len(indices), SHUFFLE_BUFFER), seed=shuffle_seed,
                                  reshuffle_each_iteration=True)

    def prepare(x, y):
        if decode is not None:
            x = decode(x)
        x = tf.cast(x, "float32")
        if image_size is not None:
            x = tf.image.resize(x, image_size)
        x.set_shape(shape)
        return x, y

    return dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
