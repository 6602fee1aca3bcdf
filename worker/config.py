"""One Settings object, read once from the environment (``DIGITFLOW_*``) at the edge."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration of digitflow; every field can be set as ``DIGITFLOW_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="DIGITFLOW_", frozen=True, extra="ignore")

    database_url: str = "sqlite:///digitflow.db"
    broker_url: str = "redis://localhost:6379/0"
    model_dir: Path | None = None  # default: the models shipped in ocr/models
    pdf_dpi: int = 200
    max_pixels: int = 100_000_000
    max_file_bytes: int = 500_000_000
    # Celery: a task running past the hard limit is killed; the broker redelivers a task
    # not acknowledged within the visibility timeout, which must exceed the hard limit.
    task_soft_time_limit: int = 240
    task_time_limit: int = 300
    visibility_timeout: int = 3600
    concurrency: int = 2


def load_settings(**overrides) -> Settings:
    """Settings from the environment, with explicit overrides (CLI options) on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
