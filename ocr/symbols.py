"""Currency signs printed in a number's box ($, EUR, GBP), told from handwritten digits by their shape.

A cheque's or a form's amount box often has the currency sign printed at its
start (or end), and the classifiers, which know only digits, read a "$" as an
8 or a 5.  Printed signs look alike from font to font, so a mark is compared
with the sign drawn in several typefaces, as a crop normalised the way
reading normalises digits (MNIST's 28x28): the centred correlation of the two
images, at most 1.

The templates are rendered once by :func:`render_templates` into
``ocr/models/symbols.npz`` (``python -m ocr.symbols``, from the DejaVu fonts
and OpenCV's Hershey fonts), so reading needs no font.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ocr.geometry import cut_to_ink
from ocr.segment import reading_crop

TEMPLATES_PATH = Path(__file__).parent / "models" / "symbols.npz"
# Where the DejaVu fonts the templates (and the letters of ocr.printed) are drawn from usually are.
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
SIGNS = "$€£"
# A mark is a printed sign when its crop correlates with one of the sign's templates at least
# this much.  On the 37,912 digits cut from the calibration pages (validation digits, seeds
# 91-100), 3 reached 0.85 (two 8s and a 0), and 1 of them was read in doubt; 91% of signs
# rendered in other sizes, turned, blurred and thresholded again reached it (docs/performance.md).
MIN_SIMILARITY = 0.85

# OpenCV's Hershey fonts that draw print (the script ones draw handwriting).
HERSHEY_FACES = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_PLAIN,
)


def render_templates(font_files: list[Path]) -> tuple[list[str], np.ndarray]:
    """Each sign drawn in each of ``font_files`` (TrueType; the ones lacking a sign skip it) at two
    sizes, and "$" in OpenCV's Hershey fonts at two pen widths, as (signs, (N, 28, 28) float32 crops)."""
    from PIL import Image, ImageDraw, ImageFont

    signs, masks = [], []
    for path in font_files:
        for size in (40, 64):
            font = ImageFont.truetype(str(path), size)
            for sign in SIGNS:
                if font.getmask(sign).getbbox() is None:
                    continue
                img = Image.new("L", (size * 2, size * 2), 0)
                ImageDraw.Draw(img).text((size // 2, size // 4), sign, fill=255, font=font)
                mask = np.where(np.asarray(img) > 127, 255, 0).astype(np.uint8)
                if mask.any():
                    signs.append(sign)
                    masks.append(cut_to_ink(mask))
    for face in HERSHEY_FACES:
        for scale, pen in ((1.5, 2), (2.5, 4)):
            img = np.zeros((200, 200), np.uint8)
            cv2.putText(img, "$", (40, 150), face, scale, 255, pen, cv2.LINE_AA)
            signs.append("$")
            masks.append(cut_to_ink(np.where(img > 127, 255, 0).astype(np.uint8)))
    return signs, np.stack([reading_crop(m) for m in masks]).astype(np.float32)


@lru_cache(maxsize=1)
def load_templates(path: Path = TEMPLATES_PATH) -> tuple[tuple[str, ...], np.ndarray] | None:
    """The shipped templates as (signs, (N, 784) centred unit vectors); None if the file is missing."""
    if not path.is_file():
        return None
    with np.load(path) as data:
        signs = tuple(str(s) for s in data["signs"])
        crops = data["crops"].astype(np.float32)
    return signs, _unit_rows(crops)


def _unit_rows(crops: np.ndarray) -> np.ndarray:
    rows = crops.reshape(len(crops), -1).astype(np.float32)
    rows = rows - rows.mean(axis=1, keepdims=True)
    return rows / (np.linalg.norm(rows, axis=1, keepdims=True) + 1e-6)


def printed_signs(crops: np.ndarray, templates: tuple[tuple[str, ...], np.ndarray] | None = None) -> list[str | None]:
    """For each normalised crop (N, 28, 28), the sign it is printed as, or None for a digit (or anything else)."""
    templates = load_templates() if templates is None else templates
    if templates is None or len(crops) == 0:
        return [None] * len(crops)
    signs, rows = templates
    similarity = _unit_rows(np.asarray(crops, np.float32)) @ rows.T
    best = similarity.argmax(axis=1)
    return [signs[b] if similarity[i, b] >= MIN_SIMILARITY else None for i, b in enumerate(best)]


def main(argv: list[str]) -> None:
    """``python -m ocr.symbols [FONT_DIR]``: render the templates from the DejaVu fonts in FONT_DIR."""
    font_dir = Path(argv[0]) if argv else FONT_DIR
    fonts = sorted(font_dir.glob("DejaVu*.ttf"))
    if not fonts:
        raise SystemExit(f"no DejaVu*.ttf fonts in {font_dir}")
    signs, crops = render_templates(fonts)
    np.savez_compressed(TEMPLATES_PATH, signs=np.array(signs), crops=(crops * 255).round().astype(np.uint8))
    counts = {s: signs.count(s) for s in SIGNS}
    print(f"{len(signs)} templates from {len(fonts)} fonts ({counts}) written to {TEMPLATES_PATH}")


if __name__ == "__main__":
    main(sys.argv[1:])
