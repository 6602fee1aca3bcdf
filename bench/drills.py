"""Fault drills of the farm that restart servers: Redis and PostgreSQL restarted mid-batch.

    python bench/drills.py [redis-restart] [redis-restart-aof] [postgres-restart] [--pages 120]

They restart the local servers, so they live here rather than in the test
suite (CI shares those servers), and need the rights to restart them (root
here).  Each drill: a throwaway database and queue, one worker
(concurrency 2) on generated form pages, the fault once a few documents are
done, then the recovery a user would run, and checks that every document is
`done`, none is stored twice, and each has the fields it had when read
undisturbed.  Prints a line per drill, then one JSON object; exits 1 if any
check fails.

- ``redis-restart``: Redis as configured here (no persistence) is shut down
  and started again.  The queued messages are gone with it; the documents
  stay `queued` in the database, and `digitflow retry --queued --stuck` sends
  them again.
- ``redis-restart-aof``: the same with Redis's append-only file on (as
  docker-compose.yml runs it): the queue survives, no retry is needed.
- ``postgres-restart``: PostgreSQL restarted mid-batch; tasks that hit the
  dropped connections are retried with backoff by Celery, nobody intervenes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import ADMIN_DB, add_page_arguments, celery_worker, generate_pages, throwaway_farm  # noqa: E402

DRILLS = ("redis-restart", "redis-restart-aof", "postgres-restart")
REDIS_ARGS = ["redis-server", "--bind", "127.0.0.1", "--port", "6379", "--daemonize", "yes", "--dir", "/var/lib/redis"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Checked below, not with choices=: Python 3.11's argparse checks the empty list an optional
    # positional gets as one value against the choices, and refuses a bare `bench/drills.py`.
    parser.add_argument("drills", nargs="*", help=f"drills to run, of {', '.join(DRILLS)} (default: all)")
    add_page_arguments(parser, pages=120, seed=77)
    parser.add_argument("--admin-db", default=ADMIN_DB)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    unknown = sorted(set(args.drills) - set(DRILLS))
    if unknown:
        parser.error(f"unknown drill(s) {', '.join(unknown)}; choose from {', '.join(DRILLS)}")
    drills = args.drills or list(DRILLS)

    files = generate_pages(args.cache, args.pages, args.seed, args.data)
    baseline = read_undisturbed(files)
    results = [run_drill(name, files, baseline, args.admin_db, args.broker) for name in drills]
    for r in results:
        verdict = "ok" if r["ok"] else "FAILED: " + "; ".join(r["problems"])
        print(
            f"{r['drill']:<18} {r['documents']} documents ({r['done_at_fault']} done at the fault), "
            f"{r['done']} done, {r['failed']} failed, "
            f"duplicates {r['duplicated_fields']}, recovery: {r['recovery']}, {r['seconds']:.0f} s: {verdict}"
        )
    print(json.dumps(results))
    sys.exit(0 if all(r["ok"] for r in results) else 1)


def read_undisturbed(files: list[Path]) -> dict[str, int]:
    """Fields per file when read in this process with nothing going wrong."""
    from ocr.classifiers import load_models
    from worker.config import Settings
    from worker.pipeline import read_document

    models = load_models()
    out = {}
    for path in files:
        readings, _ = read_document(str(path), None, None, models, Settings(), {})
        out[str(path.resolve())] = sum(len(r.fields) for r in readings)
    return out


def run_drill(name: str, files: list[Path], baseline: dict[str, int], admin_url: str, broker: str) -> dict:
    from sqlalchemy import func, select
    from sqlalchemy.exc import OperationalError

    from db.engine import make_engine, make_session_factory
    from db.models import Document, Field
    from worker.app import make_app
    from worker.config import Settings
    from worker.farm import submit_files

    started = time.perf_counter()
    recovery = "none"
    with throwaway_farm(admin_url, broker) as env:
        # Short limits, so that a task stranded by the fault comes back within the drill.
        env.update(
            DIGITFLOW_TASK_SOFT_TIME_LIMIT="20", DIGITFLOW_TASK_TIME_LIMIT="25", DIGITFLOW_VISIBILITY_TIMEOUT="30"
        )
        url, queue = env["DIGITFLOW_DATABASE_URL"], env["DIGITFLOW_QUEUE"]
        settings = Settings(database_url=url, broker_url=broker, queue=queue)
        engine = make_engine(url)
        factory = make_session_factory(engine)

        def counts() -> dict[str, int]:
            try:
                with factory() as session:
                    rows = session.execute(select(Document.status, func.count()).group_by(Document.status)).all()
            except OperationalError:  # the database is restarting
                return {"processing": -1}
            return dict(rows)

        if name == "redis-restart-aof":
            subprocess.run(["redis-cli", "config", "set", "appendonly", "yes"], check=True, capture_output=True)
            time.sleep(1)  # the rewrite of the append-only file starts in the background
        try:
            with celery_worker(env, 2, name="drill"):
                submit_files(make_app(settings), factory, settings, [files[0].parent], name, None)
                # Polled often: on a fast machine the whole batch takes a few seconds.
                _wait(lambda: counts().get("done", 0) >= 3, 300, every=0.05)
                at_fault = counts()
                fault(name)
                if name == "redis-restart":
                    time.sleep(5)  # the worker reconnects
                    # What a user runs after losing the broker's memory: the stranded documents go out again.
                    _wait(lambda: counts().get("processing", 0) == 0 or _stuck_for(factory, 26), 120)
                    subprocess.run(
                        [sys.executable, str(ROOT / "cli.py"), "retry", "--queued", "--stuck", "--broker", broker],
                        env=env,
                        check=True,
                        capture_output=True,
                        cwd=ROOT,
                    )
                    recovery = "digitflow retry --queued --stuck"
                _wait(lambda: counts().get("queued", 0) + counts().get("processing", 0) == 0, 400)
        finally:
            if name == "redis-restart-aof":
                subprocess.run(["redis-cli", "config", "set", "appendonly", "no"], capture_output=True)
        with factory() as session:
            per_document = dict(
                session.execute(
                    select(Document.path, func.count(Field.id)).outerjoin(Field).group_by(Document.path)
                ).all()
            )
            duplicated = session.scalar(
                select(func.count()).select_from(
                    select(Field.document_id, Field.page_id, Field.name)
                    .group_by(Field.document_id, Field.page_id, Field.name)
                    .having(func.count() > 1)
                    .subquery()
                )
            )
            attempts = max(session.scalars(select(Document.attempts)))
        final = counts()
        engine.dispose()
    problems = []
    if at_fault.get("done", 0) >= len(files):
        problems.append("the batch was finished before the fault: nothing was drilled (use more --pages)")
    if final.get("done", 0) != len(files):
        problems.append(f"statuses {final}")
    if duplicated:
        problems.append(f"{duplicated} fields stored twice")
    differing = [p for p, n in per_document.items() if baseline.get(p) != n]
    if differing:
        problems.append(f"{len(differing)} documents with other fields than undisturbed, e.g. {differing[:2]}")
    return {
        "drill": name,
        "documents": len(per_document),
        "done": final.get("done", 0),
        "failed": final.get("failed", 0),
        "duplicated_fields": duplicated,
        "max_attempts": attempts,
        "recovery": recovery,
        "done_at_fault": at_fault.get("done", 0),
        "seconds": round(time.perf_counter() - started, 1),
        "ok": not problems,
        "problems": problems,
    }


def fault(name: str) -> None:
    if name.startswith("redis-restart"):
        subprocess.run(["redis-cli", "shutdown"], capture_output=True)  # saves the AOF when it is on
        time.sleep(1)
        appendonly = ["--appendonly", "yes" if name == "redis-restart-aof" else "no"]
        subprocess.run(REDIS_ARGS + appendonly, check=True)
        _wait(lambda: subprocess.run(["redis-cli", "ping"], capture_output=True).returncode == 0, 30)
    elif name == "postgres-restart":
        subprocess.run(["pg_ctlcluster", "15", "main", "restart", "-m", "fast"], check=True)


def _stuck_for(factory, seconds: float) -> bool:
    import datetime as dt

    from sqlalchemy import func, select

    from db.models import Document

    with factory() as session:
        oldest = session.scalar(select(func.min(Document.started_at)).where(Document.status == "processing"))
    return oldest is not None and (dt.datetime.now(dt.UTC) - oldest).total_seconds() > seconds


def _wait(condition, timeout: float, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise TimeoutError(f"drill condition not reached in {timeout} s")


if __name__ == "__main__":
    main()
