"""Throughput of the farm (Celery + Redis + PostgreSQL) on the pages of bench/pipeline.py.

    python bench/farm.py [--pages 200] [--workers 1 2] [--rounds 3] [--seed 2026] [--no-embedded]

For each worker count: a throwaway PostgreSQL database and a private Redis
queue; one `celery -A worker.app worker --concurrency N` subprocess, timed only
once its pool processes have loaded their models; then `submit` of the page
directory and the wait until every document is finished.  Reports pages/s
(from the end of submit to the last document stored, and from the
database's first start to last finish), the submit time, and the peak
resident memory of each pool process.  Unless ``--no-embedded``, the embedded
runner is measured on the same pages, so the farm's rate per worker can be
compared with it.  The host's speed drifts from minute to minute, so the
measurement is repeated ``--rounds`` times: in each round every farm run has an
embedded run of the same worker count beside it, their order alternating from
round to round, and the summary gives the median over the rounds of each rate
and of the farm-to-embedded ratio.  Prints a table and then one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import ADMIN_DB, add_page_arguments, celery_worker, children, generate_pages, peak_rss_mib, throwaway_farm  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_page_arguments(parser)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3, help="farm and embedded runs, alternated, this many times")
    parser.add_argument("--admin-db", default=ADMIN_DB)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--no-embedded", action="store_true", help="skip the embedded runs")
    args = parser.parse_args()

    from pipeline import measure_run

    files = generate_pages(args.cache, args.pages, args.seed, args.data)
    rounds = []
    for index in range(args.rounds):
        farm, embedded = [], []
        for workers in args.workers:
            # The host's speed drifts within minutes: each farm run sits beside an embedded
            # run of the same worker count, and which goes first alternates from round to round.
            for what in ("farm", "embedded") if index % 2 == 0 else ("embedded", "farm"):
                if what == "farm":
                    farm.append(measure_farm(files, workers, args.admin_db, args.broker))
                elif not args.no_embedded:
                    embedded.append(measure_run(files, workers))
        for f, e in zip(farm, embedded, strict=False):
            f["ratio_to_embedded"] = round(f["pages_per_s"] / e["pages_per_s"], 3)
        rounds.append({"round": index + 1, "farm": farm, "embedded": embedded})
    result = {"pages": len(files), "rounds": rounds, "summary": summarise(rounds, args.workers)}
    print_table(result)
    print(json.dumps(result))


def summarise(rounds: list[dict], worker_counts: list[int]) -> list[dict]:
    """Per worker count: the median over the rounds of each rate, and of the farm-to-embedded ratio."""
    summary = []
    for i, workers in enumerate(worker_counts):
        farm = [r["farm"][i]["pages_per_s"] for r in rounds]
        embedded = [r["embedded"][i]["pages_per_s"] for r in rounds if r["embedded"]]
        ratios = [r["farm"][i]["ratio_to_embedded"] for r in rounds if "ratio_to_embedded" in r["farm"][i]]
        summary.append(
            {
                "workers": workers,
                "farm_pages_per_s": round(statistics.median(farm), 2),
                "embedded_pages_per_s": round(statistics.median(embedded), 2) if embedded else None,
                "ratio_to_embedded": round(statistics.median(ratios), 3) if ratios else None,
                "ratios": ratios,
            }
        )
    return summary


def measure_farm(files: list[Path], workers: int, admin_url: str, broker: str) -> dict:
    from sqlalchemy import func, select

    from db.engine import make_engine, make_session_factory
    from db.models import Document
    from worker.app import make_app
    from worker.config import Settings
    from worker.farm import submit_files

    with throwaway_farm(admin_url, broker) as env:
        url, queue = env["DIGITFLOW_DATABASE_URL"], env["DIGITFLOW_QUEUE"]
        settings = Settings(database_url=url, broker_url=broker, queue=queue)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        started = time.perf_counter()
        with celery_worker(env, workers) as worker:
            startup = time.perf_counter() - started
            t0 = time.perf_counter()
            submission = submit_files(make_app(settings), factory, settings, [files[0].parent], "bench", None)
            t1 = time.perf_counter()
            total = len(submission.document_ids)
            finished_statuses = Document.status.in_(["done", "failed"])
            while True:
                with factory() as session:
                    finished = session.scalar(select(func.count()).select_from(Document).where(finished_statuses))
                if finished >= total:
                    break
                time.sleep(0.1)
            t2 = time.perf_counter()
            memory = [peak_rss_mib(pid) for pid in children(worker.pid)]
        with factory() as session:
            first, last = session.execute(select(func.min(Document.started_at), func.max(Document.finished_at))).one()
            failed = session.scalar(select(func.count()).select_from(Document).where(Document.status == "failed"))
        engine.dispose()
    pages = len(files)
    busy = (last - first).total_seconds()
    return {
        "workers": workers,
        "documents": total,
        "failed": failed,
        "startup_s": round(startup, 2),
        "submit_s": round(t1 - t0, 2),
        "seconds": round(t2 - t1, 2),
        "pages_per_s": round(pages / (t2 - t1), 2),
        "pages_per_s_per_worker": round(pages / (t2 - t1) / workers, 2),
        "pages_per_s_in_database": round(pages / busy, 2),
        "peak_rss_mib_per_pool_process": memory,
    }


def print_table(result: dict) -> None:
    print(f"{result['pages']} form pages")
    header = f"{'round':>5} {'':>9} {'workers':>7} {'pages/s':>8} {'per worker':>10} {'vs embedded':>11}"
    print(f"{header} {'peak RSS MiB':>14}")
    for r in result["rounds"]:
        for f in r["farm"]:
            rss = "/".join(f"{m:.0f}" for m in f["peak_rss_mib_per_pool_process"])
            ratio = f"{f['ratio_to_embedded']:.2f}" if "ratio_to_embedded" in f else "-"
            print(
                f"{r['round']:>5} {'farm':>9} {f['workers']:>7} {f['pages_per_s']:>8.2f} "
                f"{f['pages_per_s_per_worker']:>10.2f} {ratio:>11} {rss:>14}"
            )
        for e in r["embedded"]:
            rss = "/".join(f"{m:.0f}" for m in e["peak_rss_mib_per_worker"])
            rate = f"{e['pages_per_s']:>8.2f} {e['pages_per_s_per_worker']:>10.2f}"
            print(f"{r['round']:>5} {'embedded':>9} {e['workers']:>7} {rate} {'':>11} {rss:>14}")
    print("median over the rounds:")
    for s in result["summary"]:
        ratio = f"{s['ratio_to_embedded']:.2f}" if s["ratio_to_embedded"] is not None else "-"
        embedded = f"{s['embedded_pages_per_s']:.2f}" if s["embedded_pages_per_s"] is not None else "-"
        farm = f"farm {s['farm_pages_per_s']:.2f} pages/s"
        print(f"  {s['workers']} worker(s): {farm}, embedded {embedded}, farm/embedded {ratio}")


if __name__ == "__main__":
    main()
