"""digitflow: read handwritten numbers off scanned forms and cheques.

Each command is thin: it parses options, calls the same functions the
workers call, and turns a ``DigitflowError`` into one line and an exit code.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ocr.errors import DigitflowError

app = typer.Typer(
    help="Read handwritten numbers off scanned forms and cheques into a SQL database.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Local copy of MNIST (Keras's mnist.npz layout). Default: Keras's cache, downloaded if missing.",
        exists=True,
        dir_okay=False,
    ),
]


def _fail(exc: DigitflowError) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(exc.exit_code)


def _limit_to_cores(cores: int) -> None:
    """Pin this process to ``cores`` CPUs and size TensorFlow's thread pools to match.

    Must run before TensorFlow executes its first operation.
    """
    if hasattr(os, "sched_setaffinity"):
        available = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, set(available[:cores]))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(cores)
    tf.config.threading.set_inter_op_parallelism_threads(cores)


@app.command()
def train(
    data: DataOption = None,
    out: Annotated[Path, typer.Option(help="Directory to write the models and manifest to.")] = Path("ocr/models"),
    epochs: Annotated[int, typer.Option(min=1, help="CNN training epochs.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed of the validation split, augmentation and initialisation.")] = 1234,
) -> None:
    """Train the CNN and the HOG-SVM on MNIST train and write them with a manifest."""
    from ocr.mnist import load_mnist
    from ocr.training import TrainConfig, train_models

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command = "digitflow " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        mnist = load_mnist(data)
        console.print(f"training on {mnist.source} (sha256 {mnist.sha256[:12]}...)")
        manifest = train_models(
            mnist, out, TrainConfig(epochs=epochs, seed=seed), command, lambda line: console.print(line)
        )
    except DigitflowError as exc:
        raise _fail(exc) from exc
    _print_digit_metrics(manifest["metrics"]["mnist_test"])


@app.command()
def evaluate(
    data: DataOption = None,
    models: Annotated[Path | None, typer.Option(help="Model directory. Default: the shipped models.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Score only the first N test digits.")] = None,
    cores: Annotated[int, typer.Option(min=1, help="CPU cores to run (and time) the classifiers on.")] = 1,
) -> None:
    """Score the recognition engine on MNIST test: accuracy, agreement, error-vs-reject, speed."""
    _limit_to_cores(cores)
    from ocr.classifiers import MODEL_DIR, load_models
    from ocr.evaluation import evaluate_models
    from ocr.mnist import load_mnist

    try:
        mnist = load_mnist(data)
        loaded = load_models(models or MODEL_DIR)
    except DigitflowError as exc:
        raise _fail(exc) from exc
    x, y = mnist.x_test[:limit], mnist.y_test[:limit]
    result = evaluate_models(loaded, x, y, robustness=True, speed=True)
    result["speed"]["cores"] = cores
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        _print_digit_metrics(result)


def _print_digit_metrics(m: dict) -> None:
    table = Table(title=f"MNIST test, {m['digits']} digits (never trained on)")
    table.add_column("figure")
    table.add_column("clean", justify="right")
    has_distorted = "distorted" in m
    if has_distorted:
        table.add_column(f"distorted (seed {m['distorted']['seed']})", justify="right")
    sets = [m] + ([m["distorted"]] if has_distorted else [])

    def row(name: str, get) -> None:
        table.add_row(name, *[get(s) for s in sets])

    pct = "{:.2%}".format
    row("CNN accuracy", lambda s: pct(s["cnn_accuracy"]))
    row("HOG-SVM accuracy", lambda s: pct(s["svm_accuracy"]))
    row("combined accuracy (no reject)", lambda s: pct(s["combined_accuracy"]))
    row("agreement rate", lambda s: pct(s["agreement_rate"]))
    row("accuracy where both agree", lambda s: pct(s["accuracy_where_agree"]))
    row("decision: flagged for review", lambda s: pct(s["decision"]["reject_rate"]))
    row("decision: error among accepted", lambda s: f"{s['decision']['error_among_accepted']:.3%}")
    for i, point in enumerate(m["reject_curve"]):
        row(f"error at {point['reject_rate']:.1%} rejected", lambda s, i=i: f"{s['reject_curve'][i]['error_rate']:.3%}")
    console.print(table)
    confusions = ", ".join(f"{c['true']}->{c['predicted']} x{c['count']}" for c in m["confusions"])
    console.print(f"most frequent confusions (true->read): {confusions or 'none'}")
    if "speed" in m:
        s = m["speed"]
        console.print(
            f"speed on {s.get('cores', '?')} core(s), batches of {s['batch_size']}: "
            f"CNN {s['cnn_digits_per_s']:,.0f} digits/s, HOG-SVM {s['svm_digits_per_s']:,.0f} digits/s"
        )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
