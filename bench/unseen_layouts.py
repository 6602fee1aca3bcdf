"""Form pages unlike those of ``digitflow samples``, with ground truth, to probe reading on layouts it was not tuned on.

    python bench/unseen_layouts.py OUT [--pages 30] [--seed 5] [--digits validation|test] [--dates] [--phones]

Letter pages at 300 dpi (the samples are A4 at 150) holding four to six of:
combs drawn in 1-pixel gray hairlines, combs on a pale gray shading, open combs (a
baseline with ticks), combs of separate boxes, combs in a drop-out colour, boxes
with a number written freely, and digits written on a dotted baseline (with ``--dates``,
also a box holding a date written freely with slashes, hyphens or points: 25/12/2024,
3-7-2025, 2025-07-03, 25.12.24; with ``--phones``, a box holding a telephone number with its
area code in parentheses: (555) 123-4567). The
handwriting is MNIST digits redrawn as a uniform pen trace (a skeleton widened
to 3-9 pixels, or MNIST's own soft stroke). Each page is a PNG or JPEG with the
truth JSON of :mod:`ocr.samples` beside it, so that ``digitflow evaluate --samples
OUT`` scores it; field names say the kind (``comb_thin_2``). ``--digits
validation`` (default) draws from the validation split of MNIST train, to tune
on; ``test`` from MNIST test, to measure.
"""

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage.morphology import skeletonize

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ocr.mnist import load_mnist  # noqa: E402
from ocr.training import split_validation  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("out", type=Path)
parser.add_argument("--pages", type=int, default=30)
parser.add_argument("--seed", type=int, default=5)
parser.add_argument("--digits", choices=["validation", "test"], default="validation")
parser.add_argument("--dates", action="store_true", help="also draw date boxes (25/12/2024, 3-7-2025, ...)")
parser.add_argument("--phones", action="store_true", help="also draw telephone boxes ((555) 123-4567)")
parser.add_argument(
    "--rules", action="store_true", help="also draw short answers (1-4 digits) written on a solid printed rule"
)
parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist.npz")
args = parser.parse_args()
out, n, seed = args.out, args.pages, args.seed
d = load_mnist(args.data)
if args.digits == "validation":
    _, idx = split_validation(len(d.x_train), 6000, 1234)
    X, Y = d.x_train[idx], d.y_train[idx]
else:
    X, Y = d.x_test, d.y_test
by_label = [np.flatnonzero(k == Y) for k in range(10)]
out.mkdir(parents=True, exist_ok=True)
W, H = 2550, 3300  # letter at 300 dpi


def glyph(rng, label, height, pen):
    img = X[rng.choice(by_label[label])]
    rows, cols = np.nonzero(img > 40)
    crop = img[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    crop = cv2.copyMakeBorder(crop, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=0)
    s = height / crop.shape[0]
    big = cv2.resize(
        crop, (max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s))), interpolation=cv2.INTER_CUBIC
    )
    if pen is None:  # soft, MNIST-like ink
        alpha = np.clip((big.astype(np.float32) / 255 - 0.2) / 0.5, 0, 1)
    else:
        sk = skeletonize(big > 110).astype(np.uint8)
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (pen, pen))
        alpha = cv2.dilate(sk, k).astype(np.float32)
        alpha = cv2.GaussianBlur(alpha, (0, 0), 0.7)
    ys, xs = np.nonzero(alpha > 0.3)
    return alpha[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def stamp(page, alpha, x, y, colour):
    h, w = alpha.shape
    region = page[y : y + h, x : x + w].astype(np.float32)
    a = alpha[: region.shape[0], : region.shape[1], None]
    page[y : y + h, x : x + w] = (region * (1 - a) + np.array(colour, np.float32) * a).astype(np.uint8)
    return [int(x), int(y), int(w), int(h)]


def text_digits(rng, lo, hi):
    return "".join(str(v) for v in rng.integers(0, 10, int(rng.integers(lo, hi + 1))))


def write_cells(page, rng, text, cells, pen, ink):
    digits = []
    for ch, (cx, cy, cw, chh) in zip(text, cells, strict=False):
        g = glyph(rng, int(ch), chh * rng.uniform(0.55, 0.8), pen)
        if g.shape[1] > cw - 6:
            g = cv2.resize(g, (cw - 6, g.shape[0]))
        x = cx + int(rng.integers(3, max(4, cw - g.shape[1] - 2)))
        y = cy + int(rng.integers(3, max(4, chh - g.shape[0] - 2)))
        digits.append({"label": int(ch), "bbox": stamp(page, g, x, y, ink)})
    return digits


def date_text(rng):
    """A date as people write it freely: day, month and year in some order, with slashes, hyphens or points."""
    day, month, year = int(rng.integers(1, 29)), int(rng.integers(1, 13)), int(rng.integers(1950, 2031))
    sep = ["/", "/", "-", "."][int(rng.integers(0, 4))]
    pad = rng.random() < 0.6
    d, m = (f"{day:02d}", f"{month:02d}") if pad else (str(day), str(month))
    y = str(year) if rng.random() < 0.75 else f"{year % 100:02d}"
    if len(y) == 4 and sep == "-" and rng.random() < 0.3:
        return f"{y}-{month:02d}-{day:02d}"
    return sep.join((d, m, y) if rng.random() < 0.7 else (m, d, y))


def phone_text(rng):
    """A telephone number as people write it: the area code in parentheses, then 3 and 4 digits."""
    sep = [" ", "-", ""][int(rng.integers(0, 3))]
    return f"({text_digits(rng, 3, 3)}) {text_digits(rng, 3, 3)}{sep}{text_digits(rng, 4, 4)}"


def stroke(page, rng, points, pen, height, ink):
    """A pen stroke through ``points`` (x, y), as wide as the digits' pen."""
    width = pen if pen is not None else max(3, int(round(height * rng.uniform(0.07, 0.11))))
    pts = np.array(points, np.float64)
    alpha = np.zeros(page.shape[:2], np.float32)
    cv2.polylines(alpha, [np.round(pts).astype(np.int32)], False, 1.0, width, cv2.LINE_AA)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.7)
    page[:] = (page.astype(np.float32) * (1 - alpha[..., None]) + np.array(ink, np.float32) * alpha[..., None]).astype(
        np.uint8
    )


def write_free(page, rng, text, x, base, height, pen, ink):
    digits = []
    for ch in text:
        if ch == "/":
            # A slash leans further than digits do and often reaches past them.
            tall = height * rng.uniform(0.9, 1.25)
            run = tall * np.tan(np.radians(rng.uniform(18, 38)))
            bottom = base + height * rng.uniform(-0.02, 0.12)
            bow = rng.normal(0, height * 0.02)
            stroke(
                page,
                rng,
                [(x, bottom), (x + run / 2 + bow, bottom - tall / 2), (x + run, bottom - tall)],
                pen,
                height,
                ink,
            )
            x += int(run + height * rng.uniform(0.12, 0.3))
            continue
        if ch in "()":
            # A parenthesis: an arc a little taller than the digits, bowed away from what it holds.
            tall = height * rng.uniform(0.95, 1.3)
            bow = tall * rng.uniform(0.1, 0.22)
            top = base + height * rng.uniform(-0.02, 0.12) - tall
            t = np.linspace(0, 1, 12)
            curve = (2 * t - 1) ** 2 if ch == "(" else 1 - (2 * t - 1) ** 2
            stroke(page, rng, list(zip(x + bow * curve, top + tall * t, strict=True)), pen, height, ink)
            x += int(bow + height * rng.uniform(0.12, 0.3))
            continue
        if ch == " ":
            x += int(height * rng.uniform(0.3, 0.7))
            continue
        if ch == "-":
            long = height * rng.uniform(0.22, 0.45)
            mid = base - height * rng.uniform(0.4, 0.6)
            tilt = rng.normal(0, height * 0.03)
            x += int(height * rng.uniform(0.05, 0.15))
            stroke(page, rng, [(x, mid + tilt), (x + long, mid - tilt)], pen, height, ink)
            x += int(long + height * rng.uniform(0.12, 0.3))
            continue
        if ch == ".":
            r = max(3, int(height * 0.06))
            cv2.circle(page, (x + r, base - r), r, ink, -1, cv2.LINE_AA)
            x += 3 * r
            continue
        g = glyph(rng, int(ch), height * rng.uniform(0.85, 1.1), pen)
        y = base - g.shape[0] + int(rng.integers(-4, 5))
        digits.append({"label": int(ch), "bbox": stamp(page, g, x, y, ink)})
        x += g.shape[1] + int(rng.integers(int(height * 0.08), int(height * 0.3)))
    return digits, x


def label(page, s, x, y, colour=(30, 30, 30)):
    cv2.putText(page, s, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 1.1, colour, 2, cv2.LINE_AA)


def page_of(rng, i):
    page = np.full((H, W, 3), int(rng.integers(235, 256)), np.uint8)
    colour_page = False
    pen = [None, 3, 5, 7, 9][int(rng.integers(0, 5))]
    ink = [(30, 30, 30), (140, 50, 20), (20, 20, 120)][int(rng.integers(0, 3))]  # BGR: black, blue, red-brown
    cv2.putText(
        page,
        f"REGISTRATION  FORM  {rng.integers(100, 999)}",
        (200, 220),
        cv2.FONT_HERSHEY_DUPLEX,
        2.2,
        (20, 20, 20),
        3,
        cv2.LINE_AA,
    )
    for k in range(3):
        cv2.putText(
            page,
            f"Please write clearly using one digit per box where boxes are provided {k}.",
            (200, 320 + 50 * k),
            cv2.FONT_HERSHEY_SIMPLEX,
            1.0,
            (40, 40, 40),
            2,
            cv2.LINE_AA,
        )
    fields, y = [], 560
    kinds = ["comb_thin", "comb_open", "comb_gap", "box", "line", "comb_red", "comb_shaded"] + (["date"] * args.dates)
    kinds += ["phone"] * args.phones
    kinds += ["rule"] * args.rules
    for f, kind in enumerate(rng.permutation(kinds)[: int(rng.integers(4, 7))]):
        name = f"{kind}_{f}"
        label(page, name.replace("_", " ").title(), 200, y + 60)
        x0 = 900
        if kind.startswith("comb"):
            cells_n = int(rng.integers(4, 11))
            cw = int(rng.integers(60, 85))
            ch = int(rng.integers(80, 105))
            gap = int(rng.integers(10, 22)) if kind == "comb_gap" else 0
            cells = [(x0 + k * (cw + gap), y, cw, ch) for k in range(cells_n)]
            col = (int(rng.integers(90, 170)),) * 3
            lw = 1 if kind in ("comb_thin", "comb_shaded") else int(rng.integers(2, 4))
            if kind == "comb_red":
                col = [(60, 60, 230), (150, 150, 250), (200, 120, 60)][int(rng.integers(0, 3))]
                colour_page = True
            if kind == "comb_shaded":
                for cx, cy, cw_, ch_ in cells:
                    cv2.rectangle(page, (cx, cy), (cx + cw_, cy + ch_), (228, 228, 228), -1)
            if kind == "comb_open":
                right = cells[-1][0] + cw
                cv2.line(page, (x0, y + ch), (right, y + ch), col, 2)
                tick = int(ch * rng.uniform(0.25, 0.45))
                for k in range(cells_n + 1):
                    cv2.line(page, (x0 + k * cw, y + ch - tick), (x0 + k * cw, y + ch), col, 2)
            else:
                for cx, cy, cw_, ch_ in cells:
                    cv2.rectangle(page, (cx, cy), (cx + cw_, cy + ch_), col, lw)
            text = text_digits(rng, max(1, cells_n - 3), cells_n)
            start = cells_n - len(text) if rng.random() < 0.5 else 0
            digits = write_cells(
                page,
                rng,
                text,
                [
                    (cx + lw + 1, cy + lw + 1, cw_ - 2 * lw - 2, ch_ - 2 * lw - 2)
                    for cx, cy, cw_, ch_ in cells[start : start + len(text)]
                ],
                pen,
                ink,
            )
            bbox = [x0, y, cells[-1][0] + cw - x0 + 1, ch + 1]
            fields.append(
                {
                    "name": name,
                    "kind": "comb",
                    "cells": cells_n,
                    "value": text,
                    "text": text,
                    "bbox": bbox,
                    "digits": digits,
                }
            )
            y += ch + int(rng.integers(90, 160))
        elif kind in ("box", "date", "phone"):
            bw, bh = int(rng.integers(500, 800)), int(rng.integers(100, 135))
            if kind in ("date", "phone"):
                bw = int(rng.integers(850, 1000) if kind == "date" else rng.integers(1150, 1300))
            cv2.rectangle(page, (x0, y), (x0 + bw, y + bh), (30, 30, 30), int(rng.integers(1, 4)))
            if kind == "date":
                text = date_text(rng)
            elif kind == "phone":
                text = phone_text(rng)
            else:
                text = text_digits(rng, 3, 6)
                if rng.random() < 0.5:
                    text = text + "." + text_digits(rng, 2, 2)
            digits, _ = write_free(
                page, rng, text, x0 + int(rng.integers(20, 60)), y + bh - int(bh * 0.18), bh * 0.6, pen, ink
            )
            value = "".join(c for c in text if c.isdigit())
            fields.append(
                {
                    "name": name,
                    "kind": "box",
                    "value": value,
                    "text": text.replace(" ", ""),  # a space is no separator reading keeps
                    "bbox": [x0, y, bw + 1, bh + 1],
                    "digits": digits,
                }
            )
            y += bh + int(rng.integers(90, 160))
        else:  # line: digits on a dotted baseline, or a short answer on a solid rule
            base = y + 95
            if kind == "rule":
                length = int(rng.integers(250, 600))
                cv2.line(page, (x0, base + 8), (x0 + length, base + 8), (40, 40, 40), int(rng.integers(2, 4)))
                text = text_digits(rng, 1, 4)
                start = x0 + int(rng.integers(20, max(21, length - 90 * len(text))))
                digits, right = write_free(page, rng, text, start, base, float(rng.uniform(60, 85)), pen, ink)
            else:
                for k in range(x0, x0 + 900, 14):
                    cv2.circle(page, (k, base + 8), 2, (60, 60, 60), -1)
                text = text_digits(rng, 4, 9)
                digits, right = write_free(page, rng, text, x0 + 20, base, 80, pen, ink)
            xs = [b["bbox"] for b in digits]
            bx0, by0 = min(b[0] for b in xs), min(b[1] for b in xs)
            bx1, by1 = max(b[0] + b[2] for b in xs), max(b[1] + b[3] for b in xs)
            fields.append(
                {
                    "name": name,
                    "kind": "line",
                    "value": text,
                    "text": text,
                    "bbox": [bx0 - 10, by0 - 10, bx1 - bx0 + 20, by1 - by0 + 20],
                    "digits": digits,
                }
            )
            y += 200
    # signature
    cv2.line(page, (200, y + 150), (900, y + 150), (30, 30, 30), 2)
    pts = np.cumsum(rng.normal(0, 12, (40, 2)), axis=0).astype(np.int32) + [400, y + 110]
    cv2.polylines(page, [pts], False, ink, 3, cv2.LINE_AA)
    # scanner
    angle = float(rng.uniform(-1.5, 1.5))
    M = cv2.getRotationMatrix2D((W / 2, H / 2), angle, 1.0)
    page = cv2.warpAffine(page, M, (W, H), borderValue=(250, 250, 250))

    def mv(b):
        x, y, w, h = b
        pts = np.array([[x, y], [x + w, y], [x, y + h], [x + w, y + h]], np.float64)
        q = pts @ M[:, :2].T + M[:, 2]
        x0, y0 = q.min(0)
        x1, y1 = q.max(0)
        return [int(x0), int(y0), int(x1 - x0), int(y1 - y0)]

    for f in fields:
        f["bbox"] = mv(f["bbox"])
        [dd.update(bbox=mv(dd["bbox"])) for dd in f["digits"]]
    page = np.clip(page.astype(np.float32) + rng.normal(0, float(rng.uniform(0, 6)), page.shape), 0, 255).astype(
        np.uint8
    )
    return page, fields, colour_page, {"pen": pen, "angle": angle}


for i in range(n):
    rng = np.random.default_rng([seed, i])
    page, fields, colour, eff = page_of(rng, i)
    fmt = "jpg" if (colour or rng.random() < 0.4) else "png"
    name = f"foreign_{i:04d}.{fmt}"
    img = Image.fromarray(cv2.cvtColor(page, cv2.COLOR_BGR2RGB))
    if not colour and fmt == "png":
        img = img.convert("L")
    img.save(out / name, dpi=(300, 300), **({"quality": int(rng.integers(60, 92))} if fmt == "jpg" else {}))
    (out / name).with_suffix(".json").write_text(
        json.dumps(
            {
                "file": name,
                "kind": "forms",
                "layout": "foreign",
                "dpi": 300,
                "effects": eff,
                "pages": [{"fields": fields}],
            }
        )
    )
