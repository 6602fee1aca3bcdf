import cv2
import numpy as np
import pytest

from ocr.errors import BlankCropError
from ocr.normalize import _keep_components, normalize_digit


def _check_mnist_format(out: np.ndarray) -> None:
    assert out.shape == (28, 28)
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() == pytest.approx(1.0)
    rows, cols = np.nonzero(out > 0.05)
    assert rows.max() - rows.min() + 1 <= 21 and cols.max() - cols.min() + 1 <= 21
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 >= 18
    ys, xs = np.mgrid[:28, :28]
    cy, cx = (out * ys).sum() / out.sum(), (out * xs).sum() / out.sum()
    assert abs(cy - 14) <= 1.0 and abs(cx - 14) <= 1.0


def _scan_like(digit: np.ndarray, scale: int = 4, margin: int = 40, dark_ink: bool = True) -> np.ndarray:
    big = cv2.resize(digit, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    big = cv2.copyMakeBorder(big, margin, margin // 2, margin // 3, margin, cv2.BORDER_CONSTANT, value=0)
    return 255 - big if dark_ink else big


@pytest.mark.parametrize("dark_ink", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float64, bool])
def test_any_polarity_and_dtype_gives_centred_28x28(mnist, dark_ink, dtype):
    crop = _scan_like(mnist.x_test[0], dark_ink=dark_ink)
    if dtype is np.uint16:
        crop = crop.astype(np.uint16) * 257
    elif dtype is np.float64:
        crop = crop / 255.0
    elif dtype is bool:
        crop = crop > 127 if not dark_ink else crop < 128
    _check_mnist_format(normalize_digit(crop))


def test_colour_crop_is_accepted(mnist):
    crop = cv2.cvtColor(_scan_like(mnist.x_test[1]), cv2.COLOR_GRAY2BGR)
    _check_mnist_format(normalize_digit(crop))


@pytest.mark.parametrize("shape", [(5, 3), (300, 40), (40, 300), (1000, 1000)])
def test_any_shape_gives_28x28(shape):
    crop = np.full(shape, 255, np.uint8)
    h, w = shape
    cv2.line(crop, (w // 4, h // 4), (3 * w // 4, 3 * h // 4), 0, max(1, min(h, w) // 8))
    _check_mnist_format(normalize_digit(crop))


def test_mnist_digits_are_almost_unchanged(mnist):
    x = mnist.x_test[:200]
    out = np.stack([normalize_digit(d) for d in x])
    assert np.abs(out - x / 255.0).mean() < 0.01


def test_box_line_fragments_at_the_edges_are_removed(mnist):
    digit = mnist.x_test[3]
    clean = normalize_digit(_scan_like(digit))
    crop = _scan_like(digit)
    crop[:3, :] = 0  # a box border along the top edge, not touching the digit
    crop[:, -2:] = 0  # and one along the right edge
    with_lines = normalize_digit(crop)
    assert np.abs(with_lines - clean).mean() < 0.01


def test_specks_are_dropped(mnist):
    crop = _scan_like(mnist.x_test[4])
    clean = normalize_digit(crop)
    crop[5:7, 5:7] = 0
    crop[-8:-6, 20:22] = 0
    assert np.abs(normalize_digit(crop) - clean).mean() < 0.01


def test_binary_ink_masks_read_as_the_general_path_reads_them(mnist):
    # Segmentation hands over 0/255 masks, read by a shortcut; the same masks as
    # float 0/1 go the general way (Otsu, rim dilation) and must come out identical.
    rng = np.random.default_rng(5)
    for digit in mnist.x_test[:60]:
        mask = np.where(_scan_like(digit, dark_ink=False) > 100, 255, 0).astype(np.uint8)
        mask[: rng.integers(0, 4), :] = 255  # a box line along the top, sometimes
        mask[rng.integers(0, mask.shape[0]), rng.integers(0, mask.shape[1])] = 255  # a speck
        fast = normalize_digit(mask, bright_ink=True)
        general = normalize_digit(mask.astype(np.float32) / 255, bright_ink=True)
        np.testing.assert_array_equal(fast, general)
    with pytest.raises(BlankCropError):
        normalize_digit(np.full((30, 20), 255, np.uint8), bright_ink=True)


@pytest.mark.parametrize(
    "crop",
    [
        np.zeros((0, 0), np.uint8),
        np.full((40, 30), 255, np.uint8),
        np.zeros((40, 30), np.uint8),
        np.full((10, 10), 0.5),
        np.random.default_rng(0).integers(250, 256, (40, 40)).astype(np.uint8),
    ],
    ids=["empty", "blank-paper", "all-ink", "uniform-float", "faint-noise"],
)
def test_blank_or_all_ink_crop_raises_blank_crop_error(crop):
    with pytest.raises(BlankCropError):
        normalize_digit(crop)


@pytest.mark.parametrize("bad", [np.zeros((3, 3, 3, 3)), np.zeros(5), np.array([["a", "b"]])])
def test_non_images_raise_value_error(bad):
    with pytest.raises(ValueError):
        normalize_digit(bad)


def test_keep_components_drops_border_lines_and_specks():
    # columns: x, y, w, h, area; a 60x60 crop
    stats = np.array(
        [
            [15, 10, 25, 40, 400],  # the digit
            [0, 0, 60, 3, 180],  # line along the top edge
            [30, 55, 2, 2, 4],  # speck
            [20, 52, 10, 6, 40],  # detached stroke of the digit
        ]
    )
    assert _keep_components(stats, (60, 60), largest=0).tolist() == [True, False, False, True]


def test_keep_components_keeps_a_lone_one_touching_the_edges():
    stats = np.array([[10, 0, 4, 60, 240], [0, 58, 5, 2, 6]])
    assert _keep_components(stats, (60, 30), largest=0).tolist() == [True, False]


def test_keep_components_prefers_the_digit_to_a_longer_line():
    stats = np.array([[0, 0, 80, 4, 320], [25, 15, 20, 30, 250]])
    assert _keep_components(stats, (60, 80), largest=0).tolist() == [False, True]
