"""Dataset loaders: idx and CIFAR-pickle parsing on tiny files, digits, synthetic, errors."""

from __future__ import annotations

import gzip
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fedsim.data import (
    DATASET_NAMES,
    DIGITS_TEST_SIZE,
    ArrayDataset,
    dataset_info,
    load_dataset,
    read_idx,
)
from fedsim.errors import InputError

FMNIST_FILES = {
    "train-images-idx3-ubyte": ("images", 6),
    "train-labels-idx1-ubyte": ("labels", 6),
    "t10k-images-idx3-ubyte": ("images", 4),
    "t10k-labels-idx1-ubyte": ("labels", 4),
}


def _idx_bytes(arr: np.ndarray) -> bytes:
    assert arr.dtype == np.uint8
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return head + arr.tobytes()


def _write_fmnist(folder: Path, *, gz: bool) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    written = {}
    for fname, (what, n) in FMNIST_FILES.items():
        if what == "images":
            arr = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        else:
            arr = (np.arange(n) % 10).astype(np.uint8)
        data = _idx_bytes(arr)
        if gz:
            (folder / f"{fname}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / fname).write_bytes(data)
        written[fname] = arr
    return written


def test_import_does_not_pull_torch() -> None:
    code = "import sys, fedsim.data; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_plain_and_gz(tmp_path: Path, gz: bool) -> None:
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data = _idx_bytes(arr)
    path = tmp_path / "x.idx"
    path.write_bytes(gzip.compress(data) if gz else data)
    out = read_idx(path, expect_ndim=3)
    assert out.dtype == np.uint8
    assert np.array_equal(out, arr)


def test_read_idx_rejects_corrupt(tmp_path: Path) -> None:
    arr = np.zeros((2, 3), dtype=np.uint8)
    bad_magic = tmp_path / "magic"
    bad_magic.write_bytes(b"\x01\x00" + _idx_bytes(arr)[2:])
    with pytest.raises(InputError, match="magic"):
        read_idx(bad_magic)
    truncated = tmp_path / "trunc"
    truncated.write_bytes(_idx_bytes(arr)[:-1])
    with pytest.raises(InputError, match="data bytes") as info:
        read_idx(truncated)
    assert info.value.file == str(truncated)
    wrong_rank = tmp_path / "rank"
    wrong_rank.write_bytes(_idx_bytes(arr))
    with pytest.raises(InputError, match="0x00000802"):
        read_idx(wrong_rank, expect_ndim=3)
    broken_gz = tmp_path / "gz"
    broken_gz.write_bytes(gzip.compress(_idx_bytes(arr))[:-8])
    with pytest.raises(InputError, match="cannot read"):
        read_idx(broken_gz)


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_from_idx(tmp_path: Path, gz: bool) -> None:
    written = _write_fmnist(tmp_path, gz=gz)
    train, test = load_dataset("fashion_mnist", root=str(tmp_path))
    assert train.x.shape == (6, 1, 28, 28) and test.x.shape == (4, 1, 28, 28)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int64
    assert train.num_classes == 10 and (train.channels, train.image_size) == (1, 28)
    # Official order kept, normalisation is the affine map of the raw pixels.
    assert np.array_equal(train.y, written["train-labels-idx1-ubyte"])
    raw = written["train-images-idx3-ubyte"].astype(np.float64) / 255
    mean, std = raw.mean(), raw.std()
    assert np.allclose(train.x[:, 0], (raw - mean) / std, atol=1e-5)
    raw_t = written["t10k-images-idx3-ubyte"].astype(np.float64) / 255
    assert np.allclose(test.x[:, 0], (raw_t - mean) / std, atol=1e-5)
    sub, _ = load_dataset("fashion_mnist", root=str(tmp_path), options={"train_subset": 3})
    assert np.array_equal(sub.y, written["train-labels-idx1-ubyte"][:3])


def test_fashion_mnist_missing_and_mismatched(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(InputError) as info:
        load_dataset("fashion_mnist", root=str(missing))
    msg = str(info.value)
    assert "'train-images-idx3-ubyte[.gz]'" in msg and str(missing) in msg
    assert "dataset-fashion-mnist" in msg
    _write_fmnist(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(InputError, match="3 labels for 4 images"):
        load_dataset("fashion_mnist", root=str(tmp_path))


def _write_cifar(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    if name == "cifar10":
        files, key, classes = (
            [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"],
            b"labels",
            10,
        )
    else:
        files, key, classes = ["train", "test"], b"fine_labels", 100
    xs, ys = [], []
    for fname in files:
        x = rng.integers(0, 256, size=(3, 3072), dtype=np.uint8)
        y = rng.integers(0, classes, size=3).tolist()  # lists, as in the official files
        with (folder / fname).open("wb") as fh:
            pickle.dump({b"data": x, key: y, b"batch_label": b"x"}, fh)
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


@pytest.mark.parametrize(
    ("name", "sub"), [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")]
)
@pytest.mark.parametrize("give_parent", [True, False])
def test_cifar_pickles(tmp_path: Path, name: str, sub: str, give_parent: bool) -> None:
    x, y = _write_cifar(tmp_path / sub, name)
    root = tmp_path if give_parent else tmp_path / sub
    train, test = load_dataset(name, root=str(root))
    n_train = len(y) - 3
    assert train.x.shape == (n_train, 3, 32, 32) and test.x.shape == (3, 3, 32, 32)
    assert np.array_equal(train.y, y[:n_train]) and np.array_equal(test.y, y[n_train:])
    assert train.num_classes == (10 if name == "cifar10" else 100)
    # Channel-first layout of the official rows (1024 R, 1024 G, 1024 B).
    raw = x[:n_train].reshape(-1, 3, 32, 32).astype(np.float64) / 255
    for c in range(3):
        expect = (raw[:, c] - raw[:, c].mean()) / raw[:, c].std()
        assert np.allclose(train.x[:, c], expect, atol=1e-5)


def test_cifar_missing_and_hostile_pickle(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no 'data_batch_1'.*cifar-10-batches-py"):
        load_dataset("cifar10", root=str(tmp_path))
    _write_cifar(tmp_path / "cifar-100-python", "cifar100")
    with (tmp_path / "cifar-100-python" / "test").open("wb") as fh:
        pickle.dump({b"data": print}, fh)
    with pytest.raises(InputError, match="not allowed"):
        load_dataset("cifar100", root=str(tmp_path))


def test_digits_split_and_normalisation() -> None:
    train, test = load_dataset("digits", seed=123)
    train2, test2 = load_dataset("digits", seed=7)
    assert isinstance(train, ArrayDataset)
    assert train.x.shape == (1797 - DIGITS_TEST_SIZE, 1, 8, 8)
    assert test.x.shape == (DIGITS_TEST_SIZE, 1, 8, 8)
    assert np.array_equal(train.x, train2.x) and np.array_equal(test.y, test2.y)
    assert abs(float(train.x.mean())) < 1e-4 and abs(float(train.x.std()) - 1) < 1e-4
    assert set(np.unique(train.y)) == set(range(10))
    assert dataset_info("digits", None) == (1, 8, 10)


def test_synthetic_deterministic_and_sized() -> None:
    opts = {"train_size": 50, "test_size": 20, "num_classes": 4, "channels": 3, "image_size": 10}
    a, at = load_dataset("synthetic", seed=5, options=opts)
    b, bt = load_dataset("synthetic", seed=5, options=opts)
    c, _ = load_dataset("synthetic", seed=6, options=opts)
    assert a.x.shape == (50, 3, 10, 10) and at.x.shape == (20, 3, 10, 10)
    assert np.array_equal(a.x, b.x) and np.array_equal(at.y, bt.y)
    assert not np.array_equal(a.x, c.x)
    assert a.num_classes == 4 and set(np.unique(a.y)) <= set(range(4))
    assert dataset_info("synthetic", opts) == (3, 10, 4)
    assert dataset_info("synthetic", None) == (1, 28, 10)
    # Test set independent of the training-set size.
    _, at_big = load_dataset("synthetic", seed=5, options={**opts, "train_size": 80})
    assert np.array_equal(at.y, at_big.y)


def test_synthetic_is_learnable() -> None:
    """Nearest class mean (from training data) classifies the test set far above chance."""
    train, test = load_dataset("synthetic", seed=0, options={"train_size": 300, "test_size": 200})
    means = np.stack([train.x[train.y == k].mean(axis=0) for k in range(10)]).reshape(10, -1)
    d = ((test.x.reshape(len(test), 1, -1) - means[None]) ** 2).sum(axis=2)
    assert float(np.mean(d.argmin(axis=1) == test.y)) > 0.5


def test_unknown_names_and_options() -> None:
    with pytest.raises(InputError) as info:
        load_dataset("mnist")
    assert all(n in str(info.value) for n in DATASET_NAMES)
    with pytest.raises(InputError) as info2:
        load_dataset("digits", options={"train_size": 5})
    assert info2.value.key == "data.train_size"
    with pytest.raises(InputError, match="only"):
        load_dataset("digits", options={"test_subset": 10_000})
    with pytest.raises(InputError, match="integer"):
        dataset_info("synthetic", {"channels": "3"})
    train, test = load_dataset("digits", options={"train_subset": 100, "test_subset": 10})
    assert len(train) == 100 and len(test) == 10
