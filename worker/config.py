"""One Settings object, read once from the environment (``DIGITFLOW_*``) at the edge."""

from __future__ import annotations

from pathlib import Path

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration of digitflow; every field can be set as ``DIGITFLOW_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="DIGITFLOW_", frozen=True, extra="ignore")

    database_url: str = "sqlite:///digitflow.db"
    broker_url: str = "redis://localhost:6379/0"
    model_dir: Path | None = None  # default: the models shipped in ocr/models
    pdf_dpi: int | None = None  # None: each page at its scanned image's resolution (ocr.load.load_pages)
    max_pixels: int = 100_000_000
    max_file_bytes: int = 500_000_000
    # Celery: a task running past the hard limit is killed; the broker redelivers a task
    # not acknowledged within the visibility timeout, which must exceed the hard limit.
    queue: str = "digitflow"
    task_soft_time_limit: int = 240
    task_time_limit: int = 300
    visibility_timeout: int = 3600
    concurrency: int = 0  # worker pool processes; 0: one per core
    threads: int = 1  # LiteRT, OpenCV, BLAS (and TensorFlow) threads per worker process (0: their defaults)
    # A document whose worker died this many times (killed, out of memory, over the
    # hard time limit) is marked failed instead of being handed out once more.
    max_attempts: int = 3
    max_memory_per_child_kib: int = 0  # 0: no limit; otherwise a pool process is replaced above it
    # Celery task events (task-received, -started, -succeeded) from the start.  Off, a
    # worker publishes none until a monitor asks for them: Flower does so by itself.
    task_events: bool = False

    @model_validator(mode="after")
    def _check_time_limits(self) -> Settings:
        if not 0 < self.task_soft_time_limit < self.task_time_limit < self.visibility_timeout:
            raise ValueError(
                "need 0 < task_soft_time_limit < task_time_limit < visibility_timeout (seconds), got "
                f"{self.task_soft_time_limit}, {self.task_time_limit}, {self.visibility_timeout}: "
                "a task still running past the visibility timeout would be handed to a second worker"
            )
        return self


def load_settings(**overrides) -> Settings:
    """Settings from the environment, with explicit overrides (CLI options) on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
