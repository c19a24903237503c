"""Folders of class sub-folders of images, written by the tests (no download).

Each class brightens its own colour channel, so that a model can tell the classes apart
in a few steps; the files are written with Pillow in the formats Keras reads.
"""

import pathlib

import numpy as np

CLASSES = ("cat", "dog", "eel")


def write_image_folder(root, *, per_class=20, size=(12, 12), formats=("png",), classes=CLASSES,
                       seed=0, channels=3):
    """Writes `per_class` images of each class under `root/<class>/`; returns `root`.

    Image `i` of a class is written in `formats[i % len(formats)]` (png, jpg, bmp, gif);
    its class `c` adds 150 to channel `c % 3` of noise in [0, 60).
    """
    from PIL import Image

    root = pathlib.Path(root)
    rng = np.random.default_rng(seed)
    for label, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (*size, 3)).astype("uint8")
            pixels[..., label % 3] += 150
            image = Image.fromarray(pixels if channels == 3 else pixels[..., label % 3])
            suffix = formats[i % len(formats)]
            image.save(folder / f"{name}_{i:03d}.{suffix}",
                       format={"jpg": "JPEG"}.get(suffix, suffix.upper()))
    return root
