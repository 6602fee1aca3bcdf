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
    epochs: Annotated[int, typer.Option(min=1, help="CNN training epochs.")] = 20,
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
    samples: Annotated[
        Path | None,
        typer.Option(
            help="Score page reading on sample scans with ground truth (from `digitflow samples`).",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    templates: Annotated[
        bool, typer.Option("--templates", help="With --samples: read each sample with its layout's template.")
    ] = False,
) -> None:
    """Score the recognition engine on MNIST test (accuracy, agreement, error-vs-reject, speed), or page reading on
    sample scans with --samples."""
    _limit_to_cores(cores)
    from ocr.classifiers import MODEL_DIR, load_models
    from ocr.evaluation import evaluate_models
    from ocr.mnist import load_mnist

    try:
        loaded = load_models(models or MODEL_DIR)
        if samples is not None:
            _evaluate_samples(samples, loaded, templates, as_json)
            return
        mnist = load_mnist(data)
    except DigitflowError as exc:
        raise _fail(exc) from exc
    x, y = mnist.x_test[:limit], mnist.y_test[:limit]
    result = evaluate_models(loaded, x, y, robustness=True, speed=True)
    result["speed"]["cores"] = cores
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        _print_digit_metrics(result)


def _evaluate_samples(directory: Path, models, templates: bool, as_json: bool) -> None:
    from ocr.sample_eval import evaluate_samples, find_samples

    if not find_samples(directory):
        raise typer.BadParameter(f"no scans with ground-truth .json files in {directory}", param_hint="--samples")
    result = evaluate_samples(directory, models, use_templates=templates)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    table = Table(title=f"page reading on {directory} ({result['mode']} mode)")
    for column in (
        "layout",
        "pages",
        "fields",
        "detected",
        "exact fields",
        "digits",
        "review",
        "error accepted",
        "spurious",
    ):
        table.add_column(column, justify="left" if column == "layout" else "right")
    for layout, r in [*result["layouts"].items(), ("all", result["overall"])]:
        table.add_row(
            layout,
            str(r["pages"]),
            str(r["fields"]),
            f"{r['field_detection_rate']:.1%}",
            f"{r['exact_field_accuracy']:.1%}",
            f"{r['digit_accuracy']:.1%}",
            f"{r['review_rate']:.1%}",
            f"{r['error_among_accepted']:.2%}",
            str(r["spurious_fields"]),
        )
    console.print(table)
    for problem in result["problems"]:
        console.print(f"[yellow]{problem}[/yellow]")


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


@app.command()
def samples(
    out: Annotated[Path, typer.Argument(help="Directory to write the scans and their ground truth to.")],
    kind: Annotated[str, typer.Option(help="forms, cheques or photos.")] = "forms",
    n: Annotated[int, typer.Option("-n", "--count", min=1, help="Number of scan files.")] = 10,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed draws the same files.")] = 0,
    data: DataOption = None,
) -> None:
    """Draw synthetic scans with ground truth JSON from MNIST test digits."""
    from ocr.mnist import load_mnist
    from ocr.samples import generate_samples

    if kind not in ("forms", "cheques", "photos"):
        raise typer.BadParameter("must be forms, cheques or photos", param_hint="--kind")
    try:
        mnist = load_mnist(data)
    except DigitflowError as exc:
        raise _fail(exc) from exc
    paths = generate_samples(out, kind, n, seed, mnist.x_test, mnist.y_test)
    console.print(f"wrote {len(paths)} {kind} scans with ground truth to {out}")


@app.command()
def read(
    scans: Annotated[list[Path], typer.Argument(help="Scan files to read.", exists=True, dir_okay=False)],
    template: Annotated[Path | None, typer.Option(help="Form template (YAML or JSON).", exists=True)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON Lines, one object per field.")] = False,
) -> None:
    """Read the digit fields of scans and print them (nothing is stored)."""
    from ocr.classifiers import load_models
    from ocr.load import load_pages
    from ocr.read import read_page
    from ocr.template import load_template

    try:
        loaded = load_models()
        form = load_template(template) if template else None
    except DigitflowError as exc:
        raise _fail(exc) from exc
    failed = 0
    for scan in scans:
        try:
            pages = load_pages(scan)
        except DigitflowError as exc:
            err_console.print(f"[red]{exc}[/red]")
            failed += 1
            continue
        for page in pages:
            reading = read_page(page.image, loaded, form, number=page.number)
            for problem in reading.problems:
                err_console.print(f"[yellow]{scan} page {page.number}: {problem}[/yellow]")
            for f in reading.fields:
                if as_json:
                    typer.echo(json.dumps(_field_json(scan, page.number, f)))
                else:
                    status = "review" if f.needs_review else "ok"
                    console.print(
                        f"{scan} p{page.number} {f.name:<16} {f.kind:<5} {f.text or '(empty)':<14} "
                        f"conf {f.confidence:.3f} {status} {'; '.join(f.reasons)}"
                    )
    if failed:
        raise typer.Exit(6)


def _field_json(scan: Path, page: int, f) -> dict:
    return {
        "document": str(scan),
        "page": page,
        "field": f.name,
        "kind": f.kind,
        "value": f.value,
        "text": f.text,
        "confidence": f.confidence,
        "status": "review" if f.needs_review else "accepted",
        "bbox": list(f.bbox),
        "reasons": list(f.reasons),
        "digits": [
            {
                "bbox": list(d.bbox),
                "label": d.label,
                "confidence": round(d.confidence, 4),
                "cnn": {"label": d.cnn_label, "probability": round(d.cnn_prob, 4)},
                "svm": {"label": d.svm_label, "probability": round(d.svm_prob, 4)},
            }
            for d in f.digits
        ],
    }


template_app = typer.Typer(help="Form templates: named fields at known places.", no_args_is_help=True)
app.add_typer(template_app, name="template")


@template_app.command("init")
def template_init(
    blank: Annotated[Path, typer.Argument(help="A scan of the blank form.", exists=True, dir_okay=False)],
    name: Annotated[str | None, typer.Option(help="Template name. Default: the file name.")] = None,
) -> None:
    """Draft a template (YAML on stdout) from a blank form: every comb and box, named field_1..N."""
    from ocr.cleanup import clean_page
    from ocr.load import load_pages
    from ocr.register import draft_template

    try:
        page = load_pages(blank)[0]
    except DigitflowError as exc:
        raise _fail(exc) from exc
    clean = clean_page(page.image)
    draft = draft_template(clean.ink, name or blank.stem)
    if not draft.fields:
        err_console.print(f"[red]error:[/red] no boxes or combs found on {blank}")
        raise typer.Exit(7)
    typer.echo(draft.to_yaml(), nl=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
