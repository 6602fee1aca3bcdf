"""How fast `digitflow submit` records and queues a large directory (the farm's client side).

    python bench/submit.py [--files 10000] [--db URL] [--broker URL]

Writes ``--files`` distinct scan files (copies of one example form, each with
its own trailing bytes, so every sha256 differs), then times the three steps of
a submit: finding the files, hashing and recording them in the database, and
sending one message each to a private Redis queue, which is deleted afterwards.
Defaults: the local PostgreSQL (a throwaway database, dropped afterwards) and
Redis.  Prints a table and then one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import ADMIN_DB, throwaway_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--db", default=None, help="database URL (default: a throwaway PostgreSQL database)")
    parser.add_argument("--admin-db", default=ADMIN_DB)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()

    from contextlib import nullcontext

    from sqlalchemy import make_url

    database = throwaway_database(args.admin_db) if args.db is None else nullcontext(args.db)
    with database as url:
        files, submission, sent, queued, (t0, t1, t2, t3) = submit_generated(url, args.broker, args.files)

    result = {
        "files": len(files),
        "recorded": len(submission.document_ids),
        "sent": sent,
        "in_queue": queued,
        "find_s": round(t1 - t0, 3),
        "hash_and_record_s": round(t2 - t1, 3),
        "enqueue_s": round(t3 - t2, 3),
        "total_s": round(t3 - t0, 3),
        "database": make_url(url).get_backend_name(),
    }
    print(f"{'step':<18} {'seconds':>8}")
    for key in ("find_s", "hash_and_record_s", "enqueue_s", "total_s"):
        print(f"{key[:-2]:<18} {result[key]:>8.2f}")
    print(
        f"{result['files']} files, {result['recorded']} recorded, "
        f"{result['sent']} messages ({result['in_queue']} in queue)"
    )
    print(json.dumps(result))


def submit_generated(url: str, broker: str, count: int):
    """Write ``count`` distinct files, then find, record and enqueue them, timing each step."""
    from db.engine import make_engine, make_session_factory, upgrade_schema
    from worker.app import make_app
    from worker.config import Settings
    from worker.embedded import discover_files, record_files
    from worker.farm import check_broker, enqueue_documents

    scratch = Path(tempfile.mkdtemp(prefix="digitflow-submit-"))
    queue = f"digitflow-bench-{uuid.uuid4().hex[:8]}"
    app = make_app(Settings(database_url=url, broker_url=broker, queue=queue))
    engine = make_engine(url)
    try:
        source = (ROOT / "examples" / "forms" / "form_0001.png").read_bytes()
        for i in range(count):
            sub = scratch / f"{i // 1000:03d}"
            sub.mkdir(exist_ok=True)
            (sub / f"scan_{i:06d}.png").write_bytes(source + f"digitflow-bench {i}".encode())
        upgrade_schema(engine)
        factory = make_session_factory(engine)

        t0 = time.perf_counter()
        check_broker(app)
        files = discover_files([scratch])
        t1 = time.perf_counter()
        submission = record_files(factory, files, "bench", None)
        t2 = time.perf_counter()
        sent = enqueue_documents(app, submission.document_ids, queue)
        t3 = time.perf_counter()
        with app.connection_for_write() as connection:
            queued = connection.default_channel.client.llen(queue)
    finally:
        engine.dispose()
        shutil.rmtree(scratch, ignore_errors=True)
        with app.connection_for_write() as connection:
            connection.default_channel.client.delete(queue)
    return files, submission, sent, queued, (t0, t1, t2, t3)


if __name__ == "__main__":
    main()
