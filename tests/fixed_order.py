"""Shared by tests and the scripts they run: batches in a fixed order."""

import keras


class FixedOrderBatches(keras.utils.PyDataset):
    """Batches in a fixed order, the same in every run (`fit` shuffles arrays)."""

    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return len(self.x) // self.batch_size

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[rows], self.y[rows]
