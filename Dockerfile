# digitflow: one image for the CLI and the Celery worker.
#   docker build -t digitflow .
#   docker run --rm digitflow --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=3

# OpenCV's headless wheel still links against GLib.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md cli.py ./
COPY ocr ./ocr
COPY worker ./worker
COPY db ./db
RUN pip install . && useradd --create-home --uid 1000 digitflow

# Scans are mounted at /scans (read-only) in every container, so that the
# paths recorded by `submit` are the paths the workers open.
USER digitflow
WORKDIR /home/digitflow
ENTRYPOINT ["digitflow"]
CMD ["worker"]
