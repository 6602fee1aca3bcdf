import numpy as np
import pytest
from skimage.feature import hog

from ocr.hog import HogParams, deskew_digits, hog_features


@pytest.mark.parametrize("params", [HogParams(), HogParams(12, 7, 2), HogParams(9, 4, 3), HogParams(8, 7, 1)], ids=str)
def test_batch_hog_equals_skimage(mnist, params):
    digits = mnist.x_test[:50].astype(np.float32) / 255
    expected = np.stack([hog(d, **params.as_skimage_kwargs()) for d in digits])
    np.testing.assert_allclose(hog_features(digits, params), expected, atol=1e-5)


def test_hog_rejects_a_single_image():
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        hog_features(np.zeros((28, 28)))


def test_deskew_straightens_a_slanted_bar():
    img = np.zeros((1, 28, 28), np.float32)
    for y in range(4, 24):  # a bar leaning right by 0.5 px per row
        x = int(round(14 + 0.5 * (y - 14)))
        img[0, y, x - 1 : x + 2] = 1.0
    out = deskew_digits(img)[0]
    cols = [np.average(np.arange(28), weights=row) for row in out[6:22] if row.sum() > 0]
    assert np.ptp(cols) <= 1.5  # the bar is vertical now
    assert abs(np.average(np.arange(28), weights=out.sum(0)) - 14) < 1.0
