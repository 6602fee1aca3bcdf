"""The farm's client side: submit documents to the Celery queue, re-enqueue, measure progress.

Submitting records the documents in the database first (committed), then puts
one message per document id on the queue; workers find everything else
(path, template) in the database.  So a message is never about a document
the workers cannot see, and a message lost with the broker leaves its
document ``queued``, from where ``digitflow retry --queued`` sends it again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from db.queries import requeue_documents
from ocr.errors import DigitflowError
from worker.app import TASK_NAME
from worker.config import Settings
from worker.embedded import Submission, discover_files, record_files


class BrokerUnavailableError(DigitflowError):
    """The message broker (Redis) cannot be reached, or it dropped the connection while enqueuing."""

    exit_code = 8


def check_broker(app: Celery, timeout: float = 5.0) -> None:
    """Connect to the broker once; raise :class:`BrokerUnavailableError` if that fails."""
    url = app.conf.broker_url
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.5, timeout=timeout)
    except Exception as exc:  # kombu wraps transport errors in several types
        raise BrokerUnavailableError(
            f"broker not reachable at {_safe_url(url)}: {exc}; start Redis or set DIGITFLOW_BROKER_URL"
        ) from exc


def enqueue_documents(app: Celery, document_ids: Iterable[int], queue: str) -> int:
    """Send one task message per document id over one connection; returns how many were sent.

    Raises :class:`BrokerUnavailableError` (saying how many went out) when the
    broker fails part-way; the documents not sent stay ``queued`` in the database.
    """
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            for document_id in document_ids:
                app.send_task(TASK_NAME, args=[document_id], queue=queue, producer=producer)
                sent += 1
    except Exception as exc:
        raise BrokerUnavailableError(
            f"broker failed after {sent} message(s): {exc}; the other documents stay queued in the database, "
            "send them with `digitflow retry --queued` once the broker is back"
        ) from exc
    return sent


def submit_files(
    app: Celery,
    factory: sessionmaker[Session],
    settings: Settings,
    paths: list,
    name: str,
    template: str | None,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
) -> Submission:
    """Find scans under ``paths``, record the new ones as a batch, enqueue them.

    The broker is checked before anything is recorded, so an unreachable
    broker leaves the database untouched.
    """
    check_broker(app)
    files = discover_files(paths, include, exclude)
    submission = record_files(factory, files, name, template)
    enqueue_documents(app, submission.document_ids, settings.queue)
    return submission


def requeue(
    app: Celery,
    factory: sessionmaker[Session],
    settings: Settings,
    batch_id: int | None,
    failed: bool,
    stuck: bool,
    queued: bool,
) -> list[int]:
    """Set the chosen documents back to ``queued`` and enqueue them; the database change
    is committed only once every message is out."""
    check_broker(app)
    stuck_before = _utcnow() - dt.timedelta(seconds=settings.task_time_limit) if stuck else None
    with factory.begin() as session:
        ids = requeue_documents(session, batch_id, failed=failed, stuck_before=stuck_before, queued=queued)
        enqueue_documents(app, ids, settings.queue)
    return ids


@dataclass(frozen=True)
class Progress:
    """Rates and estimates of one batch, derived from :func:`db.queries.batch_status`."""

    finished: int  # done + failed documents
    remaining: int  # queued + processing
    pages_per_second: float | None
    documents_per_second: float | None
    seconds_left: float | None  # None: no rate yet, or nothing left


def batch_progress(row: dict, now: dt.datetime | None = None) -> Progress:
    """Progress of one ``batch_status`` row at ``now`` (UTC).

    Rates are measured from the first document started to the last one
    finished, or to ``now`` while documents remain.
    """
    now = now or _utcnow()
    finished = row["done"] + row["failed"]
    remaining = row["queued"] + row["processing"]
    start = row["started_at"]
    end = now if remaining else row["finished_at"]
    if start is None or end is None or finished == 0:
        return Progress(finished, remaining, None, None, None)
    elapsed = max((end - start).total_seconds(), 1e-3)
    docs_rate = finished / elapsed
    return Progress(
        finished,
        remaining,
        pages_per_second=row["pages"] / elapsed,
        documents_per_second=docs_rate,
        seconds_left=remaining / docs_rate if remaining else None,
    )


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _safe_url(url: str) -> str:
    from kombu.utils.url import maybe_sanitize_url

    return maybe_sanitize_url(url)
