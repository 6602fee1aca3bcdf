"""How well printed letters are told from digits (:mod:`ocr.printed`), on fonts and digits it was not fitted on.

    python bench/letters.py --data ../shared/data/mnist.npz [--fonts /usr/share/fonts/truetype/dejavu]

Fits the model as ``python -m ocr.printed`` does, but on three quarters of the
TrueType fonts (and the Hershey fonts), and prints for each held-out set the
share of crops taken for letters at the probabilities 0.5 to 0.99: the other
fonts' letters (upright and turned upside down) and digits, their letters
that pass for digits (left out of training), MNIST test's digits as reading
cuts them from a page, and the distorted copies ``evaluate`` reads.  Then the
same for the shipped model, whose fonts include the held-out ones: MNIST
test and its distorted copies only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ocr import printed  # noqa: E402
from ocr.augment import distort_test_digits  # noqa: E402
from ocr.mnist import load_mnist  # noqa: E402

LEVELS = (0.5, 0.8, 0.9, 0.95, 0.99)
AMBIGUOUS = "ODQIlijJZzSsbGBgqo"


def shares(p: np.ndarray) -> str:
    return "  ".join(f"{(p >= level).mean():7.2%}" for level in LEVELS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--fonts", type=Path, default=printed.FONT_DIR)
    args = parser.parse_args()
    mnist = load_mnist(args.data)
    fonts = sorted(args.fonts.glob("*.ttf"))
    held = fonts[1::4]
    fitted = printed.fit_letter_model(
        *printed.training_set(mnist.x_train, [f for f in fonts if f not in held], handwritten=30000)
    )
    rng = np.random.default_rng(7)

    def drawn(chars: str, copies: int) -> list[np.ndarray]:  # the held-out sets: TrueType fonts only
        return printed._glyph_masks(held, chars, rng, copies, hershey=())

    letter_masks = drawn(printed.LETTERS, 2)
    sets = {
        "held-out fonts' letters": printed._crops(letter_masks),
        "  the same upside down": printed._crops([cv2.rotate(m, cv2.ROTATE_180) for m in letter_masks]),
        "held-out fonts' digits": printed._crops(drawn(printed.DIGITS, 3)),
        "held-out fonts' letters like digits": printed._crops(drawn(AMBIGUOUS, 2)),
        "MNIST test, cut as from a page": printed._handwritten_crops(mnist.x_test, rng),
        "MNIST test, distorted": distort_test_digits(mnist.x_test),
    }
    header = "  ".join(f"{'>= ' + str(level):>7}" for level in LEVELS)
    print(f"{'fitted without ' + str(len(held)) + ' fonts':42} {'crops':>6}  {header}")
    for name, crops in sets.items():
        print(f"{name:42} {len(crops):6}  {shares(printed.letter_probability(crops, fitted))}")
    shipped = printed.load_letter_model()
    if shipped is not None:
        print("shipped model")
        for name in ("MNIST test, cut as from a page", "MNIST test, distorted"):
            print(f"{name:42} {len(sets[name]):6}  {shares(printed.letter_probability(sets[name], shipped))}")


if __name__ == "__main__":
    main()
