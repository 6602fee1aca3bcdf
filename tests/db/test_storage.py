"""Storing readings and querying them back, on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, func, inspect, select, text

from db.engine import make_engine, upgrade_schema
from db.models import Base, Batch, Correction, Digit, Document, Field, Page
from db.queries import (
    UNREADABLE_NAME,
    Claim,
    accept_field,
    add_documents,
    batch_status,
    claim_document,
    correct_field,
    create_batch,
    export_rows,
    fail_document,
    get_field,
    glob_to_like,
    iter_results,
    lock_document,
    processed_sha256s,
    requeue_documents,
    results_query,
    review_queue,
    start_document,
    store_reading,
)
from ocr.read import DigitReading, FieldReading, PageReading

TABLES = {"batches", "documents", "pages", "fields", "digits", "corrections"}


def digit(label: int, x: int = 10, confidence: float = 0.99, cnn_prob: float = 0.98, svm_prob: float = 0.97):
    return DigitReading(
        bbox=(x, 20, 14, 22),
        label=label,
        confidence=confidence,
        cnn_label=label,
        cnn_prob=cnn_prob,
        svm_label=label,
        svm_prob=svm_prob,
        disagree=False,
        low_confidence=confidence < 0.9,
    )


def field(name: str, text_: str, confidence: float = 0.99, reasons: tuple[str, ...] = (), kind: str = "comb"):
    value = "".join(c for c in text_ if c.isdigit())
    digits = tuple(digit(int(c), x=10 + 16 * i, confidence=confidence) for i, c in enumerate(value))
    return FieldReading(
        name=name,
        kind=kind,
        value=value,
        text=text_,
        confidence=confidence,
        bbox=(100, 200, 300, 40),
        digits=digits,
        reasons=reasons,
    )


def page(number: int, *fields: FieldReading, problems: tuple[str, ...] = ()) -> PageReading:
    return PageReading(number, 1240, 1754, 0.5, tuple(fields), registration_score=0.9, problems=problems)


def counts(session, document_id: int | None = None) -> tuple[int, int, int]:
    """Pages, fields and digits stored (of one document, or all)."""
    pages = select(func.count()).select_from(Page)
    fields = select(func.count()).select_from(Field)
    digits = select(func.count()).select_from(Digit).join(Field)
    if document_id is not None:
        pages = pages.where(Page.document_id == document_id)
        fields = fields.where(Field.document_id == document_id)
        digits = digits.where(Field.document_id == document_id)
    return session.scalar(pages), session.scalar(fields), session.scalar(digits)


def stored_document(factory, path: str, pages: list[PageReading], batch_name: str = "b", template=None) -> int:
    """Submit, start and store one document in a batch of its own; its id."""
    with factory.begin() as session:
        batch = create_batch(session, batch_name, template)
        (document,) = add_documents(session, batch, [(path, f"sha-{path}", 1234)])
        start_document(session, document.id)
        store_reading(session, document, pages, None, {"load": 0.1})
        return document.id


# --- schema ------------------------------------------------------------------------------------


def test_migration_creates_the_schema_of_the_models(engine):
    assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == "0002"
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_upgrade_schema_twice_is_harmless(engine):
    upgrade_schema(engine)
    assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}


def test_sqlite_runs_in_wal_mode(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    try:
        with engine.connect() as connection:
            assert connection.scalar(text("PRAGMA journal_mode")) == "wal"
            assert connection.scalar(text("PRAGMA foreign_keys")) == 1
    finally:
        engine.dispose()


# --- documents ---------------------------------------------------------------------------------


def test_add_documents_inserts_ten_thousand_in_order(session_factory):
    files = [(f"scans/{i:05d}.png", f"{i:064x}", i) for i in range(10_000)]
    with session_factory.begin() as session:
        batch = create_batch(session, "big", "forms/a.yaml")
        documents = add_documents(session, batch, files)
        assert [d.path for d in documents] == [f[0] for f in files]
        assert all(d.id is not None and d.status == "queued" and d.attempts == 0 for d in documents)
        assert documents[0].template == "forms/a.yaml"
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Document)) == 10_000
        assert session.scalar(select(Document.size).where(Document.path == "scans/09999.png")) == 9999
        assert add_documents(session, batch, []) == []


def test_start_document_counts_attempts_and_rejects_unknown_ids(session_factory):
    with session_factory.begin() as session:
        (document,) = add_documents(session, create_batch(session, "b"), [("a.png", None, None)])
    for attempt in (1, 2):
        with session_factory.begin() as session:
            started = start_document(session, document.id)
            assert (started.status, started.attempts) == ("processing", attempt)
            assert started.started_at is not None
    with session_factory() as session, pytest.raises(LookupError, match="no document with id 999999"):
        start_document(session, 999_999)


def test_claim_document_starts_a_readable_document_in_one_statement(session_factory, engine):
    with session_factory.begin() as session:
        (document,) = add_documents(session, create_batch(session, "b"), [("a.png", "h", 5)])
    statements = []

    def record(_connection, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with session_factory.begin() as session:
            claim = claim_document(session, document.id, max_attempts=2)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert claim == Claim("a.png", "h", None)
    assert [s.split()[0] for s in statements] == ["UPDATE"]
    with session_factory() as session:
        stored = session.get(Document, document.id)
        assert (stored.status, stored.attempts) == ("processing", 1)
        assert stored.started_at is not None and stored.finished_at is None
    with session_factory.begin() as session:
        assert claim_document(session, document.id, max_attempts=2) is not None  # the second attempt
        assert claim_document(session, document.id, max_attempts=2) is None  # a third is refused
        assert claim_document(session, 999_999, max_attempts=2) is None
    with session_factory.begin() as session:
        store_reading(session, session.get(Document, document.id), [page(1)])
    with session_factory.begin() as session:
        assert claim_document(session, document.id, max_attempts=5, skip_done=True) is None  # done: left alone
        assert claim_document(session, document.id, max_attempts=5) is not None  # read again when asked
        assert session.get(Document, document.id).attempts == 3


def test_lock_document_says_whether_results_are_stored(session_factory):
    with session_factory.begin() as session:
        (document,) = add_documents(session, create_batch(session, "b"), [("a.png", None, None)])
    with session_factory.begin() as session:
        locked, has_results = lock_document(session, document.id)
        assert locked.id == document.id and not has_results
        store_reading(session, locked, [page(1, field("amount", "12.50"))], has_results=has_results, flush=False)
        assert locked.status == "done"
    with session_factory.begin() as session:
        locked, has_results = lock_document(session, document.id)
        assert has_results
        store_reading(session, locked, [page(1, field("amount", "99"))], has_results=has_results)
    with session_factory() as session:
        assert counts(session, document.id) == (1, 1, 2)  # replaced, not added to
        assert session.get(Document, document.id).status == "done"
        with pytest.raises(LookupError, match="no document with id 999999"):
            lock_document(session, 999_999)


def test_processed_sha256s_only_counts_done_documents(session_factory):
    with session_factory.begin() as session:
        batch = create_batch(session, "b")
        files = [(f"{i}.png", f"h{i}", None) for i in range(1200)]
        documents = add_documents(session, batch, files)
        for d in documents[::2]:
            d.status = "done"
        documents[1].status = "failed"
    hashes = [f"h{i}" for i in range(1200)] + ["unknown"]
    with session_factory() as session:
        assert processed_sha256s(session, hashes) == {f"h{i}" for i in range(0, 1200, 2)}
        assert processed_sha256s(session, []) == set()


def test_store_reading_stores_everything_and_rerunning_replaces(session_factory):
    first = [
        page(1, field("account", "12345678"), field("amount", "1250.75", 0.6, ("1 doubtful digit(s)", "too big"))),
        page(2, problems=("page does not register",)),
    ]
    with session_factory.begin() as session:
        batch = create_batch(session, "b")
        (document,) = add_documents(session, batch, [("in/a.png", "abc", 10)])
        start_document(session, document.id)
    with session_factory.begin() as session:  # as the worker does: start and store in separate transactions
        document = session.get(Document, document.id)
        store_reading(session, document, first, {(1, "account"): b"\x89PNG..."}, {"load": 0.25, "ocr": 1.5})

    with session_factory() as session:
        document = session.get(Document, document.id)
        assert document.status == "done" and document.error is None
        assert document.finished_at is not None and document.seconds >= 0
        assert document.timings == {"load": 0.25, "ocr": 1.5}
        assert counts(session, document.id) == (2, 2, 14)
        page1, page2 = document.pages
        assert (page1.number, page1.width, page1.height, page1.deskew_angle) == (1, 1240, 1754, 0.5)
        assert page1.problems is None and page2.problems == "page does not register"
        account, amount = page1.fields
        assert (account.status, account.reasons, account.crop) == ("accepted", None, b"\x89PNG...")
        assert (amount.status, amount.reasons, amount.crop) == ("review", "1 doubtful digit(s); too big", None)
        assert (amount.value, amount.text, amount.bbox) == ("125075", "1250.75", [100, 200, 300, 40])
        d = account.digits[3]
        assert (d.position, d.label, d.bbox) == (3, 4, [58, 20, 14, 22])
        assert (d.cnn_label, d.cnn_probability, d.svm_label, d.svm_score) == (4, 0.98, 4, 0.97)
        assert (d.confidence, d.disagree, d.low_confidence) == (0.99, False, False)

    # A redelivered task reads the document again: one copy of the results remains,
    # even when the caller has the old pages loaded in its session.
    second = [page(1, field("account", "87654321"))]
    for _ in range(2):
        with session_factory.begin() as session:
            document = session.get(Document, document.id)
            assert document.pages  # loaded before replacing
            accept_field(session, document.pages[0].fields[0], "ann")
            store_reading(session, document, second, None, None)
            assert [p.number for p in document.pages] == [1]
    with session_factory() as session:
        assert counts(session) == (1, 1, 8)
        assert session.scalar(select(func.count()).select_from(Correction)) == 0
        assert session.scalar(select(Field.value)) == "87654321"
        assert session.get(Document, document.id).timings is None


def test_fail_document_keeps_the_reason_and_no_pages(session_factory):
    document_id = stored_document(session_factory, "x.pdf", [page(1, field("a", "12")), page(2, field("b", "3"))])
    with session_factory.begin() as session:
        fail_document(session, session.get(Document, document_id), "x.pdf: file not found")
    with session_factory() as session:
        document = session.get(Document, document_id)
        assert (document.status, document.error) == ("failed", "x.pdf: file not found")
        assert document.finished_at is not None and document.pages == []
        assert counts(session) == (0, 0, 0)


def test_requeue_failed_skips_undecodable_names_and_resets_the_rest(session_factory):
    with session_factory.begin() as session:
        batch = create_batch(session, "b", None)
        ok, missing, odd, waiting = add_documents(
            session, batch, [(p, None, None) for p in ("ok.png", "gone.png", "scan_\\xff.png", "queued.png")]
        )
        ok.status = "done"
        fail_document(session, missing, "gone.png: file not found")
        fail_document(session, odd, f"scan_\\xff.png: {UNREADABLE_NAME}")
        ids = {d.path: d.id for d in (ok, missing, odd, waiting)}
    with session_factory.begin() as session:
        assert requeue_documents(session, failed=True) == [ids["gone.png"]]
    with session_factory() as session:
        status = {d.path: (d.status, d.error) for d in session.scalars(select(Document))}
    assert status == {
        "ok.png": ("done", None),
        "gone.png": ("queued", None),
        "scan_\\xff.png": ("failed", f"scan_\\xff.png: {UNREADABLE_NAME}"),
        "queued.png": ("queued", None),
    }


# --- results -----------------------------------------------------------------------------------


@pytest.fixture
def two_batches(session_factory) -> tuple[int, int]:
    """Batch 1: three documents (one with ``_`` and ``%`` in its path); batch 2: one."""
    with session_factory.begin() as session:
        one, two = create_batch(session, "one"), create_batch(session, "two")
        docs = add_documents(
            session,
            one,
            [("scans/a.png", "sa", 1), ("scans/odd_50%.png", "sb", 2), ("scans/oddX50Y.png", "sc", 3)],
        )
        docs += add_documents(session, two, [("other/a.png", "sd", 4)])
        readings = [
            [page(1, field("account", "111", 0.99), field("amount", "2.50", 0.40, ("1 doubtful digit(s)",)))],
            [page(1, field("account", "222", 0.95)), page(2, field("amount", "9", 0.70, ("low",)))],
            [page(1, field("account", "333", 0.80, ("low",)))],
            [page(1, field("account", "444", 0.99))],
        ]
        for document, reading in zip(docs, readings, strict=True):
            start_document(session, document.id)
            store_reading(session, document, reading, None, None)
        return one.id, two.id


def fields_of(session, **filters) -> list[tuple[str, int, str]]:
    return [(r["document"], r["page"], r["field"]) for r in iter_results(session, **filters)]


def test_results_follow_the_json_lines_contract(session_factory, two_batches):
    with session_factory() as session:
        records = list(iter_results(session))
    record = records[1]
    assert list(record) == [
        "document",
        "sha256",
        "page",
        "field",
        "kind",
        "value",
        "text",
        "confidence",
        "status",
        "reasons",
        "bbox",
        "digits",
    ]
    assert record | {"digits": None} == {
        "document": "scans/a.png",
        "sha256": "sa",
        "page": 1,
        "field": "amount",
        "kind": "comb",
        "value": "250",
        "text": "2.50",
        "confidence": 0.4,
        "status": "review",
        "reasons": ["1 doubtful digit(s)"],
        "bbox": [100, 200, 300, 40],
        "digits": None,
    }
    assert record["digits"][1] == {
        "bbox": [26, 20, 14, 22],
        "label": 5,
        "confidence": 0.4,
        "cnn": {"label": 5, "probability": 0.98},
        "svm": {"label": 5, "score": 0.97},
    }
    assert [(r["document"], r["page"], r["field"]) for r in records] == [
        ("scans/a.png", 1, "account"),
        ("scans/a.png", 1, "amount"),
        ("scans/odd_50%.png", 1, "account"),
        ("scans/odd_50%.png", 2, "amount"),
        ("scans/oddX50Y.png", 1, "account"),
        ("other/a.png", 1, "account"),
    ]


def test_results_filters(session_factory, two_batches):
    one, two = two_batches
    with session_factory() as session:
        assert fields_of(session, batch_id=two) == [("other/a.png", 1, "account")]
        assert len(fields_of(session, batch_id=one)) == 5
        assert [d for d, _, _ in fields_of(session, document_glob="*/a.png")] == ["scans/a.png"] * 2 + ["other/a.png"]
        # `_` and `%` in a glob are literal characters, not LIKE wildcards.
        assert {d for d, _, _ in fields_of(session, document_glob="scans/odd_50%.png")} == {"scans/odd_50%.png"}
        assert {d for d, _, _ in fields_of(session, document_glob="scans/odd?50?.png")} == {
            "scans/odd_50%.png",
            "scans/oddX50Y.png",
        }
        assert fields_of(session, document_glob="scans") == []
        assert fields_of(session, field="amount") == [("scans/a.png", 1, "amount"), ("scans/odd_50%.png", 2, "amount")]
        assert [r["confidence"] for r in iter_results(session, status="review")] == [0.4, 0.7, 0.8]
        assert [r["confidence"] for r in iter_results(session, min_confidence=0.95)] == [0.99, 0.95, 0.99]
        assert fields_of(session, batch_id=one, field="account", status="accepted", min_confidence=0.9) == [
            ("scans/a.png", 1, "account"),
            ("scans/odd_50%.png", 1, "account"),
        ]
        # The statement can be paged as well as streamed.
        page2 = session.scalars(results_query(session).limit(2).offset(2)).all()
        assert [(f.page.document.path, f.name) for f in page2] == [
            ("scans/odd_50%.png", "account"),
            ("scans/odd_50%.png", "amount"),
        ]


def test_unknown_status_is_rejected_with_the_valid_ones(session_factory):
    with session_factory() as session, pytest.raises(ValueError, match="'reviewed'.*accepted, review, corrected"):
        list(iter_results(session, status="reviewed"))


@pytest.mark.parametrize(
    ("glob", "like"),
    [("*.png", "%.png"), ("a?c", "a_c"), ("odd_50%", "odd\\_50\\%"), ("c:\\scans\\*", "c:\\\\scans\\\\%")],
)
def test_glob_to_like(glob, like):
    assert glob_to_like(glob) == like


# --- review ------------------------------------------------------------------------------------


def test_review_queue_puts_the_most_doubtful_first(session_factory, two_batches):
    one, two = two_batches
    with session_factory() as session:
        queue = review_queue(session)
        assert [(f.name, f.confidence) for f in queue] == [("amount", 0.4), ("amount", 0.7), ("account", 0.8)]
        assert [f.page.document.path for f in queue][0] == "scans/a.png"
        assert len(review_queue(session, limit=2)) == 2
        assert review_queue(session, batch_id=two) == []


def test_accept_and_correct_record_every_review_action(session_factory, two_batches):
    with session_factory.begin() as session:
        doubtful, middling, low = review_queue(session)
        accept_field(session, middling, "ann")
        correct_field(session, doubtful, "3.50", "bob")
        correct_field(session, low, low.text, "cy")  # typing what was read is an accept
        ids = doubtful.id, middling.id, low.id
    with session_factory() as session:
        doubtful, middling, low = (get_field(session, i) for i in ids)
        assert (doubtful.status, doubtful.value, doubtful.text) == ("corrected", "350", "3.50")
        assert (middling.status, middling.value) == ("accepted", "9")
        assert (low.status, low.value) == ("accepted", "333")
        history = session.execute(
            select(Correction.field_id, Correction.old_value, Correction.new_value, Correction.who).order_by(
                Correction.id
            )
        ).all()
        assert history == [
            (middling.id, "9", "9", "ann"),
            (doubtful.id, "2.50", "3.50", "bob"),
            (low.id, "333", "333", "cy"),
        ]
        assert all(c.at is not None for c in doubtful.corrections)
        assert review_queue(session) == []
        assert get_field(session, 999_999) is None


def test_correct_with_problems_raises_and_changes_nothing(session_factory, two_batches):
    with session_factory.begin() as session:
        target = review_queue(session)[0]
        with pytest.raises(ValueError, match="has 5 digits, expected 3; not a date"):
            correct_field(session, target, "12345", "bob", ["has 5 digits, expected 3", "not a date"])
        target_id = target.id
    with session_factory() as session:
        target = get_field(session, target_id)
        assert (target.status, target.value, target.text, target.corrections) == ("review", "250", "2.50", [])


# --- reports -----------------------------------------------------------------------------------


def test_batch_status_counts_documents_pages_and_review(session_factory, two_batches):
    one, two = two_batches
    with session_factory.begin() as session:
        batch = session.get(Batch, one)
        queued, failing = add_documents(session, batch, [("scans/q.png", None, None), ("scans/f.png", None, None)])
        start_document(session, failing.id)
        fail_document(session, failing, "unreadable")
        stuck = add_documents(session, session.get(Batch, two), [("other/p.png", None, None)])[0]
        start_document(session, stuck.id)
    with session_factory() as session:
        first, second = batch_status(session)
        assert batch_status(session, batch_id=two) == [second]
    assert (first["id"], first["name"], first["documents"]) == (one, "one", 5)
    assert (first["queued"], first["processing"], first["done"], first["failed"]) == (1, 0, 3, 1)
    assert (first["review"], first["pages"], first["problem_pages"]) == (3, 4, 0)
    assert first["started_at"] <= first["finished_at"]
    assert first["created_at"] is not None and first["started_at"].tzinfo is not None
    assert (second["documents"], second["processing"], second["done"], second["review"]) == (2, 1, 1, 0)


def test_batch_status_of_an_empty_batch(session_factory):
    with session_factory.begin() as session:
        batch = create_batch(session, "empty", "forms/a.yaml")
    with session_factory() as session:
        (status,) = batch_status(session, batch.id)
        assert batch_status(session, batch.id + 1) == []
    assert (status["template"], status["documents"], status["done"], status["started_at"]) == (
        "forms/a.yaml",
        0,
        0,
        None,
    )


def test_export_rows_of_a_templated_batch(session_factory):
    document_id = stored_document(
        session_factory,
        "forms/1.pdf",
        [page(1, field("date", "01021990"), field("amount", "12.50")), page(2, field("date", "02031991"))],
        template="forms/cheque.yaml",
    )
    with session_factory.begin() as session:
        batch_id = session.get(Document, document_id).batch_id
        queued, failed = add_documents(
            session, session.get(Batch, batch_id), [("forms/2.pdf", "s2", 1), ("forms/3.pdf", "s3", 1)]
        )
        fail_document(session, failed, "unreadable")
        amount = session.scalars(select(Field).where(Field.name == "amount")).one()
        correct_field(session, amount, "13.50", "ann")
    with session_factory() as session:
        columns, rows = export_rows(session, batch_id)
    assert columns == ["document", "sha256", "status", "p1.date", "amount", "p2.date"]
    assert rows == [
        {
            "document": "forms/1.pdf",
            "sha256": "sha-forms/1.pdf",
            "status": "done",
            "p1.date": "01021990",
            "amount": "13.50",
            "p2.date": "02031991",
        },
        {
            "document": "forms/2.pdf",
            "sha256": "s2",
            "status": "queued",
            "p1.date": None,
            "amount": None,
            "p2.date": None,
        },
        {
            "document": "forms/3.pdf",
            "sha256": "s3",
            "status": "failed",
            "p1.date": None,
            "amount": None,
            "p2.date": None,
        },
    ]


def test_export_rows_of_untemplated_and_mixed_batches(session_factory):
    plain_id = stored_document(session_factory, "free.png", [page(1, field("field_1", "42", 0.5, ("low",)))])
    stored_document(session_factory, "form.png", [page(1, field("amount", "7"))], template="forms/cheque.yaml")
    with session_factory() as session:
        plain_batch = session.get(Document, plain_id).batch_id
        columns, rows = export_rows(session, plain_batch)
        assert columns == ["document", "page", "field", "value", "text", "confidence", "status"]
        assert rows == [
            {
                "document": "free.png",
                "page": 1,
                "field": "field_1",
                "value": "42",
                "text": "42",
                "confidence": 0.5,
                "status": "review",
            }
        ]
        columns, rows = export_rows(session)
    assert columns == ["document", "sha256", "status", "amount", "page", "field", "value", "text", "confidence"]
    assert [(r["document"], r["amount"], r["field"], r["status"]) for r in rows] == [
        ("form.png", "7", None, "done"),
        ("free.png", None, "field_1", "review"),
    ]
