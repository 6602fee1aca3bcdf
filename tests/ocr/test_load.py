"""Each loader and each guard, on files generated here."""

import io
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image

from ocr.errors import (
    CorruptScanError,
    EmptyScanError,
    EncryptedPdfError,
    NoPagesError,
    ScanTooLargeError,
    TooManyPagesError,
    UnreadableScanError,
    UnsupportedFormatError,
)
from ocr.load import load_pages, page_scan

ROOT = Path(__file__).resolve().parents[2]


def _page(width=300, height=200) -> np.ndarray:
    img = np.full((height, width), 255, np.uint8)
    cv2.putText(img, "42", (40, 150), cv2.FONT_HERSHEY_SIMPLEX, 4, 0, 12)
    return img


def _encode(img: np.ndarray, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "TIFF"])
def test_raster_formats_load_as_gray(fmt, tmp_path):
    img = _page()
    path = tmp_path / f"scan.{fmt.lower()}"
    path.write_bytes(_encode(img, fmt))
    pages = load_pages(path)
    assert len(pages) == 1 and pages[0].number == 1
    assert pages[0].image.shape == img.shape and pages[0].image.dtype == np.uint8
    assert np.abs(pages[0].image.astype(int) - img).mean() < 3


def test_bytes_are_accepted():
    assert load_pages(_encode(_page(), "PNG"))[0].image.shape == (200, 300)


def test_colour_and_alpha_become_gray_on_white():
    rgba = np.zeros((20, 30, 4), np.uint8)  # fully transparent: paper
    rgba[5:10, 5:10] = (0, 0, 0, 255)
    gray = load_pages(_encode(rgba, "PNG"))[0].image
    assert gray[0, 0] == 255 and gray[7, 7] == 0


def test_jpeg_exif_orientation_is_honoured():
    img = _page(300, 200)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    data = _encode(img, "JPEG", exif=exif.tobytes())
    pages = load_pages(data)
    assert pages[0].image.shape == (300, 200)


def test_multipage_tiff_gives_every_page():
    frames = [Image.fromarray(_page()), Image.fromarray(255 - _page())]
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:])
    pages = load_pages(buf.getvalue())
    assert [p.number for p in pages] == [1, 2]
    assert pages[0].image.mean() > pages[1].image.mean()


def test_bilevel_tiff_with_fax_compression():
    bilevel = Image.fromarray(_page()).convert("1")
    buf = io.BytesIO()
    bilevel.save(buf, format="TIFF", compression="group4", dpi=(300, 300))
    page = load_pages(buf.getvalue())[0]
    assert set(np.unique(page.image)) <= {0, 255}
    assert page.dpi == pytest.approx(300)


def test_sixteen_bit_tiff_is_scaled_to_eight_bits():
    img16 = (_page().astype(np.uint16) * 257) // 4  # 14-bit scanner data
    page = load_pages(_encode(img16, "TIFF"))[0]
    assert page.image.max() == 255 and page.image.min() == 0


def _pdf(pages: int) -> bytes:
    document = pdfium.PdfDocument.new()
    for _ in range(pages):
        document.new_page(612, 792)
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def test_pdf_is_rasterised_at_the_chosen_dpi():
    pages = load_pages(_pdf(2), pdf_dpi=100)
    assert len(pages) == 2
    assert pages[0].image.shape == (1100, 850)  # 11 x 8.5 inches at 100 dpi
    assert pages[0].dpi == 100


def _scanned_pdf(dpi: int) -> bytes:
    """A PDF holding one scanned page: a 600x300-pixel image at ``dpi``."""
    buf = io.BytesIO()
    Image.fromarray(_page(600, 300)).save(buf, format="PDF", resolution=dpi)
    return buf.getvalue()


def test_a_scanned_pdf_is_rasterised_at_its_scan_resolution_or_the_working_one():
    (page,) = load_pages(_scanned_pdf(200))
    assert page.dpi == pytest.approx(200, abs=0.01) and page.image.shape == (300, 600)
    # Finer than 225 dpi: rendered at 150, where the reader works.
    (page,) = load_pages(_scanned_pdf(300))
    assert page.dpi == 150 and page.image.shape == (150, 300)
    # A page without a scan (drawn only) is rendered at 150 dpi, and an explicit dpi wins.
    assert np.allclose(load_pages(_pdf(1))[0].image.shape, (1650, 1275), atol=1)  # 11 x 8.5 inches
    assert load_pages(_scanned_pdf(300), pdf_dpi=300)[0].image.shape == (300, 600)


@pytest.mark.parametrize("mode", ["L", "1", "RGB"])
def test_a_scanned_pdf_page_is_its_image_decoded_as_stored(mode):
    scan = np.full((420, 300), 255, np.uint8)
    cv2.putText(scan, "42", (30, 250), cv2.FONT_HERSHEY_SIMPLEX, 5, 0, 14)
    stored = Image.fromarray(scan).convert(mode)
    buf = io.BytesIO()
    stored.save(buf, format="PDF", resolution=150)
    document = pdfium.PdfDocument(buf.getvalue())
    image, dpi = page_scan(document[0])
    assert dpi == pytest.approx(150, abs=0.01) and image.shape == (420, 300) and image.dtype == np.uint8
    # The scan's own pixels (JPEG-compressed for gray and colour, exact for bilevel),
    # and what rendering the page shows.
    expected = np.asarray(stored.convert("L"), dtype=int)
    if mode == "1":
        assert np.array_equal(image, expected)
    assert np.abs(image - expected).mean() < 2
    rendered = document[0].render(scale=150 / 72, grayscale=True).to_numpy()[:420, :300]
    assert np.abs(image.astype(int) - rendered).mean() < 3
    (page,) = load_pages(buf.getvalue())
    assert np.array_equal(page.image, image) and page.dpi == dpi


def _pdf_with(edit) -> pdfium.PdfDocument:
    """A one-page PDF holding a 300x420-pixel scan over its whole 144x201.6 pt page (150 dpi), changed by ``edit``."""
    document = pdfium.PdfDocument.new()
    page = document.new_page(144, 201.6)
    image = pdfium.PdfImage.new(document)
    scan = np.full((420, 300), 200, np.uint8)
    image.set_bitmap(pdfium.PdfBitmap.from_pil(Image.fromarray(scan)))
    image.set_matrix(pdfium.PdfMatrix().scale(144, 201.6))
    page.insert_obj(image)
    edit(document, page, image)
    page.gen_content()
    buf = io.BytesIO()
    document.save(buf)
    return pdfium.PdfDocument(buf.getvalue())


def _second_image(document, page, _image):
    other = pdfium.PdfImage.new(document)
    other.set_bitmap(pdfium.PdfBitmap.from_pil(Image.fromarray(np.zeros((10, 10), np.uint8))))
    other.set_matrix(pdfium.PdfMatrix().scale(20, 20))
    page.insert_obj(other)


def _annotation(_document, page, _image):
    import pypdfium2.raw as pdfium_c

    annotation = pdfium_c.FPDFPage_CreateAnnot(page.raw, pdfium_c.FPDF_ANNOT_SQUARE)
    pdfium_c.FPDFAnnot_SetRect(annotation, pdfium_c.FS_RECTF(10, 60, 50, 20))
    pdfium_c.FPDFPage_CloseAnnot(annotation)


@pytest.mark.parametrize(
    "edit",
    [
        lambda document, page, image: page.set_rotation(90),
        lambda document, page, image: image.set_matrix(pdfium.PdfMatrix().scale(100, 201.6)),
        lambda document, page, image: image.set_matrix(pdfium.PdfMatrix().scale(144, -201.6).translate(0, 201.6)),
        _second_image,
        _annotation,
    ],
    ids=["rotated-page", "image-not-covering-the-page", "mirrored-image", "two-images", "annotation"],
)
def test_a_pdf_page_that_is_more_than_one_upright_image_is_rendered(edit):
    document = _pdf_with(lambda *_: None)
    assert page_scan(document[0]) is not None  # the unchanged page is taken as its image
    assert page_scan(_pdf_with(edit)[0]) is None


def test_a_file_with_more_pages_than_allowed_is_refused_whole_not_cut_short():
    frames = [Image.fromarray(_page()) for _ in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:])
    assert len(load_pages(buf.getvalue(), max_pages=3)) == 3
    with pytest.raises(TooManyPagesError, match="more than 2 pages"):
        load_pages(buf.getvalue(), max_pages=2)
    with pytest.raises(TooManyPagesError, match="3 pages, more than 2"):
        load_pages(_pdf(3), max_pages=2)


def test_pdf_with_no_pages_fails_clearly():
    with pytest.raises(NoPagesError, match="no pages"):
        load_pages(_pdf(0))


def test_encrypted_pdf_fails_clearly():
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_pdf(1))))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    with pytest.raises(EncryptedPdfError, match="encrypted"):
        load_pages(buf.getvalue())


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(EmptyScanError, match="empty"):
        load_pages(path)


def test_text_named_png_is_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("account 12345\n")
    with pytest.raises(UnsupportedFormatError, match="not a PNG"):
        load_pages(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
def test_truncated_files_fail_as_corrupt(fmt):
    data = _encode(_page(600, 400), fmt)
    with pytest.raises(CorruptScanError, match="corrupt or truncated"):
        load_pages(data[: len(data) // 2])


def test_truncated_pdf_fails_as_corrupt():
    data = _pdf(1)
    with pytest.raises(CorruptScanError):
        load_pages(data[: len(data) // 3])


def test_pixel_limit_stops_decompression_bombs_before_decoding():
    # A 20000 x 20000 bilevel PNG compresses to a few kilobytes.
    bomb = Image.new("1", (20000, 20000), 1)
    buf = io.BytesIO()
    bomb.save(buf, format="PNG")
    with pytest.raises(ScanTooLargeError, match="MP limit"):
        load_pages(buf.getvalue(), max_pixels=100_000_000)


def test_directory_and_missing_file(tmp_path):
    with pytest.raises(UnsupportedFormatError, match="directory"):
        load_pages(tmp_path)
    with pytest.raises(UnreadableScanError, match="not found"):
        load_pages(tmp_path / "missing.png")


def test_file_size_limit_is_checked_before_reading(tmp_path):
    from ocr.errors import FileTooLargeError
    from ocr.load import read_scan_bytes

    path = tmp_path / "big.png"
    path.write_bytes(_encode(_page(), "PNG"))
    with pytest.raises(FileTooLargeError, match="MB file limit"):
        read_scan_bytes(path, max_bytes=100)
    assert read_scan_bytes(path, max_bytes=10**9) == path.read_bytes()


def test_damaged_png_fails_its_crc_check():
    data = bytearray(_encode(_page(), "PNG"))
    start = data.index(b"IDAT") + 4
    data[start + 20] ^= 0x01  # one bit flipped in the image data
    with pytest.raises(CorruptScanError, match="IDAT chunk fails its CRC check"):
        load_pages(bytes(data))


def test_unreadable_header_is_named_without_python_internals():
    with pytest.raises(CorruptScanError, match=r"corrupt or truncated PNG \(header not readable\)$"):
        load_pages(b"\x89PNG\r\n\x1a\n")


def test_error_messages_use_the_given_name():
    with pytest.raises(EmptyScanError, match="^scans/a.png: file is empty"):
        load_pages(b"", name="scans/a.png")


def test_pipes_and_devices_are_refused_without_reading(tmp_path):
    from ocr.load import read_scan_bytes

    pipe = tmp_path / "pipe.png"
    os.mkfifo(pipe)  # reading would wait for a writer for ever
    zeros = tmp_path / "zeros.png"
    zeros.symlink_to("/dev/zero")  # reading would never end
    for path in (pipe, zeros):
        with pytest.raises(UnsupportedFormatError, match="not a regular file"):
            read_scan_bytes(path, max_bytes=10**6)


def test_pdf_pages_own_their_pixels_and_leave_no_pdfium_bitmap_open(tmp_path):
    for data in (_pdf(1), _scanned_pdf(200)):
        (page,) = load_pages(data)
        assert page.image.flags.owndata and page.image.flags.c_contiguous
    # Pages kept past their document (as a reader holds them) once made PDFium warn at exit
    # about every bitmap still open.
    pdfs = [tmp_path / "drawn.pdf", tmp_path / "scanned.pdf"]
    pdfs[0].write_bytes(_pdf(2))
    pdfs[1].write_bytes(_scanned_pdf(200))
    script = (
        "import sys; from ocr.load import load_pages; kept = [load_pages(p) for p in sys.argv[1:]]; print(len(kept))"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, *map(str, pdfs)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == "2"
    # Nor a warning when closing the bitmaps (pypdfium2 warns unless told the buffer is unused).
    assert run.stderr == "", run.stderr


def test_a_fax_with_pixels_twice_as_tall_as_wide_is_read_with_square_pixels():
    # A fax in standard mode: 200 dpi across, 100 down; every second row of a 200-dpi page.
    page = _page(300, 200)
    fax = Image.fromarray(page[::2]).convert("1")
    buf = io.BytesIO()
    fax.save(buf, format="TIFF", compression="group4", dpi=(200, 100))
    loaded = load_pages(buf.getvalue())[0]
    assert loaded.image.shape == page.shape
    assert loaded.dpi == pytest.approx(200)
    assert np.abs(loaded.image.astype(int) - page).mean() < 12


def test_square_pixels_and_implausible_resolutions_are_left_as_they_are():
    page = _page(300, 200)
    square = load_pages(_encode(page, "PNG", dpi=(300, 301)))[0]
    assert square.image.shape == page.shape and square.dpi == pytest.approx(300, abs=1)
    wrong = load_pages(_encode(page, "TIFF", dpi=(600, 72)))[0]
    assert wrong.image.shape == page.shape and wrong.dpi is None
