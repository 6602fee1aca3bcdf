"""Fault drills: good scans mixed with every kind of bad input, end to end through `digitflow run`.

Each bad file must end ``failed`` with a reason that names what is wrong, the
good ones ``done``, and nothing may be lost, hang or blow up memory.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import resource
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cli import app
from db.engine import make_engine, make_session_factory, upgrade_schema
from db.models import Document, Field
from ocr.samples import generate_samples
from worker.config import load_settings
from worker.embedded import discover_files, record_files, run_documents

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning"),  # Pillow, on the damaged TIFFs
]

runner = CliRunner()
MAX_FILE_BYTES = 20_000_000  # the generated forms are up to about 5 MB
ENV = {"DIGITFLOW_MAX_FILE_BYTES": str(MAX_FILE_BYTES)}
NOT_A_SCAN = "not a PNG, JPEG, TIFF, BMP or PDF"
LOCKED = "locked.png"

# File (relative to the drill directory) -> what its stored reason must say.
# Every file holds different bytes: files with the same sha256 are recorded once.
BAD = {
    "truncated.png": "corrupt or truncated PNG",
    "truncated.jpg": "corrupt or truncated JPEG",
    "truncated.tif": "corrupt or truncated TIFF",
    "truncated.bmp": "corrupt or truncated BMP",
    "truncated.pdf": "corrupt or truncated PDF",
    "empty.png": "file is empty (0 bytes)",
    "notes.png": NOT_A_SCAN,
    "error_page.jpg": NOT_A_SCAN,
    "noise.tif": NOT_A_SCAN,
    "picture.gif.png": NOT_A_SCAN,
    "picture.webp.png": NOT_A_SCAN,
    "drawing.svg.png": NOT_A_SCAN,
    "archive.zip.pdf": NOT_A_SCAN,
    "compressed.gz.png": NOT_A_SCAN,
    "bad_crc.png": "IDAT chunk fails its CRC check",
    "bad_idat.png": "broken data stream",
    "signature_only.png": "corrupt or truncated PNG (header not readable)",
    "zero_width.png": "corrupt or truncated PNG (header not readable)",
    "ifd_past_end.tif": "corrupt or truncated TIFF (header not readable)",
    "invoice.bmp": "corrupt or truncated BMP",  # text that happens to start with "BM"
    "bomb.png": "40000x40000 = 1600 MP, over the 100 MP limit",
    "bomb.tif": "60000x60000 = 3600 MP, over the 100 MP limit",
    "bomb.jpg": "60000x60000 = 3600 MP, over the 100 MP limit",
    "bomb.bmp": "50000x50000 = 2500 MP, over the 100 MP limit",
    "huge_page.pdf": "MP limit",
    "no_pages.pdf": "PDF holds no pages",
    "encrypted.pdf": "PDF is encrypted",
    "header_only.pdf": "corrupt or truncated PDF",
    "second_page_cut.tif": "corrupt or truncated TIFF",
    "oversized.png": f"MB is over the {MAX_FILE_BYTES / 1e6:.0f} MB file limit",
    "loop_a.png": "Too many levels of symbolic links",
    "loop_b.png": "Too many levels of symbolic links",
    "dangling.png": "file not found",
    "pipe.png": "not a regular file",
    "zeros.png": "not a regular file",  # a symlink to /dev/zero
    "scan_\udcff\udcfe.png": "file name is not valid UTF-8",  # a good scan under an undecodable name
    "junk_\udce9.tif": "file name is not valid UTF-8",
    LOCKED: "permission denied",
}
# Valid files that hold no form: read, with no fields, not failed.
EMPTY = ("blank_page.png", "one_pixel.png")


@dataclass(frozen=True)
class Drill:
    root: Path
    url: str
    exit_code: int
    output: str
    discovered: int
    documents: dict[str, tuple[str, str | None, int]]  # relative path as stored -> (status, error, fields)
    good: list[str]
    rss_growth_kib: int


@pytest.fixture(scope="module")
def forms(tmp_path_factory, mnist) -> list[Path]:
    """Five generated forms (PNG), each with fields to read."""
    out = tmp_path_factory.mktemp("forms")
    generate_samples(out, "forms", 5, seed=11, digits=mnist.x_test, labels=mnist.y_test, formats=["png"])
    return sorted(out.glob("form_*.png"))


@pytest.fixture(scope="module")
def drill(tmp_path_factory, forms) -> Drill:
    """The drill directory, run once through `digitflow run` into a fresh SQLite database."""
    root = tmp_path_factory.mktemp("drill")
    for form in forms[:4]:
        shutil.copy(form, root)
    # A directory named like an image is walked, not failed.
    (root / "dir.png").mkdir()
    shutil.copy(forms[4], root / "dir.png")
    good = [f.name for f in forms[:4]] + [f"dir.png/{forms[4].name}"]
    _write_bad_files(root, forms[0].read_bytes())
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'drill.db'}"

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = runner.invoke(app, ["run", str(root), "--db", url], env=ENV)
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    documents = _documents(url, root)
    return Drill(root, url, result.exit_code, result.output, len(discover_files([root])), documents, good, growth)


def _documents(url: str, root: Path) -> dict[str, tuple[str, str | None, int]]:
    with Session(make_engine(url)) as session:
        fields = dict(session.execute(select(Field.document_id, func.count()).group_by(Field.document_id)).all())
        return {
            str(Path(d.path).relative_to(root)): (d.status, d.error, fields.get(d.id, 0))
            for d in session.scalars(select(Document).order_by(Document.id))
        }


def test_the_run_goes_through_and_reports_the_failures(drill):
    assert drill.exit_code == 10, drill.output
    assert "Traceback" not in drill.output and "internal error" not in drill.output
    # The two files whose names are not UTF-8 fail when they are recorded, before reading starts,
    # and count among the failures all the same.
    output = " ".join(drill.output.split())  # rich wraps long lines
    assert "2 failed at once (unusable file name)" in output
    assert f"documents done {len(drill.good) + len(EMPTY)}, failed {len(BAD)}" in output


def test_nothing_is_lost_or_left_in_flight(drill):
    assert len(drill.documents) == drill.discovered == len(drill.good) + len(EMPTY) + len(BAD)
    assert {status for status, _, _ in drill.documents.values()} <= {"done", "failed"}


def test_good_scans_are_read(drill):
    for name in drill.good:
        status, error, fields = drill.documents[name]
        assert (status, error) == ("done", None) and fields > 0, name


@pytest.mark.parametrize("name", EMPTY)
def test_valid_pages_without_forms_are_done_with_no_fields(drill, name):
    assert drill.documents[name] == ("done", None, 0)


@pytest.mark.parametrize("name", sorted(set(BAD) - {LOCKED}))
def test_bad_input_fails_with_its_reason(drill, name):
    stored = os.fsencode(name).decode("utf-8", "backslashreplace")
    status, error, fields = drill.documents[stored]
    assert status == "failed" and fields == 0
    assert BAD[name] in error, error


def test_unreadable_file_fails_with_permission_denied(drill):
    status, error, _ = drill.documents[LOCKED]
    assert status == "failed"
    if NOT_A_SCAN in error:  # its contents were read after all
        pytest.skip("running as root: chmod 000 does not stop reading a file")
    assert BAD[LOCKED] in error, error


def test_memory_stays_bounded(drill):
    # The bombs declare 1.6 to 309 gigapixels: one decoded would take gigabytes.
    assert drill.rss_growth_kib < 1.5 * 2**20


def test_a_second_run_reads_only_the_failed_files_again(drill):
    fields_before = _count(drill.url, Field)
    again = runner.invoke(app, ["run", str(drill.root), "--db", drill.url], env=ENV)
    assert again.exit_code == 10, again.output
    assert f"{len(drill.good) + len(EMPTY)} already processed" in again.output
    with Session(make_engine(drill.url)) as session:
        latest = session.scalar(select(func.max(Document.batch_id)))
        redone = session.scalars(select(Document).where(Document.batch_id == latest)).all()
    failed = [name for name, (status, _, _) in drill.documents.items() if status == "failed"]
    assert sorted(str(Path(d.path).relative_to(drill.root)) for d in redone) == sorted(failed)
    assert {d.status for d in redone} == {"failed"}
    with Session(make_engine(drill.url)) as session:
        done = session.scalar(select(func.count()).where(Document.status == "done"))
    assert done == len(drill.good) + len(EMPTY)
    assert _count(drill.url, Field) == fields_before


def _recorded(forms: list[Path], folder: Path, count: int):
    """``count`` forms copied into ``folder`` and recorded in a fresh SQLite database there.

    Returns the database URL, its engine, the sorted files and the submission.
    """
    for form in forms[:count]:
        shutil.copy(form, folder)
    url = f"sqlite:///{folder / 'embedded.db'}"
    engine = make_engine(url)
    upgrade_schema(engine)
    files = sorted(folder.glob("*.png"))
    return url, engine, files, record_files(make_session_factory(engine), files, folder.name, None)


def _run_embedded(url: str, document_ids: list[int]) -> list:
    outcomes = []
    settings = load_settings(database_url=url, max_file_bytes=MAX_FILE_BYTES)
    run_documents(settings, document_ids, 1, outcomes.append)
    return outcomes


def test_files_deleted_or_changed_after_they_were_recorded(forms, tmp_path):
    url, engine, files, submission = _recorded(forms, tmp_path, 4)
    deleted, changed = files[0], files[1]
    deleted.unlink()
    changed.write_bytes(files[2].read_bytes())
    outcomes = _run_embedded(url, submission.document_ids)

    with Session(engine) as session:
        stored = {d.path: (d.status, d.error) for d in session.scalars(select(Document))}
    assert stored[str(deleted)][0] == "failed" and "file not found" in stored[str(deleted)][1]
    assert stored[str(changed)] == ("failed", f"{changed}: file changed since it was submitted (sha256 differs)")
    assert [stored[str(f)] for f in files[2:]] == [("done", None)] * 2
    assert sorted(o.status for o in outcomes) == ["done", "done", "failed", "failed"]


def test_documents_deleted_from_the_database_during_a_run_do_not_stop_it(forms, tmp_path):
    url, engine, _, submission = _recorded(forms, tmp_path, 3)
    gone = submission.document_ids[1]
    with make_session_factory(engine).begin() as session:  # as deleting its batch would, mid-run
        session.delete(session.get(Document, gone))
    outcomes = _run_embedded(url, submission.document_ids)
    assert [(o.document_id, o.status) for o in outcomes] == [
        (submission.document_ids[0], "done"),
        (gone, "missing"),
        (submission.document_ids[2], "done"),
    ]
    assert outcomes[1].error == f"document {gone} was deleted from the database"


def _count(url: str, model) -> int:
    with Session(make_engine(url)) as session:
        return session.scalar(select(func.count()).select_from(model))


def _write_bad_files(root: Path, form_png: bytes) -> None:
    """Every entry of BAD (and EMPTY) in ``root``; ``form_png`` is a good scan to damage."""
    page = np.full((400, 600), 255, np.uint8)
    page[100:300, 280:300] = 0
    png, jpeg, tiff, bmp = (_encode(page, fmt) for fmt in ("PNG", "JPEG", "TIFF", "BMP"))
    pdf = _pdf([(612, 792)])
    files = {
        "truncated.png": form_png[: len(form_png) // 2],
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.tif": tiff[: len(tiff) // 2],
        "truncated.bmp": bmp[: len(bmp) // 2],
        "truncated.pdf": pdf[: len(pdf) // 3],
        "empty.png": b"",
        "notes.png": b"account 12345, amount 250.00\n",
        "error_page.jpg": b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>\n",
        "noise.tif": random.Random(5).randbytes(4096),
        "picture.gif.png": _encode(page, "GIF"),
        "picture.webp.png": _encode(page, "WEBP"),
        "drawing.svg.png": b'<svg xmlns="http://www.w3.org/2000/svg" width="600" height="400"/>\n',
        "archive.zip.pdf": b"PK\x03\x04" + bytes(60),
        "compressed.gz.png": gzip.compress(png),
        "bad_crc.png": _with_bad_idat_crc(png),
        "bad_idat.png": _with_scrambled_idat(png),
        "signature_only.png": png[:8],
        "zero_width.png": _png(0, 400),
        "ifd_past_end.tif": b"II*\x00" + struct.pack("<I", 1_000_000),
        "invoice.bmp": b"BMW service invoice, 2 pages\n",
        "bomb.png": _png(40000, 40000),
        "bomb.tif": _tiff_header(60000, 60000),
        "bomb.jpg": _jpeg_with_size(60000, 60000),
        "bomb.bmp": _bmp_header(50000, 50000),
        "huge_page.pdf": _pdf([(200_000, 200_000)]),
        "no_pages.pdf": _pdf([]),
        "encrypted.pdf": _encrypted(_pdf([(595, 842)])),
        "header_only.pdf": b"%PDF-1.7\n",
        "second_page_cut.tif": _multipage_tiff(page)[:-30_000],
        "blank_page.png": _encode(np.full((1754, 1240), 255, np.uint8), "PNG"),
        "one_pixel.png": _encode(np.zeros((1, 1), np.uint8), "PNG"),
        LOCKED: b"locked away\n",  # not a scan either, in case it can be read after all
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    with open(root / "oversized.png", "wb") as f:
        f.write(png)
        f.truncate(MAX_FILE_BYTES + 1_000_000)  # sparse: costs no disk
    (root / "loop_a.png").symlink_to("loop_b.png")
    (root / "loop_b.png").symlink_to("loop_a.png")
    (root / "dangling.png").symlink_to("gone.png")
    os.mkfifo(root / "pipe.png")  # opening it would wait for a writer for ever
    (root / "zeros.png").symlink_to("/dev/zero")  # reading it would never end
    (root / os.fsdecode(b"scan_\xff\xfe.png")).write_bytes(_encode(page[::-1], "PNG"))
    (root / os.fsdecode(b"junk_\xe9.tif")).write_bytes(b"II*\x00 latin-1 name")
    (root / LOCKED).chmod(0)


def _encode(image: np.ndarray, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int) -> bytes:
    """A bilevel PNG whose valid IHDR declares width x height, with a few bytes of image data."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(bytes(1 + (width + 7) // 8))  # one row; the decoder never gets that far
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _idat(png: bytes) -> tuple[int, int]:
    """Start and end of the first IDAT chunk's data."""
    start = png.index(b"IDAT") + 4
    return start, start + struct.unpack(">I", png[start - 8 : start - 4])[0]


def _with_bad_idat_crc(png: bytes) -> bytes:
    _, end = _idat(png)
    return png[:end] + bytes(4) + png[end + 4 :]


def _with_scrambled_idat(png: bytes) -> bytes:
    start, end = _idat(png)
    body = bytearray(png[start:end])
    body[10:40] = b"\xaa" * 30
    return png[: start - 8] + _png_chunk(b"IDAT", bytes(body)) + png[end + 4 :]


def _tiff_header(width: int, height: int) -> bytes:
    """A little-endian 8-bit gray TIFF whose one IFD declares width x height, with one byte of strip."""
    entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1)]
    entries += [(273, 4, 8), (277, 3, 1), (278, 4, height), (279, 4, 1)]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        ifd += struct.pack("<HHI", tag, kind, 1) + (
            struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        )
    return b"II*\x00" + struct.pack("<I", 9) + b"\x00" + ifd + struct.pack("<I", 0)


def _jpeg_with_size(width: int, height: int) -> bytes:
    """A valid 8x8 JPEG whose frame header (SOF0) is rewritten to declare width x height."""
    jpeg = bytearray(_encode(np.full((8, 8), 200, np.uint8), "JPEG"))
    sof = jpeg.index(b"\xff\xc0")
    struct.pack_into(">HH", jpeg, sof + 5, height, width)
    return bytes(jpeg)


def _bmp_header(width: int, height: int) -> bytes:
    """An 8-bit BMP whose header declares width x height, with a palette and no pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 0, 0, 2835, 2835, 256, 0)
    return struct.pack("<2sIHHI", b"BM", 1078, 0, 0, 1078) + info + bytes(1024)


def _pdf(sizes: list[tuple[int, int]]) -> bytes:
    """A PDF with blank pages of these sizes (points)."""
    document = pdfium.PdfDocument.new()
    for width, height in sizes:
        document.new_page(width, height)
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def _encrypted(pdf: bytes) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def _multipage_tiff(page: np.ndarray) -> bytes:
    """Two 600x400 gray pages, uncompressed: cutting the last 30,000 bytes cuts into the second."""
    buf = io.BytesIO()
    Image.fromarray(page).save(buf, format="TIFF", save_all=True, append_images=[Image.fromarray(page[::-1].copy())])
    return buf.getvalue()
