"""The embedded runner: find scans, record them, process them in local processes.

No broker is needed; the database is SQLite by default.  Each worker process
loads the models once (in the pool initializer) and processes documents by id
through :func:`worker.pipeline.process_document`, exactly as a Celery worker does.
"""

from __future__ import annotations

import fnmatch
import hashlib
import multiprocessing
import os
import stat
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from db.queries import UNREADABLE_NAME, add_documents, create_batch, fail_document, processed_sha256s
from worker.config import Settings
from worker.pipeline import Outcome, load_worker_resources, process_document

SCAN_PATTERNS = ("*.png", "*.jpg", "*.jpeg", "*.tif", "*.tiff", "*.bmp", "*.pdf")


@dataclass(frozen=True)
class Submission:
    batch_id: int | None
    document_ids: list[int]
    skipped: int  # files already processed (same sha256)
    found: int
    failed: int = 0  # recorded as failed at once, not in document_ids (a name the database cannot store)


def discover_files(
    paths: Iterable[Path], include: list[str] | None = None, exclude: list[str] | None = None
) -> list[Path]:
    """Scan files under ``paths`` (recursively), matched by name, case-insensitive; sorted, no duplicates.

    A path named explicitly is taken whatever its name.  Directories and
    symlinks to directories are walked once (loops are not followed twice).
    """
    include = [p.lower() for p in (include or SCAN_PATTERNS)]
    exclude = [p.lower() for p in (exclude or [])]
    found: dict[str, Path] = {}
    for root in paths:
        root = Path(root)
        if not root.is_dir():
            found.setdefault(str(root), root)
            continue
        seen_dirs: set[tuple[int, int]] = set()
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            try:
                st = os.stat(dirpath)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen_dirs:
                dirnames[:] = []
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            dirnames.sort()
            for name in sorted(filenames):
                lower = name.lower()
                path = Path(dirpath) / name
                rel = str(path.relative_to(root)).lower()
                if any(fnmatch.fnmatch(lower, p) or fnmatch.fnmatch(rel, p) for p in include) and not any(
                    fnmatch.fnmatch(lower, p) or fnmatch.fnmatch(rel, p) for p in exclude
                ):
                    found.setdefault(str(path), path)
    return sorted(found.values(), key=str)


def hash_file(path: Path) -> tuple[str | None, int | None]:
    """(sha256, size) of a file, or (None, None) when it cannot be read now (it fails later, with the reason)."""
    digest = hashlib.sha256()
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None, None  # opening a FIFO blocks; a device (/dev/zero) never ends
        with open(path, "rb") as f:
            size = 0
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
    except OSError:
        return None, None
    return digest.hexdigest(), size


def record_files(factory: sessionmaker[Session], files: list[Path], name: str, template: str | None) -> Submission:
    """Create a batch of documents for the files not processed before (by sha256).

    A file whose name is not valid UTF-8 cannot be stored as it is, nor found
    again from what can be stored: it is recorded under a printable form of its
    name as ``failed``, with the reason, and is not handed out for reading.
    """
    hashed = [(str(p), *hash_file(p)) for p in files]
    with factory.begin() as session:
        done = processed_sha256s(session, [h for _, h, _ in hashed if h])
        fresh, seen = [], set()
        for path, sha, size in hashed:
            if sha and (sha in done or sha in seen):
                continue
            if sha:
                seen.add(sha)
            fresh.append((path, sha, size))
        if not fresh:
            return Submission(None, [], len(hashed) - len(fresh), len(hashed))
        batch = create_batch(session, name, template)
        documents = add_documents(session, batch, [(_storable(path), sha, size) for path, sha, size in fresh])
        ids = []
        for document, (path, _, _) in zip(documents, fresh, strict=True):
            if document.path == path:
                ids.append(document.id)
            else:
                reason = f"{document.path}: {UNREADABLE_NAME}"
                fail_document(session, document, reason)
        return Submission(batch.id, ids, len(hashed) - len(fresh), len(hashed), failed=len(documents) - len(ids))


def _storable(path: str) -> str:
    """``path`` itself, or a printable form of it when its name holds bytes that are not UTF-8."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # the undecodable bytes are kept as lone surrogates, which no database takes
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    return path


def run_documents(
    settings: Settings, document_ids: list[int], workers: int, on_done: Callable[[Outcome], None]
) -> None:
    """Process documents in ``workers`` local processes (1: in this process), calling ``on_done`` for each.

    KeyboardInterrupt stops handing out documents; the ones in flight finish
    (each is stored in one transaction), the rest stay ``queued``.
    """
    if workers <= 1:
        _init_worker(settings)
        for document_id in document_ids:
            on_done(_process(document_id))
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(settings,)) as pool:
        pending: set[Future] = set()
        queue = list(reversed(document_ids))
        try:
            # Keep two documents per process in flight, no more: an interrupt leaves the rest queued.
            while queue or pending:
                while queue and len(pending) < 2 * workers:
                    pending.add(pool.submit(_process, queue.pop()))
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    on_done(future.result())
        except KeyboardInterrupt:
            for future in pending:
                future.cancel()
            raise


_STATE: dict = {}


def _init_worker(settings: Settings) -> None:
    """Per-process set-up: models and a database engine, created once and reused for every document."""
    import signal

    pool_process = multiprocessing.parent_process() is not None
    if pool_process:
        # The parent handles Ctrl-C; workers finish the document in hand.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _STATE.get("settings") == settings:
        return
    _STATE["settings"] = settings
    _STATE["resources"] = load_worker_resources(settings, limit_threads=pool_process)


def _process(document_id: int) -> Outcome:
    resources = _STATE["resources"]
    try:
        return process_document(resources.factory, resources.models, document_id, _STATE["settings"])
    except LookupError:  # its batch was deleted while the run went on: the rest of the run goes on
        return Outcome(document_id, "missing", error=f"document {document_id} was deleted from the database")
