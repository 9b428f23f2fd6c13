"""The clean-stroke check: hand-drawn images with and without specks, knots and blots, and real digits."""

import numpy as np

from perceptlab.analysis.strokes import LIMITS, rejection_rates, stroke_reasons, stroke_stats


def stroke(width: int = 2) -> np.ndarray:
    """A clean '1': one vertical bar."""
    img = np.zeros((28, 28), np.uint8)
    img[4:24, 13 : 13 + width] = 255
    return img


def ring(img: np.ndarray, r0: int, c0: int, size: int) -> None:
    img[r0 : r0 + size, c0 : c0 + size] = 255
    img[r0 + 1 : r0 + size - 1, c0 + 1 : c0 + size - 1] = 0


def test_a_clean_stroke_passes_and_a_lone_small_mark_is_not_a_speck():
    assert stroke_reasons(stroke_stats(stroke())) == []
    dot = np.zeros((28, 28), np.uint8)
    dot[10:12, 10:12] = 255  # the only ink: the digit itself, however small
    assert stroke_stats(dot).specks == 0


def test_a_detached_speck_fails_and_is_named():
    img = stroke()
    img[5, 3] = 200
    stats = stroke_stats(img)
    assert stats.specks == 1
    assert stroke_reasons(stats) == ["1 detached speck(s) of ink"]
    img[5, 3] = 100  # below the ink level: not ink at all
    assert stroke_stats(img).specks == 0


def test_knots_of_loops_and_blots_fail():
    eight = np.zeros((28, 28), np.uint8)
    ring(eight, 4, 10, 8)
    ring(eight, 11, 10, 8)  # two loops sharing a side: an 8
    assert stroke_stats(eight).holes == 2 and stroke_reasons(stroke_stats(eight)) == []
    ring(eight, 4, 17, 8)  # a third loop: a knot
    assert stroke_stats(eight).holes == 3
    assert "knot" in stroke_reasons(stroke_stats(eight))[0]
    blot = np.zeros((28, 28), np.uint8)
    blot[6:22, 8:22] = 255
    reasons = "; ".join(stroke_reasons(stroke_stats(blot)))
    assert stroke_stats(blot).width > LIMITS.width and "blot" in reasons
    blot[4:24, 6:24] = 255
    assert stroke_stats(blot).ink > LIMITS.ink and "ink pixels" in "; ".join(stroke_reasons(stroke_stats(blot)))
    filled = np.zeros((28, 28), np.uint8)
    filled[8:20, 10:18] = 255  # a small filled blob: neither wide nor big, but solid
    stats = stroke_stats(filled)
    assert stats.width <= LIMITS.width and stats.ink <= LIMITS.ink and stats.solid > LIMITS.solid
    assert "filled area" in stroke_reasons(stats)[0]
    assert stroke_stats(stroke(2)).solid == 0 and stroke_stats(stroke(3)).solid < LIMITS.solid  # strokes pass


def test_float_images_are_read_as_grey_values():
    assert stroke_stats(stroke().astype(np.float32)) == stroke_stats(stroke())


def test_the_check_rejects_few_real_digits():
    from perceptlab.data.images import float_to_uint8
    from perceptlab.data.mnist import load_mnist

    data = load_mnist(None)  # the built-in subset: digits nobody drew for this test
    rates = rejection_rates(float_to_uint8(data.images[:2000, 0]))
    assert rates["n"] == 2000 and rates["any"] < 0.03
