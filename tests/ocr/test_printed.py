"""Printed letters told from digits (ocr.printed)."""

import cv2
import numpy as np
import pytest

from ocr.printed import MODEL_PATH, letter_probability, load_letter_model
from ocr.segment import reading_crop


def _printed(text: str, face: int, scale: float, pen: int) -> list[np.ndarray]:
    """Each character of ``text`` printed alone with OpenCV's Hershey ``face``, cut to its ink, normalised."""
    crops = []
    for ch in text:
        canvas = np.zeros((200, 200), np.uint8)
        cv2.putText(canvas, ch, (50, 140), face, scale, 255, pen, cv2.LINE_AA)
        mask = np.where(canvas > 127, 255, 0).astype(np.uint8)
        ys, xs = np.nonzero(mask)
        crops.append(reading_crop(mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]))
    return crops


def test_the_model_is_shipped():
    assert MODEL_PATH.is_file()
    assert load_letter_model() is not None


@pytest.mark.parametrize("face", [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX])
def test_printed_letters_are_letters_and_printed_digits_are_not(face):
    letters = letter_probability(np.stack(_printed("acdefhkmnprtuvwxyACEFHKLMNPRTUVWXY", face, 2.0, 3)))
    digits = letter_probability(np.stack(_printed("0123456789", face, 2.0, 3)))
    assert (letters >= 0.9).mean() >= 0.8
    assert (digits >= 0.9).sum() == 0


def test_handwritten_digits_are_seldom_taken_for_letters(mnist):
    from ocr.printed import _handwritten_crops

    crops = _handwritten_crops(mnist.x_test[:2000], np.random.default_rng(0))
    assert (letter_probability(crops) >= 0.9).mean() <= 0.005


def test_without_the_model_nothing_is_a_letter(tmp_path, monkeypatch):
    import ocr.printed

    crops = np.stack(_printed("kx", cv2.FONT_HERSHEY_SIMPLEX, 2.0, 3))
    assert (letter_probability(crops) >= 0.9).all()
    assert load_letter_model(tmp_path / "missing.npz") is None
    monkeypatch.setattr(ocr.printed, "load_letter_model", lambda: None)
    assert letter_probability(crops).tolist() == [0.0, 0.0]
    assert letter_probability(np.zeros((0, 28, 28), np.float32)).shape == (0,)
