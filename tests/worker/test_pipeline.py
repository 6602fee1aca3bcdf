"""process_document's guards: redelivered tasks, documents whose worker keeps dying, missing ids."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import func, select

from db.engine import make_engine, make_session_factory, upgrade_schema
from db.models import Document, Field
from db.queries import add_documents, create_batch
from ocr.samples import generate_samples
from worker.config import Settings
from worker.embedded import hash_file
from worker.pipeline import process_document


@pytest.fixture
def factory(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'digitflow.db'}")
    upgrade_schema(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def document_id(factory, tmp_path, mnist) -> int:
    path = generate_samples(tmp_path / "scans", "forms", 1, seed=3, digits=mnist.x_test, labels=mnist.y_test)[0]
    with factory.begin() as session:
        batch = create_batch(session, "one")
        return add_documents(session, batch, [(str(path), *hash_file(path))])[0].id


def _fields(factory) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(Field))


def test_running_twice_replaces_and_skip_done_leaves_results_alone(factory, document_id, models):
    settings = Settings()
    first = process_document(factory, models, document_id, settings)
    assert first.status == "done" and first.fields > 0
    assert process_document(factory, models, document_id, settings).fields == first.fields
    assert _fields(factory) == first.fields  # replaced, not added

    skipped = process_document(factory, models, document_id, settings, skip_done=True)
    assert skipped.skipped and skipped.status == "done"
    with factory() as session:
        assert session.get(Document, document_id).attempts == 2
    assert _fields(factory) == first.fields


def test_a_document_whose_worker_keeps_dying_is_failed_not_retried_forever(factory, document_id, models):
    settings = Settings(max_attempts=3)
    with factory.begin() as session:
        document = session.get(Document, document_id)
        document.status, document.attempts = "processing", 3  # three workers died on it
    outcome = process_document(factory, models, document_id, settings)
    assert outcome.status == "failed"
    assert "gave up after 3 attempts" in outcome.error
    with factory() as session:
        document = session.get(Document, document_id)
        assert document.status == "failed" and "worker was lost" in document.error


def test_an_unknown_document_id_is_a_lookup_error(factory, models):
    with pytest.raises(LookupError, match="no document with id 999"):
        process_document(factory, models, 999, Settings())


_FAULTS_SCRIPT = """
import ctypes, resource, sys
from worker.pipeline import keep_freed_memory
tuned = keep_freed_memory() if sys.argv[1] == "tuned" else None
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
size = 40 << 20  # over 32 MiB, the highest glibc moves its mmap threshold to by itself
def block():  # as OpenCV does with each buffer: malloc, write, free
    p = libc.malloc(size)
    ctypes.memset(p, 1, size)
    libc.free(p)
block()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    block()
print(tuned, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def test_worker_processes_reuse_freed_page_buffers_instead_of_faulting_them_in_again():
    import subprocess
    import sys
    from pathlib import Path

    import worker.pipeline

    root = Path(worker.pipeline.__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}

    def faults_per_block(mode: str) -> tuple[str, float]:
        run = subprocess.run(
            [sys.executable, "-c", _FAULTS_SCRIPT, mode], cwd=root, env=env, capture_output=True, text=True, check=True
        )
        tuned, faults = run.stdout.split()
        return tuned, float(faults)

    tuned, faults = faults_per_block("tuned")
    if tuned != "True":
        pytest.skip("this C library has no mallopt")
    # 40 MiB is 10,240 pages of 4 KiB: taken from the kernel and zeroed again for each block by
    # default, served from memory the process already holds once the thresholds are fixed.
    assert faults_per_block("default")[1] > 5000
    assert faults < 100
