"""Draw small synthetic pages in tests: boxes, combs, lines and MNIST digits in dark ink."""

from __future__ import annotations

import cv2
import numpy as np


def blank(height: int = 900, width: int = 1200) -> np.ndarray:
    return np.full((height, width), 255, np.uint8)


def back_showing_through(front: np.ndarray, contrast: float) -> np.ndarray:
    """The blank back of ``front``'s sheet, on paper of 235: the front mirrored, blurred by the
    paper (sigma 1.5 px), at ``contrast`` of its own contrast."""
    through = cv2.GaussianBlur(np.ascontiguousarray(front[:, ::-1]), (0, 0), 1.5).astype(np.float32)
    return (235 * (1 - contrast * (255 - through) / 255)).astype(np.uint8)


def draw_comb(page: np.ndarray, x: int, y: int, cells: int, cell_w: int = 50, cell_h: int = 56, gap: int = 0) -> None:
    for i in range(cells):
        x0 = x + i * (cell_w + gap)
        cv2.rectangle(page, (x0, y), (x0 + cell_w, y + cell_h), 0, 2)


def draw_digit(page: np.ndarray, digit: np.ndarray, x: int, y: int, size: int) -> tuple[int, int, int, int]:
    """Paste an MNIST digit (ink 255) as dark ink with its 28x28 frame scaled to ``size``; returns its ink bbox."""
    scaled = cv2.resize(digit, (size, size), interpolation=cv2.INTER_LINEAR)
    region = page[y : y + size, x : x + size]
    np.minimum(region, 255 - scaled, out=region)
    rows, cols = np.nonzero(scaled > 80)
    return (x + int(cols.min()), y + int(rows.min()), int(np.ptp(cols)) + 1, int(np.ptp(rows)) + 1)


def fill_comb(page, digits, x, y, cell_w=50, cell_h=56, gap=0, size=44) -> None:
    for i, d in enumerate(digits):
        if d is None:
            continue
        draw_digit(page, d, x + i * (cell_w + gap) + (cell_w - size) // 2, y + (cell_h - size) // 2, size)


def rotate(page: np.ndarray, degrees: float, shift: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """Turn the page clockwise by ``degrees`` (as a crooked scan) and shift it; returns page and 2x3 matrix."""
    h, w = page.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), -degrees, 1.0)
    matrix[:, 2] += shift
    return cv2.warpAffine(page, matrix, (w, h), borderValue=255), matrix
