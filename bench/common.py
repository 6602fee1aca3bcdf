"""What the benchmarks share: generated pages, throwaway databases and queues, worker subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def generate_pages(cache: Path, pages: int, seed: int, data: Path) -> list[Path]:
    """``pages`` generated forms (one page per file), drawn once and reused from ``cache``."""
    from ocr.samples import generate_samples

    folder = cache / f"forms-{pages}-seed{seed}"
    done = folder / ".complete"
    if not done.exists():
        from ocr.mnist import load_mnist

        mnist = load_mnist(data)
        formats = ["png", "jpeg", "tiff_bilevel", "bmp", "pdf"]  # one page each: pages/s means pages
        generate_samples(folder, "forms", pages, seed, mnist.x_test, mnist.y_test, formats=formats)
        done.write_text("ok")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".json" and not p.name.startswith("."))


ADMIN_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def add_page_arguments(parser, pages: int = 200, seed: int = 2026) -> None:
    """The options that choose the generated pages (see :func:`generate_pages`)."""
    parser.add_argument("--pages", type=int, default=pages)
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist.npz")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "digitflow-bench")


@contextmanager
def throwaway_database(admin_url: str, keep: bool = False) -> Iterator[str]:
    """A fresh PostgreSQL database with the schema migrated; yields its URL, drops it afterwards
    (unless ``keep``)."""
    from sqlalchemy import create_engine, make_url, text

    from db.engine import make_engine, upgrade_schema

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    name = f"digitflow_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url)
        upgrade_schema(engine)
        engine.dispose()
        yield url
    finally:
        if not keep:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def throwaway_farm(admin_url: str, broker: str) -> Iterator[dict]:
    """A fresh PostgreSQL database (schema migrated) and a private Redis queue, removed afterwards.

    Yields the environment a worker subprocess needs (``DIGITFLOW_*``).
    """
    import redis

    queue = f"digitflow-bench-{uuid.uuid4().hex[:8]}"
    with throwaway_database(admin_url) as url:
        env = {
            **os.environ,
            "DIGITFLOW_DATABASE_URL": url,
            "DIGITFLOW_BROKER_URL": broker,
            "DIGITFLOW_QUEUE": queue,
            "DIGITFLOW_THREADS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
        try:
            yield env
        finally:
            with suppress(redis.RedisError):
                redis.Redis.from_url(broker).delete(queue)


@contextmanager
def celery_worker(env: dict, concurrency: int, name: str = "bench") -> Iterator[subprocess.Popen]:
    """A `celery -A worker.app worker` subprocess, yielded once every pool process has loaded its models;
    stopped with a warm shutdown (SIGTERM) afterwards."""
    log_path = Path(tempfile.gettempdir()) / f"{env['DIGITFLOW_QUEUE']}-{name}.log"
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker.app", "worker", f"--concurrency={concurrency}"]
            + ["--loglevel=INFO", "--without-mingle", "--without-gossip", f"--hostname={name}@%h"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker.log_path = log_path
    try:
        while log_path.read_text(errors="replace").count("models loaded") < concurrency:
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield worker
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        log_path.unlink(missing_ok=True)


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")
