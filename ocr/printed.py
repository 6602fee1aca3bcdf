"""Printed letters told from digits, so that a line of printed text on a page without boxes is no number.

On a page without boxes every line of writing is a candidate field, and a line
of print ("Invoice 20931", "Thank you") cut into marks is read as digits, most
of them in doubt.  A letter looks like no digit in any typeface, so a model
on the HOG descriptors (:mod:`ocr.hog`) of the normalised crops (MNIST's
28x28, as reading normalises digits) tells letters from digits (a network of one
hidden layer; a linear model found too few letters cut from pages): trained on
letters rendered in the DejaVu fonts and OpenCV's Hershey fonts, against MNIST
train's handwritten digits as reading cuts them from a page (some of them with
a fragment of a box's line at the edge) and the same fonts' digits.  Letters
that pass for a digit in some hand (O, D, Q for 0; I, l, i, j, J for 1; Z, z
for 2; S, s for 5; b, G for 6; B for 8; g, q for 9) are left out of its
letters: one of them does not make a line text.

The model is fitted once by :func:`fit_letter_model` into
``ocr/models/letters.npz`` (``python -m ocr.printed --data MNIST``, about 30 s), so reading needs no font.
"""

from __future__ import annotations

import argparse
import sys
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ocr.augment import distort_test_digits
from ocr.errors import BlankCropError
from ocr.geometry import cut_to_ink
from ocr.hog import hog_features
from ocr.segment import reading_crop
from ocr.symbols import FONT_DIR, HERSHEY_FACES

MODEL_PATH = Path(__file__).parent / "models" / "letters.npz"
LETTERS = "acdefhkmnprtuvwxyACEFHKLMNPRTUVWXY"
DIGITS = "0123456789"
# The faces letters are drawn in besides the TrueType fonts: the ones that draw print.
FACES = (*HERSHEY_FACES, cv2.FONT_HERSHEY_COMPLEX_SMALL)
_SEED = 20261206


def _glyph_masks(
    font_files: list[Path], chars: str, rng: np.random.Generator, copies: int, hershey: tuple[int, ...] = FACES
) -> list[np.ndarray]:
    """Each of ``chars`` printed ``copies`` times in each font, as ink masks (255 ink) the way a page's
    threshold leaves them: at a random size, turned a little, blurred by the scanner and thresholded
    at a random level (which thins or thickens the strokes)."""
    from PIL import Image, ImageDraw, ImageFont

    masks = []
    faces = [("ttf", f) for f in font_files] + [("hershey", h) for h in hershey]
    for kind, face in faces:
        for ch in chars:
            for _ in range(copies):
                size = int(rng.integers(22, 64))
                canvas = np.zeros((size * 3, size * 3), np.uint8)
                if kind == "ttf":
                    font = ImageFont.truetype(str(face), size)
                    if font.getmask(ch).getbbox() is None:
                        break
                    img = Image.fromarray(canvas)
                    ImageDraw.Draw(img).text((size, size // 2), ch, fill=255, font=font)
                    canvas = np.asarray(img).copy()
                else:
                    scale = size / 30
                    pen = max(1, round(scale * rng.uniform(1.0, 2.5)))
                    cv2.putText(canvas, ch, (size, 2 * size), face, scale, 255, pen, cv2.LINE_AA)
                masks.append(_as_thresholded(canvas, rng))
    return [m for m in masks if m.any()]


def _as_thresholded(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = canvas.shape
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-4, 4), 1.0)
    img = cv2.warpAffine(canvas, turn, (w, h), flags=cv2.INTER_LINEAR)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.5))
    mask = np.where(img > rng.uniform(0.3, 0.7) * max(int(img.max()), 1), 255, 0).astype(np.uint8)
    return cut_to_ink(mask) if mask.any() else mask


def _crops(masks: list[np.ndarray]) -> np.ndarray:
    out = []
    for mask in masks:
        try:
            out.append(reading_crop(mask))
        except BlankCropError:
            continue
    return np.stack(out).astype(np.float32)


def _handwritten_crops(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """MNIST digits as reading cuts them from a page (:func:`ocr.augment.as_scanned`)."""
    from ocr.augment import as_scanned, upscale_digit

    return np.stack([as_scanned(upscale_digit(image, rng.uniform(2.0, 3.5)), rng, image) for image in images])


def training_set(
    images: np.ndarray, font_files: list[Path], seed: int = _SEED, handwritten: int = 20000
) -> tuple[np.ndarray, np.ndarray]:
    """(crops (N, 28, 28), labels: 1 letter, 0 digit) from ``images`` (MNIST train digits) and the fonts."""
    rng = np.random.default_rng(seed)
    masks = _glyph_masks(font_files, LETTERS, rng, copies=8)
    # Print on a page read upside down, before it is turned, is letters too.
    letters = _crops(masks + [cv2.rotate(m, cv2.ROTATE_180) for m in masks[::2]])
    printed_digits = _crops(_glyph_masks(font_files, DIGITS, rng, copies=6))
    pick = rng.choice(len(images), size=min(handwritten, len(images)), replace=False)
    # A third of them as a page's segmentation also leaves digits: turned, loosely cropped, thicker
    # or thinner, with a fragment of a box's line at the edge (:func:`ocr.augment.distort_test_digits`).
    rough = distort_test_digits(images[pick[: len(pick) // 3]], seed=seed)
    digits = np.concatenate([_handwritten_crops(images[pick], rng), rough, printed_digits])
    crops = np.concatenate([letters, digits])
    return crops, np.concatenate([np.ones(len(letters)), np.zeros(len(digits))]).astype(np.int64)


def fit_letter_model(crops: np.ndarray, labels: np.ndarray, hidden: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    """A small neural network (one hidden layer of ``hidden`` ReLUs) of "a letter" on the crops'
    standardised HOG descriptors, as arrays: ``mean``, ``scale``, ``w1``, ``b1``, ``w2``, ``b2``.

    A linear model on the same descriptors found 85% of held-out fonts' letters and missed most of
    those cut from a page; the network finds 99% (docs/performance.md).
    """
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    x = hog_features(crops)
    scaler = StandardScaler().fit(x)
    net = MLPClassifier(hidden_layer_sizes=(hidden,), alpha=1e-3, max_iter=60, random_state=seed)
    net.fit(scaler.transform(x), labels)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    arrays = {"mean": scaler.mean_, "scale": scale, "w1": net.coefs_[0], "b1": net.intercepts_[0]}
    arrays |= {"w2": net.coefs_[1][:, 0], "b2": net.intercepts_[1]}
    return {k: np.asarray(v, np.float32) for k, v in arrays.items()}


@lru_cache(maxsize=1)
def load_letter_model(path: Path = MODEL_PATH) -> dict[str, np.ndarray] | None:
    """The shipped model (see :func:`fit_letter_model`); None if the file is missing."""
    if not path.is_file():
        return None
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def letter_probability(crops: np.ndarray, model: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """For each normalised crop (N, 28, 28), the probability that it is a printed letter rather than a digit.

    Zeros without the shipped model: then nothing is taken for a letter.
    """
    model = load_letter_model() if model is None else model
    if model is None or len(crops) == 0:
        return np.zeros(len(crops))
    x = (hog_features(np.asarray(crops, np.float32)) - model["mean"]) / model["scale"]
    hidden = np.maximum(x @ model["w1"] + model["b1"], 0.0)
    score = hidden @ model["w2"] + model["b2"]
    return 1.0 / (1.0 + np.exp(-np.clip(score, -50, 50)))


def main(argv: list[str]) -> None:
    """Fit the model from MNIST train and the fonts and write it (``bench/letters.py`` measures it)."""
    from ocr.mnist import load_mnist

    parser = argparse.ArgumentParser(prog="python -m ocr.printed", description=main.__doc__)
    parser.add_argument("--data", type=Path, required=True, help="mnist.npz")
    parser.add_argument("--fonts", type=Path, default=FONT_DIR)
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    args = parser.parse_args(argv)
    fonts = sorted(args.fonts.glob("*.ttf"))
    if not fonts:
        raise SystemExit(f"no .ttf fonts in {args.fonts}")
    mnist = load_mnist(args.data)
    crops, labels = training_set(mnist.x_train, fonts, handwritten=30000)
    model = fit_letter_model(crops, labels)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **model)
    print(f"{len(crops)} crops ({int(labels.sum())} letters) -> {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
