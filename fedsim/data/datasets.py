"""Image datasets as plain numpy arrays, loaded only from local files.

Why numpy and not torch: the engine, the partitioner and a system-only run must work without
importing torch, and a ``(N, C, H, W)`` float32 array is all a client needs to build its own
tensors later. Why local files only: fedsim never downloads anything (the machines it runs on
have no network but package registries), so every loader reads an official on-disk format and
a missing file is an :class:`~fedsim.errors.InputError` that says where it looked and how to
get the data.

Datasets (:data:`fedsim.config.schema.DATASET_NAMES`, the one list of names):

* ``digits`` — scikit-learn's bundled 8x8 scans (1797 real images, no download). The split is
  fixed and independent of the seed: the first ``1797 - 360 = 1437`` images in the official
  order are the training set, the last ``ceil(0.2 * 1797) = 360`` the test set.
* ``fashion_mnist`` — the four standard idx files (plain or ``.gz``), default folder
  ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``).
* ``cifar10`` / ``cifar100`` — torchvision's python-pickle folders (``cifar-10-batches-py``,
  ``cifar-100-python``); ``root`` may be that folder or its parent. Default root: ``data``.
* ``synthetic`` — seeded class prototypes plus Gaussian noise, any size; learnable.

Every dataset is scaled to [0, 1] and then normalised per channel with the *training* set's
mean and standard deviation (after ``train_subset``), the same statistics applied to the test
set, as the reference code does (no augmentation). Options common to all datasets:
``train_subset`` / ``test_subset`` keep the first N examples in official order.

The names and the options are the scenario schema's (:mod:`fedsim.config.schema`): options are
validated with :class:`~fedsim.config.schema.DatasetOptions` and, for ``synthetic``,
:class:`~fedsim.config.schema.SyntheticOptions`, so an error names the scenario key
(``data.train_subset``, ``data.synthetic.channels``) whoever called.
"""

from __future__ import annotations

import gzip
import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from fedsim.config.schema import DATASET_NAMES, DatasetOptions, SyntheticOptions, known_dataset
from fedsim.errors import InputError
from fedsim.validation import validate_as

#: Default folder of Debian's ``dataset-fashion-mnist`` package.
FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
#: Default root for the CIFAR pickle folders (torchvision's usual ``./data``).
CIFAR_ROOT = "data"

#: Size of the fixed digits test split: the last ``DIGITS_TEST_SIZE`` images in official order.
DIGITS_TEST_SIZE = 360

_FIXED_INFO: dict[str, tuple[int, int, int]] = {
    "digits": (1, 8, 10),
    "fashion_mnist": (1, 28, 10),
    "cifar10": (3, 32, 10),
    "cifar100": (3, 32, 100),
}


@dataclass(frozen=True)
class ArrayDataset:
    """A labelled image set held in memory.

    Attributes:
        x: float32 images, shape ``(N, C, H, W)``, already normalised per channel.
        y: int64 labels in ``0 .. num_classes - 1``, shape ``(N,)``.
        num_classes: number of classes of the *dataset* (not only those present in ``y``).
        name: dataset name, with ``":train"``/``":test"`` appended.
    """

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    name: str

    @property
    def channels(self) -> int:
        return int(self.x.shape[1])

    @property
    def image_size(self) -> int:
        """Height H (images are square in every dataset fedsim ships)."""
        return int(self.x.shape[2])

    def __len__(self) -> int:
        return int(self.y.shape[0])


# --------------------------------------------------------------------------------------------
# options


class _SyntheticArrays(SyntheticOptions):
    """The generator's options: the scenario's ``data.synthetic`` plus ``noise`` (the noise
    scale, API only: a scenario keeps the default)."""

    noise: Annotated[float, Field(ge=0, le=1e6)] = 1.0


def _check_options(name: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate dataset options with the scenario's schemas and fill defaults.

    Options arrive flat (``train_subset`` beside ``channels``); for ``synthetic`` every key
    that is not a common option belongs to ``data.synthetic``, so that is where an unknown or
    bad one is reported. Only the number of ``normalize`` statistics is checked here, as it
    depends on the dataset's channels.
    """
    try:
        known_dataset(name)
    except ValueError as exc:
        raise InputError(str(exc), key="data.dataset") from None
    opts = dict(options or {})
    synth: dict[str, Any] = {}
    if name == "synthetic":
        synth = {k: opts.pop(k) for k in list(opts) if k not in DatasetOptions.model_fields}
    common = validate_as(DatasetOptions, opts, key_prefix="data")
    out = common.model_dump()
    if name == "synthetic":
        out.update(validate_as(_SyntheticArrays, synth, key_prefix="data.synthetic").model_dump())
    channels = out["channels"] if name == "synthetic" else _FIXED_INFO[name][0]
    if common.normalize is not None and len(common.normalize.mean) != channels:
        raise InputError(f"{name} has {channels} channel(s), got "
                         f"{len(common.normalize.mean)} values", key="data.normalize.mean")
    return out


def dataset_info(name: str, options: Mapping[str, Any] | None = None, *,
                 root: str | None = None, seed: int = 0) -> tuple[int, int, int]:
    """``(channels, image_size, num_classes)`` of a dataset without loading it.

    Lets a caller build the model (and its :class:`~fedsim.spec.ModelSpec`) for a system-only
    run where the images themselves are never read.
    """
    if _is_plugin(name):  # a user's dataset: its shapes are known once it is loaded
        train, _ = load_dataset(name, root=root, seed=seed, options=options)
        return train.channels, train.image_size, train.num_classes
    opts = _check_options(name, options)
    if name == "synthetic":
        return opts["channels"], opts["image_size"], opts["num_classes"]
    return _FIXED_INFO[name]


# --------------------------------------------------------------------------------------------
# normalisation and subsets


def _normalise(train_x: np.ndarray, test_x: np.ndarray) -> None:
    """In place: per-channel ``(x - mean) / std`` with the training set's statistics.

    Accumulates in float64 over chunks of samples so a 50000x3x32x32 set needs no float64
    copy. A constant channel (std 0) is only centred.
    """
    n, chunk = train_x.shape[0], 4096
    if n == 0:
        return
    for c in range(train_x.shape[1]):
        total = sum(
            float(train_x[i : i + chunk, c].sum(dtype=np.float64)) for i in range(0, n, chunk)
        )
        count = train_x[:, c].size
        mean = total / count
        sq = sum(
            float(np.square(train_x[i : i + chunk, c].astype(np.float64) - mean).sum())
            for i in range(0, n, chunk)
        )
        var = sq / count
        std = math.sqrt(var) if var > 1e-12 else 1.0
        for arr in (train_x, test_x):
            arr[:, c] -= np.float32(mean)
            arr[:, c] /= np.float32(std)


def _subset(
    name: str, x: np.ndarray, y: np.ndarray, n: int | None, key: str
) -> tuple[np.ndarray, np.ndarray]:
    if n is None:
        return x, y
    if n > len(y):
        raise InputError(
            f"{name}: '{key}' is {n} but the set has only {len(y)} examples", key=f"data.{key}"
        )
    return x[:n], y[:n]


def _finish(
    name: str,
    num_classes: int,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    opts: Mapping[str, Any],
    scale: float,
) -> tuple[ArrayDataset, ArrayDataset]:
    """Subset, convert to float32 in [0, 1], normalise, wrap."""
    tr_x, tr_y = _subset(name, *train, opts.get("train_subset"), "train_subset")
    te_x, te_y = _subset(name, *test, opts.get("test_subset"), "test_subset")
    tr_xf = tr_x.astype(np.float32)
    te_xf = te_x.astype(np.float32)
    if scale != 1.0:
        tr_xf /= np.float32(scale)
        te_xf /= np.float32(scale)
    fixed = opts.get("normalize")
    if fixed is None:
        _normalise(tr_xf, te_xf)
    else:
        for c in range(tr_xf.shape[1]):
            for arr in (tr_xf, te_xf):
                arr[:, c] -= np.float32(fixed["mean"][c])
                arr[:, c] /= np.float32(fixed["std"][c])
    return (
        ArrayDataset(
            np.ascontiguousarray(tr_xf), tr_y.astype(np.int64), num_classes, f"{name}:train"
        ),
        ArrayDataset(
            np.ascontiguousarray(te_xf), te_y.astype(np.int64), num_classes, f"{name}:test"
        ),
    )


# --------------------------------------------------------------------------------------------
# digits


def _digits_file() -> Path:
    """scikit-learn's ``digits.csv.gz``, found without importing scikit-learn (1.3 s): the
    same file ``sklearn.datasets.load_digits`` reads, parsed the same way."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the digits dataset needs scikit-learn (pip install scikit-learn)",
                         key="data.dataset")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets/data/digits.csv.gz"
    if not path.is_file():
        raise InputError(f"scikit-learn's digits file is missing: {path}", key="data.dataset")
    return path


def _load_digits(opts: Mapping[str, Any]) -> tuple[ArrayDataset, ArrayDataset]:
    """scikit-learn's bundled digits with the fixed split described in the module docstring."""
    data = np.loadtxt(_digits_file(), delimiter=",")  # 1797 rows: 64 pixels, then the label
    images = np.asarray(data[:, :-1], dtype=np.float32).reshape(-1, 1, 8, 8)  # values 0..16
    labels = np.asarray(data[:, -1], dtype=np.int64)
    n_train = len(labels) - DIGITS_TEST_SIZE
    return _finish(
        "digits",
        10,
        (images[:n_train], labels[:n_train]),
        (images[n_train:], labels[n_train:]),
        opts,
        scale=16.0,
    )


# --------------------------------------------------------------------------------------------
# idx (Fashion-MNIST)

_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | Path, *, expect_ndim: int | None = None) -> np.ndarray:
    """Parse one idx file (plain or gzip, told apart by content) into a numpy array.

    Format: two zero bytes, a type code, the number of dimensions, then that many big-endian
    uint32 sizes and the data. Anything that does not fit (bad magic, wrong rank, truncated
    or trailing data, a broken gzip stream) is an :class:`InputError` naming the file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"cannot read idx file: {exc}", file=path) from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise InputError("not an idx file (bad magic number)", file=path)
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise InputError(f"not an idx file (unknown type code 0x{code:02x})", file=path)
    if expect_ndim is not None and ndim != expect_ndim:
        magic = int.from_bytes(raw[:4], "big")
        raise InputError(
            f"idx magic number 0x{magic:08x} says {ndim} dimensions, expected {expect_ndim}",
            file=path,
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise InputError("truncated idx header", file=path)
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header != expected:
        raise InputError(
            f"idx file holds {len(raw) - header} data bytes, its header {shape} needs {expected}",
            file=path,
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).copy()


def _find_file(folders: list[Path], base: str) -> Path | None:
    for folder in folders:
        for candidate in (folder / base, folder / f"{base}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _load_fashion_mnist(
    root: str | None, opts: Mapping[str, Any]
) -> tuple[ArrayDataset, ArrayDataset]:
    base = Path(root) if root is not None else Path(FASHION_MNIST_ROOT)
    # The folder itself, or torchvision's / common layouts beneath it.
    folders = [base, base / "FashionMNIST" / "raw", base / "fashion-mnist", base / "fashion_mnist"]
    parts: list[np.ndarray] = []
    for fname, ndim in (
        ("train-images-idx3-ubyte", 3),
        ("train-labels-idx1-ubyte", 1),
        ("t10k-images-idx3-ubyte", 3),
        ("t10k-labels-idx1-ubyte", 1),
    ):
        path = _find_file(folders, fname)
        if path is None:
            raise InputError(
                f"fashion_mnist: no '{fname}[.gz]' in {base} "
                "(install Debian's dataset-fashion-mnist or set data.root)",
                key="data.root",
            )
        arr = read_idx(path, expect_ndim=ndim)
        if arr.dtype != np.uint8:
            raise InputError("fashion_mnist idx files must hold unsigned bytes", file=path)
        if ndim == 1 and arr.size and int(arr.max()) > 9:
            raise InputError(f"label {int(arr.max())} outside 0..9", file=path)
        parts.append(arr)
        if ndim == 1 and len(arr) != len(parts[-2]):
            raise InputError(f"{len(arr)} labels for {len(parts[-2])} images", file=path)
    tr_img, tr_lab, te_img, te_lab = parts
    return _finish(
        "fashion_mnist",
        10,
        (tr_img[:, None], tr_lab),
        (te_img[:, None], te_lab),
        opts,
        scale=255.0,
    )


# --------------------------------------------------------------------------------------------
# CIFAR pickles


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays and plain containers.

    The CIFAR files are pickles; refusing every other global keeps a planted file from running
    code while still reading the official files.
    """

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")


def _read_cifar_pickle(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as fh:
            obj = _ArrayUnpickler(fh, encoding="bytes").load()
    except (
        OSError,
        EOFError,
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
    ) as exc:
        raise InputError(f"cannot read CIFAR pickle: {exc}", file=path) from exc
    if not isinstance(obj, dict) or b"data" not in obj or label_key not in obj:
        raise InputError(f"CIFAR pickle lacks b'data' or {label_key!r}", file=path)
    data = np.asarray(obj[b"data"])
    labels = np.asarray(obj[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] != labels.shape[0]:
        raise InputError(
            f"CIFAR pickle has data of shape {data.shape} and {labels.shape[0]} labels; "
            "expected (N, 3072) and N",
            file=path,
        )
    return data.astype(np.uint8, copy=False).reshape(-1, 3, 32, 32), labels


def _load_cifar(
    name: str, root: str | None, opts: Mapping[str, Any]
) -> tuple[ArrayDataset, ArrayDataset]:
    base = Path(root) if root is not None else Path(CIFAR_ROOT)
    if name == "cifar10":
        sub, train_files, test_files, key, classes = (
            "cifar-10-batches-py",
            [f"data_batch_{i}" for i in range(1, 6)],
            ["test_batch"],
            b"labels",
            10,
        )
    else:
        sub, train_files, test_files, key, classes = (
            "cifar-100-python",
            ["train"],
            ["test"],
            b"fine_labels",
            100,
        )
    folder = base if (base / train_files[0]).is_file() else base / sub
    loaded: list[tuple[np.ndarray, np.ndarray]] = []
    for fname in (*train_files, *test_files):
        path = folder / fname
        if not path.is_file():
            raise InputError(
                f"{name}: no '{fname}' in {base} or {base / sub} (place torchvision's "
                f"'{sub}' folder there or set data.root)",
                key="data.root",
            )
        x, y = _read_cifar_pickle(path, key)
        if y.size and (y.min() < 0 or y.max() >= classes):
            raise InputError(f"labels outside 0..{classes - 1}", file=path)
        loaded.append((x, y))
    n_tr = len(train_files)
    tr_x = np.concatenate([x for x, _ in loaded[:n_tr]])
    tr_y = np.concatenate([y for _, y in loaded[:n_tr]])
    te_x = np.concatenate([x for x, _ in loaded[n_tr:]])
    te_y = np.concatenate([y for _, y in loaded[n_tr:]])
    return _finish(name, classes, (tr_x, tr_y), (te_x, te_y), opts, scale=255.0)


# --------------------------------------------------------------------------------------------
# synthetic


def _load_synthetic(seed: int, opts: Mapping[str, Any]) -> tuple[ArrayDataset, ArrayDataset]:
    """Class prototypes plus Gaussian noise.

    Prototypes are random +-1 patterns on a coarse grid (about a quarter of the resolution)
    upsampled by repetition, so they are spatially smooth and a small CNN with pooling separates
    them well above chance; ``noise`` (default 1.0) sets the difficulty. Prototypes, training
    set and test set draw from independent child seeds, so the test set does not change when
    ``train_size`` does.
    """
    k, c, s = opts["num_classes"], opts["channels"], opts["image_size"]
    proto_ss, train_ss, test_ss = np.random.SeedSequence([int(seed), 0x5EED]).spawn(3)
    coarse = max(1, math.ceil(s / 4))
    rep = math.ceil(s / coarse)
    grid = np.random.default_rng(proto_ss).choice(
        np.array([-1.0, 1.0], dtype=np.float32), size=(k, c, coarse, coarse)
    )
    protos = np.repeat(np.repeat(grid, rep, axis=2), rep, axis=3)[:, :, :s, :s]

    def draw(ss: np.random.SeedSequence, n: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(ss)
        y = rng.permutation(np.arange(n, dtype=np.int64) % k)
        x = protos[y] + np.float32(opts["noise"]) * rng.standard_normal(
            (n, c, s, s), dtype=np.float32
        )
        return x.astype(np.float32, copy=False), y

    return _finish(
        "synthetic",
        k,
        draw(train_ss, opts["train_size"]),
        draw(test_ss, opts["test_size"]),
        opts,
        scale=1.0,
    )


# --------------------------------------------------------------------------------------------


def _is_plugin(name: str) -> bool:
    """A user's dataset; an unknown plain name is not one (it gets the list of datasets)."""
    from fedsim.plugins import is_plugin

    return name not in DATASET_NAMES and is_plugin("dataset", name)


def load_dataset(
    name: str,
    *,
    root: str | None = None,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> tuple[ArrayDataset, ArrayDataset]:
    """Load ``(train, test)`` of a dataset from local files (never downloads).

    Args:
        name: one of :data:`fedsim.config.schema.DATASET_NAMES`.
        root: data folder (Fashion-MNIST idx files; CIFAR pickle folder or its parent).
            Ignored by ``digits`` and ``synthetic``.
        seed: only ``synthetic`` uses it; the real datasets keep their official order and split.
        options: ``train_subset`` / ``test_subset`` for every dataset; ``synthetic`` also takes
            ``train_size``, ``test_size``, ``num_classes``, ``channels``, ``image_size``,
            ``noise``.

    Raises:
        InputError: unknown dataset or option, missing or corrupt file.
    """
    if _is_plugin(name):
        from fedsim.data.plugin import load_plugin

        return load_plugin(name, root=root, seed=seed, options=options)
    opts = _check_options(name, options)
    if name == "digits":
        return _load_digits(opts)
    if name == "fashion_mnist":
        return _load_fashion_mnist(root, opts)
    if name in ("cifar10", "cifar100"):
        return _load_cifar(name, root, opts)
    return _load_synthetic(seed, opts)


def dataset_files(name: str, *, root: str | None = None) -> list[Path]:
    """The files loading ``name`` reads (for a run's input fingerprints); [] for a dataset
    made in memory (synthetic) or a plug-in (it reads what it likes)."""
    if name == "digits":
        return [_digits_file()]
    if name == "fashion_mnist":
        base = Path(root) if root is not None else Path(FASHION_MNIST_ROOT)
        folders = [base, base / "FashionMNIST" / "raw", base / "fashion-mnist",
                   base / "fashion_mnist"]
        found = [_find_file(folders, f) for f in ("train-images-idx3-ubyte",
                 "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]
        return [f for f in found if f is not None]
    if name in ("cifar10", "cifar100"):
        base = Path(root) if root is not None else Path(CIFAR_ROOT)
        sub, files = (("cifar-10-batches-py", [*(f"data_batch_{i}" for i in range(1, 6)),
                                               "test_batch"]) if name == "cifar10"
                      else ("cifar-100-python", ["train", "test"]))
        folder = base if (base / files[0]).is_file() else base / sub
        return [folder / f for f in files if (folder / f).is_file()]
    return []


def check_dataset_available(name: str, *, root: str | None = None) -> None:
    """Cheap presence check of a dataset's files (no parsing), for ``fedsim validate``.

    Raises the same InputError as :func:`load_dataset` would for a missing file.
    """
    if name in ("digits", "synthetic") or _is_plugin(name):  # a plug-in checks its own files
        return
    if name == "fashion_mnist":
        base = Path(root) if root is not None else Path(FASHION_MNIST_ROOT)
        folders = [base, base / "FashionMNIST" / "raw", base / "fashion-mnist",
                   base / "fashion_mnist"]
        for fname in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                      "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
            if _find_file(folders, fname) is None:
                raise InputError(
                    f"fashion_mnist: no '{fname}[.gz]' in {base} "
                    "(install Debian's dataset-fashion-mnist or set data.root)",
                    key="data.root",
                )
        return
    if name in ("cifar10", "cifar100"):
        base = Path(root) if root is not None else Path(CIFAR_ROOT)
        sub, files = (
            ("cifar-10-batches-py", [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"])
            if name == "cifar10"
            else ("cifar-100-python", ["train", "test"])
        )
        folder = base if (base / files[0]).is_file() else base / sub
        for fname in files:
            if not (folder / fname).is_file():
                raise InputError(
                    f"{name}: no '{fname}' in {base} or {base / sub} (place torchvision's "
                    f"'{sub}' folder there or set data.root)",
                    key="data.root",
                )
        return
    raise InputError(f"unknown dataset '{name}'", key="data.dataset")
