"""Which way up a page stands: from its printed text, and from its handwritten digits.

Latin print has far more ink above its x-height band (capitals, b d f h k l t)
than below it (g j p q y).  Turned by 180 degrees the balance flips.  A form's
labels and instructions give that vote independently of the handwriting, which
is what the upside-down check in :mod:`ocr.read` otherwise goes by.

A photo of digits on paper has no print, and often only a few digits, each of
which may read as well turned (0, 1, 8, and a 6 turned is a 9).
:class:`DigitOrientation` looks at how each digit is drawn instead: logistic
regressions on the HOG descriptor of a normalised digit that tell MNIST digits
as written from the same digits turned by 180 degrees, and digits on their side
(turned a quarter either way) from digits upright or upside down (each digit
normalised as turned, so that nothing but the strokes' shape tells them apart).
The first votes on pages of free writing fed upside down
(:func:`ocr.read.reads_better_turned`), the second on pages of one short number
lying on their side (:func:`marks_lie_on_their_side`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ocr.errors import BlankCropError
from ocr.fields import Marks, digit_sized_marks
from ocr.geometry import Box, label_components
from ocr.hog import HogLinearModel, HogParams, fit_logistic, hog_features
from ocr.normalize import normalize_digits
from ocr.segment import reading_crop

# Printed characters at the working resolution (150 dpi): components this many pixels tall,
# no wider than this many times their height.
_CHAR_HEIGHT = (5, 40)
_CHAR_ASPECT = 3.0
# Characters this many times their median height apart are joined into one line (the gaps between
# words); a line of text is at least this many times as wide as tall once joined.
_WORD_GAP = 1.2
_LINE_ASPECT = 4.0
# Rows of a line holding at least this share of its busiest row are its x-height band.
_BAND_SHARE = 0.4
# Evidence a verdict needs: lines of text, ink pixels above or below their bands, and the balance.
# Pages drawn from validation and test digits (`digitflow samples`, seeds 91 and 4242; unseen
# layouts, seeds 5 and 777), each also turned by 180 degrees, with 3 lines and 500 pixels or
# more: forms upright +0.045 or more, turned -0.044 or less; unseen layouts upright -0.02 or more,
# turned +0.044 or less; cheques, whose guilloche and signature pass for print, -0.35 to +0.16
# turned.  At +0.25 no turned page of the 403 counts as upright; 36 and 25 of 40 upright unseen
# pages, 49 and 53 of 51 and 58 forms and 5 and 10 of 57 cheques do (no photo: they hold no print).
_MIN_LINES = 3
_MIN_MASS = 500
_UPRIGHT_BALANCE = 0.25
# An upside-down verdict turns a page only with its digits' consent (:mod:`ocr.read`), so it may
# rest on less print: a cheque's few labels.  With 200 pixels, 26 and 38 of the 57 turned cheques
# stand at -0.25 or less, and 1 of the 114 upright ones (its digits read worse turned).
_MIN_MASS_UPSIDE_DOWN = 200


@dataclass(frozen=True)
class TextOrientation:
    """``balance``: (ink above the bands - ink below) / both, over ``lines`` lines of text, in -1..1."""

    balance: float
    lines: int
    mass: float

    @property
    def upright(self) -> bool:
        """Enough print, clearly standing the right way up."""
        return self.lines >= _MIN_LINES and self.mass >= _MIN_MASS and self.balance >= _UPRIGHT_BALANCE

    @property
    def upside_down(self) -> bool:
        """Enough print, clearly standing upside down (less print will do: see :data:`_MIN_MASS_UPSIDE_DOWN`)."""
        return self.lines >= _MIN_LINES and self.mass >= _MIN_MASS_UPSIDE_DOWN and self.balance <= -_UPRIGHT_BALANCE


def text_orientation(ink: np.ndarray) -> TextOrientation:
    """The ascender balance of the printed text on a binarised page.

    Parameters
    ----------
    ink : (H, W) uint8, 255 where there is ink, at the working resolution.
    """
    if ink.ndim != 2 or ink.dtype != np.uint8:
        raise ValueError(f"ink must be (H, W) uint8, got {ink.shape} {ink.dtype}")
    if ink.size == 0:  # OpenCV's labelling crashes on an empty image
        return TextOrientation(0.0, 0, 0.0)
    chars, heights = _character_mask(ink)
    above = below = 0.0
    lines = 0
    for x, y, w, h in _text_lines(chars, heights):
        profile = np.count_nonzero(chars[y : y + h, x : x + w], axis=1).astype(np.float64)
        split = ascender_split(profile)
        if split is None:
            continue
        above += split[0]
        below += split[1]
        lines += 1
    mass = above + below
    return TextOrientation((above - below) / mass if mass else 0.0, lines, mass)


def ascender_split(profile: np.ndarray) -> tuple[float, float] | None:
    """Ink of a text line's row ``profile`` above and below its x-height band (None: no band)."""
    if profile.size == 0 or profile.sum() < 30:
        return None
    band = np.flatnonzero(profile >= _BAND_SHARE * profile.max())
    top, bottom = int(band.min()), int(band.max())
    if bottom - top < 3:
        return None
    return float(profile[:top].sum()), float(profile[bottom + 1 :].sum())


def _character_mask(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ink of components the size and shape of printed characters (rules, boxes and big marks
    left out), and those components' heights."""
    _, labels, stats, _ = label_components(ink, compact=True)  # labels only index
    h, w = stats[:, cv2.CC_STAT_HEIGHT], stats[:, cv2.CC_STAT_WIDTH]
    keep = (h >= _CHAR_HEIGHT[0]) & (h <= _CHAR_HEIGHT[1]) & (w <= _CHAR_ASPECT * h)
    keep[0] = False
    return keep[labels].view(np.uint8) * np.uint8(255), h[keep]


def _text_lines(chars: np.ndarray, heights: np.ndarray) -> list[Box]:
    """Boxes of the runs of characters (of these heights) that line up into lines of text."""
    if heights.size < 10:
        return []
    reach = max(3, int(_WORD_GAP * np.median(heights)))
    joined = cv2.dilate(chars, cv2.getStructuringElement(cv2.MORPH_RECT, (reach, 1)))
    _, _, stats, _ = label_components(joined, compact=True)
    return [
        (int(x), int(y), int(w), int(h))
        for x, y, w, h, _ in stats[1:]
        if w >= _LINE_ASPECT * h and _CHAR_HEIGHT[0] <= h <= 1.5 * _CHAR_HEIGHT[1]
    ]


ORIENTATION_FILE = "orientation.npz"
# One digit's say in a page's vote is capped: a page's few clear digits outvote one misjudged one.
_MAX_DIGIT_VOTE = 4.0
# A page's marks of a digit's size (:func:`ocr.fields.digit_sized_marks`, the largest this many) lie
# on their side when their votes add up to this much.  Calibration photos (seeds 96-99, 200 pages)
# turned a quarter: 1.1 a mark or more on most pages, 0.2-1.0 on a few; as drawn (seeds 91-96,
# 300 pages), 5 came to 3.8-14.4 (4 to 34 marks, 0.4-1.6 each; a grainy table's specks among
# them), and were read upright all the same (the reading of the most digits read clearly wins).
_MAX_MARKS = 40
_SIDEWAYS_VOTE = 3.0


@dataclass(frozen=True)
class DigitOrientation(HogLinearModel):
    """Two scores of a normalised digit's HOG: the log-odds that it stands upright rather than upside
    down, and that it lies on its side (turned a quarter either way) rather than either."""

    def __post_init__(self) -> None:
        if np.ndim(self.weights) != 2 or len(self.weights) != 2 or np.shape(self.bias) != (2,):
            raise ValueError(
                f"a digit orientation model holds two scores, got weights {np.shape(self.weights)} and bias "
                f"{np.shape(self.bias)}; retrain it with `digitflow train --orientation-only`"
            )

    def log_odds(self, normalized: np.ndarray) -> np.ndarray:
        """(N,) log-odds that each of N normalised digits (N, 28, 28) stands upright, capped at +-4."""
        return self._capped(normalized)[:, 0]

    def sideways_log_odds(self, normalized: np.ndarray) -> np.ndarray:
        """(N,) log-odds that each lies on its side, capped at +-4."""
        return self._capped(normalized)[:, 1]

    def page_vote(self, normalized: np.ndarray) -> float:
        """The digits' summed log-odds that their page stands upright (negative: upside down)."""
        return float(self.log_odds(normalized).sum())

    def _capped(self, normalized: np.ndarray) -> np.ndarray:
        if len(normalized) == 0:
            return np.zeros((0, 2))
        return np.clip(self.scores(hog_features(normalized, self.hog)), -_MAX_DIGIT_VOTE, _MAX_DIGIT_VOTE)


def marks_lie_on_their_side(ink: np.ndarray, model: DigitOrientation, marks: Marks | None = None) -> bool:
    """Whether the handwriting of a page of free writing lies on its side, by how its marks are drawn.

    :func:`ocr.fields.writing_runs_down` tells a page on its side by its columns; a page of one
    short number has too few marks for that.  Each mark of a digit's size, cut out alone and
    read as the classifiers read a digit, votes.  ``marks``: :func:`ocr.fields.digit_sized_marks` of
    ``ink``, if known.
    """
    labels, stats, _, chosen = digit_sized_marks(ink) if marks is None else marks
    size = np.maximum(stats[chosen, cv2.CC_STAT_WIDTH], stats[chosen, cv2.CC_STAT_HEIGHT])
    crops = []
    for mark in chosen[np.argsort(-size, kind="stable")[:_MAX_MARKS]].tolist():
        x, y, w, h = (int(v) for v in stats[mark, :4])
        try:
            crops.append(reading_crop((labels[y : y + h, x : x + w] == mark).view(np.uint8) * np.uint8(255)))
        except BlankCropError:
            continue
    if not crops:
        return False
    votes = model.sideways_log_odds(np.stack(crops))
    return float(votes.sum()) >= _SIDEWAYS_VOTE


def turned_digits(digits: np.ndarray, quarters: int = 2) -> np.ndarray:
    """Raw MNIST digits (N, 28, 28) turned counter-clockwise by ``quarters`` quarter turns (2: 180 degrees)."""
    return np.ascontiguousarray(np.rot90(np.asarray(digits), quarters, axes=(1, 2)))


def train_digit_orientation(
    train_digits: np.ndarray,
    val_digits: np.ndarray,
    seed: int,
    n_train: int = 30000,
    c: float = 0.05,
    hog: HogParams | None = None,
) -> tuple[DigitOrientation, dict]:
    """Fit :class:`DigitOrientation` on ``n_train`` of ``train_digits`` turned each of the four ways (each
    normalised as turned, so that nothing but the strokes' shape tells them apart); score it on all of
    ``val_digits`` the same way.  Both are raw MNIST digits (28x28 uint8, bright ink).

    Returns the model and its validation figures, among them how often pages of 3 and of 5
    validation digits drawn at random (seeded) get a vote of the right sign.
    """
    hog = hog or HogParams()
    rng = np.random.default_rng(seed)
    chosen = train_digits[rng.choice(len(train_digits), min(n_train, len(train_digits)), replace=False)]

    def four_ways(digits: np.ndarray) -> list[np.ndarray]:
        return [hog_features(normalize_digits(turned_digits(digits, k), bright_ink=True), hog) for k in range(4)]

    x = four_ways(chosen)
    n = len(chosen)
    # Upright against upside down; on its side (a quarter either way) against either.
    up_weights, up_bias = fit_logistic(np.vstack([x[0], x[2]]), np.r_[np.ones(n), np.zeros(n)], c)
    side_weights, side_bias = fit_logistic(np.vstack(x), np.r_[np.zeros(n), np.ones(n), np.zeros(n), np.ones(n)], c)
    model = DigitOrientation(hog, np.stack([up_weights, side_weights]), np.array([up_bias, side_bias]))

    x_val = four_ways(val_digits)
    odds = [np.clip(model.scores(v), -_MAX_DIGIT_VOTE, _MAX_DIGIT_VOTE) for v in x_val]
    upright, turned = odds[0][:, 0], odds[2][:, 0]
    flat, on_side = np.r_[odds[0][:, 1], odds[2][:, 1]], np.r_[odds[1][:, 1], odds[3][:, 1]]
    figures = {
        "validation_digits": int(len(val_digits)),
        "accuracy": round(float(np.mean(np.r_[upright > 0, turned < 0])), 4),
        "sideways_accuracy": round(float(np.mean(np.r_[flat < 0, on_side > 0])), 4),
        "train_digits": int(n),
        "c": c,
    }
    pages = np.random.default_rng(seed + 1)
    for k in (3, 5):
        picks = pages.integers(0, len(val_digits), (2000, k))
        right = np.r_[upright[picks].sum(axis=1) > 0, turned[picks].sum(axis=1) < 0]
        figures[f"pages_of_{k}_right"] = round(float(right.mean()), 4)
    return model, figures
