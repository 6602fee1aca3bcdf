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
# What `run` (embedded) and `submit` (farm) take alike: the scans and how to choose among them.
ScanPaths = Annotated[list[Path], typer.Argument(help="Scan files or directories (searched recursively).")]
TemplateOption = Annotated[Path | None, typer.Option(help="Form template (YAML/JSON) for every scan.", exists=True)]
IncludeOption = Annotated[list[str] | None, typer.Option(help="Only files matching this glob (repeatable).")]
ExcludeOption = Annotated[list[str] | None, typer.Option(help="Skip files matching this glob (repeatable).")]


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

    try:
        tf.config.threading.set_intra_op_parallelism_threads(cores)
        tf.config.threading.set_inter_op_parallelism_threads(cores)
    except RuntimeError:
        # TensorFlow already ran in this process (tests, embedding): its pools stay as they are.
        pass


@app.command()
def train(
    data: DataOption = None,
    out: Annotated[Path, typer.Option(help="Directory to write the models and manifest to.")] = Path("ocr/models"),
    epochs: Annotated[int, typer.Option(min=1, help="CNN training epochs.")] = 28,
    seed: Annotated[int, typer.Option(help="Seed of the validation split, augmentation and initialisation.")] = 1234,
    decision_only: Annotated[
        bool,
        typer.Option(
            "--decision-only",
            help="Keep the models in OUT; refit only their decision rule on their validation split and re-measure.",
        ),
    ] = False,
    svm_only: Annotated[
        bool,
        typer.Option(
            "--svm-only",
            help="Keep the CNN in OUT; retrain the HOG-SVM and refit the decision rule on its split, and re-measure.",
        ),
    ] = False,
    touching_only: Annotated[
        bool,
        typer.Option(
            "--touching-only",
            help="Keep the other models in OUT; retrain only the touching-digit detector on their split.",
        ),
    ] = False,
    orientation_only: Annotated[
        bool,
        typer.Option(
            "--orientation-only",
            help="Keep the other models in OUT; retrain only the digit orientation model on their split.",
        ),
    ] = False,
    page_target_error: Annotated[
        float,
        typer.Option(
            min=1e-5,
            max=0.05,
            help="Error among accepted digits that the page review bar is fitted for (0.0003: a 10-digit "
            "field at about 0.5%). Higher sends fewer fields to review and lets more wrong ones through; "
            "with --decision-only, the rule of models already trained is refitted for it in about a minute.",
        ),
    ] = 0.0003,
) -> None:
    """Train the CNN, the HOG-SVM, the touching-digit detector and the digit orientation model on MNIST train;
    write them with a manifest."""
    from ocr.mnist import load_mnist
    from ocr.training import TrainConfig, refit_decision, retrain_detector, train_models

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command = "digitflow " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        mnist = load_mnist(data)
        console.print(f"training on {mnist.source} (sha256 {mnist.sha256[:12]}...)")
        if touching_only or orientation_only:
            part = "touching" if touching_only else "orientation"
            retrain_detector(part, mnist, out, TrainConfig(seed=seed), command, lambda line: console.print(line))
            return
        if decision_only or svm_only:
            manifest = refit_decision(
                mnist,
                out,
                TrainConfig(seed=seed, page_target_error=page_target_error),
                command,
                lambda line: console.print(line),
                retrain_svm=svm_only,
            )
            _print_digit_metrics(manifest["metrics"]["mnist_test"])
            return
        manifest = train_models(
            mnist,
            out,
            TrainConfig(epochs=epochs, seed=seed, page_target_error=page_target_error),
            command,
            lambda line: console.print(line),
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
        "exact text",
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
            f"{r['exact_text_accuracy']:.1%}",
            f"{r['digit_accuracy']:.1%}",
            f"{r['review_rate']:.1%}",
            f"{r['error_among_accepted']:.2%}",
            str(r["spurious_fields"]),
        )
    console.print(table)
    for problem in result["problems"]:
        console.print(f"[yellow]{problem}[/yellow]")


def _print_digit_metrics(m: dict) -> None:
    extra = [k for k in ("distorted", "scanned", "flagged_ones") if k in m]
    table = Table(
        title=f"MNIST test, {m['digits']} digits (never trained on)",
        caption="; ".join(f"{k} copy: seed {m[k]['seed']}" for k in extra) or None,
    )
    table.add_column("figure", no_wrap=True)
    table.add_column("clean", justify="right")
    for k in extra:
        table.add_column(k, justify="right")
    sets = [m] + [m[k] for k in extra]

    def row(name: str, get) -> None:
        table.add_row(name, *[get(s) for s in sets])

    pct = "{:.2%}".format
    row("CNN accuracy", lambda s: pct(s["cnn_accuracy"]))
    if "cnn_single_look_accuracy" in m:
        row("  without its second look", lambda s: pct(s["cnn_single_look_accuracy"]))
    row("HOG-SVM accuracy", lambda s: pct(s["svm_accuracy"]))
    row("combined accuracy (no reject)", lambda s: pct(s["combined_accuracy"]))
    row("agreement rate", lambda s: pct(s["agreement_rate"]))
    row("accuracy where both agree", lambda s: pct(s["accuracy_where_agree"]))
    row("decision: flagged for review", lambda s: pct(s["decision"]["reject_rate"]))
    row("decision: error among accepted", lambda s: f"{s['decision']['error_among_accepted']:.3%}")
    pages = [m[k].get("page_decision") for k in extra]
    if any(pages):
        # Pages are read with the rule's page threshold; the distorted and scanned digits stand in for them.
        bar = next(p["min_confidence"] for p in pages if p)
        table.add_row(f"page threshold {bar:.4f}: flagged", "", *[pct(p["reject_rate"]) if p else "" for p in pages])
        table.add_row(
            "page threshold: error among accepted",
            "",
            *[f"{p['error_among_accepted']:.3%}" if p else "" for p in pages],
        )
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
            reading = read_page(page.image, loaded, form, number=page.number, dpi=page.dpi)
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
                "svm": {"label": d.svm_label, "score": round(d.svm_prob, 4)},
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
    from ocr.cleanup import clean_page, working_scale
    from ocr.fields import line_masks_with_hairlines
    from ocr.load import load_pages
    from ocr.register import draft_template

    try:
        page = load_pages(blank)[0]
    except DigitflowError as exc:
        raise _fail(exc) from exc
    scale = working_scale(page.dpi, page.image.shape)
    clean = clean_page(page.image, scale=scale)
    draft = draft_template(clean.ink, name or blank.stem, scale, line_masks_with_hairlines(clean.ink, clean.fine))
    if not draft.fields:
        err_console.print(f"[red]error:[/red] no boxes or combs found on {blank}")
        raise typer.Exit(7)
    typer.echo(draft.to_yaml(), nl=False)


DatabaseOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL. Default: $DIGITFLOW_DATABASE_URL or sqlite:///digitflow.db."),
]


BrokerOption = Annotated[
    str | None,
    typer.Option("--broker", help="Broker URL. Default: $DIGITFLOW_BROKER_URL or redis://localhost:6379/0."),
]


def _settings(db: str | None = None, **overrides):
    from pydantic import ValidationError

    from worker.config import load_settings

    try:
        return load_settings(database_url=db, **overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        err_console.print(f"[red]error:[/red] bad configuration: {problems}")
        raise typer.Exit(2) from exc


def _session_factory(db: str | None, migrate: bool = True, **overrides):
    from db.engine import make_engine, make_session_factory, upgrade_schema

    settings = _settings(db, **overrides)
    engine = make_engine(settings.database_url)
    if migrate:
        upgrade_schema(engine)
    return settings, make_session_factory(engine)


@app.command()
def run(
    paths: ScanPaths,
    template: TemplateOption = None,
    workers: Annotated[int, typer.Option(min=1, help="Local worker processes.")] = 1,
    include: IncludeOption = None,
    exclude: ExcludeOption = None,
    name: Annotated[str | None, typer.Option(help="Batch name. Default: the first path.")] = None,
    db: DatabaseOption = None,
) -> None:
    """Read every scan under PATHS into the database, here, in local processes (no broker needed)."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ocr.template import load_template
    from worker.embedded import discover_files, record_files, run_documents

    missing = [str(p) for p in paths if not p.exists() and not p.is_symlink()]
    if missing:
        raise typer.BadParameter(f"no such file or directory: {', '.join(missing)}", param_hint="PATHS")
    try:
        if template is not None:
            load_template(template)  # fail now, not once per document
        settings, factory = _session_factory(db)
    except DigitflowError as exc:
        raise _fail(exc) from exc
    files = discover_files(paths, include, exclude)
    submission = record_files(factory, files, name or str(paths[0]), str(template.resolve()) if template else None)
    console.print(
        f"{submission.found} scan file(s) found, {submission.skipped} already processed, "
        f"{len(submission.document_ids)} to read"
        + (f" (batch {submission.batch_id})" if submission.batch_id else "")
        + (f", {submission.failed} failed at once (unusable file name)" if submission.failed else "")
    )
    # Files recorded as failed without being read (names that cannot be stored) count as failed.
    totals = {"done": 0, "failed": submission.failed, "missing": 0, "pages": 0, "fields": 0, "review": 0, "digits": 0}
    started = time.perf_counter()
    interrupted = False
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("reading", total=len(submission.document_ids))

        def on_done(outcome) -> None:
            totals[outcome.status] += 1
            for key in ("pages", "fields", "review", "digits"):
                totals[key] += getattr(outcome, key)
            if outcome.error:
                progress.console.print(f"[yellow]{outcome.status}:[/yellow] {outcome.error}")
            progress.advance(task)

        if workers == 1:
            from ocr.classifiers import limit_threads

            # This process is the worker: DIGITFLOW_THREADS applies here as in each pool process.
            limit_threads(settings.threads)
        try:
            run_documents(settings, submission.document_ids, workers, on_done)
        except KeyboardInterrupt:
            interrupted = True
    elapsed = time.perf_counter() - started
    review_share = totals["review"] / totals["fields"] if totals["fields"] else 0.0
    console.print(
        f"documents done {totals['done']}, failed {totals['failed']}"
        + (f", deleted meanwhile {totals['missing']}" if totals["missing"] else "")
        + f"; fields {totals['fields']} "
        f"({review_share:.1%} need review); {totals['pages']} pages in {elapsed:.1f} s "
        f"({totals['pages'] / elapsed if elapsed else 0:.2f} pages/s)"
    )
    if interrupted:
        err_console.print("interrupted: finished documents are stored, the rest stay queued")
        raise typer.Exit(130)
    if totals["failed"]:
        raise typer.Exit(10)


FORMATS = ("table", "csv", "json", "jsonl")


@app.command()
def results(
    batch: Annotated[int | None, typer.Option(help="Only this batch id.")] = None,
    document: Annotated[str | None, typer.Option(help="Only documents whose path matches this glob.")] = None,
    field: Annotated[str | None, typer.Option(help="Only fields with this name.")] = None,
    status: Annotated[str | None, typer.Option(help="accepted, review or corrected.")] = None,
    min_confidence: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Only fields at least this sure.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv, json or jsonl.")] = "table",
    db: DatabaseOption = None,
) -> None:
    """Query stored fields. JSON Lines is the stable contract: one object per field."""
    from sqlalchemy import select

    from db.models import FIELD_STATUSES, Field
    from db.queries import iter_results

    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")
    if status is not None and status not in FIELD_STATUSES:
        raise typer.BadParameter(f"must be one of {', '.join(FIELD_STATUSES)}", param_hint="--status")
    _, factory = _session_factory(db)
    with factory() as session:
        if field is not None and session.scalar(select(Field.id).where(Field.name == field).limit(1)) is None:
            known = session.scalars(select(Field.name).distinct().order_by(Field.name).limit(30)).all()
            raise typer.BadParameter(
                f"no field named {field!r}; known names: {', '.join(known) or '(none stored yet)'}",
                param_hint="--field",
            )
        records = iter_results(
            session, batch_id=batch, document_glob=document, field=field, status=status, min_confidence=min_confidence
        )
        _print_records(records, fmt)


def _print_records(records, fmt: str) -> None:
    import csv

    if fmt == "jsonl":
        for r in records:
            typer.echo(json.dumps(r))
    elif fmt == "json":
        typer.echo(json.dumps(list(records), indent=2))
    elif fmt == "csv":
        columns = ["document", "sha256", "page", "field", "kind", "value", "text", "confidence", "status", "bbox"]
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        for r in records:
            writer.writerow([r[c] if c != "bbox" else " ".join(map(str, r[c])) for c in columns])
    else:
        table = Table()
        for column in ("document", "page", "field", "text", "confidence", "status"):
            table.add_column(column, justify="right" if column in ("page", "confidence") else "left")
        count = 0
        for r in records:
            count += 1
            table.add_row(
                r["document"], str(r["page"]), r["field"], r["text"] or "(empty)", f"{r['confidence']:.3f}", r["status"]
            )
        console.print(table)
        console.print(f"{count} field(s)")


review_app = typer.Typer(help="Review doubtful fields: list, show, accept, correct.", no_args_is_help=True)
app.add_typer(review_app, name="review")


def _who(who: str | None) -> str:
    return who or os.environ.get("USER") or "cli"


def _load_field(session, field_id: int):
    from db.queries import get_field

    found = get_field(session, field_id)
    if found is None:
        raise typer.BadParameter(f"no field with id {field_id}", param_hint="ID")
    return found


@review_app.command("list")
def review_list(
    limit: Annotated[int, typer.Option(min=1, help="How many fields to show.")] = 20,
    batch: Annotated[int | None, typer.Option(help="Only this batch id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON Lines instead of a table.")] = False,
    db: DatabaseOption = None,
) -> None:
    """Fields waiting for review, most doubtful first."""
    from db.queries import review_queue

    _, factory = _session_factory(db)
    with factory() as session:
        fields = review_queue(session, limit=limit, batch_id=batch)
        if as_json:
            for f in fields:
                typer.echo(
                    json.dumps(
                        {
                            "id": f.id,
                            "document": f.page.document.path,
                            "page": f.page.number,
                            "field": f.name,
                            "text": f.text,
                            "confidence": f.confidence,
                            "reasons": f.reasons,
                        }
                    )
                )
            return
        table = Table()
        for column in ("id", "document", "page", "field", "text", "confidence", "why"):
            table.add_column(column)
        for f in fields:
            table.add_row(
                str(f.id),
                f.page.document.path,
                str(f.page.number),
                f.name,
                f.text or "(empty)",
                f"{f.confidence:.3f}",
                f.reasons or "",
            )
        console.print(table)
        if not fields:
            console.print("nothing to review")


@review_app.command("show")
def review_show(
    field_id: Annotated[int, typer.Argument(metavar="ID", help="Field id (from `review list`).")],
    out: Annotated[Path | None, typer.Option(help="Where to write the crop. Default: ./field_<ID>.png")] = None,
    db: DatabaseOption = None,
) -> None:
    """Write a field's crop to a PNG, print its path, a preview and its digits."""
    import cv2
    import numpy as np

    _, factory = _session_factory(db)
    with factory() as session:
        f = _load_field(session, field_id)
        console.print(
            f"field {f.id} '{f.name}' of {f.page.document.path} page {f.page.number}: "
            f"read {f.text or '(empty)'!r}, confidence {f.confidence:.3f}, {f.status}"
        )
        if f.reasons:
            console.print(f"why: {f.reasons}")
        for d in f.digits:
            console.print(
                f"  digit {d.position + 1}: {d.label} ({d.confidence:.3f}; CNN {d.cnn_label} "
                f"{d.cnn_probability:.3f}, SVM {d.svm_label} {d.svm_score:.3f})"
            )
        if not f.crop:
            console.print("no crop stored for this field")
            return
        path = out or Path(f"field_{f.id}.png")
        path.write_bytes(f.crop)
        console.print(f"crop written to {path}")
        image = cv2.imdecode(np.frombuffer(f.crop, np.uint8), cv2.IMREAD_GRAYSCALE)
        if image is not None:
            console.print(terminal_preview(image), markup=False, highlight=False)


def terminal_preview(gray, width: int = 72) -> str:
    """A character-shaded preview of a gray image, ``width`` columns wide."""
    import cv2

    h, w = gray.shape
    rows = max(1, round(h / w * width * 0.5))  # terminal cells are about twice as tall as wide
    small = cv2.resize(gray, (width, rows), interpolation=cv2.INTER_AREA)
    shades = " .:-=+*#%@"
    return "\n".join("".join(shades[(255 - int(v)) * (len(shades) - 1) // 255] for v in row) for row in small)


@review_app.command("accept")
def review_accept(
    field_id: Annotated[int, typer.Argument(metavar="ID")],
    who: Annotated[str | None, typer.Option(help="Reviewer name. Default: $USER.")] = None,
    db: DatabaseOption = None,
) -> None:
    """Confirm a field's reading as it stands."""
    from db.queries import accept_field

    _, factory = _session_factory(db)
    with factory.begin() as session:
        f = _load_field(session, field_id)
        accept_field(session, f, _who(who))
        console.print(f"field {f.id} accepted: {f.text or '(empty)'}")


@review_app.command("correct")
def review_correct(
    field_id: Annotated[int, typer.Argument(metavar="ID")],
    value: Annotated[str, typer.Argument(help="The right value, as written (e.g. 1250.75).")],
    who: Annotated[str | None, typer.Option(help="Reviewer name. Default: $USER.")] = None,
    db: DatabaseOption = None,
) -> None:
    """Replace a field's reading; the template's validation applies and the change is recorded."""
    import re

    from db.queries import correct_field
    from ocr.template import load_template

    if not re.fullmatch(r"[0-9]*([.,][0-9]+)*", value):
        raise typer.BadParameter("must be digits, optionally with . or , separators", param_hint="VALUE")
    _, factory = _session_factory(db)
    with factory.begin() as session:
        f = _load_field(session, field_id)
        problems: list[str] = []
        template_path = f.page.document.template
        if template_path:
            try:
                rule = load_template(template_path).field(f.name).validate
                problems = rule.problems("".join(c for c in value if c.isdigit()), value)
            except (DigitflowError, KeyError):
                problems = []  # the template moved or changed: nothing to check against
        try:
            correct_field(session, f, value, _who(who), problems)
        except ValueError as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
        console.print(f"field {f.id} corrected to {value}")


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    batch: Annotated[int | None, typer.Option(help="Only this batch id.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write here instead of standard output.")] = None,
    db: DatabaseOption = None,
) -> None:
    """Final values after review: one row per document for templated forms, one row per field otherwise."""
    import csv
    import io

    from db.queries import export_rows

    if fmt not in ("csv", "json"):
        raise typer.BadParameter("must be csv or json", param_hint="--format")
    _, factory = _session_factory(db)
    with factory() as session:
        columns, rows = export_rows(session, batch)
    if fmt == "json":
        text = json.dumps(rows, indent=2, default=str) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        console.print(f"{len(rows)} row(s) written to {out}")


# --- the farm: Celery workers fed through Redis ------------------------------------------------


@app.command()
def submit(
    paths: ScanPaths,
    template: TemplateOption = None,
    name: Annotated[str | None, typer.Option(help="Batch name. Default: the first path.")] = None,
    include: IncludeOption = None,
    exclude: ExcludeOption = None,
    db: DatabaseOption = None,
    broker: BrokerOption = None,
) -> None:
    """Record the scans under PATHS as a batch and queue them for the workers; prints the batch id.

    Workers must see the files at the same paths (submit absolute paths, or
    mount the scans at the same place) and use the same database and broker.
    """
    from ocr.template import load_template
    from worker.app import make_app
    from worker.farm import submit_files

    missing = [str(p) for p in paths if not p.exists() and not p.is_symlink()]
    if missing:
        raise typer.BadParameter(f"no such file or directory: {', '.join(missing)}", param_hint="PATHS")
    try:
        if template is not None:
            load_template(template)
        settings, factory = _session_factory(db, broker_url=broker)
        submission = submit_files(
            make_app(settings),
            factory,
            settings,
            [p.absolute() for p in paths],
            name or str(paths[0]),
            str(template.resolve()) if template else None,
            include,
            exclude,
        )
    except DigitflowError as exc:
        raise _fail(exc) from exc
    err_console.print(
        f"{submission.found} scan file(s) found, {submission.skipped} already processed, "
        f"{len(submission.document_ids)} queued"
        + (f", {submission.failed} failed at once (unusable file name)" if submission.failed else "")
    )
    if submission.batch_id is not None:
        typer.echo(submission.batch_id)


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Pool processes. Default: $DIGITFLOW_CONCURRENCY, else one per core.")
    ] = None,
    queues: Annotated[str | None, typer.Option(help="Comma-separated queues. Default: $DIGITFLOW_QUEUE.")] = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
    db: DatabaseOption = None,
    broker: BrokerOption = None,
) -> None:
    """Start a Celery worker that reads queued documents (the same as `celery -A worker.app worker`)."""
    settings = _settings(db, broker_url=broker, concurrency=concurrency)
    # The Celery app is built from the environment when worker.app is imported,
    # in this process and in its pool processes: pass the options that way.
    for key, value in (("DATABASE_URL", db), ("BROKER_URL", broker), ("CONCURRENCY", concurrency)):
        if value is not None:
            os.environ[f"DIGITFLOW_{key}"] = str(value)
    from worker.app import app as celery_app

    argv = ["worker", f"--loglevel={loglevel}", f"--queues={queues or settings.queue}"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    celery_app.worker_main(argv)


@app.command()
def status(
    batch: Annotated[int | None, typer.Argument(help="Batch id. Default: every batch.")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh until every document is finished.")] = False,
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between refreshes with --watch.")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    db: DatabaseOption = None,
) -> None:
    """Progress per batch, from the database: queued, processing, done, failed, review, pages/s, time left."""
    import time

    from rich.live import Live

    from db.queries import batch_status

    _, factory = _session_factory(db)

    def rows() -> list[dict]:
        with factory() as session:
            found = batch_status(session, batch)
        if batch is not None and not found:
            err_console.print(f"[red]error:[/red] no batch with id {batch}")
            raise typer.Exit(2)
        return found

    if as_json:
        typer.echo(json.dumps([_status_record(r) for r in rows()], indent=2))
        return
    if not watch:
        console.print(_status_table(rows()))
        return
    with Live(_status_table(rows()), console=console, auto_refresh=False) as live:
        try:
            while True:
                current = rows()
                live.update(_status_table(current), refresh=True)
                if all(r["queued"] + r["processing"] == 0 for r in current):
                    break
                time.sleep(interval)
        except KeyboardInterrupt:
            pass


def _status_record(row: dict) -> dict:
    from worker.farm import batch_progress

    progress = batch_progress(row)
    record = {k: v for k, v in row.items() if k not in ("started_at", "finished_at", "created_at")}
    for key in ("created_at", "started_at", "finished_at"):
        record[key] = row[key].isoformat() if row[key] else None
    record["pages_per_second"] = progress.pages_per_second
    record["seconds_left"] = progress.seconds_left
    return record


def _status_table(rows: list[dict]) -> Table:
    from rich import box

    from worker.farm import batch_progress

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("batch", justify="right", no_wrap=True)
    table.add_column("name", overflow="fold", min_width=8, max_width=30)
    for header in ("docs", "queued", "running", "done", "failed", "review", "pages/s"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("left", no_wrap=True)
    for r in rows:
        p = batch_progress(r)
        left = "-" if p.seconds_left is None else _duration(p.seconds_left)
        if p.remaining == 0:
            left = "finished"
        rate = "-" if p.pages_per_second is None else f"{p.pages_per_second:.2f}"
        table.add_row(
            str(r["id"]),
            r["name"],
            str(r["documents"]),
            str(r["queued"]),
            str(r["processing"]),
            str(r["done"]),
            f"[red]{r['failed']}[/red]" if r["failed"] else "0",
            str(r["review"]),
            rate,
            left,
        )
    return table


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


@app.command()
def retry(
    batch: Annotated[int | None, typer.Argument(help="Batch id. Default: every batch.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Documents that failed.")] = False,
    stuck: Annotated[
        bool, typer.Option("--stuck", help="Documents processing for longer than the task time limit.")
    ] = False,
    queued: Annotated[
        bool, typer.Option("--queued", help="Documents still queued (their messages were lost with the broker).")
    ] = False,
    db: DatabaseOption = None,
    broker: BrokerOption = None,
) -> None:
    """Queue documents again: failed ones, ones stuck in processing, or queued ones whose message was lost."""
    from worker.app import make_app
    from worker.farm import requeue

    if not (failed or stuck or queued):
        raise typer.BadParameter("say which documents: --failed, --stuck and/or --queued", param_hint="options")
    settings, factory = _session_factory(db, broker_url=broker)
    try:
        ids = requeue(make_app(settings), factory, settings, batch, failed, stuck, queued)
    except DigitflowError as exc:
        raise _fail(exc) from exc
    console.print(f"{len(ids)} document(s) queued again")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
