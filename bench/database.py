"""Database speed: storing readings, and the queries users run over 1,000,000 stored fields.

    python bench/database.py [--fields 1000000] [--documents 300] [--admin-db URL] [--keep]

Two measurements, both through the functions in ``db/queries.py``:

1. Insert rate: ``store_reading`` for ``--documents`` documents (one page of 8
   fields of 6 digits, a ~3 KB PNG crop per field), one transaction per
   document with the row lock the worker takes, into PostgreSQL and into a
   temporary SQLite file.
2. Query latency: ``--fields`` fields (1 page of 8 fields per document, 6
   digits per field, 50 batches) are bulk-loaded server-side with
   ``INSERT ... SELECT FROM generate_series`` (not through ``store_reading``),
   then ``VACUUM ANALYZE``; each query runs once to warm up and then 5 times,
   and the median is reported.  Every distinct SQL statement a query sends is
   run again under ``EXPLAIN (ANALYZE, BUFFERS)`` and the plan of its slowest
   statement is summarised; results queries stream through a server-side cursor,
   which may plan for the first rows, while EXPLAIN plans for all of them.

Runs against a throwaway database ``digitflow_bench_<hex>`` created through
``--admin-db`` and dropped at the end (unless ``--keep``).  Prints a table
and then one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import ADMIN_DB, throwaway_database  # noqa: E402

FIELDS_PER_DOCUMENT = 8
DIGITS_PER_FIELD = 6
BATCHES = 50
TEMPLATE = "templates/invoice.json"
TEMPLATED_NAMES = ["account", "date", "amount", "invoice", "customer", "net", "vat", "total"]
RUNS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fields", type=int, default=1_000_000, help="fields to bulk-load for the query test")
    parser.add_argument("--documents", type=int, default=300, help="documents stored in the insert test")
    parser.add_argument("--admin-db", default=ADMIN_DB)
    parser.add_argument("--keep", action="store_true", help="do not drop the database afterwards")
    args = parser.parse_args()

    from sqlalchemy import make_url, text

    from db.engine import make_engine, make_session_factory, upgrade_schema

    started = time.perf_counter()
    with throwaway_database(args.admin_db, keep=args.keep) as url:
        created = make_url(url).database
        readings = make_readings(count=20)
        engine = make_engine(url)
        inserts = [measure_inserts(engine, readings, args.documents)]
        with tempfile.TemporaryDirectory(prefix="digitflow-bench-") as scratch:
            sqlite = make_engine(f"sqlite:///{scratch}/bench.db")
            upgrade_schema(sqlite)
            inserts.append(measure_inserts(sqlite, readings, args.documents))
            sqlite.dispose()

        clear_results(engine)
        load = load_fields(engine, args.fields)
        log = StatementLog(engine)
        queries = measure_queries(make_session_factory(engine), engine, log)
        with engine.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar_one()
        engine.dispose()

    slowest = max(queries, key=lambda q: q["median_ms"])
    result = {
        "postgresql": version,
        "database": created if args.keep else None,
        "insert": inserts,
        "load": load,
        "queries": [{k: v for k, v in q.items() if k != "explain"} for q in queries],
        "slowest": {"query": slowest["query"], "median_ms": slowest["median_ms"], **slowest["explain"]},
        "total_s": round(time.perf_counter() - started, 1),
    }
    print_table(result)
    print(json.dumps(result))


# --- insert test -------------------------------------------------------------------------------


def make_readings(count: int) -> list[tuple[list, dict[tuple[int, str], bytes]]]:
    """``count`` distinct documents as the worker hands them over: ``(page readings, PNG crops)``.

    One A4 page at 300 dpi (2480 x 3508 pixels) with 8 fields of 6 digits; one
    in ten fields needs review (a doubtful digit).  Crops are grey PNGs of the
    field's box with its digits drawn in, about 3 KB each.
    """
    import cv2
    import numpy as np

    from ocr.read import DigitReading, FieldReading, PageReading

    rng = np.random.default_rng(7)
    out = []
    for _ in range(count):
        fields, crops = [], {}
        for index in range(1, FIELDS_PER_DOCUMENT + 1):
            box = (int(300 + rng.integers(-6, 7)), int(400 + index * 300 + rng.integers(-6, 7)), 600, 80)
            labels = [int(v) for v in rng.integers(0, 10, DIGITS_PER_FIELD)]
            doubtful = int(rng.integers(0, DIGITS_PER_FIELD)) if rng.random() < 0.1 else -1
            digits = []
            for position, label in enumerate(labels):
                confidence = float(rng.uniform(0.4, 0.6) if position == doubtful else rng.uniform(0.9, 1.0))
                svm_label = (label + 1) % 10 if position == doubtful else label
                digits.append(
                    DigitReading(
                        bbox=(box[0] + 8 + position * 98, box[1] + 6, int(rng.integers(40, 70)), 68),
                        label=label,
                        confidence=confidence,
                        cnn_label=label,
                        cnn_prob=confidence,
                        svm_label=svm_label,
                        svm_prob=float(rng.uniform(0.5, 1.0)),
                        disagree=position == doubtful,
                        low_confidence=position == doubtful,
                    )
                )
            value = "".join(map(str, labels))
            fields.append(
                FieldReading(
                    name=f"field_{index}",
                    kind="box",
                    value=value,
                    text=value,
                    confidence=min(d.confidence for d in digits),
                    bbox=box,
                    digits=tuple(digits),
                    reasons=("1 doubtful digit(s)",) if doubtful >= 0 else (),
                )
            )
            crop = np.full((box[3] + 8, box[2] + 8), 250, np.uint8)
            cv2.rectangle(crop, (3, 3), (box[2] + 4, box[3] + 4), 30, 2)
            for position, label in enumerate(labels):
                origin = (16 + position * 98 + int(rng.integers(-4, 5)), 66 + int(rng.integers(-4, 5)))
                cv2.putText(crop, str(label), origin, cv2.FONT_HERSHEY_SIMPLEX, 2.0, 40, 4, cv2.LINE_AA)
            ok, png = cv2.imencode(".png", crop)
            crops[(1, f"field_{index}")] = png.tobytes()
        page = PageReading(1, 2480, 3508, float(rng.uniform(-1, 1)), tuple(fields), None, ())
        out.append(([page], crops))
    return out


def measure_inserts(engine, readings: list, documents: int) -> dict:
    """Store ``documents`` readings as ``worker/pipeline.py`` does: one transaction each, row locked."""
    from db.engine import make_session_factory
    from db.queries import add_documents, create_batch, lock_document, store_reading

    factory = make_session_factory(engine)
    with factory.begin() as session:
        batch = create_batch(session, "insert bench")
        files = [(f"/scans/bench/scan_{i:06d}.png", f"{i:064x}", 250_000) for i in range(documents)]
        ids = [d.id for d in add_documents(session, batch, files)]

    fields = digits = crop_bytes = 0
    started = time.perf_counter()
    for document_id, (pages, crops) in zip(ids, itertools.cycle(readings)):
        with factory.begin() as session:
            document, has_results = lock_document(session, document_id)
            store_reading(session, document, pages, crops, {"load": 0.01}, has_results=has_results, flush=False)
        fields += sum(len(p.fields) for p in pages)
        digits += sum(len(f.digits) for p in pages for f in p.fields)
        crop_bytes += sum(len(c) for c in crops.values())
    seconds = time.perf_counter() - started
    return {
        "database": engine.dialect.name,
        "documents": documents,
        "fields": fields,
        "digits": digits,
        "crop_bytes_mean": round(crop_bytes / max(fields, 1)),
        "seconds": round(seconds, 3),
        "documents_per_s": round(documents / seconds, 1),
        "fields_per_s": round(fields / seconds),
        "digits_per_s": round(digits / seconds),
    }


def clear_results(engine) -> None:
    """Empty every table, so that the query test sees exactly the bulk-loaded rows."""
    from sqlalchemy import text

    with engine.begin() as connection:
        connection.execute(text("TRUNCATE batches, documents, pages, fields, digits, corrections RESTART IDENTITY"))


# --- bulk load ---------------------------------------------------------------------------------

_INSERT_BATCH = """
INSERT INTO batches (name, template) VALUES (:name, :template) RETURNING id
"""

# Documents read a little under a second each, one after another, ending now.
_INSERT_DOCUMENTS = """
INSERT INTO documents (batch_id, path, sha256, size, status, attempts, template,
                       created_at, started_at, finished_at, seconds)
SELECT CAST(:batch_id AS integer),
       format('/scans/2026/11/batch_%s/scan_%s.png', lpad(CAST(:number AS text), 3, '0'), lpad(i::text, 6, '0')),
       encode(sha256(convert_to('scan ' || i, 'UTF8')), 'hex'),
       150000 + (random() * 250000)::int,
       'done', 1, CAST(:template AS text),
       now() - (CAST(:total AS integer) - i + 10) * interval '1 second',
       now() - (CAST(:total AS integer) - i + 1) * interval '1 second',
       now() - (CAST(:total AS integer) - i) * interval '1 second',
       0.9
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS i
ORDER BY i
"""

_INSERT_PAGES = """
INSERT INTO pages (document_id, number, width, height, deskew_angle, registration_score, problems)
SELECT id, 1, 2480, 3508, round((random() * 2 - 1)::numeric, 2),
       CASE WHEN template IS NULL THEN NULL ELSE round((0.9 + random() * 0.1)::numeric, 3) END,
       NULL
FROM documents WHERE batch_id = :batch_id
ORDER BY id
"""

# 85 % accepted (confidence 0.75-1), 13 % review (0.5-0.9), 2 % corrected (0.5-0.8).
_INSERT_FIELDS = """
INSERT INTO fields (page_id, document_id, name, kind, value, text, confidence, status, reasons,
                    bbox_x, bbox_y, bbox_w, bbox_h, crop)
SELECT page_id, document_id, name, 'box', value,
       CASE WHEN name = 'amount' THEN substr(value, 1, 4) || '.' || substr(value, 5, 2) ELSE value END,
       CASE WHEN u < 0.85 THEN 0.75 + 0.25 * v WHEN u < 0.98 THEN 0.5 + 0.4 * v ELSE 0.5 + 0.3 * v END,
       CASE WHEN u < 0.85 THEN 'accepted' WHEN u < 0.98 THEN 'review' ELSE 'corrected' END,
       CASE WHEN u >= 0.85 AND u < 0.98 THEN '1 doubtful digit(s)' END,
       300 + (random() * 12)::int - 6, 400 + k * 300 + (random() * 12)::int - 6, 600, 80, NULL
FROM (
    SELECT p.id AS page_id, p.document_id, k, (CAST(:names AS text[]))[k] AS name,
           random() AS u, random() AS v, lpad((random() * 999999)::int::text, 6, '0') AS value
    FROM pages p JOIN documents d ON d.id = p.document_id
    CROSS JOIN generate_series(1, CAST(:per_document AS integer)) AS k
    WHERE d.batch_id = :batch_id
    ORDER BY p.document_id, k
    OFFSET 0
) AS s
"""

_INSERT_DIGITS = """
INSERT INTO digits (field_id, position, bbox_x, bbox_y, bbox_w, bbox_h, cnn_label, cnn_probability,
                    svm_label, svm_score, label, confidence, disagree, low_confidence)
SELECT id, position, bbox_x + 8 + position * 98, bbox_y + 6, 40 + (random() * 30)::int, 68,
       label, confidence, label, 0.5 + random() * 0.5, label, confidence,
       status = 'review' AND position = 0, status = 'review' AND position = 0
FROM (
    SELECT f.id, f.bbox_x, f.bbox_y, f.status, position,
           substr(f.value, position + 1, 1)::int AS label,
           least(1.0, f.confidence + random() * 0.05) AS confidence
    FROM fields f JOIN documents d ON d.id = f.document_id
    CROSS JOIN generate_series(0, CAST(:per_field AS integer) - 1) AS position
    WHERE d.batch_id = :batch_id
    ORDER BY f.id, position
    OFFSET 0
) AS s
"""


def load_fields(engine, fields: int) -> dict:
    """Bulk-load ``fields`` fields server-side into ``BATCHES`` batches, then VACUUM ANALYZE.

    Every fifth batch uses a template (fields "account", "date", "amount", ...),
    the others are read without one (fields "field_1" to "field_8").  Foreign
    key triggers are off during the load (``session_replication_role``), as
    for a restore: the rows are consistent by construction.
    """
    from sqlalchemy import text

    documents = fields // FIELDS_PER_DOCUMENT
    per_batch = -(-documents // BATCHES)
    started = time.perf_counter()
    first = 1
    for number in range(1, BATCHES + 1):
        last = min(documents, first + per_batch - 1)
        if last < first:
            break
        templated = number % 10 == 5
        template = TEMPLATE if templated else None
        names = TEMPLATED_NAMES if templated else [f"field_{i}" for i in range(1, FIELDS_PER_DOCUMENT + 1)]
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL synchronous_commit = off"))
            connection.execute(text("SET LOCAL session_replication_role = replica"))
            batch_id = connection.execute(
                text(_INSERT_BATCH), {"name": f"batch_{number:03d}", "template": template}
            ).scalar_one()
            connection.execute(
                text(_INSERT_DOCUMENTS),
                {
                    "batch_id": batch_id,
                    "number": number,
                    "template": template,
                    "first": first,
                    "last": last,
                    "total": documents,
                },
            )
            connection.execute(text(_INSERT_PAGES), {"batch_id": batch_id})
            connection.execute(
                text(_INSERT_FIELDS),
                {"batch_id": batch_id, "names": names, "per_document": FIELDS_PER_DOCUMENT},
            )
            connection.execute(text(_INSERT_DIGITS), {"batch_id": batch_id, "per_field": DIGITS_PER_FIELD})
        first = last + 1
    loaded = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
        counts = {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("batches", "documents", "pages", "fields", "digits")
        }
        size = connection.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))")).scalar_one()
        review = connection.execute(text("SELECT count(*) FROM fields WHERE status = 'review'")).scalar_one()
    return {
        **counts,
        "review_fields": review,
        "load_s": round(loaded - started, 1),
        "vacuum_analyze_s": round(time.perf_counter() - loaded, 1),
        "database_size": size,
    }


# --- query test --------------------------------------------------------------------------------


class StatementLog:
    """Records the SQL statements an engine sends, with their parameters, while ``recording``."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.recording = False
        self.statements: list[tuple[str, object]] = []

        @event.listens_for(engine, "before_cursor_execute")
        def _record(_conn, _cursor, statement, parameters, _context, executemany) -> None:
            if self.recording and not executemany:
                self.statements.append((statement, parameters))

    def capture(self, fn: Callable[[], object]) -> list[tuple[str, object]]:
        self.statements = []
        self.recording = True
        try:
            fn()
        finally:
            self.recording = False
        return self.statements


def measure_queries(factory, engine, log: StatementLog) -> list[dict]:
    """Median milliseconds of each user query over ``RUNS`` runs after one warm-up."""
    from sqlalchemy import select

    from db.models import Batch
    from db.queries import batch_status, iter_results, review_queue

    with factory() as session:
        batch_ids = {name: id_ for name, id_ in session.execute(select(Batch.name, Batch.id))}
    by_batch = {"batch_id": batch_ids["batch_025"]}
    selective = [
        (f"batch_id={by_batch['batch_id']} (batch_025)", by_batch),
        ('field="amount"', {"field": "amount"}),
        ('status="review", min_confidence=0.85', {"status": "review", "min_confidence": 0.85}),
        ('document_glob="/scans/2026/11/batch_017/*"', {"document_glob": "/scans/2026/11/batch_017/*"}),
    ]

    def results(filters: dict, limit: int | None) -> Callable[[], int]:
        def run() -> int:
            with factory() as session:
                records = iter_results(session, **filters)
                count = sum(1 for _ in itertools.islice(records, limit))
                records.close()
                return count

        return run

    def call(fn: Callable, *args, **kwargs) -> Callable[[], int]:
        def run() -> int:
            with factory() as session:
                return len(fn(session, *args, **kwargs))

        return run

    cases: list[tuple[str, Callable[[], int]]] = []
    for label, filters in selective:
        cases.append((f"iter_results {label}, first 100", results(filters, 100)))
        cases.append((f"iter_results {label}, all", results(filters, None)))
    cases.append(("iter_results no filter, first 100", results({}, 100)))
    cases.append(("review_queue(limit=50)", call(review_queue, limit=50)))
    cases.append(("batch_status()", call(batch_status)))
    cases.append((f"batch_status({by_batch['batch_id']})", call(batch_status, by_batch["batch_id"])))

    out = []
    for label, run in cases:
        statements = log.capture(run)  # the warm-up run
        times, rows = [], 0
        for _ in range(RUNS):
            started = time.perf_counter()
            rows = run()
            times.append((time.perf_counter() - started) * 1000)
        explain = explain_statements(engine, statements)
        out.append(
            {
                "query": label,
                "rows": rows,
                "median_ms": round(statistics.median(times), 1),
                "min_ms": round(min(times), 1),
                "max_ms": round(max(times), 1),
                "statements": len(statements),
                "server_ms": explain["server_ms"],
                "plan": explain["plan"],
                "explain": explain,
            }
        )
    return out


def explain_statements(engine, statements: list[tuple[str, object]]) -> dict:
    """EXPLAIN ANALYZE every statement: their total server time, and the slowest one's plan.

    Each statement runs to completion here, also those a caller stopped
    reading after the first rows.
    """
    slowest, total_ms = None, 0.0
    with engine.connect() as connection:
        for statement, parameters in statements:
            plan = connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters
            ).scalar_one()[0]
            total_ms += plan["Execution Time"]
            if slowest is None or plan["Execution Time"] > slowest[1]["Execution Time"]:
                slowest = (statement, plan)
        connection.rollback()
    statement, plan = slowest
    return {
        "server_ms": round(total_ms, 1),
        "statement": " ".join(statement.split())[:600],
        "execution_ms": round(plan["Execution Time"], 1),
        "plan": summarize_plan(plan["Plan"]),
    }


def summarize_plan(node: dict, depth: int = 0) -> list[str]:
    """One line per plan node, indented by depth: type, relation or index, actual ms and rows."""
    line = ("Parallel " if node.get("Parallel Aware") else "") + node["Node Type"]
    if "Index Name" in node:
        line += f" using {node['Index Name']}"
    if "Relation Name" in node:
        line += f" on {node['Relation Name']}"
    if "Sort Key" in node:
        line += f" by {', '.join(node['Sort Key'])}"
    loops = node.get("Actual Loops", 1)
    line += f" ({node['Actual Total Time']:.1f} ms, {node['Actual Rows']:,} rows"
    line += f" x {loops} loops)" if loops > 1 else ")"
    lines = ["  " * depth + line]
    for child in node.get("Plans", []):
        lines += summarize_plan(child, depth + 1)
    return lines


# --- report ------------------------------------------------------------------------------------


def print_table(result: dict) -> None:
    print("store_reading, one transaction per document (1 page, 8 fields, 6 digits, crops)")
    print(f"{'database':<12} {'documents':>9} {'seconds':>8} {'docs/s':>8} {'fields/s':>9} {'digits/s':>9}")
    for r in result["insert"]:
        print(
            f"{r['database']:<12} {r['documents']:>9,} {r['seconds']:>8.2f} {r['documents_per_s']:>8.1f} "
            f"{r['fields_per_s']:>9,} {r['digits_per_s']:>9,}"
        )
    load = result["load"]
    print(
        f"\nbulk load: {load['fields']:,} fields, {load['digits']:,} digits, {load['documents']:,} documents, "
        f"{load['batches']} batches in {load['load_s']} s, VACUUM ANALYZE {load['vacuum_analyze_s']} s, "
        f"{load['database_size']} (PostgreSQL {result['postgresql']})"
    )
    print(
        f"\n{'query (median of 5 after a warm-up)':<74} {'rows':>7} {'ms':>8} {'min':>8} {'max':>8}"
        f" {'SQL':>4} {'server ms':>10}"
    )
    for q in result["queries"]:
        print(
            f"{q['query']:<74} {q['rows']:>7,} {q['median_ms']:>8.1f} {q['min_ms']:>8.1f} {q['max_ms']:>8.1f}"
            f" {q['statements']:>4} {q['server_ms']:>10.1f}"
        )
    print("(SQL: statements sent; server ms: their EXPLAIN ANALYZE execution times, each run to completion)")
    slowest = result["slowest"]
    print(f"\nslowest: {slowest['query']}; its slowest statement ({slowest['execution_ms']} ms in EXPLAIN ANALYZE):")
    for line in slowest["plan"]:
        print(f"  {line}")


if __name__ == "__main__":
    main()
