"""Copies of sample scans as scanners and cameras also give them: turned, or at another resolution.

    python bench/variants.py SRC DST --turn 180|90|270
    python bench/variants.py SRC DST --scale 2 [--dpi 300]
    python bench/variants.py SRC DST --fax [--dither]
    python bench/variants.py SRC DST --dither
    python bench/variants.py SRC DST --blur 2
    python bench/variants.py SRC DST --photo 0.04 [--shadow 0.45]
    python bench/variants.py SRC DST --bed side|askew [--seed N]

SRC is a directory written by ``digitflow samples``.  Each scan's first page
is written to DST as a PNG with its ground truth JSON beside it, boxes mapped
the same way, and the layouts' templates copied, so that ``digitflow evaluate
--samples DST [--templates]`` scores reading on the changed pages:

* ``--turn``: the page turned clockwise by 90, 180 or 270 degrees (fed upside
  down or on its side);
* ``--scale``: the page resized by the factor (cubic up, area down); the PNG
  states ``--dpi`` if given, else no resolution at all (a file stripped of it);
* ``--fax``: the page as a fax in standard mode sends it: resampled to 204 dpi
  across and 98 down, black and white at Otsu's threshold, a group-4 TIFF that
  states both resolutions (the truth's boxes are those of the page made square
  at 204 dpi, as the loader reads it);
* ``--dither``: black and white by Floyd-Steinberg dithering instead of a
  threshold, as a scanner's black-and-white mode draws gray (alone: the page at
  its own resolution as a group-4 TIFF);
* ``--blur``: the page blurred by a Gaussian of that sigma (pixels), a PNG that
  states the scan's resolution (a scanner out of focus);
* ``--photo``: the page photographed from the side: laid on a table (gray 90, a
  margin of 8% of its width), its four corners moved at random by up to that
  share of the photo's size, light falling off across it, a JPEG (quality 85)
  that states no resolution; truth boxes are the bounding boxes of the moved ones.
  With ``--shadow``, a soft shadow enters from one edge (a hand, the phone) and
  darkens what it covers by up to that share, as on ``digitflow samples``' photos.
* ``--bed``: the sheet scanned on a scanner's dark bed or lid (gray 0-60), a PNG that states the
  scan's resolution: ``side``, the ground showing past one or two of its edges, 3-30 mm each;
  ``askew``, the sheet turned by 1-3 degrees either way inside a band of ground 0-8 mm wide, the
  ground showing in wedges round it (truth boxes are the bounding boxes of the turned ones).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ocr.geometry import transform_box  # noqa: E402
from ocr.load import DEFAULT_PDF_DPI, load_pages  # noqa: E402
from ocr.sample_eval import find_samples  # noqa: E402
from ocr.samples import in_shadow, photograph_sheet  # noqa: E402

_TURNS = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def turned_box(box: list[int], degrees: int, height: int, width: int) -> list[int]:
    """Where box (x, y, w, h) of a page ``height`` x ``width`` lies once the page is turned clockwise."""
    x, y, w, h = box
    if degrees == 90:
        return [height - y - h, x, h, w]
    if degrees == 180:
        return [width - x - w, height - y - h, w, h]
    return [y, width - x - w, h, w]


def write_truth(scan: Path, truth: dict, out: Path, name: str, dpi: float | None, move=None) -> None:
    """The truth JSON of a variant written as ``name``: its first page, every box passed through ``move``."""
    first = truth["pages"][0]
    if move is not None:
        for field in first["fields"]:
            field["bbox"] = move(field["bbox"])
            for digit in field["digits"]:
                digit["bbox"] = move(digit["bbox"])
    variant = {**truth, "file": name, "dpi": dpi, "pages": [first]}
    (out / (scan.stem + ".json")).write_text(json.dumps(variant))


def first_page(scan: Path, truth: dict) -> tuple[np.ndarray, float]:
    """The first page of ``scan`` (a PDF rasterised at the truth's resolution), and that resolution."""
    dpi = float(truth.get("dpi") or DEFAULT_PDF_DPI)
    return load_pages(scan, pdf_dpi=round(dpi))[0].image, dpi


FAX_DPI = (204, 98)


def write_bilevel_variant(scan: Path, truth: dict, out: Path, fax: bool, dither: bool) -> None:
    """The first page of ``scan`` as a group-4 TIFF: sent as a fax (``fax``) and/or dithered (``dither``)."""
    page, source_dpi = first_page(scan, truth)
    height, width = page.shape
    dpi = FAX_DPI if fax else (round(source_dpi), round(source_dpi))
    if fax:
        size = (round(width * dpi[0] / source_dpi), round(height * dpi[1] / source_dpi))
        page = cv2.resize(page, size, interpolation=cv2.INTER_AREA)
    if dither:
        bilevel = Image.fromarray(page).convert("1")  # Floyd-Steinberg
    else:
        threshold, _ = cv2.threshold(page, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        bilevel = Image.fromarray(np.where(page > threshold, 255, 0).astype(np.uint8)).convert("1")
    name = scan.stem + ".tif"
    bilevel.save(out / name, "TIFF", compression="group4", dpi=dpi)
    factor = dpi[0] / source_dpi  # read with square pixels at the finer resolution
    write_truth(scan, truth, out, name, dpi[0], lambda box: [round(v * factor) for v in box])


def write_blurred_variant(scan: Path, truth: dict, out: Path, sigma: float) -> None:
    """The first page of ``scan`` blurred by a Gaussian of ``sigma`` pixels, at its own resolution."""
    page, source_dpi = first_page(scan, truth)
    dpi = round(source_dpi)
    name = scan.stem + ".png"
    Image.fromarray(cv2.GaussianBlur(page, (0, 0), sigma)).save(out / name, dpi=(dpi, dpi))
    write_truth(scan, truth, out, name, dpi)


def write_photo_variant(
    scan: Path, truth: dict, out: Path, amount: float, rng: np.random.Generator, shadow: float = 0.0
) -> None:
    """The first page of ``scan`` on a table, photographed from the side (see ``--photo``), in a
    shadow that darkens it by up to ``shadow`` (see ``--shadow``)."""
    page, _ = first_page(scan, truth)
    photo, warp = photograph_sheet(page, rng, amount)
    if shadow:
        photo = in_shadow(photo, shadow, rng)
    name = scan.stem + ".jpg"
    Image.fromarray(photo).save(out / name, "JPEG", quality=85)
    write_truth(scan, truth, out, name, None, lambda box: list(transform_box(tuple(box), warp)))


def write_bed_variant(scan: Path, truth: dict, out: Path, how: str, rng: np.random.Generator) -> None:
    """The first page of ``scan`` scanned on a dark bed (see ``--bed``), at its own resolution."""
    page, source_dpi = first_page(scan, truth)
    mm = source_dpi / 25.4
    ground = int(rng.uniform(0, 60))
    if how == "side":
        sides = {"top": 0, "bottom": 0, "left": 0, "right": 0}
        for side in rng.choice(list(sides), size=int(rng.integers(1, 3)), replace=False):
            sides[side] = round(rng.uniform(3, 30) * mm)
        image = cv2.copyMakeBorder(page, *sides.values(), cv2.BORDER_CONSTANT, value=ground)

        def move(box: list[int]) -> list[int]:
            return [box[0] + sides["left"], box[1] + sides["top"], box[2], box[3]]
    else:
        band = round(rng.uniform(0, 8) * mm)
        image = cv2.copyMakeBorder(page, band, band, band, band, cv2.BORDER_CONSTANT, value=ground)
        height, width = image.shape
        turn = cv2.getRotationMatrix2D((width / 2, height / 2), float(rng.uniform(1, 3) * rng.choice([-1, 1])), 1.0)
        image = cv2.warpAffine(image, turn, (width, height), flags=cv2.INTER_LINEAR, borderValue=ground)

        def move(box: list[int]) -> list[int]:
            return list(transform_box((box[0] + band, box[1] + band, box[2], box[3]), turn))

    dpi = round(source_dpi)
    name = scan.stem + ".png"
    Image.fromarray(image).save(out / name, dpi=(dpi, dpi))
    write_truth(scan, truth, out, name, dpi, move)


def write_variant(scan: Path, truth: dict, out: Path, turn: int | None, scale: float, dpi: int | None) -> None:
    page, _ = first_page(scan, truth)
    height, width = page.shape
    if turn:
        image = cv2.rotate(page, _TURNS[turn])

        def move(box: list[int]) -> list[int]:
            return turned_box(box, turn, height, width)
    else:
        size = (round(width * scale), round(height * scale))
        image = cv2.resize(page, size, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)

        def move(box: list[int]) -> list[int]:
            return [round(v * scale) for v in box]

    name = scan.stem + ".png"
    Image.fromarray(np.ascontiguousarray(image)).save(out / name, **({"dpi": (dpi, dpi)} if dpi else {}))
    write_truth(scan, truth, out, name, None, move)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    change = parser.add_mutually_exclusive_group()
    change.add_argument("--turn", type=int, choices=sorted(_TURNS))
    change.add_argument("--scale", type=float)
    change.add_argument("--fax", action="store_true", help="sent as a fax in standard mode (204 x 98 dpi)")
    change.add_argument("--blur", type=float, help="blurred by a Gaussian of this sigma (pixels)")
    change.add_argument("--photo", type=float, help="photographed from the side, corners moved by up to this share")
    change.add_argument("--bed", choices=["side", "askew"], help="scanned on a dark bed: ground at its sides, or askew")
    parser.add_argument("--seed", type=int, default=5, help="with --photo or --bed: their random draws")
    parser.add_argument(
        "--shadow", type=float, default=0.0, help="with --photo: a soft shadow from one edge darkens it by this share"
    )
    parser.add_argument("--dpi", type=int, help="with --scale: the resolution the PNG states (default: none)")
    parser.add_argument("--dither", action="store_true", help="black and white by dithering (alone or with --fax)")
    args = parser.parse_args()
    if args.scale is not None and args.scale <= 0:
        parser.error("--scale must be positive")
    if args.blur is not None and args.blur <= 0:
        parser.error("--blur must be positive")
    if args.photo is not None and not 0 <= args.photo < 0.25:
        parser.error("--photo must be in [0, 0.25)")
    if args.shadow and (args.photo is None or not 0 < args.shadow < 1):
        parser.error("--shadow goes with --photo and must be in (0, 1)")
    if args.dither and (
        args.turn or args.scale is not None or args.blur is not None or args.photo is not None or args.bed
    ):
        parser.error("--dither goes alone or with --fax")
    if not (
        args.turn
        or args.scale is not None
        or args.fax
        or args.dither
        or args.blur is not None
        or args.photo is not None
        or args.bed
    ):
        parser.error("one of --turn, --scale, --fax, --dither, --blur, --photo, --bed is required")
    rng = np.random.default_rng(args.seed)
    args.dst.mkdir(parents=True, exist_ok=True)
    pairs = find_samples(args.src)
    for scan, truth_path in pairs:
        truth = json.loads(truth_path.read_text())
        if args.fax or args.dither:
            write_bilevel_variant(scan, truth, args.dst, args.fax, args.dither)
        elif args.blur is not None:
            write_blurred_variant(scan, truth, args.dst, args.blur)
        elif args.photo is not None:
            write_photo_variant(scan, truth, args.dst, args.photo, rng, args.shadow)
        elif args.bed:
            write_bed_variant(scan, truth, args.dst, args.bed, rng)
        else:
            write_variant(scan, truth, args.dst, args.turn, args.scale or 1.0, args.dpi)
    if (args.src / "templates").is_dir():
        shutil.copytree(args.src / "templates", args.dst / "templates", dirs_exist_ok=True)
    print(f"{len(pairs)} scans written to {args.dst}")


if __name__ == "__main__":
    main()
