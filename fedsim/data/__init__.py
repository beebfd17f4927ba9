"""Datasets and client partitions, in numpy only.

Importing this package never imports torch: the engine and a system-only run (no training)
use dataset shapes and partitions without paying for torch.
"""

from fedsim.config.schema import DATASET_NAMES
from fedsim.data.datasets import (
    DIGITS_TEST_SIZE,
    ArrayDataset,
    check_dataset_available,
    dataset_info,
    load_dataset,
    read_idx,
)
from fedsim.data.partition import partition

__all__ = [
    "DATASET_NAMES",
    "DIGITS_TEST_SIZE",
    "ArrayDataset",
    "check_dataset_available",
    "dataset_info",
    "load_dataset",
    "partition",
    "read_idx",
]
