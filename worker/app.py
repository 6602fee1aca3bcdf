"""The Celery app, built from the one Settings object, and nothing else.

``celery -A worker.app worker`` and ``digitflow worker`` both start workers on
it.  Delivery is at least once, and the task is written to be safe to run
twice.  The pieces that make that hold together:

- ``task_acks_late``: a message is acknowledged only after the task has
  finished (its results are committed), so a worker that dies mid-task leaves
  the message unacknowledged;
- ``task_reject_on_worker_lost``: when a pool process dies (SIGKILL, out of
  memory), its message goes back to the queue at once instead of being
  acknowledged as failed;
- Redis ``visibility_timeout``: a message taken by a worker that vanished
  entirely (machine lost, SIGKILL of the whole worker) is handed out again
  once this many seconds have passed since it was taken.  It must exceed the
  hard time limit, or a task still running would be handed to a second
  worker; :class:`worker.config.Settings` refuses such a configuration;
- task events are off unless ``DIGITFLOW_TASK_EVENTS`` is set: a monitor
  such as Flower enables them on running workers (``enable_events``);
- ``worker_prefetch_multiplier = 1``: a worker holds at most one message per
  pool process beyond the ones it runs, so a dead worker strands few messages
  and a slow document does not hold others back.
"""

from __future__ import annotations

from celery import Celery

from worker.config import Settings, load_settings

TASK_NAME = "digitflow.process_document"


def make_app(settings: Settings) -> Celery:
    """A Celery app for ``settings`` (broker, queue, time limits, concurrency)."""
    app = Celery("digitflow", broker=settings.broker_url, include=["worker.tasks"])
    app.conf.update(
        task_default_queue=settings.queue,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # outcomes live in the database, not in a result backend
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        worker_prefetch_multiplier=1,
        # A pool process loads TensorFlow and the models before it reports for work;
        # Celery's default 4 s wait kills such a process, and its replacement, forever.
        worker_proc_alive_timeout=120,
        worker_concurrency=settings.concurrency or None,  # None: one per core
        worker_max_memory_per_child=settings.max_memory_per_child_kib or None,
        worker_hijack_root_logger=False,
        # Three events a task cost the worker's main process about 1.5 ms of CPU a document
        # (docs/performance.md); Flower turns them on over remote control when it starts.
        worker_send_task_events=settings.task_events,
        task_send_sent_event=settings.task_events,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits out a broker restart
        broker_transport_options={"visibility_timeout": settings.visibility_timeout},
        broker_pool_limit=2,
    )
    app.conf.digitflow_settings = settings
    return app


app = make_app(load_settings())
