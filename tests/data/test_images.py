import numpy as np
import pytest
from PIL import Image

from perceptlab.data.images import check_image, encode_png, float_to_uint8, read_png, uint8_to_float, write_png
from perceptlab.errors import PerceptLabError


def _digit() -> np.ndarray:
    img = np.zeros((28, 28), np.uint8)
    img[6:22, 12:16] = 255
    img[5, 5] = 17
    return img


def test_png_round_trip_is_8bit_grayscale(tmp_path):
    path = write_png(tmp_path / "d.png", _digit(), fsync=True)
    with Image.open(path) as im:
        assert im.mode == "L" and im.size == (28, 28)
    out = read_png(path)
    assert out.dtype == np.uint8 and out.shape == (28, 28)
    np.testing.assert_array_equal(out, _digit())
    assert encode_png(_digit()) == path.read_bytes()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "LA"])
def test_color_28x28_is_converted_to_gray(tmp_path, mode):
    Image.fromarray(_digit()).convert(mode).save(tmp_path / "c.png")
    np.testing.assert_array_equal(read_png(tmp_path / "c.png"), _digit())


def test_wrong_size_names_file(tmp_path):
    Image.new("L", (32, 32)).save(tmp_path / "big.png")
    with pytest.raises(PerceptLabError, match=r"big\.png is 32x32 pixels, expected 28x28"):
        read_png(tmp_path / "big.png")


def test_unreadable_files(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(PerceptLabError, match=r"junk\.png is not an image"):
        read_png(tmp_path / "junk.png")
    with pytest.raises(PerceptLabError, match=r"missing\.png does not exist"):
        read_png(tmp_path / "missing.png")
    Image.new("I;16", (28, 28)).save(tmp_path / "deep.png")
    with pytest.raises(PerceptLabError, match=r"deep\.png has pixel mode"):
        read_png(tmp_path / "deep.png")


def test_write_refuses_bad_arrays(tmp_path):
    with pytest.raises(PerceptLabError, match=r"shape \(1, 28, 28\)"):
        write_png(tmp_path / "x.png", np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(PerceptLabError, match="dtype float32"):
        check_image(np.zeros((28, 28), np.float32))
    assert not (tmp_path / "x.png").exists()


def test_range_conversions():
    x = np.array([-1.5, -1.0, 0.0, 0.5, 1.0, 2.0], np.float32)
    np.testing.assert_array_equal(float_to_uint8(x), [0, 0, 128, 191, 255, 255])
    u = np.arange(256, dtype=np.uint8)
    f = uint8_to_float(u)
    assert f.dtype == np.float32 and f[0] == -1.0 and f[-1] == 1.0
    np.testing.assert_array_equal(float_to_uint8(f), u)
    with pytest.raises(PerceptLabError, match="NaN"):
        float_to_uint8(np.array([np.nan]))
