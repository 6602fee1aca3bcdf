"""End-to-end throughput of the embedded runner: decode, read and store generated form pages.

    python bench/pipeline.py [--pages 200] [--workers 1 2] [--seed 2026] [--cache DIR]

Draws ``--pages`` form scans (both layouts, every scan format, from MNIST test
digits; cached in ``--cache``), then:

1. decodes every file once in this process (load only): the ceiling;
2. for each worker count, records the files in a fresh SQLite database and
   processes them through the same code as `digitflow run` (the embedded
   runner's pool initializer and per-document function), after the pool has
   started and loaded its models, and reports pages/s and digits/s, the time
   per page in each stage (summed from the per-document timings the pipeline
   stores), and the peak resident memory of each worker process.

Prints a table and then one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import add_page_arguments, generate_pages  # noqa: E402

STAGES = ("load", "cleanup", "fields", "segmentation", "normalise", "cnn", "svm", "database")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_page_arguments(parser)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    files = generate_pages(args.cache, args.pages, args.seed, args.data)
    decode = measure_decode(files)
    runs = [measure_run(files, workers) for workers in args.workers]
    result = {
        "machine": {"cpus": os.cpu_count(), "cpu": platform.processor() or platform.machine()},
        "pages": len(files),
        "decode_only": decode,
        "runs": runs,
    }
    print_table(result)
    print(json.dumps(result))


def measure_decode(files: list[Path]) -> dict:
    from ocr.load import load_pages, read_scan_bytes

    started = time.perf_counter()
    pages = 0
    for path in files:
        pages += len(load_pages(read_scan_bytes(path)))
    seconds = time.perf_counter() - started
    return {"pages": pages, "seconds": round(seconds, 2), "pages_per_s": round(pages / seconds, 2)}


def measure_run(files: list[Path], workers: int) -> dict:
    from sqlalchemy import select

    from db.engine import make_engine, make_session_factory, upgrade_schema
    from db.models import Document
    from worker.config import Settings
    from worker.embedded import _init_worker, _process, record_files

    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'bench.db'}"
        engine = make_engine(url)
        upgrade_schema(engine)
        factory = make_session_factory(engine)
        submission = record_files(factory, files, f"bench {workers}", None)
        settings = Settings(database_url=url)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(settings,)) as pool:
            t0 = time.perf_counter()
            # Start every process and let it load its models before the clock runs.
            list(pool.map(_ready, range(workers), [workers] * workers))
            startup = time.perf_counter() - t0
            t1 = time.perf_counter()
            outcomes = list(pool.map(_process, submission.document_ids, chunksize=1))
            seconds = time.perf_counter() - t1
            memory = list(pool.map(_peak_memory_mib, range(workers), [workers] * workers))
        with factory() as session:
            timings = [d.timings or {} for d in session.scalars(select(Document))]
        engine.dispose()
    pages = sum(o.pages for o in outcomes)
    per_page_ms = {s: round(1000 * sum(t.get(s, 0.0) for t in timings) / pages, 2) for s in STAGES}
    return {
        "workers": workers,
        "documents": len(outcomes),
        "failed": sum(o.status == "failed" for o in outcomes),
        "pages": pages,
        "digits": sum(o.digits for o in outcomes),
        "fields": sum(o.fields for o in outcomes),
        "startup_s": round(startup, 2),
        "seconds": round(seconds, 2),
        "pages_per_s": round(pages / seconds, 2),
        "pages_per_s_per_worker": round(pages / seconds / workers, 2),
        "digits_per_s": round(sum(o.digits for o in outcomes) / seconds, 1),
        "stage_ms_per_page": per_page_ms,
        "stage_total_ms_per_page": round(sum(per_page_ms.values()), 2),
        "peak_rss_mib_per_worker": memory,
    }


def _ready(_index: int, workers: int) -> int:
    """Returns once this process has loaded its models; sleeps a little so that every
    process of the pool takes one of these calls (and starts) before any returns."""
    time.sleep(0.5 if workers > 1 else 0)
    return os.getpid()


def _peak_memory_mib(_index: int, workers: int) -> float:
    import resource

    time.sleep(0.5 if workers > 1 else 0)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def print_table(result: dict) -> None:
    d = result["decode_only"]
    print(f"{result['pages']} form pages; machine: {result['machine']['cpus']} CPUs ({result['machine']['cpu']})")
    print(f"decode only (1 process): {d['pages_per_s']:.2f} pages/s")
    print(f"{'workers':>7} {'pages/s':>8} {'per worker':>10} {'digits/s':>9} {'start-up s':>10} {'peak RSS MiB':>14}")
    for r in result["runs"]:
        rss = "/".join(f"{m:.0f}" for m in r["peak_rss_mib_per_worker"])
        print(
            f"{r['workers']:>7} {r['pages_per_s']:>8.2f} {r['pages_per_s_per_worker']:>10.2f} "
            f"{r['digits_per_s']:>9.1f} {r['startup_s']:>10.1f} {rss:>14}"
        )
    print("milliseconds per page, by stage:")
    print(f"{'workers':>7} " + " ".join(f"{s[:9]:>9}" for s in STAGES) + f" {'total':>8}")
    for r in result["runs"]:
        ms = r["stage_ms_per_page"]
        print(
            f"{r['workers']:>7} "
            + " ".join(f"{ms[s]:>9.1f}" for s in STAGES)
            + f" {r['stage_total_ms_per_page']:>8.1f}"
        )


if __name__ == "__main__":
    main()
