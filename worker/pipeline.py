"""Process one document: load it, read it, store the results in one transaction.

The same function serves the embedded runner (local processes) and the Celery
task.  Bad input ends as a stored ``failed`` status with the reason; only
database trouble escapes (the caller retries it).
"""

from __future__ import annotations

import ctypes
import gc
import hashlib
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_session_factory
from db.models import Document
from db.queries import claim_document, fail_document, lock_document, store_reading
from ocr.classifiers import Models
from ocr.errors import DigitflowError, UnreadableScanError
from ocr.load import Page, load_pages, read_scan_bytes
from ocr.read import PageReading, read_page
from ocr.template import Template, load_template
from worker.config import Settings

_CROP_MARGIN = 6  # pixels around a field in its stored crop

# glibc's mallopt parameters (<malloc.h>).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


class ScanChangedError(UnreadableScanError):
    reason = "changed since submit"


@dataclass(frozen=True)
class Outcome:
    """What became of one document; JSON-serialisable for task results."""

    document_id: int
    status: str  # "done", "failed", or "missing" (deleted from the database while it was read)
    pages: int = 0
    fields: int = 0
    review: int = 0
    digits: int = 0
    error: str | None = None
    seconds: float = 0.0
    skipped: bool = False  # already done before this run (a redelivered task)


@dataclass(frozen=True)
class WorkerResources:
    """What a worker process creates once and reuses for every document."""

    models: Models
    engine: Engine
    factory: sessionmaker[Session]


def load_worker_resources(settings: Settings, limit_threads: bool = True) -> WorkerResources:
    """Load the models and open the database for one worker process.

    ``limit_threads``: size the LiteRT, OpenCV and BLAS pools to
    ``settings.threads`` first (a process per core: more threads only contend),
    fix glibc's allocation thresholds (:func:`keep_freed_memory`), and freeze
    what is loaded out of the garbage collector's sight (``gc.freeze``): for a
    process that is the worker's own, not a caller's.
    """
    from ocr import classifiers

    if limit_threads:
        classifiers.limit_threads(settings.threads)
        keep_freed_memory()
    engine = make_engine(settings.database_url)
    models = classifiers.load_models(settings.model_dir or classifiers.MODEL_DIR)
    resources = WorkerResources(models, engine, make_session_factory(engine))
    if limit_threads:
        # What is loaded now lives as long as the process: out of the garbage collector's sight,
        # whose full collections walked all of it (about 100 ms every 60 or so documents).
        gc.collect()
        gc.freeze()
    return resources


def keep_freed_memory(mmap_threshold_mib: int = 64, trim_threshold_mib: int = 128) -> bool:
    """Have glibc serve a page's working arrays from memory the process already holds.

    By default glibc takes each block over its mmap threshold straight from
    the kernel and gives it back when freed, and trims the top of the heap
    past a second threshold; both move as the process runs (128 KiB to
    32 MiB).  A worker allocates and frees a page's masks and images (MiBs
    each) for every page, so where those thresholds end up decides whether
    each page costs a few dozen page faults or about 5,000 (20 MiB of memory
    the kernel zeroes again).  Which one a worker process got depended on its
    first pages: reading the same 40 pages took 58-60 ms a page in some
    processes and 67-77 in others, the field finding alone 24 against
    30-36 ms (``docs/performance.md``).  Fixed thresholds (blocks under
    ``mmap_threshold_mib`` from the heap, freed memory kept up to
    ``trim_threshold_mib`` at its top) put every process in the fast state
    for about 10 MiB more resident memory.

    Returns whether the thresholds were set: not on a C library without
    ``mallopt`` (macOS), nor where the user set ``MALLOC_MMAP_THRESHOLD_`` or
    ``MALLOC_TRIM_THRESHOLD_`` (theirs stand).
    """
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold_mib << 20)) and bool(
        mallopt(_M_TRIM_THRESHOLD, trim_threshold_mib << 20)
    )


def process_document(
    factory: sessionmaker[Session],
    models: Models,
    document_id: int,
    settings: Settings,
    skip_done: bool = False,
    reraise: tuple[type[BaseException], ...] = (),
) -> Outcome:
    """Load, read and store one document; safe to run again (results are replaced).

    ``skip_done``: a document already ``done`` is left as it is (a task
    redelivered after its results were committed must not wipe a review made
    since).  A document started ``settings.max_attempts`` times already (its
    worker died each time) is failed instead of read again.  Exceptions of the
    ``reraise`` types (a Celery time limit) escape instead of being stored as
    an internal error.

    Raises
    ------
    LookupError
        No document has this id.
    """
    started = time.perf_counter()
    with factory.begin() as session:
        claim = claim_document(session, document_id, settings.max_attempts, skip_done)
        if claim is None:  # not to be read: find out why, the row locked
            document = session.get(Document, document_id, with_for_update=True)
            if document is None:
                raise LookupError(f"no document with id {document_id}")
            if skip_done and document.status == "done":
                return Outcome(document_id, "done", skipped=True)
            reason = (
                f"gave up after {document.attempts} attempts: its worker was lost each time "
                f"(killed, out of memory, or over the {settings.task_time_limit} s time limit)"
            )
            fail_document(session, document, reason)
            return Outcome(document_id, "failed", error=reason)
    timings: dict[str, float] = {}
    try:
        readings, pages = read_document(claim.path, claim.sha256, claim.template, models, settings, timings)
        crops = crop_fields(pages, readings)
    except (OperationalError, DBAPIError, *reraise):
        raise
    except DigitflowError as exc:
        return _fail(factory, document_id, str(exc), started)
    except Exception as exc:  # a defect must not stop the batch; keep the reason
        return _fail(factory, document_id, f"internal error: {type(exc).__name__}: {exc}", started)
    stored = time.perf_counter()
    with factory.begin() as session:
        # The row lock makes a second run of the same document (a redelivery racing
        # the first) wait, then replace these results rather than add to them.
        document, has_results = lock_document(session, document_id)
        store_reading(session, document, readings, crops, has_results=has_results, flush=False)
        # The results are inserted; the document's one UPDATE (status, times and these
        # timings) and the commit are the only database time not counted.
        timings["database"] = time.perf_counter() - stored
        document.timings = {k: round(v, 4) for k, v in timings.items()}
    fields = [f for r in readings for f in r.fields]
    return Outcome(
        document_id=document_id,
        status="done",
        pages=len(readings),
        fields=len(fields),
        review=sum(f.needs_review for f in fields) + sum(bool(r.problems) for r in readings),
        digits=sum(len(f.digits) for f in fields),
        seconds=round(time.perf_counter() - started, 4),
    )


def read_document(
    path: str,
    expected_sha: str | None,
    template_path: str | None,
    models: Models,
    settings: Settings,
    timings: dict[str, float],
) -> tuple[list[PageReading], list[Page]]:
    """Load and read every page of the scan at ``path``; raises DigitflowError subclasses on bad input."""
    t0 = time.perf_counter()
    data = read_scan_bytes(Path(path), settings.max_file_bytes)
    if expected_sha and hashlib.sha256(data).hexdigest() != expected_sha:
        raise ScanChangedError(f"{path}: file changed since it was submitted (sha256 differs)")
    template = cached_template(template_path) if template_path else None
    pages = load_pages(data, name=path, pdf_dpi=settings.pdf_dpi, max_pixels=settings.max_pixels)
    timings["load"] = timings.get("load", 0.0) + time.perf_counter() - t0
    readings = [read_page(p.image, models, template, p.number, timings, p.dpi) for p in pages]
    return readings, pages


@lru_cache(maxsize=32)
def cached_template(path: str) -> Template:
    return load_template(path)


def crop_fields(pages: list[Page], readings: list[PageReading]) -> dict[tuple[int, str], bytes]:
    """PNG crop of every field, keyed by (page number, field name)."""
    crops = {}
    for page, reading in zip(pages, readings, strict=True):
        h, w = page.image.shape
        for f in reading.fields:
            x, y, fw, fh = f.bbox
            x0, y0 = max(0, x - _CROP_MARGIN), max(0, y - _CROP_MARGIN)
            x1, y1 = min(w, x + fw + _CROP_MARGIN), min(h, y + fh + _CROP_MARGIN)
            if x1 <= x0 or y1 <= y0:
                continue
            ok, png = cv2.imencode(".png", np.ascontiguousarray(page.image[y0:y1, x0:x1]))
            if ok:
                crops[(reading.number, f.name)] = png.tobytes()
    return crops


def fail_document_now(factory: sessionmaker[Session], document_id: int, reason: str) -> None:
    """Store ``failed`` with ``reason`` for a document, in a transaction of its own."""
    with factory.begin() as session:
        fail_document(session, session.get(Document, document_id, with_for_update=True), reason)


def _fail(factory: sessionmaker[Session], document_id: int, reason: str, started: float) -> Outcome:
    fail_document_now(factory, document_id, reason)
    return Outcome(document_id, "failed", error=reason, seconds=round(time.perf_counter() - started, 4))
