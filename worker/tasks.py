"""The one Celery task: process a document by id through :func:`worker.pipeline.process_document`.

Models and the database engine are created once per worker process
(``worker_process_init``), never per task.  Only transient trouble (database
unreachable, connection dropped) is retried, with exponential backoff; bad
input is not an exception here at all: the pipeline stores it as ``failed``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict

from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init, worker_process_shutdown
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from worker.app import TASK_NAME, app
from worker.config import Settings
from worker.pipeline import WorkerResources, fail_document_now, load_worker_resources, process_document

log = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OperationalError, InterfaceError, PoolTimeoutError)

_STATE: dict = {}


def _settings() -> Settings:
    return app.conf.digitflow_settings


@worker_process_init.connect
def load_worker_state(**_kwargs) -> None:
    """Load the models and open the engine in each pool process, after the fork."""
    _state()


@worker_process_shutdown.connect
def close_worker_state(**_kwargs) -> None:
    resources = _STATE.pop("resources", None)
    if resources is not None:
        resources.engine.dispose()


def _state() -> WorkerResources:
    if "resources" not in _STATE:
        resources = load_worker_resources(_settings())
        _STATE["resources"] = resources
        log.info("pid %d: models loaded, database %s", os.getpid(), resources.engine.url.render_as_string())
    return _STATE["resources"]


@app.task(
    name=TASK_NAME,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=12,
)
def process_document_task(self, document_id: int) -> dict:
    """Read and store document ``document_id``; returns the outcome as a dict."""
    state = _state()
    settings = _settings()
    try:
        outcome = process_document(
            state.factory, state.models, document_id, settings, skip_done=True, reraise=(SoftTimeLimitExceeded,)
        )
    except LookupError:
        # The document was deleted after it was queued (or its batch was never committed).
        log.warning("document %s no longer exists; message dropped", document_id)
        return {"document_id": document_id, "status": "missing"}
    except SoftTimeLimitExceeded:
        reason = f"time limit: reading took more than {settings.task_soft_time_limit} s"
        fail_document_now(state.factory, document_id, reason)
        return {"document_id": document_id, "status": "failed", "error": reason}
    return asdict(outcome)
