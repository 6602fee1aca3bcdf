"""Load scans (PNG, JPEG, TIFF, BMP, PDF) into gray page images.

Every failure is an :class:`ocr.errors.UnreadableScanError` subclass whose
message names the file and the reason, so a batch can store it and go on.
"""

from __future__ import annotations

import io
import re
import stat
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from ocr.cleanup import WORKING_DPI, descreen, working_scale
from ocr.errors import (
    CorruptScanError,
    EmptyScanError,
    EncryptedPdfError,
    FileTooLargeError,
    NoPagesError,
    ScanTooLargeError,
    TooManyPagesError,
    UnreadableScanError,
    UnsupportedFormatError,
)

# 100 megapixels per page: an A3 page at 600 dpi is 70 MP; anything larger is
# far more likely a decompression bomb than a form.
MAX_PIXELS = 100_000_000
MAX_PAGES = 500
DEFAULT_PDF_DPI = WORKING_DPI  # a PDF page without a scanned image in it
_EMPTY_PAGE_TREE = re.compile(
    rb"<<(?:(?!>>).)*/Count\s*0\b(?:(?!>>).)*/Type\s*/Pages\b|<<(?:(?!>>).)*/Type\s*/Pages\b(?:(?!>>).)*/Count\s*0\b",
    re.S,
)

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),  # BigTIFF
    (b"MM\x00+", "tiff"),
    (b"BM", "bmp"),
)


@dataclass(frozen=True)
class Page:
    """One page: ``image`` is (H, W) uint8 gray, 0 black and 255 white."""

    number: int  # 1-based
    image: np.ndarray
    dpi: float | None


def sniff_format(head: bytes) -> str | None:
    """'png', 'jpeg', 'tiff', 'bmp' or 'pdf' from a file's first bytes, else None."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    # PDF writers may put junk before the header; readers accept it within 1 KiB.
    if b"%PDF-" in head[:1024]:
        return "pdf"
    return None


def load_pages(
    source: Path | str | bytes,
    *,
    pdf_dpi: int | None = None,
    max_pixels: int = MAX_PIXELS,
    max_pages: int = MAX_PAGES,
    name: str | None = None,
) -> list[Page]:
    """Decode every page of a scan.

    Parameters
    ----------
    source : path or bytes
        The file, or its contents.
    pdf_dpi : int or None
        Rasterisation resolution for PDF pages (dots per inch).  None: each
        page at the resolution of the scan it holds (:func:`scanned_dpi`), as
        a raster file would be read, but at most 1.5 times
        :data:`ocr.cleanup.WORKING_DPI` (a finer page is rendered at that
        resolution); a page without images at :data:`DEFAULT_PDF_DPI`.
    max_pixels : int
        Largest page accepted (width x height), checked before decoding.
    max_pages : int
        Most pages one file may hold; a longer file is refused whole
        (``TooManyPagesError``), never read in part.
    name : str, optional
        What error messages call the file; by default its path, or "<bytes>".

    Returns
    -------
    list of Page, in file order, at least one.
    """
    name = name or ("<bytes>" if isinstance(source, bytes) else str(source))
    data = source if isinstance(source, bytes) else read_scan_bytes(Path(source))
    if not data:
        raise EmptyScanError(f"{name}: file is empty (0 bytes)")
    kind = sniff_format(data[:1024])
    if kind is None:
        raise UnsupportedFormatError(f"{name}: not a PNG, JPEG, TIFF, BMP or PDF file")
    if kind == "pdf":
        return _load_pdf(data, name, pdf_dpi, max_pixels, max_pages)
    return _load_raster(data, name, kind, max_pixels, max_pages)


def read_scan_bytes(path: Path, max_bytes: int | None = None) -> bytes:
    """A scan file's bytes, with a reason a user can act on when it cannot be read.

    ``max_bytes`` (if given) is checked before reading, so a huge file costs nothing.
    """
    try:
        status = path.stat()
        if stat.S_ISDIR(status.st_mode):
            raise UnsupportedFormatError(f"{path}: is a directory, not a scan")
        if not stat.S_ISREG(status.st_mode):
            # Reading a FIFO blocks for ever and a device (/dev/zero) never ends.
            raise UnsupportedFormatError(f"{path}: not a regular file (a pipe, socket or device), not a scan")
        if max_bytes is not None and (size := status.st_size) > max_bytes:
            raise FileTooLargeError(f"{path}: {size / 1e6:.0f} MB is over the {max_bytes / 1e6:.0f} MB file limit")
        return path.read_bytes()
    except UnreadableScanError:
        raise
    except PermissionError as exc:
        raise UnreadableScanError(f"{path}: permission denied") from exc
    except FileNotFoundError as exc:
        raise UnreadableScanError(f"{path}: file not found") from exc
    except OSError as exc:  # symlink loops, I/O errors, names too long
        raise UnreadableScanError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def _load_raster(data: bytes, name: str, kind: str, max_pixels: int, max_pages: int) -> list[Page]:
    if kind == "png":
        _check_png_crcs(data, name)
    try:
        with warnings.catch_warnings():
            # Pillow warns, then errors, on bombs; we check the size ourselves first.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                image = Image.open(io.BytesIO(data))
                pages = []
                for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
                    if number > max_pages:
                        raise TooManyPagesError(
                            f"{name}: more than {max_pages} pages; split the file into parts of at most {max_pages}"
                        )
                    _check_size(frame.size, max_pixels, name, number)
                    pages.append(Page(number, *_square_pixels(_to_gray(frame), frame, max_pixels, name, number)))
            finally:
                Image.MAX_IMAGE_PIXELS = previous
    except UnreadableScanError:
        raise
    except UnidentifiedImageError as exc:  # its message names only an io.BytesIO object
        raise CorruptScanError(f"{name}: corrupt or truncated {kind.upper()} (header not readable)") from exc
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise CorruptScanError(f"{name}: corrupt or truncated {kind.upper()} ({exc})") from exc
    if not pages:
        raise NoPagesError(f"{name}: {kind.upper()} holds no pages")
    return pages


def _check_png_crcs(data: bytes, name: str) -> None:
    """Raise CorruptScanError if a complete chunk's CRC does not match its contents.

    Pillow checks no CRC of the image data (IDAT), so a damaged file would
    otherwise decode to wrong pixels without a word.  A chunk cut short is left
    to the decoder, which reports the truncation.
    """
    view = memoryview(data)
    offset = 8  # after the signature
    while offset + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, offset)
        end = offset + 12 + length
        if end > len(data):
            return
        kind = bytes(view[offset + 4 : offset + 8])
        if zlib.crc32(view[offset + 4 : end - 4]) != struct.unpack_from(">I", data, end - 4)[0]:
            raise CorruptScanError(
                f"{name}: corrupt PNG ({kind.decode('latin-1')} chunk fails its CRC check: the file is damaged)"
            )
        if kind == b"IEND":
            return
        offset = end


def _to_gray(frame: Image.Image) -> np.ndarray:
    frame = ImageOps.exif_transpose(frame) if "exif" in frame.info or frame.getexif() else frame
    if frame.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(frame, dtype=np.float64)
        hi = a.max()
        return np.round(a * (255.0 / hi)).astype(np.uint8) if hi > 0 else np.zeros(a.shape, np.uint8)
    if frame.mode == "F":
        a = np.asarray(frame, dtype=np.float64)
        lo, hi = a.min(), a.max()
        return np.round((a - lo) * (255.0 / (hi - lo))).astype(np.uint8) if hi > lo else np.zeros(a.shape, np.uint8)
    if frame.mode in ("RGBA", "LA", "PA") or (frame.mode == "P" and "transparency" in frame.info):
        # Transparent areas are paper: composite onto white before dropping alpha.
        background = Image.new("RGBA", frame.size, (255, 255, 255, 255))
        frame = Image.alpha_composite(background, frame.convert("RGBA"))
    return np.asarray(frame.convert("L"), dtype=np.uint8).copy()


# Pixels whose two resolutions differ by more than this share are resampled square; by more
# than this factor, the file's resolution is taken for wrong and left out.
_SQUARE_TOLERANCE = 0.02
_MAX_PIXEL_ASPECT = 4.0


def _square_pixels(
    gray: np.ndarray, frame: Image.Image, max_pixels: int, name: str, number: int
) -> tuple[np.ndarray, float | None]:
    """The page (``gray``, decoded from ``frame``) with square pixels, and its resolution.

    A fax in its standard mode is 204 x 98 dpi: read as stored, its digits come out half
    their height and its boxes half as tall as wide.  Such a page is stretched along its
    coarser axis to the finer resolution, which becomes the page's.
    """
    dpi = frame.info.get("dpi")
    try:
        x_dpi, y_dpi = float(dpi[0]), float(dpi[1])
    except (TypeError, ValueError, IndexError):
        return gray, _dpi_of(frame)
    if x_dpi <= 1 or y_dpi <= 1 or abs(x_dpi - y_dpi) <= _SQUARE_TOLERANCE * max(x_dpi, y_dpi):
        return gray, _dpi_of(frame)
    finer = max(x_dpi, y_dpi)
    if finer / min(x_dpi, y_dpi) > _MAX_PIXEL_ASPECT:
        return gray, None
    if frame.getexif().get(_EXIF_ORIENTATION) in (5, 6, 7, 8):  # turned a quarter by _to_gray
        x_dpi, y_dpi = y_dpi, x_dpi
    height, width = gray.shape
    size = (max(1, round(width * finer / x_dpi)), max(1, round(height * finer / y_dpi)))
    _check_size(size, max_pixels, name, number)
    # Dots of a dithered fax are averaged back into gray before its rows are stretched apart
    # (once stretched it is no longer bilevel, and cleanup would not know it for dithered).
    return cv2.resize(descreen(gray), size, interpolation=cv2.INTER_LINEAR), finer


_EXIF_ORIENTATION = 0x0112


def _dpi_of(frame: Image.Image) -> float | None:
    dpi = frame.info.get("dpi")
    try:
        return float(dpi[0]) if dpi and float(dpi[0]) > 1 else None
    except (TypeError, ValueError):
        return None


def _check_size(size: tuple[int, int], max_pixels: int, name: str, number: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise CorruptScanError(f"{name}: page {number} has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ScanTooLargeError(
            f"{name}: page {number} is {width}x{height} = {width * height / 1e6:.0f} MP, "
            f"over the {max_pixels / 1e6:.0f} MP limit"
        )


def _load_pdf(data: bytes, name: str, pdf_dpi: int | None, max_pixels: int, max_pages: int) -> list[Page]:
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        text = str(exc).lower()
        if "password" in text or "security" in text:
            raise EncryptedPdfError(f"{name}: PDF is encrypted (password required)") from exc
        if _EMPTY_PAGE_TREE.search(data):
            # PDFium refuses a document whose page tree is empty instead of opening it with 0 pages.
            raise NoPagesError(f"{name}: PDF holds no pages") from exc
        raise CorruptScanError(f"{name}: corrupt or truncated PDF ({exc})") from exc
    try:
        if len(document) == 0:
            raise NoPagesError(f"{name}: PDF holds no pages")
        if len(document) > max_pages:
            raise TooManyPagesError(
                f"{name}: {len(document)} pages, more than {max_pages}; "
                f"split the file into parts of at most {max_pages}"
            )
        pages = []
        for index in range(len(document)):
            page = document[index]
            scan = page_scan(page, max_pixels, name, index + 1, pdf_dpi)
            if scan is not None:
                pages.append(Page(index + 1, *scan))
                continue
            dpi = pdf_dpi or scanned_dpi(page)
            scale = dpi / 72.0
            width, height = page.get_size()
            _check_size((round(width * scale), round(height * scale)), max_pixels, name, index + 1)
            bitmap = page.render(scale=scale, grayscale=True)
            image = bitmap.to_numpy()
            if image.ndim == 3:
                image = image[..., :3].mean(axis=2).astype(np.uint8)
            pages.append(Page(index + 1, _own_pixels(image, bitmap), float(dpi)))
        return pages
    except pdfium.PdfiumError as exc:
        raise CorruptScanError(f"{name}: cannot render PDF ({exc})") from exc
    finally:
        document.close()


def page_scan(page, max_pixels: int = MAX_PIXELS, name: str = "<bytes>", number: int = 1, dpi: float | None = None):
    """``(gray image, dpi)`` of a PDF page that is nothing but one scanned image, decoded as it is stored; else None.

    A scanner's PDF holds each page as a single image drawn over the whole
    page.  Such a page is what its image is: decoding the image alone gives
    the scan's own pixels (no resampling) for a fraction of rendering the page
    (a 1240x1754 JPEG page: 4-6 ms against 28-33).  Only a page that rendering
    could not change is taken this way: no rotation, no annotation, no other
    object, the image upright (no turn or mirror) and covering exactly the
    page's crop box, square pixels, gray, RGB or a palette of them (at most 8
    bits a component: PDFium decodes them to gray or BGR), nothing
    transparent, at a resolution read as it is (:func:`ocr.cleanup.working_scale`
    1) and, if ``dpi`` is asked for, at that resolution (within 1%).  Anything
    else is rendered.
    """
    import pypdfium2.raw as pdfium_c

    if page.get_rotation() % 360 or pdfium_c.FPDFPage_GetAnnotCount(page.raw) > 0:
        return None
    objects = list(page.get_objects(max_depth=1))
    if len(objects) != 1 or objects[0].type != pdfium_c.FPDF_PAGEOBJ_IMAGE:
        return None
    image = objects[0]
    if pdfium_c.FPDFPageObj_HasTransparency(image.raw):
        return None
    a, b, c, d, _, _ = image.get_matrix().get()
    if b != 0 or c != 0 or a <= 0 or d <= 0:
        return None
    if not np.allclose(image.get_bounds(), page.get_bbox(), atol=0.5):
        return None
    try:
        meta = image.get_metadata()
    except Exception:  # noqa: BLE001 - an image PDFium cannot describe is rendered instead
        return None
    # Colour spaces whose images PDFium decodes to gray or BGR pixels.
    gray_or_rgb = {
        pdfium_c.FPDF_COLORSPACE_DEVICEGRAY,
        pdfium_c.FPDF_COLORSPACE_DEVICERGB,
        pdfium_c.FPDF_COLORSPACE_CALGRAY,
        pdfium_c.FPDF_COLORSPACE_CALRGB,
        pdfium_c.FPDF_COLORSPACE_ICCBASED,
        pdfium_c.FPDF_COLORSPACE_INDEXED,
    }
    if meta.colorspace not in gray_or_rgb or not 1 <= meta.bits_per_pixel <= 24:
        return None
    scanned = float(meta.horizontal_dpi)
    if not 50 <= scanned <= 1.5 * WORKING_DPI or abs(meta.vertical_dpi - scanned) > 0.01 * scanned:
        return None
    if dpi is not None and abs(dpi - scanned) > 0.01 * scanned:
        return None
    _check_size((meta.width, meta.height), max_pixels, name, number)
    bitmap = image.get_bitmap(render=False)
    pixels = bitmap.to_numpy()
    if pixels.shape[:2] != (meta.height, meta.width):
        return None
    if bitmap.format == pdfium_c.FPDFBitmap_Gray:
        gray = pixels
    elif bitmap.format in (pdfium_c.FPDFBitmap_BGR, pdfium_c.FPDFBitmap_BGRx):
        import cv2

        gray = cv2.cvtColor(np.ascontiguousarray(pixels[..., :3]), cv2.COLOR_BGR2GRAY)
    else:
        return None
    return _own_pixels(gray, bitmap), scanned


def _own_pixels(image: np.ndarray, bitmap) -> np.ndarray:
    """``image`` as an array of its own, and ``bitmap`` closed.

    ``to_numpy`` gives a view of PDFium's buffer: kept, it would hold the
    bitmap open past its document, and PDFium warns at exit ("Cannot close
    <PdfBitmap>; pdfium library is destroyed") about every one still open.
    """
    own = np.array(image, dtype=np.uint8, order="C", copy=True)
    bitmap.warn_on_close = False  # nothing uses its buffer any more: the pixels were copied
    bitmap.close()
    return own


def scanned_dpi(page) -> float:
    """The resolution to render a PDF page at when none is asked for (see :func:`load_pages`).

    The scan is the image covering the most of the page, if it covers at
    least a quarter of it; a logo on a drawn (vector) form is not the page.
    """
    import pypdfium2.raw as pdfium_c

    page_width, page_height = page.get_size()
    best, best_cover = None, 0.25
    for image in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=2):
        try:
            meta = image.get_metadata()
        except Exception:  # an image PDFium cannot describe is simply not used
            continue
        if meta.horizontal_dpi <= 0 or meta.vertical_dpi <= 0:
            continue
        # Its size on the page, in points (1/72 inch), from its pixels and resolution.
        cover = (meta.width / meta.horizontal_dpi * 72) * (meta.height / meta.vertical_dpi * 72)
        cover /= max(page_width * page_height, 1e-6)
        if cover >= best_cover:
            best, best_cover = float(meta.horizontal_dpi), cover
    if best is None:
        return float(DEFAULT_PDF_DPI)
    # A finer scan is read at the working resolution anyway: render it there.
    return float(WORKING_DPI) if working_scale(best) < 1 else max(best, 50.0)
