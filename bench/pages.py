"""The benchmarks' pages: generated form scans, drawn once and cached."""

from __future__ import annotations

from pathlib import Path


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
