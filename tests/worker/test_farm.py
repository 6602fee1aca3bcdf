"""The farm against the real Redis and PostgreSQL: submit, Celery worker subprocesses, SIGKILL, retry, status.

Each test gets its own PostgreSQL database schema and its own Redis queue, and
starts workers as ``celery -A worker.app worker`` subprocesses configured
through ``DIGITFLOW_*`` variables, exactly as a user would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cli import app
from db.models import Batch, Document, Field
from ocr.samples import generate_samples
from worker.config import Settings
from worker.pipeline import read_document

pytestmark = [pytest.mark.services, pytest.mark.slow]

REDIS_URL = os.environ.get("DIGITFLOW_TEST_REDIS", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def farm(postgres_url, tmp_path):
    """Environment of one farm: an empty PostgreSQL schema, a private Redis queue, short time limits."""
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis not reachable at {REDIS_URL} ({exc}); set DIGITFLOW_TEST_REDIS")
    queue = f"digitflow-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DIGITFLOW_DATABASE_URL": postgres_url.render_as_string(hide_password=False),
        "DIGITFLOW_BROKER_URL": REDIS_URL,
        "DIGITFLOW_QUEUE": queue,
        # A whole worker lost is noticed after the visibility timeout: keep it short here.
        "DIGITFLOW_TASK_SOFT_TIME_LIMIT": "20",
        "DIGITFLOW_TASK_TIME_LIMIT": "25",
        "DIGITFLOW_VISIBILITY_TIMEOUT": "30",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    workers: list[subprocess.Popen] = []

    class Farm:
        url = env["DIGITFLOW_DATABASE_URL"]

        def __init__(self) -> None:
            self.queue = queue

        def cli(self, *args: str):
            return runner.invoke(app, list(args), env=env)

        def start_worker(self, name: str, concurrency: int = 1, **overrides: str) -> subprocess.Popen:
            log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115  (closed with the process)
            command = [sys.executable, "-m", "celery", "-A", "worker.app", "worker", "--loglevel=INFO"]
            command += [f"--concurrency={concurrency}", f"--hostname={name}@%h", "--without-mingle", "--without-gossip"]
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**env, **overrides},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: SIGKILL reaches the pool too
            )
            workers.append(process)
            return process

        def log(self, name: str) -> str:
            return (tmp_path / f"{name}.log").read_text(errors="replace")

    yield Farm()
    for process in workers:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    client.delete(queue, f"{queue}\x06\x163", f"{queue}\x06\x166", f"{queue}\x06\x169")
    engine.dispose()


@pytest.fixture(scope="module")
def scans(tmp_path_factory, mnist) -> Path:
    root = tmp_path_factory.mktemp("farm-scans")
    generate_samples(
        root, "forms", 8, seed=11, digits=mnist.x_test, labels=mnist.y_test, formats=["png", "tiff_bilevel"]
    )
    return root


@pytest.fixture(scope="module")
def expected(scans, models) -> dict[str, dict[tuple[int, str], str]]:
    """What the reader returns for each scan in this process: the farm must store exactly that."""
    out = {}
    for path in sorted(scans.glob("form_*.*")):
        if path.suffix == ".json":
            continue
        readings, _ = read_document(str(path), None, None, models, Settings(), {})
        out[str(path)] = {(r.number, f.name): f.value for r in readings for f in r.fields}
    return out


def _stored(url: str) -> tuple[dict[str, dict[tuple[int, str], str]], dict[str, Document]]:
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            documents = {d.path: d for d in session.scalars(select(Document))}
            values: dict[str, dict[tuple[int, str], str]] = {p: {} for p in documents}
            names = Counter()
            for field in session.scalars(select(Field)):
                document = session.get(Document, field.document_id)
                key = (field.page.number, field.name)
                names[(document.path, key)] += 1
                values[document.path][key] = field.value
            duplicated = [k for k, n in names.items() if n > 1]
            assert not duplicated, f"fields stored twice: {duplicated[:5]}"
            session.expunge_all()
        return values, documents
    finally:
        engine.dispose()


def _wait_until_finished(farm, timeout: float = 300) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = farm.cli("status", "--json")
        rows = json.loads(result.output)
        if rows and all(r["queued"] + r["processing"] == 0 for r in rows):
            return rows
        time.sleep(1)
    raise AssertionError(f"batch not finished in {timeout} s: {rows}")


def _wait_for(condition, timeout: float, what: str, every: float = 0.2):
    """The first true value of ``condition()``, polled every ``every`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def _count(url: str, statement) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(statement).scalar_one()
    finally:
        engine.dispose()


def test_submit_workers_read_every_document_once(farm, scans, expected):
    bad = scans.parent / f"{scans.name}-bad"
    bad.mkdir(exist_ok=True)
    (bad / "truncated.png").write_bytes((scans / "form_0000.png").read_bytes()[:500])

    submitted = farm.cli("submit", str(scans), str(bad), "--name", "farm test")
    assert submitted.exit_code == 0, submitted.output
    batch_id = int(submitted.stdout.strip().splitlines()[-1])
    assert "9 queued" in submitted.output

    # Before any worker runs, status shows the whole batch queued.
    before = farm.cli("status", str(batch_id))
    assert before.exit_code == 0 and "farm test" in before.output
    assert json.loads(farm.cli("status", str(batch_id), "--json").output)[0]["queued"] == 9

    farm.start_worker("a", concurrency=2)
    rows = _wait_until_finished(farm)
    assert rows[0]["done"] == 8 and rows[0]["failed"] == 1
    values, documents = _stored(farm.url)
    assert values == {**expected, str(bad / "truncated.png"): {}}
    assert "truncated" in documents[str(bad / "truncated.png")].error
    assert all(d.attempts == 1 for d in documents.values())
    finished = farm.cli("status")
    assert "finished" in finished.output

    # A redelivered message for a document already done changes nothing (a review stays as it is).
    done = documents[str(scans / "form_0002.png")]
    fields_before = _count(farm.url, select(func.count()).select_from(Field))
    again = farm.cli("submit", str(scans))
    assert "8 already processed, 0 queued" in again.output
    _send(farm, done.id)
    _wait_for(lambda: "skipped': True" in farm.log("a"), 60, "the duplicate message to be handled")
    assert _count(farm.url, select(func.count()).select_from(Field)) == fields_before
    assert _count(farm.url, select(Document.attempts).where(Document.id == done.id)) == 1

    # retry --failed sends the broken file again; it fails again, for the same reason.
    retried = farm.cli("retry", str(batch_id), "--failed")
    assert retried.exit_code == 0 and "1 document(s) queued again" in retried.output
    rows = _wait_until_finished(farm)
    assert rows[0]["failed"] == 1
    _, documents = _stored(farm.url)
    assert "truncated" in documents[str(bad / "truncated.png")].error

    # retry --stuck picks up a document left "processing" past the time limit (its worker vanished).
    engine = create_engine(farm.url)
    with engine.begin() as connection:
        connection.execute(
            update(Document)
            .where(Document.id == done.id)
            .values(status="processing", started_at=func.now() - text("interval '1 hour'"))
        )
    engine.dispose()
    assert "1 document(s) queued again" in farm.cli("retry", "--stuck").output
    _wait_until_finished(farm)
    values, documents = _stored(farm.url)
    assert values[str(scans / "form_0002.png")] == expected[str(scans / "form_0002.png")]


def _send(farm, document_id: int) -> None:
    """One more task message for a document, as a broker redelivery would produce."""
    from worker.app import TASK_NAME, make_app

    celery = make_app(Settings(broker_url=REDIS_URL, queue=farm.queue))
    celery.send_task(TASK_NAME, args=[document_id], queue=farm.queue)


def _processing(url: str) -> list[int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(select(Document.id).where(Document.status == "processing")).scalars())
    finally:
        engine.dispose()


def _signal(pids: list[int], signum: int) -> None:
    """Send ``signum`` to each process that still exists (a pool process may be replaced meanwhile)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_sigkill_mid_batch_loses_nothing_and_duplicates_nothing(farm, scans, expected):
    submitted = farm.cli("submit", str(scans))
    assert submitted.exit_code == 0, submitted.output
    # Duplicate messages for the last documents, as a redelivering broker would send: still one result each.
    ids = [d.id for d in _stored(farm.url)[1].values()]
    spare = ids[-2:]  # the last ones: the victims below must not be among them
    for document_id in spare:
        _send(farm, document_id)

    a = farm.start_worker("a", concurrency=1)

    def frozen_mid_document(other_than: int | None = None) -> tuple[int, list[int]] | None:
        # Stop the pool where it is, then look: a stopped process cannot finish its document
        # between the look and the kill (on a fast machine a document takes some 60 ms).
        children = _children(a.pid)
        _signal(children, signal.SIGSTOP)
        documents = [i for i in _processing(farm.url) if i != other_than and i not in spare]
        if children and documents:
            return documents[0], children
        _signal(children, signal.SIGCONT)
        return None

    # 1. Kill the pool process in the middle of a document: the message goes straight back to the queue.
    first_victim, children = _wait_for(frozen_mid_document, 120, "a document in processing", every=0.02)
    _signal(children, signal.SIGKILL)
    # 2. Kill the whole worker (main process and pool) in the middle of another document.
    second_victim, _ = _wait_for(
        lambda: frozen_mid_document(first_victim), 120, "a second document in processing", every=0.02
    )
    os.killpg(a.pid, signal.SIGKILL)
    a.wait()
    assert second_victim in _processing(farm.url)

    # Another worker takes over; the message of the vanished worker comes back after the visibility timeout.
    farm.start_worker("b", concurrency=2)
    rows = _wait_until_finished(farm, timeout=400)
    assert rows[0]["done"] == len(expected) and rows[0]["failed"] == 0
    values, documents = _stored(farm.url)  # also asserts no field is stored twice
    assert values == expected
    attempts = {d.id: d.attempts for d in documents.values()}
    assert attempts[first_victim] >= 2 and attempts[second_victim] >= 2
    assert "WorkerLostError" in farm.log("a") or "Worker exited prematurely" in farm.log("a")


def test_submit_with_broker_down_records_nothing(farm, scans):
    result = farm.cli("submit", str(scans), "--broker", "redis://127.0.0.1:1/0")
    assert result.exit_code == 8
    assert "broker not reachable at redis://127.0.0.1:1/0" in result.output
    assert _count(farm.url, select(func.count()).select_from(Batch)) == 0
    assert _count(farm.url, select(func.count()).select_from(Document)) == 0


def test_time_limits_longer_than_the_visibility_timeout_are_refused():
    env = {"DIGITFLOW_TASK_TIME_LIMIT": "4000", "DIGITFLOW_VISIBILITY_TIMEOUT": "3600"}
    result = runner.invoke(app, ["status", "--db", "sqlite://"], env=env)
    assert result.exit_code == 2
    assert "visibility_timeout" in result.output


def test_task_events_are_sent_only_once_a_monitor_enables_them(farm, scans, tmp_path):
    """Workers publish no task events by default; Flower's ``enable_events`` turns them on."""
    import threading

    from worker.app import make_app

    celery = make_app(Settings(broker_url=REDIS_URL, queue=farm.queue))
    seen: list[str] = []
    with celery.connection_for_read() as connection:
        receiver = celery.events.Receiver(connection, handlers={"*": lambda event: seen.append(event["type"])})
        listener = threading.Thread(target=receiver.capture, kwargs={"wakeup": False}, daemon=True)
        listener.start()
        farm.start_worker("ev")
        _wait_for(lambda: "worker-online" in seen, 120, "the worker to come online")
        first, second = tmp_path / "first", tmp_path / "second"
        for directory, name in ((first, "form_0000.png"), (second, "form_0002.png")):
            directory.mkdir()
            (directory / name).write_bytes((scans / name).read_bytes())

        assert farm.cli("submit", str(first)).exit_code == 0
        _wait_until_finished(farm)
        assert not [t for t in seen if t.startswith("task-")]

        celery.control.enable_events()  # what Flower does when it starts
        assert farm.cli("submit", str(second)).exit_code == 0
        _wait_until_finished(farm)
        _wait_for(lambda: "task-succeeded" in seen, 10, "a task-succeeded event")
        receiver.should_stop = True
        listener.join(5)
    assert {"task-received", "task-started", "task-succeeded"} <= set(seen)
