"""A folder of class sub-folders of images, streamed: read, decoded and resized per batch.

Read as `keras.utils.image_dataset_from_directory` reads one: the classes are the
sub-folders in alphabetical order, their images (`.bmp`, `.gif` (first frame), `.jpeg`,
`.jpg`, `.png`, at any depth below them) are decoded to `color_mode`'s channels and
resized (bilinear) to `image_size`. Only the file paths and labels are held in memory.
"""

from __future__ import annotations

import functools
import os
import pathlib

import numpy as np

from keras_recipes import _validation as v
from keras_recipes.datasets._source import Part, Source, tensorflow

__all__ = ["COLOR_MODES", "IMAGE_EXTENSIONS", "read_folder"]

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
COLOR_MODES = {"rgb": 3, "grayscale": 1, "rgba": 4}
# The first bytes of each format TensorFlow decodes (what the extension promises).
_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM")
_EXPECTED = ("a folder of class sub-folders holding images (jpg, png, bmp, gif), as "
             "keras.utils.image_dataset_from_directory reads")


def read_folder(path, image_size, color_mode):
    """The images below `path`'s class sub-folders as a streamed `Source`."""
    root = pathlib.Path(path)
    channels = COLOR_MODES[v.check_choice("color_mode", color_mode, COLOR_MODES)]
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        loose = [p.name for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
        v.fail("name", str(path), _EXPECTED, hint=f"It has {len(classes)} sub-folder"
               f"{'' if len(classes) == 1 else 's'} (at least two classes are needed)"
               + (f" and {len(loose)} images of no class" if loose else ""))
    files, labels = [], []
    for label, name in enumerate(classes):
        found = _images_below(root / name)
        if not found:
            v.fail("name", str(path), _EXPECTED,
                   hint=f"Its sub-folder {name!r} holds no image with one of the extensions "
                   f"{', '.join(IMAGE_EXTENSIONS)}")
        files += found
        labels += [label] * len(found)
    for file in files:
        _check_signature(root, file)
    tf = tensorflow("A folder of images")
    if image_size is None:  # the first image's size, for all
        first = _decode(tf, tf.io.read_file(files[0]), channels)
        image_size = tuple(int(d) for d in first.shape[:2])
    image_size = tuple(image_size)
    stream = functools.partial(_stream, np.array(files), np.array(labels, dtype="int64"),
                               image_size, channels)
    return Source({"train": Part(np.array(labels, dtype="int64"), stream=stream)},
                  (*image_size, channels), num_classes=len(classes),
                  class_names=tuple(classes), image_size=image_size)


def _images_below(folder):
    found = []
    for directory, subdirectories, names in os.walk(folder):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        found += [os.path.join(directory, name) for name in sorted(names)
                  if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)]
    return found


def _check_signature(root, file):
    with open(file, "rb") as handle:
        head = handle.read(4)
    if not head.startswith(_SIGNATURES):
        v.fail("name", str(root), _EXPECTED,
               hint=f"{os.path.relpath(file, root)!r} is not an image TensorFlow can decode "
               "(its first bytes are those of no jpg, png, bmp or gif file): remove it")


def _stream(paths, labels, image_size, channels, indices, shuffle_seed):
    """The images at `indices`, decoded and resized, one `(image, label)` at a time."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((paths[indices], labels[indices]))
    if shuffle_seed is not None:  # the paths are shuffled, before anything is decoded
        dataset = dataset.shuffle(len(indices), seed=shuffle_seed, reshuffle_each_iteration=True)

    def decode(path, label):
        image = tf.image.resize(_decode(tf, tf.io.read_file(path), channels), image_size)
        image.set_shape((*image_size, channels))
        return image, label

    return dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE)


def _decode(tf, contents, channels):
    """An image file's pixels with `channels` channels, whatever its format.

    TensorFlow decodes each format to some channel counts only (JPEG to 1 or 3, BMP to 3
    or 4, GIF to 3): the others are made from RGB, as
    `keras.utils.image_dataset_from_directory` does not (it fails on them).
    """
    def decode(count):
        return tf.io.decode_image(contents, channels=count, expand_animations=False)

    if channels == 3:
        return decode(3)
    head = tf.strings.substr(contents, 0, 4)
    if channels == 1:  # PNG and JPEG decode to grey themselves
        direct = tf.logical_or(tf.equal(head, b"\x89PNG"),
                               tf.equal(tf.strings.substr(head, 0, 3), b"\xff\xd8\xff"))
        return tf.cond(direct, lambda: decode(1),
                       lambda: tf.image.rgb_to_grayscale(decode(3)))
    direct = tf.logical_or(tf.equal(head, b"\x89PNG"),
                           tf.equal(tf.strings.substr(head, 0, 2), b"BM"))

    def opaque():  # RGB and a fully opaque alpha channel
        rgb = decode(3)
        alpha = tf.fill(tf.concat([tf.shape(rgb)[:2], [1]], axis=0), tf.constant(255, "uint8"))
        return tf.concat([rgb, alpha], axis=-1)

    return tf.cond(direct, lambda: decode(4), opaque)
