"""Which way up printed text stands, and its say in the upside-down check."""

import dataclasses

import cv2
import numpy as np
import pytest

from ocr.cleanup import clean_page
from ocr.orientation import ascender_split, text_orientation
from ocr.read import read_page
from tests.ocr.drawing import blank, draw_comb, draw_digit, fill_comb

LINES = (
    "Please write the amount in figures, one digit per box.",
    "Sign below the line and keep the form flat.",
    "Do not fold, staple or punch this page.",
    "Your reference number is printed on the back.",
    "Write your date of birth as day, month and year.",
    "Keep a copy of this form for your own records.",
    "The office will reply within thirty working days.",
    "Questions? Ask at the desk or telephone the helpline.",
)


def _print(page: np.ndarray, lines=LINES * 2, top: int = 40) -> None:
    """Instructions in small print down the top half of the page."""
    for i, text in enumerate(lines):
        cv2.putText(page, text, (60, top + 26 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 0, 1, cv2.LINE_AA)


def test_print_the_right_way_up_is_told_from_print_upside_down():
    page = blank()
    _print(page)
    upright = text_orientation(clean_page(page, deskew=False).ink)
    turned = text_orientation(clean_page(cv2.rotate(page, cv2.ROTATE_180), deskew=False).ink)
    assert upright.upright and upright.balance >= 0.25 and upright.lines >= 5
    assert not turned.upright and turned.balance <= -0.25


def test_too_little_print_gives_no_verdict():
    page = blank()
    _print(page, LINES[:1])
    assert not text_orientation(clean_page(page, deskew=False).ink).upright
    for shape in ((900, 1200), (0, 0), (3, 4000)):
        empty = text_orientation(np.zeros(shape, np.uint8))
        assert (empty.lines, empty.mass, empty.upright, empty.upside_down) == (0, 0.0, False, False)
    with pytest.raises(ValueError, match="uint8"):
        text_orientation(np.zeros((10, 10), np.float32))


def test_ascender_split_measures_ink_above_and_below_the_busiest_rows():
    # rows: 4 of ascenders, the x-height band of 6 busy rows, 1 of descenders
    profile = np.array([2, 2, 2, 2, 20, 20, 20, 20, 20, 20, 3], float)
    assert ascender_split(profile) == (8.0, 3.0)
    assert ascender_split(np.zeros(5)) is None  # no ink
    assert ascender_split(np.array([0, 40, 0, 0], float)) is None  # a rule, not a line of text


def _turned_handwriting(mnist, with_print: bool) -> np.ndarray:
    """A form whose two combs were filled in upside down; its print, if any, stands the right way up."""
    page = blank()
    if with_print:
        _print(page)
    digits = [np.rot90(mnist.x_test[i], 2) for i in range(16)]
    for row in range(2):
        draw_comb(page, 100, 560 + 150 * row, 8)
        fill_comb(page, digits[8 * row : 8 * row + 8][::-1], 100, 560 + 150 * row)
    return page


def test_print_standing_upright_keeps_a_page_from_being_turned_by_its_digits(models, mnist):
    # Without print, digits written upside down turn the page; upright print outvotes them.
    bare = read_page(_turned_handwriting(mnist, with_print=False), models)
    assert abs(bare.angle - 180) < 5
    printed = read_page(_turned_handwriting(mnist, with_print=True), models)
    assert abs(printed.angle) < 5


_SIX = (0, 1, 2, 3, 4, 7)


def _short_form(mnist, lines: tuple[str, ...]) -> np.ndarray:
    """A form with one comb of six digits, too few for the digits alone to tell which way up it is."""
    page = blank()
    _print(page, lines)
    draw_comb(page, 100, 600, 6)
    fill_comb(page, [mnist.x_test[i] for i in _SIX], 100, 600)
    return page


# A form's worth of print, and less (eight lines: too little to overrule the digits, enough to
# turn a page they consent to, as a cheque's few labels).
@pytest.mark.parametrize("lines", [LINES * 2, LINES], ids=["form", "labels"])
def test_print_standing_upside_down_turns_a_page_of_too_few_digits_to_tell(models, mnist, lines):
    value = "".join(str(mnist.y_test[i]) for i in _SIX)
    upright = read_page(_short_form(mnist, lines), models)
    assert abs(upright.angle) < 5 and [f.value for f in upright.fields] == [value]
    turned = read_page(cv2.rotate(_short_form(mnist, lines), cv2.ROTATE_180), models)
    assert abs(turned.angle - 180) < 5
    assert [f.value for f in turned.fields] == [value]
    # Without print, six digits are too few to turn the page: it is read as it came.
    bare = read_page(cv2.rotate(_short_form(mnist, ()), cv2.ROTATE_180), models)
    assert abs(bare.angle) < 5


def test_the_shipped_digit_orientation_model_tells_held_out_digits_from_the_same_turned(models, mnist):
    from ocr.normalize import normalize_digits
    from ocr.orientation import turned_digits

    digits = mnist.x_test[:2000]  # never trained on
    upright = models.orientation.log_odds(normalize_digits(digits, bright_ink=True))
    turned = models.orientation.log_odds(normalize_digits(turned_digits(digits), bright_ink=True))
    assert np.mean(upright > 0) >= 0.8 and np.mean(turned < 0) >= 0.8  # 82.7% on the validation digits
    assert np.abs(np.r_[upright, turned]).max() <= 4  # each digit's say is capped
    # Pages of three digits: the summed vote has the right sign far more often than one digit alone.
    pages = np.random.default_rng(0).integers(0, len(digits), (500, 3))
    assert np.mean(upright[pages].sum(axis=1) > 0) >= 0.9 and np.mean(turned[pages].sum(axis=1) < 0) >= 0.9
    assert models.orientation.page_vote(np.zeros((0, 28, 28), np.float32)) == 0.0
    # Digits on their side (a quarter either way) against upright or upside down: 96.99% on the validation digits.
    ways = [
        models.orientation.sideways_log_odds(normalize_digits(turned_digits(digits, k), bright_ink=True))
        for k in range(4)
    ]
    assert np.mean(np.r_[ways[0], ways[2]] < 0) >= 0.93 and np.mean(np.r_[ways[1], ways[3]] > 0) >= 0.93


def test_marks_on_their_side_are_told_from_marks_standing(models, mnist):
    from ocr.orientation import marks_lie_on_their_side

    page = blank(400, 900)
    for i, d in enumerate(mnist.x_test[:4]):
        draw_digit(page, d, 150 + i * 90, 150, 80)
    ink = clean_page(page, deskew=False).ink
    assert not marks_lie_on_their_side(ink, models.orientation)
    assert not marks_lie_on_their_side(cv2.rotate(ink, cv2.ROTATE_180), models.orientation)
    assert marks_lie_on_their_side(cv2.rotate(ink, cv2.ROTATE_90_CLOCKWISE), models.orientation)
    assert marks_lie_on_their_side(cv2.rotate(ink, cv2.ROTATE_90_COUNTERCLOCKWISE), models.orientation)
    assert not marks_lie_on_their_side(np.zeros((100, 100), np.uint8), models.orientation)


def test_a_digit_orientation_model_saves_and_loads_as_plain_arrays(models, tmp_path):
    from ocr.orientation import DigitOrientation

    path = tmp_path / "orientation.npz"
    models.orientation.save(path)
    again = DigitOrientation.load(path)
    assert again.hog == models.orientation.hog
    np.testing.assert_array_equal(again.weights, models.orientation.weights)
    np.testing.assert_array_equal(again.bias, models.orientation.bias)
    with np.load(path, allow_pickle=False) as saved:
        assert set(saved.files) == {"hog", "weights", "bias"}
    with pytest.raises(ValueError, match="two scores"):  # one score alone: a model of another shape
        DigitOrientation(models.orientation.hog, models.orientation.weights[0], 0.0)


class _HandVote:
    """A digit orientation model that gives every page the same vote."""

    def __init__(self, vote: float) -> None:
        self.vote = vote

    def page_vote(self, crops: np.ndarray) -> float:
        return self.vote


def _votes(labels: np.ndarray, doubted: int) -> tuple[np.ndarray, np.ndarray]:
    """The CNN's and the SVM's probabilities: sure of ``labels``, disagreeing on the first ``doubted``."""
    cnn = np.eye(10, dtype=np.float32)[labels]
    svm = cnn.copy()
    svm[:doubted] = np.eye(10, dtype=np.float32)[(labels[:doubted] + 1) % 10]
    return cnn, svm


@pytest.mark.parametrize(("hand", "turned"), [(15.0, False), (0.0, True)])
def test_digits_drawn_upright_keep_a_page_of_free_writing_from_turning(models, monkeypatch, hand, turned):
    # 14 digits, 2 in doubt as the page stands and 1 turned: the digits alone would turn it (a fresh
    # photo's "765" was read "596" so); drawn upright by a wide margin, it stays as it is.
    import ocr.read as reading
    from ocr.decision import decide
    from ocr.segment import Segment

    labels = np.arange(14) % 10
    segments = [[Segment((20 * i, 0, 15, 30), np.full((30, 15), 255, np.uint8)) for i in range(14)]]
    index = {id(seg): i for i, seg in enumerate(segments[0])}
    batch = np.zeros((14, 28, 28), np.float32)
    rule = models.rule.for_page_layout()
    upright = decide(*_votes(labels, doubted=2), rule)
    monkeypatch.setattr(reading, "_turned_votes", lambda crops, m, clock: (crops, *_votes(labels, doubted=1)))
    with_hand = dataclasses.replace(models, orientation=_HandVote(hand))
    ink = np.zeros((800, 600), np.uint8)  # no print to say which way up
    clock = reading._Clock(None)
    assert reading.reads_better_turned(segments, batch, index, upright, with_hand, clock, ink, free_page=True) is turned


def _photo(tmp_path, digits, labels, seed: int, i: int):
    """Photo ``i`` of ``digitflow samples --kind photos --seed SEED`` drawn from ``digits``: (gray page, truth)."""
    from ocr.load import load_pages
    from ocr.samples import _KIND_SEEDS, _DigitPool, _write_photo

    rng = np.random.default_rng([seed, _KIND_SEEDS["photos"], i])
    path, truth = _write_photo(tmp_path, f"photo_{i:04d}", rng, _DigitPool.from_mnist(digits, labels))
    return load_pages(path)[0].image, [f["value"] for f in truth["pages"][0]["fields"]]


def test_the_table_round_a_photographed_sheet_does_not_turn_it(models, mnist, tmp_path):
    # "850" on pink paper, the dark table all round it: the lines found in the border band held
    # 156 marks, most of them in doubt and drawn upside down to the orientation model, and the
    # page was read turned ("058", accepted).  Validation digits, as the calibration photos draw.
    from ocr.training import split_validation

    _, val = split_validation(len(mnist.x_train), 6000, 1234)
    page, values = _photo(tmp_path, mnist.x_train[val], mnist.y_train[val], seed=102, i=42)
    reading = read_page(page, models)
    assert values == ["850"]
    assert abs(reading.angle) < 5 and [f.value for f in reading.fields] == ["850"]


def test_a_short_page_of_upright_digits_is_not_turned_by_a_doubtful_digit_or_two(models, mnist, tmp_path):
    # Three short lines ("765", "016198", "8193071"): 2 of 14 digits in doubt upright, 1 turned, and
    # the page was read turned ("596", accepted); their drawing says upright by a wide margin.
    page, values = _photo(tmp_path, mnist.x_test, mnist.y_test, seed=20261212, i=2)
    reading = read_page(page, models)
    assert values == ["765", "016198", "8193071"]
    assert abs(reading.angle) < 5
    assert [f.value for f in reading.fields][:2] == ["765", "016198"]
