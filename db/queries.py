"""Query functions: everything digitflow reads from or writes to the database.

Every function takes the ``session`` first and never commits: the caller owns
the transaction (``with factory.begin() as session: ...``), so that a task's
writes land together or not at all.  Confidences are 0-1, boxes
``(x, y, w, h)`` in original page pixels, durations in seconds.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session, contains_eager, selectinload

from db.models import DOCUMENT_STATUSES, FIELD_STATUSES, Batch, Correction, Digit, Document, Field, Page

if TYPE_CHECKING:  # db never imports ocr at run time; readings are duck-typed
    from ocr.read import DigitReading, FieldReading, PageReading

# Bound parameters per IN list: far below SQLite's and PostgreSQL's limits.
_IN_CHUNK = 500
# Rows fetched per round trip when streaming results.
_STREAM_ROWS = 500
_LIKE_ESCAPE = "\\"

TEMPLATED_COLUMNS = ["document", "sha256", "status"]
UNTEMPLATED_COLUMNS = ["document", "page", "field", "value", "text", "confidence", "status"]


# --- batches and documents ---------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """What reading a claimed document needs (:func:`claim_document`)."""

    path: str
    sha256: str | None
    template: str | None


def create_batch(session: Session, name: str, template: str | None = None) -> Batch:
    """Add a batch; ``template`` is the path of the form template its documents are read with."""
    batch = Batch(name=name, template=template)
    session.add(batch)
    session.flush()
    return batch


def add_documents(
    session: Session, batch: Batch, files: Sequence[tuple[str, str | None, int | None]]
) -> list[Document]:
    """Queue documents in ``batch``, one per ``(path as submitted, sha256, size in bytes)``.

    One multi-row INSERT for all of them (10,000 rows take well under a second
    on SQLite).  Each document inherits the batch's template.  Returns the new
    documents in the order of ``files``.  A path already in the batch violates
    ``uq_documents_batch_path`` (IntegrityError).
    """
    if not files:
        return []
    now = _utcnow()
    rows = [
        {
            "batch_id": batch.id,
            "path": path,
            "sha256": sha256,
            "size": size,
            "status": "queued",
            "attempts": 0,
            "template": batch.template,
            "created_at": now,
        }
        for path, sha256, size in files
    ]
    statement = insert(Document).returning(Document, sort_by_parameter_order=True)
    return list(session.scalars(statement, rows))


def processed_sha256s(session: Session, hashes: Iterable[str]) -> set[str]:
    """Those of ``hashes`` that already belong to a document read successfully (status "done")."""
    wanted = list(dict.fromkeys(h for h in hashes if h))
    found: set[str] = set()
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        statement = select(Document.sha256).where(Document.status == "done", Document.sha256.in_(chunk)).distinct()
        found.update(session.scalars(statement))
    return found


# The reason stored for a file whose name is not valid UTF-8: the stored path is a printable
# form of the name, not the name, so reading it again can only fail as "file not found".
UNREADABLE_NAME = "file name is not valid UTF-8; rename the file to read it"


def requeue_documents(
    session: Session,
    batch_id: int | None = None,
    failed: bool = False,
    stuck_before: dt.datetime | None = None,
    queued: bool = False,
) -> list[int]:
    """Set documents back to ``queued`` and return their ids, oldest first.

    Chosen are the ``failed`` ones (with ``failed``), the ones ``processing``
    since before ``stuck_before`` (their worker is gone), and, with
    ``queued``, those already ``queued`` (their messages were lost, e.g. the
    broker went down during submit).  Attempts start again from zero: the
    user asked for another try.  Only ``batch_id`` when given.  Documents
    failed for an undecodable file name (:data:`UNREADABLE_NAME`) stay as they
    are: they cannot be found again under their stored path.
    """
    conditions = []
    if failed:
        findable = ~func.coalesce(Document.error, "").endswith(UNREADABLE_NAME, autoescape=True)
        conditions.append((Document.status == "failed") & findable)
    if stuck_before is not None:
        conditions.append((Document.status == "processing") & (Document.started_at < stuck_before))
    if queued:
        conditions.append(Document.status == "queued")
    if not conditions:
        return []
    chosen = select(Document.id).where(or_(*conditions)).order_by(Document.id).with_for_update()
    if batch_id is not None:
        chosen = chosen.where(Document.batch_id == batch_id)
    ids = list(session.scalars(chosen))
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        session.execute(
            update(Document)
            .where(Document.id.in_(chunk))
            .values(status="queued", error=None, attempts=0, started_at=None, finished_at=None),
            execution_options={"synchronize_session": False},
        )
    return ids


def start_document(session: Session, document_id: int) -> Document:
    """Mark a document "processing" now and count the attempt.

    Raises
    ------
    LookupError
        No document has this id.
    """
    document = session.get(Document, document_id)
    if document is None:
        raise LookupError(f"no document with id {document_id}")
    document.status = "processing"
    document.started_at = _utcnow()
    document.finished_at = None
    document.error = None
    document.attempts = (document.attempts or 0) + 1
    session.flush()
    return document


def claim_document(session: Session, document_id: int, max_attempts: int, skip_done: bool = False) -> Claim | None:
    """Mark a document "processing" now and count the attempt, if it may be read: one statement.

    The same as locking the row, looking at it and :func:`start_document`, in one round
    trip instead of three.  Returns what reading it needs, or None where it may not be
    read: no document has this id, it was started ``max_attempts`` times already, or
    (``skip_done``) it is done.  The caller looks at the row to tell which.
    """
    conditions = [Document.id == document_id, Document.attempts < max_attempts]
    if skip_done:
        conditions.append(Document.status != "done")
    claimed = (
        update(Document)
        .where(*conditions)
        .values(status="processing", started_at=_utcnow(), finished_at=None, error=None, attempts=Document.attempts + 1)
        .returning(Document.path, Document.sha256, Document.template)
    )
    row = session.execute(claimed, execution_options={"synchronize_session": False}).one_or_none()
    return None if row is None else Claim(*row)


def lock_document(session: Session, document_id: int) -> tuple[Document, bool]:
    """The document, its row locked until the transaction ends, and whether it has results stored.

    One round trip: a run storing its results waits here for another run of the same
    document (a redelivered task) to finish, then replaces what that one stored.

    Raises
    ------
    LookupError
        No document has this id (it was deleted while it was read).
    """
    has_pages = select(Page.id).where(Page.document_id == Document.id).exists()
    found = session.execute(
        select(Document, has_pages).where(Document.id == document_id).with_for_update(of=Document)
    ).one_or_none()
    if found is None:
        raise LookupError(f"no document with id {document_id}")
    return found[0], bool(found[1])


def store_reading(
    session: Session,
    document: Document,
    pages: Sequence[PageReading],
    crops: dict[tuple[int, str], bytes] | None = None,
    timings: dict[str, float] | None = None,
    has_results: bool | None = None,
    flush: bool = True,
) -> None:
    """Store the reading of ``document`` and mark it "done", replacing any earlier results.

    Safe to run twice for one document (a redelivered task): the pages,
    fields, digits and corrections stored before are deleted first, so exactly
    one copy of the results remains.

    Parameters
    ----------
    pages : the document's page readings (:class:`ocr.read.PageReading`).
    crops : PNG bytes of field crops keyed by ``(page number, field name)``.
    timings : seconds spent per stage, stored as given.
    has_results : whether the document has results stored (:func:`lock_document`); None: look.
    flush : send the document's own changes (status, times) now; without it they go with the
        next flush or the commit, together with any set after this (one UPDATE).
    """
    if has_results is not False:
        _delete_results(session, document.id)
    crops = crops or {}
    # Core-style bulk inserts: one statement per table and page instead of an ORM
    # object per row (the unit of work cost more than the reading's other steps).
    for page in pages:
        page_id = session.scalars(insert(Page).returning(Page.id), [_page_row(document.id, page)]).one()
        if not page.fields:
            continue
        rows = [_field_row(document.id, page_id, f, crops.get((page.number, f.name))) for f in page.fields]
        # render_nulls: one statement for all the page's fields; by default the ORM groups rows by
        # which values are None (a field with reasons and one without went out as two INSERTs).
        field_ids = session.scalars(
            insert(Field).returning(Field.id, sort_by_parameter_order=True),
            rows,
            execution_options={"render_nulls": True},
        ).all()
        pairs = zip(field_ids, page.fields, strict=True)
        digits = [_digit_row(i, n, d) for i, f in pairs for n, d in enumerate(f.digits)]
        if digits:
            session.execute(insert(Digit), digits)
    document.status = "done"
    document.error = None
    _finish(document)
    document.timings = dict(timings) if timings is not None else None
    if flush:
        session.flush()
    session.expire(document, ["pages"])


def fail_document(session: Session, document: Document, reason: str) -> None:
    """Mark ``document`` "failed" with ``reason`` and drop any results it had."""
    _delete_results(session, document.id)
    document.status = "failed"
    document.error = reason
    _finish(document)
    session.flush()
    session.expire(document, ["pages"])


def _delete_results(session: Session, document_id: int) -> None:
    # Fields hang off pages, digits and corrections off fields: no page, nothing to delete
    # (a document's first reading, nearly always).
    if session.scalar(select(Page.id).where(Page.document_id == document_id).limit(1)) is None:
        return
    # Explicit deletes, children first, instead of relying on ON DELETE CASCADE
    # (SQLite only honours it with PRAGMA foreign_keys=ON); "fetch" also removes
    # the deleted rows from the session's identity map.
    fetch = {"synchronize_session": "fetch"}
    field_ids = select(Field.id).where(Field.document_id == document_id).scalar_subquery()
    session.execute(delete(Digit).where(Digit.field_id.in_(field_ids)), execution_options=fetch)
    session.execute(delete(Correction).where(Correction.field_id.in_(field_ids)), execution_options=fetch)
    session.execute(delete(Field).where(Field.document_id == document_id), execution_options=fetch)
    session.execute(delete(Page).where(Page.document_id == document_id), execution_options=fetch)


def _finish(document: Document) -> None:
    document.finished_at = _utcnow()
    if document.started_at is not None:
        document.seconds = round((document.finished_at - _as_utc(document.started_at)).total_seconds(), 4)
    else:
        document.seconds = None


def _page_row(document_id: int, page: PageReading) -> dict[str, Any]:
    return {
        "document_id": document_id,
        "number": page.number,
        "width": page.width,
        "height": page.height,
        "deskew_angle": float(page.angle),
        "registration_score": page.registration_score,
        "problems": "; ".join(page.problems) or None,
    }


def _field_row(document_id: int, page_id: int, field: FieldReading, crop: bytes | None) -> dict[str, Any]:
    x, y, w, h = (int(v) for v in field.bbox)
    return {
        "page_id": page_id,
        "document_id": document_id,
        "name": field.name,
        "kind": field.kind,
        "value": field.value,
        "text": field.text,
        "confidence": float(field.confidence),
        "status": "review" if field.needs_review else "accepted",
        "reasons": "; ".join(field.reasons) or None,
        "bbox_x": x,
        "bbox_y": y,
        "bbox_w": w,
        "bbox_h": h,
        "crop": crop,
    }


def _digit_row(field_id: int, position: int, d: DigitReading) -> dict[str, Any]:
    return {
        "field_id": field_id,
        "position": position,
        "bbox_x": int(d.bbox[0]),
        "bbox_y": int(d.bbox[1]),
        "bbox_w": int(d.bbox[2]),
        "bbox_h": int(d.bbox[3]),
        "cnn_label": int(d.cnn_label),
        "cnn_probability": float(d.cnn_prob),
        "svm_label": int(d.svm_label),
        "svm_score": float(d.svm_prob),
        "label": int(d.label),
        "confidence": float(d.confidence),
        "disagree": bool(d.disagree),
        "low_confidence": bool(d.low_confidence),
    }


# --- results -----------------------------------------------------------------------------------


def results_query(
    session: Session,
    *,
    batch_id: int | None = None,
    document_glob: str | None = None,
    field: str | None = None,
    status: str | None = None,
    min_confidence: float | None = None,
) -> Select:
    """Fields matching the filters, with their page and document, in reading order.

    Ordered by document (submission order), page number and field id; the
    field's ``page`` and ``page.document`` come with each row and its digits are
    loaded in one extra query per chunk of fields, so the statement can be
    streamed (``yield_per``) or paged (``limit``/``offset``).  ``session`` is
    not used; it is there so that every query function is called alike.

    Parameters
    ----------
    batch_id : only documents of this batch.
    document_glob : fnmatch-style pattern the document path as submitted must
        match in full: ``*`` any run of characters (``/`` included), ``?`` one
        character, everything else literal (``[...]`` classes are not supported).
    field : only fields of this name.
    status : only fields with this status, one of ``FIELD_STATUSES``.
    min_confidence : only fields at least this confident (0-1).

    Raises
    ------
    ValueError
        ``status`` is not a field status.
    """
    statement = (
        select(Field)
        .join(Field.page)
        .join(Page.document)
        .options(contains_eager(Field.page).contains_eager(Page.document), selectinload(Field.digits))
        .order_by(Document.id, Page.number, Field.id)
    )
    if batch_id is not None:
        statement = statement.where(Document.batch_id == batch_id)
    if document_glob is not None:
        statement = statement.where(Document.path.like(glob_to_like(document_glob), escape=_LIKE_ESCAPE))
    if field is not None:
        statement = statement.where(Field.name == field)
    if status is not None:
        statement = statement.where(Field.status == _checked_field_status(status))
    if min_confidence is not None:
        statement = statement.where(Field.confidence >= min_confidence)
    return statement


def iter_results(session: Session, **filters: Any) -> Iterator[dict]:
    """Stream the fields :func:`results_query` selects as JSON Lines records.

    One dict per field::

        {"document": path as submitted, "sha256", "page": 1-based, "field", "kind",
         "value", "text", "confidence", "status", "reasons": [...], "bbox": [x, y, w, h],
         "digits": [{"bbox", "label", "confidence",
                     "cnn": {"label", "probability"}, "svm": {"label", "score"}}]}
    """
    statement = results_query(session, **filters).execution_options(yield_per=_STREAM_ROWS)
    for row in session.scalars(statement):
        yield field_record(row)


def field_record(field: Field) -> dict:
    """The JSON Lines record of one stored field (its page and document loaded)."""
    page = field.page
    document = page.document
    return {
        "document": document.path,
        "sha256": document.sha256,
        "page": page.number,
        "field": field.name,
        "kind": field.kind,
        "value": field.value,
        "text": field.text,
        "confidence": field.confidence,
        "status": field.status,
        "reasons": field.reasons.split("; ") if field.reasons else [],
        "bbox": field.bbox,
        "digits": [
            {
                "bbox": d.bbox,
                "label": d.label,
                "confidence": d.confidence,
                "cnn": {"label": d.cnn_label, "probability": d.cnn_probability},
                "svm": {"label": d.svm_label, "score": d.svm_score},
            }
            for d in field.digits
        ],
    }


def glob_to_like(pattern: str) -> str:
    """A SQL LIKE pattern (escape character ``\\``) for an fnmatch-style ``*``/``?`` glob."""
    out = []
    for char in pattern:
        if char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        elif char in ("%", "_", _LIKE_ESCAPE):
            out.append(_LIKE_ESCAPE + char)
        else:
            out.append(char)
    return "".join(out)


def _checked_field_status(status: str) -> str:
    if status not in FIELD_STATUSES:
        raise ValueError(f"unknown field status {status!r}; valid statuses are {', '.join(FIELD_STATUSES)}")
    return status


# --- review ------------------------------------------------------------------------------------


def review_queue(session: Session, limit: int = 50, batch_id: int | None = None) -> list[Field]:
    """Fields waiting for review, most doubtful (lowest confidence) first, with page, document and digits."""
    statement = (
        select(Field)
        .join(Field.page)
        .join(Page.document)
        .options(contains_eager(Field.page).contains_eager(Page.document), selectinload(Field.digits))
        .where(Field.status == "review")
        .order_by(Field.confidence, Field.id)
        .limit(limit)
    )
    if batch_id is not None:
        statement = statement.where(Document.batch_id == batch_id)
    return list(session.scalars(statement))


def get_field(session: Session, field_id: int) -> Field | None:
    """The field with this id, or None."""
    return session.get(Field, field_id)


def accept_field(session: Session, field: Field, who: str) -> None:
    """Confirm a field's reading as it stands.

    The field becomes "accepted" (a "corrected" field stays "corrected") and
    the decision is recorded as a correction whose old and new values are
    equal, so that every review action appears in ``corrections``.
    """
    session.add(Correction(field=field, old_value=field.text, new_value=field.text, who=who))
    if field.status != "corrected":
        field.status = "accepted"
    session.flush()


def correct_field(session: Session, field: Field, new_value: str, who: str, problems: list[str] | None = None) -> None:
    """Replace a field's reading with what a reviewer typed.

    ``new_value`` becomes the field's text; its value is the digits of it
    (separators dropped).  The change is recorded as a correction and the
    field becomes "corrected"; typing the text it already had is an accept.

    Parameters
    ----------
    problems : validation problems of ``new_value``, computed by the caller
        (:meth:`ocr.template.Validation.problems`).

    Raises
    ------
    ValueError
        ``problems`` is not empty; the field is left unchanged.
    """
    if problems:
        raise ValueError(f"{field.name}: {new_value!r} is not valid: {'; '.join(problems)}")
    if new_value == field.text:
        accept_field(session, field, who)
        return
    session.add(Correction(field=field, old_value=field.text, new_value=new_value, who=who))
    field.text = new_value
    field.value = "".join(char for char in new_value if char.isdigit())
    field.status = "corrected"
    session.flush()


# --- reports -----------------------------------------------------------------------------------


def batch_status(session: Session, batch_id: int | None = None) -> list[dict]:
    """Progress of each batch (or only ``batch_id``), oldest batch first.

    Each dict holds ``id``, ``name``, ``template``, ``created_at``,
    ``documents`` (total) and one count per document status (``queued``,
    ``processing``, ``done``, ``failed``), ``review`` (fields waiting for
    review), ``pages`` (pages of done documents), ``problem_pages`` (pages
    stored with problems, e.g. not registered onto the template), and
    ``started_at`` / ``finished_at``: the first start and last finish among its
    documents (UTC, None before any), from which callers derive rates.
    """
    batches = select(Batch).order_by(Batch.id)
    if batch_id is not None:
        batches = batches.where(Batch.id == batch_id)
    out: dict[int, dict] = {
        b.id: {
            "id": b.id,
            "name": b.name,
            "template": b.template,
            "created_at": _as_utc(b.created_at),
            "documents": 0,
            **dict.fromkeys(DOCUMENT_STATUSES, 0),
            "review": 0,
            "pages": 0,
            "problem_pages": 0,
            "started_at": None,
            "finished_at": None,
        }
        for b in session.scalars(batches)
    }
    if not out:
        return []

    def _in_batches(statement: Select) -> Select:
        return statement if batch_id is None else statement.where(Document.batch_id == batch_id)

    by_status = select(Document.batch_id, Document.status, func.count()).group_by(Document.batch_id, Document.status)
    for bid, status, count in session.execute(_in_batches(by_status)):
        out[bid][status] = out[bid].get(status, 0) + count
        out[bid]["documents"] += count
    times = select(Document.batch_id, func.min(Document.started_at), func.max(Document.finished_at)).group_by(
        Document.batch_id
    )
    for bid, first, last in session.execute(_in_batches(times)):
        out[bid]["started_at"] = _as_utc(first)
        out[bid]["finished_at"] = _as_utc(last)
    review = (
        select(Document.batch_id, func.count())
        .select_from(Field)
        .join(Document, Field.document_id == Document.id)
        .where(Field.status == "review")
        .group_by(Document.batch_id)
    )
    for bid, count in session.execute(_in_batches(review)):
        out[bid]["review"] = count
    pages = (
        select(Document.batch_id, func.count(), func.count(Page.problems))
        .select_from(Page)
        .join(Page.document)
        .where(Document.status == "done")
        .group_by(Document.batch_id)
    )
    for bid, count, with_problems in session.execute(_in_batches(pages)):
        out[bid]["pages"] = count
        out[bid]["problem_pages"] = with_problems
    return list(out.values())


def export_rows(session: Session, batch_id: int | None = None) -> tuple[list[str], list[dict]]:
    """Final values as table rows (for CSV), returned as ``(columns, rows)``.

    Documents of batches with a template give one row per document: columns
    ``document``, ``sha256``, ``status``, then one per field name (the field's
    final text); a name that occurs on several pages of a document becomes
    ``p<N>.<name>``.  Documents without a template give one row per field:
    ``document``, ``page``, ``field``, ``value``, ``text``, ``confidence``,
    ``status`` (the field's).  With both kinds, templated rows come first and
    the columns are the union; every row has every column (None where empty).
    """
    templated = Batch.template.is_not(None)
    documents = select(Document.id, Document.path, Document.sha256, Document.status).join(Document.batch)
    fields = (
        select(
            Document.id,
            Document.path,
            Page.number,
            Field.name,
            Field.value,
            Field.text,
            Field.confidence,
            Field.status,
        )
        .select_from(Field)
        .join(Field.page)
        .join(Page.document)
        .join(Document.batch)
        .order_by(Document.id, Page.number, Field.id)
    )
    if batch_id is not None:
        documents = documents.where(Document.batch_id == batch_id)
        fields = fields.where(Document.batch_id == batch_id)

    by_document: dict[int, dict] = {}
    for doc_id, path, sha256, status in session.execute(documents.where(templated).order_by(Document.id)):
        by_document[doc_id] = {"document": path, "sha256": sha256, "status": status}
    templated_fields = session.execute(fields.where(templated)).all()
    repeated = _repeated_names(templated_fields)
    field_columns: dict[str, None] = {}  # an insertion-ordered set
    for doc_id, _path, number, name, _value, text, _confidence, _status in templated_fields:
        column = f"p{number}.{name}" if (doc_id, name) in repeated else name
        field_columns.setdefault(column)
        by_document[doc_id][column] = text

    untemplated = [
        dict(zip(UNTEMPLATED_COLUMNS, row[1:], strict=True)) for row in session.execute(fields.where(~templated))
    ]

    columns: list[str] = []
    if by_document:
        columns += TEMPLATED_COLUMNS + list(field_columns)
    if untemplated:
        columns += [c for c in UNTEMPLATED_COLUMNS if c not in columns]
    rows = [*by_document.values(), *untemplated]
    return columns, [{c: row.get(c) for c in columns} for row in rows]


def _repeated_names(rows: Sequence) -> set[tuple[int, str]]:
    """``(document id, field name)`` pairs that occur more than once (on several pages)."""
    counts = Counter((doc_id, name) for doc_id, _path, _number, name, *_ in rows)
    return {key for key, count in counts.items() if count > 1}


# --- time --------------------------------------------------------------------------------------


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _as_utc(moment: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes; digitflow stores only UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment
