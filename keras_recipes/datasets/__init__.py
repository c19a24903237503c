"""Offline-first data: train/validation/test splits ready for `fit`, in memory or streamed.

`load` reads the bundled digits, `.npz` and `.csv` files (held in memory), folders of
images and TensorFlow Datasets (streamed as `tf.data` pipelines), carves the splits the
source lacks (stratified, seeded) and standardises or whitens the inputs with statistics
of the training split only. See `load` and `DatasetSplits`.
"""

from keras_recipes.datasets.dataset_splits import DatasetSplits
from keras_recipes.datasets.loading import load
from keras_recipes.datasets.statistics import (
    RunningMoments,
    standardization_statistics,
    whitening_matrix,
)

__all__ = ["DatasetSplits", "RunningMoments", "load", "standardization_statistics",
           "whitening_matrix"]
