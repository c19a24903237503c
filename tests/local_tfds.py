"""A TensorFlow Datasets builder that lives in a package, as tfds's own do, made offline.

`tfds.testing.mock_data` replaces the whole loading path with random data, so it misses
what a real `tfds.load("tf_flowers")` runs: the builder's code path (found through etils'
`epath`, which needs `importlib_resources`), `download_and_prepare` into a `data_dir`, and
reading the prepared files back. This builder goes through all of that with nothing to
download: its examples are generated.
"""

import importlib
import sys
import textwrap

BUILDER_SOURCE = textwrap.dedent('''
    """Five classes of small RGB "flowers": the class sets which channels are bright."""

    import numpy as np
    import tensorflow_datasets as tfds


    class LocalFlowers(tfds.core.GeneratorBasedBuilder):
        """Five classes of 16x16 RGB images, generated (no download)."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return self.dataset_info_from_configs(
                features=tfds.features.FeaturesDict({
                    "image": tfds.features.Image(shape=(16, 16, 3)),
                    "label": tfds.features.ClassLabel(num_classes=5)}),
                supervised_keys=("image", "label"))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(100)}  # tf_flowers has only `train`

        def _generate_examples(self, count):
            rng = np.random.default_rng(0)
            for i in range(count):
                label = i % 5
                image = rng.integers(0, 60, (16, 16, 3)).astype("uint8")
                image[..., label % 3] += 150
                image[..., (label + 1) % 3] += 60 * (label // 3)
                yield i, {"image": image, "label": label}
''')

# A builder whose data must be downloaded (from a local port nothing listens on): what an
# unprepared dataset does without network.
DOWNLOADING_SOURCE = textwrap.dedent('''
    """A dataset that must be downloaded first, from a server that never answers."""

    import tensorflow_datasets as tfds


    class LocalDownloaded(tfds.core.GeneratorBasedBuilder):
        """Its one file lives at a local port nothing listens on."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return self.dataset_info_from_configs(
                features=tfds.features.FeaturesDict({
                    "image": tfds.features.Image(shape=(8, 8, 3)),
                    "label": tfds.features.ClassLabel(num_classes=2)}),
                supervised_keys=("image", "label"))

        def _split_generators(self, dl_manager):
            path = dl_manager.download("http://127.0.0.1:9/local_downloaded.zip")
            return {"train": self._generate_examples(path)}

        def _generate_examples(self, path):
            yield from ()
''')

NAME = "local_flowers"
DOWNLOADING_NAME = "local_downloaded"


def install(folder):
    """Writes the builder's package under `folder`, imports it (registering the builder)."""
    if "local_tfds_package" not in sys.modules:
        package = folder / "local_tfds_package"
        package.mkdir()
        (package / "__init__.py").write_text("from .local_flowers import LocalFlowers\n"
                                             "from .local_downloaded import LocalDownloaded\n")
        (package / "local_flowers.py").write_text(BUILDER_SOURCE)
        (package / "local_downloaded.py").write_text(DOWNLOADING_SOURCE)
        sys.path.insert(0, str(folder))
        importlib.import_module("local_tfds_package")
    return NAME
