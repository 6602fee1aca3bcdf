"""Train the CNN, the HOG-SVM and the touching-digit detector on MNIST train, fit the decision rule, write the models.

Only ``x_train``/``y_train`` are trained on.  A seeded validation split is held
out of them for early choices (SVM calibration, the decision rule); MNIST test
is touched only at the end, to record the shipped models' figures in the
manifest.  Progress goes to a ``report`` callable, never to stdout directly.
"""

from __future__ import annotations

import json
import multiprocessing
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ocr.augment import augment_digits, crossed_sevens, distort_test_digits, flagged_ones, footed_ones, scanned_digits
from ocr.classifiers import (
    CNN_FILE,
    DECISION_FILE,
    MANIFEST_FILE,
    SVM_FILE,
    CnnClassifier,
    HogSvmClassifier,
    write_lite_model,
)
from ocr.decision import fit_decision_rule, fit_page_threshold
from ocr.hog import HogParams
from ocr.mnist import Mnist
from ocr.normalize import normalize_digits
from ocr.orientation import ORIENTATION_FILE, train_digit_orientation
from ocr.touching import TOUCHING_FILE, train_touching_detector

Report = Callable[[str], None]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 28
    batch_size: int = 256
    learning_rate: float = 4e-3
    clean_share: float = 0.5
    # Share given only writer-like variation (ocr.augment); 0 in the shipped
    # recipe: run 6, with 0.2 clean and 0.3 mild, scored lower (docs/performance.md).
    mild_share: float = 0.0
    # Share of the digits of each epoch, clean or distorted, given as reading cuts them from a
    # page: thresholded into an ink mask at scan resolution (ocr.augment.as_scanned).  0 in the
    # shipped recipe: run 12, with 0.3 and svm_scanned, read MNIST's scanned copy far better
    # (99.18% against 97.15%) but clean MNIST test worse (99.55%), and sent 6.7 more points of
    # sample pages' fields to review for 0.2 points more exact fields (docs/performance.md).
    scanned_share: float = 0.0
    # Share of the training 1s given a flag at the top, as 1s are written in much of the world
    # (ocr.augment.flagged_one); MNIST's writers wrote few.  0 for the CNN in the shipped recipe:
    # run 14, with 0.3, read flagged 1s at 99.6% instead of 51% but clean MNIST test at 99.56%,
    # and sent 15 more points of sample pages' fields to review (docs/performance.md).  The
    # HOG-SVM's share: it sees that share of the 1s once more, flagged, so that it disagrees with
    # a CNN that reads a flagged 1 as a 7 or a 9, and the digit goes to review.
    flagged_ones_share: float = 0.0
    svm_flagged_ones_share: float = 0.3
    # The same for 7s crossed in the middle (ocr.augment.crossed_seven), which the CNN reads as 4s and 2s,
    # and for 1s standing on a foot without a flag (ocr.augment.footed_one), which it reads as 6s and 2s.
    svm_crossed_sevens_share: float = 0.3
    svm_footed_ones_share: float = 0.15
    # Exponential moving averages of the weights kept during training; the
    # final weights and each average are scored on the validation split and
    # the best one is kept (ties go to the average).  Empty: final weights.
    ema_momenta: tuple[float, ...] = (0.998, 0.9995)
    validation_size: int = 6000
    seed: int = 1234
    # Reading runs the CNN from a LiteRT copy with int8 weights (ocr.classifiers.convert_to_lite):
    # about 2.6 times the digits per second on one core, the same MNIST test figures (docs/performance.md).
    quantize_cnn: bool = True
    svm_c: float = 0.1
    # The SVM also sees each training digit moved by one pixel up, down, left
    # and right: a linear model cannot learn shift tolerance any other way,
    # and crops cut from scans are never centred as well as MNIST's.
    svm_shifts: bool = True
    # The SVM also sees one copy of each training digit as reading cuts it from a page
    # (ocr.augment.scanned_digits, seeded by seed).  Off in the shipped recipe: alone it took
    # the SVM from 98.73% to 98.84% on MNIST test and 92.1% to 96.9% on its scanned copy, and
    # left sample pages as they were (docs/performance.md).
    svm_scanned: bool = False
    hog: HogParams = HogParams()
    target_error: float = 0.001
    # Distorted copies of the validation digits (seeds seed + 1, seed + 2, ...) on which
    # the page threshold of the decision rule is fitted (ocr.decision.fit_page_threshold).
    page_rule_copies: int = 3
    # The error among accepted digits that page threshold is fitted for.  Pages are
    # judged by fields (at most 0.5% of accepted fields wrong): a 10-digit field
    # needs its digits at 0.05% or better, and wrong cuts between digits take a
    # share of the fields' budget, so digits get 0.03%.  At 0.1% (the digit
    # target) 1.0% of the accepted fields of twelve sample sets were wrong;
    # at 0.03%, 0.3% (docs/performance.md).
    page_target_error: float = 0.0003
    # Runs of ink (half single digits, half two touching) drawn to train the touching-digit detector.
    touching_runs: int = 30000
    # MNIST train digits drawn (each turned all four ways) to train the digit orientation model.
    orientation_digits: int = 30000
    threads: int = 0  # 0: TensorFlow's default (all cores)


def split_validation(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train_index, validation_index) split of ``n`` samples."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[size:]), np.sort(order[:size])


_AUGMENT_SOURCE: dict[str, np.ndarray] = {}


def _hold_augment_source(images: np.ndarray, normalized: np.ndarray, labels: np.ndarray) -> None:
    """Pool initializer: the training digits are sent to the augmenting process once, not every epoch."""
    import cv2

    cv2.setNumThreads(1)
    _AUGMENT_SOURCE.update(images=images, normalized=normalized, labels=labels)


def _augment_held(seed: int, config: TrainConfig) -> np.ndarray:
    return augment_digits(
        _AUGMENT_SOURCE["images"],
        np.random.default_rng(seed),
        config.clean_share,
        config.mild_share,
        normalized=_AUGMENT_SOURCE["normalized"],
        scanned_share=config.scanned_share,
        labels=_AUGMENT_SOURCE["labels"],
        flagged_ones_share=config.flagged_ones_share,
    )


def build_cnn():
    """The digit CNN: three conv blocks, about 6.4 M multiply-adds per digit.

    Sized so that one core classifies well over 5,000 digits/s: the 5x5
    first layer sees whole stroke segments, pooling halves the grid twice
    before the wider layers run.
    """
    import keras
    from keras import layers

    inputs = keras.Input((28, 28, 1))
    x = inputs
    for filters, kernel, padding, pool in ((32, 5, "same", True), (64, 3, "same", True), (128, 3, "valid", False)):
        x = layers.Conv2D(filters, kernel, padding=padding, use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        if pool:
            x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="digitflow_cnn")


class WeightAverages:
    """Exponential moving averages of a model's weights, updated after every training batch.

    The momentum is capped by ``(1 + n) / (10 + n)`` after ``n`` updates so
    that the averages do not start out dominated by the random initialisation.
    That cap reaches 0.998 only after about 4,500 updates (epoch 21 of the
    default run), so until then both default averages are the same running
    average of roughly the last tenth of the updates.  Batch-norm statistics
    are averaged along with the trainable weights.
    """

    def __init__(self, momenta: tuple[float, ...]) -> None:
        self.momenta = tuple(momenta)
        self.averages: list[list[np.ndarray]] | None = None
        self.updates = 0

    def callback(self, model):
        import keras

        owner = self

        class _Update(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                owner.update(model.get_weights())

        return _Update()

    def update(self, weights: list[np.ndarray]) -> None:
        self.updates += 1
        if self.averages is None:
            self.averages = [[np.array(w, np.float32) for w in weights] for _ in self.momenta]
            return
        for momentum, average in zip(self.momenta, self.averages, strict=True):
            m = min(momentum, (1 + self.updates) / (10 + self.updates))
            for a, w in zip(average, weights, strict=True):
                a *= m
                a += (1 - m) * w


def _val_accuracy(model, x_val: np.ndarray, y_val: np.ndarray) -> float:
    probs = model.predict(x_val[..., None], batch_size=1000, verbose=0)
    return float(np.mean(probs.argmax(axis=1) == y_val))


def train_cnn(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    config: TrainConfig,
    report: Report,
    x_train_normalized: np.ndarray | None = None,
):
    """Train the CNN on freshly augmented digits every epoch.

    ``x_train`` are raw MNIST uint8 digits (``x_train_normalized``: the same
    through the normaliser, when the caller has them); ``x_val`` are already
    normalised.  A fresh augmented set is drawn for every epoch.  With
    ``config.ema_momenta`` the returned model carries whichever of the final
    weights and their moving averages scores best on the validation split.
    """
    import keras

    keras.utils.set_random_seed(config.seed)
    model = build_cnn()
    steps = config.epochs * int(np.ceil(len(x_train) / config.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=steps, warmup_target=config.learning_rate, warmup_steps=steps // config.epochs
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    averages = WeightAverages(config.ema_momenta)
    callbacks = [averages.callback(model)] if config.ema_momenta else []
    rng = np.random.default_rng(config.seed)
    seeds = [int(v) for v in rng.integers(2**32, size=config.epochs)]
    # Each epoch's augmented digits are drawn in a separate process while the
    # previous epoch trains: OpenCV threads inside the TensorFlow process have
    # deadlocked training here, and a process also sidesteps the GIL.
    if x_train_normalized is None:
        x_train_normalized = normalize_digits(x_train, bright_ink=True)
    context = multiprocessing.get_context("spawn")
    held = (x_train, x_train_normalized, y_train)
    with ProcessPoolExecutor(
        max_workers=1, mp_context=context, initializer=_hold_augment_source, initargs=held
    ) as pool:
        upcoming = pool.submit(_augment_held, seeds[0], config)
        for epoch in range(config.epochs):
            started = time.perf_counter()
            x_epoch = upcoming.result()
            if epoch + 1 < config.epochs:
                upcoming = pool.submit(_augment_held, seeds[epoch + 1], config)
            history = model.fit(
                x_epoch[..., None],
                y_train,
                batch_size=config.batch_size,
                epochs=epoch + 1,
                initial_epoch=epoch,
                validation_data=(x_val[..., None], y_val),
                verbose=0,
                callbacks=callbacks,
            )
            h = {k: v[-1] for k, v in history.history.items()}
            # The moving averages are scored once, at the end: after every epoch they cost two passes over the split.
            report(
                f"CNN epoch {epoch + 1}/{config.epochs}: loss {h['loss']:.4f}, "
                f"train acc {h['accuracy']:.4f}, val acc {h['val_accuracy']:.4f} "
                f"({time.perf_counter() - started:.0f} s)"
            )
    if averages.averages is not None:
        candidates = [(f"EMA {m}", w) for m, w in zip(averages.momenta, averages.averages, strict=True)]
        candidates.append(("final weights", model.get_weights()))
        scored = []
        for name, weights in candidates:
            model.set_weights(weights)
            scored.append((_val_accuracy(model, x_val, y_val), name, weights))
        best = max(scored, key=lambda t: t[0])  # first of equals: an average before the final weights
        model.set_weights(best[2])
        report(
            "CNN weights kept: "
            + best[1]
            + " ("
            + ", ".join(f"{name} {acc:.4f}" for acc, name, _ in scored)
            + " val acc)"
        )
    return model


def train_svm(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    config: TrainConfig,
    report: Report,
    raw_train: np.ndarray | None = None,
) -> HogSvmClassifier:
    """Linear SVM on HOG descriptors, then sigmoid calibration on the validation split.

    Both ``x_*`` are normalised digits; ``raw_train``, the same training digits
    as MNIST has them, is needed for ``config.svm_scanned``.  Calibration uses
    data the SVM was not fitted on (``FrozenEstimator``), so its probabilities are honest.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.svm import LinearSVC

    shell = HogSvmClassifier(hog=config.hog, svm=None)
    started = time.perf_counter()
    xs, ys = [x_train], [y_train]
    if config.svm_shifts:
        xs += [shift_digits(x_train, dy, dx) for dy, dx in _ONE_PIXEL]
        ys += [y_train] * len(_ONE_PIXEL)
    if config.svm_scanned:
        if raw_train is None:
            raise ValueError("svm_scanned needs the training digits as MNIST has them (raw_train)")
        xs.append(scanned_digits(raw_train, config.seed))
        ys.append(y_train)
    for label, share, draw in (
        (1, config.svm_flagged_ones_share, flagged_ones),
        (7, config.svm_crossed_sevens_share, crossed_sevens),
        (1, config.svm_footed_ones_share, footed_ones),
    ):
        if not share:
            continue
        if raw_train is None:
            raise ValueError("the SVM's drawn 1s and 7s need the training digits as MNIST has them (raw_train)")
        members = np.flatnonzero(y_train == label)
        chosen = np.random.default_rng(config.seed).choice(members, int(round(share * members.size)), False)
        xs.append(draw(raw_train[np.sort(chosen)], config.seed))
        ys.append(np.full(len(xs[-1]), label, y_train.dtype))
    x_train, y_train = np.concatenate(xs), np.concatenate(ys)
    f_train, f_val = shell.features(x_train), shell.features(x_val)
    svc = LinearSVC(C=config.svm_c, dual=True, max_iter=5000, random_state=config.seed).fit(f_train, y_train)
    calibrated = CalibratedClassifierCV(FrozenEstimator(svc), method="sigmoid").fit(f_val, y_val)
    report(
        f"HOG-SVM ({f_train.shape[1]} features, C={config.svm_c}): val acc "
        f"{np.mean(svc.predict(f_val) == y_val):.4f} ({time.perf_counter() - started:.0f} s)"
    )
    return HogSvmClassifier(hog=config.hog, svm=calibrated)


_ONE_PIXEL = ((1, 0), (-1, 0), (0, 1), (0, -1))


def _train_svm_quietly(
    x_train, y_train, x_val, y_val, config: TrainConfig, raw_train=None
) -> tuple[HogSvmClassifier, list[str]]:
    """:func:`train_svm` for a worker process: its progress lines come back with the model."""
    lines: list[str] = []
    return train_svm(x_train, y_train, x_val, y_val, config, lines.append, raw_train), lines


def shift_digits(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``images`` (N, H, W) moved down by ``dy`` and right by ``dx`` pixels, blank where nothing moved in."""
    out = np.zeros_like(images)
    h, w = images.shape[1:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = images[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def recorded_split(manifest: dict, data: Mnist, manifest_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(train_index, validation_index) of the split trained models record in their manifest.

    Raises ModelNotFoundError when none is recorded, DatasetError when ``data`` is not what they were trained on.
    """
    from ocr.errors import DatasetError, ModelNotFoundError

    split = manifest.get("training_data", {}).get("validation")
    if not split:
        raise ModelNotFoundError(f"{manifest_path} records no validation split; retrain instead")
    if manifest["training_data"].get("sha256") != data.sha256:
        raise DatasetError("the models were trained on other data than this file; use the same data")
    return split_validation(len(data.x_train), split["size"], split["seed"])


def _train_touching_quietly(train_digits: np.ndarray, val_digits: np.ndarray, config: TrainConfig):
    """The touching-digit detector (ocr.touching), for a worker process: raw MNIST digits in."""
    return train_touching_detector(train_digits, val_digits, config.seed, n_train=config.touching_runs)


def _train_orientation_quietly(train_digits: np.ndarray, val_digits: np.ndarray, config: TrainConfig):
    """The digit orientation model (ocr.orientation), for a worker process: raw MNIST digits in."""
    return train_digit_orientation(train_digits, val_digits, config.seed, n_train=config.orientation_digits)


def _touching_line(figures: dict) -> str:
    return (
        f"touching-digit detector ({figures['train_runs']} runs): {figures['accuracy']:.2%} right on "
        f"{figures['validation_runs']} validation runs"
    )


def _orientation_line(figures: dict) -> str:
    return (
        f"digit orientation ({figures['train_digits']} digits, each turned four ways): {figures['accuracy']:.2%} right "
        f"on {figures['validation_digits']} validation digits both ways; pages of 3 digits "
        f"{figures['pages_of_3_right']:.2%}, of 5 {figures['pages_of_5_right']:.2%}; on their side or not "
        f"{figures['sideways_accuracy']:.2%}"
    )


# The models trained on their own beside the others (`digitflow train --touching-only`,
# `--orientation-only`): how each is trained, where it is written and how it is reported.
_DETECTORS = {
    "touching": (
        "touching-digit detector: drawing runs of one and of two touching digits",
        _train_touching_quietly,
        TOUCHING_FILE,
        _touching_line,
    ),
    "orientation": (
        "digit orientation: MNIST digits as written and turned each way",
        _train_orientation_quietly,
        ORIENTATION_FILE,
        _orientation_line,
    ),
}


def retrain_detector(
    part: str, data: Mnist, model_dir: Path, config: TrainConfig, command: str, report: Report
) -> dict:
    """Train only ``part`` ("touching" or "orientation") of trained models, on the split in their manifest.

    The CNN, the HOG-SVM and the decision rule are kept; returns the updated manifest.
    """
    start, train, file, line = _DETECTORS[part]
    manifest_path = model_dir / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    train_idx, val_idx = recorded_split(manifest, data, manifest_path)
    report(start)
    model, figures = train(data.x_train[train_idx], data.x_train[val_idx], config)
    model.save(model_dir / file)
    report(line(figures))
    manifest[part] = figures
    manifest[f"{part}_command"] = command
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def fit_rule_on_validation(
    cnn, svm, x_val: np.ndarray, y_val: np.ndarray, config: TrainConfig, report: Report, raw_val: np.ndarray
):
    """Fit the decision rule on the normalised validation digits ``x_val``, and its page
    threshold on distorted copies of the same digits (``raw_val``: them as MNIST has them)."""
    _, cnn_val = cnn.predict(x_val)
    _, svm_val = svm.predict(x_val)
    rule = fit_decision_rule(cnn_val, svm_val, y_val, config.target_error)
    copies = [distort_test_digits(raw_val, seed=config.seed + k) for k in range(1, config.page_rule_copies + 1)]
    if copies:
        pages = np.concatenate(copies)
        _, cnn_pages = cnn.predict(pages)
        _, svm_pages = svm.predict(pages)
        rule = fit_page_threshold(cnn_pages, svm_pages, np.tile(y_val, len(copies)), rule, config.page_target_error)
    report(
        f"decision rule (on {len(y_val)} validation digits): SVM weight {rule.svm_weight}, "
        f"min confidence {rule.min_confidence:.4f}"
        + (
            f"; on pages {rule.page_min_confidence:.4f} (fitted on {len(copies)} distorted copies"
            f" for {rule.page_target_error:.2%} error)"
            if rule.page_min_confidence is not None
            else ""
        )
    )
    return rule


def refit_decision(
    data: Mnist, model_dir: Path, config: TrainConfig, command: str, report: Report, retrain_svm: bool = False
) -> dict:
    """Refit the decision rule of trained models (after retraining their HOG-SVM with ``retrain_svm``),
    then re-measure them; returns the updated manifest.

    Uses the split recorded in the manifest: the SVM is trained on its
    training part, and calibration and the rule are fitted on its validation
    part, so no digit is used for two things.  The CNN is kept as it is.
    """
    from ocr.classifiers import Models, load_models
    from ocr.evaluation import evaluate_models

    models = load_models(model_dir)
    manifest = dict(models.manifest)
    train_idx, val_idx = recorded_split(manifest, data, model_dir / MANIFEST_FILE)
    x_val, y_val = normalize_digits(data.x_train[val_idx], bright_ink=True), data.y_train[val_idx]
    svm = models.svm
    if retrain_svm:
        x_train = normalize_digits(data.x_train[train_idx], bright_ink=True)
        svm = train_svm(x_train, data.y_train[train_idx], x_val, y_val, config, report, data.x_train[train_idx])
        svm.save(model_dir / SVM_FILE)
        manifest["svm_command"] = command
        manifest["config"] = {
            **manifest.get("config", {}),
            "svm_c": config.svm_c,
            "svm_shifts": config.svm_shifts,
            "svm_scanned": config.svm_scanned,
            "svm_flagged_ones_share": config.svm_flagged_ones_share,
            "svm_crossed_sevens_share": config.svm_crossed_sevens_share,
            "svm_footed_ones_share": config.svm_footed_ones_share,
            "hog": config.hog.__dict__,
        }
    float_cnn = CnnClassifier(models.cnn.model, second_look=models.cnn.second_look)  # as train_models fits it
    rule = fit_rule_on_validation(float_cnn, svm, x_val, y_val, config, report, data.x_train[val_idx])
    (model_dir / DECISION_FILE).write_text(rule.to_json() + "\n")
    report("measuring the models on MNIST test (never trained on)")
    manifest["decision_rule"] = json.loads(rule.to_json())
    manifest["decision_command"] = command
    manifest["config"] = {
        **manifest.get("config", {}),
        "page_rule_copies": config.page_rule_copies,
        "page_target_error": config.page_target_error,
    }
    manifest["cnn_second_look"] = _second_look_record(models.cnn)
    manifest["metrics"] = {
        "mnist_test": evaluate_models(Models(cnn=models.cnn, svm=svm, rule=rule, manifest={}), data.x_test, data.y_test)
    }
    (model_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def train_models(data: Mnist, out_dir: Path, config: TrainConfig, command: str, report: Report) -> dict:
    """Train everything, write it to ``out_dir`` and return the manifest written with it."""
    import keras
    import sklearn
    import tensorflow as tf

    from ocr.evaluation import evaluate_models

    if config.threads:
        tf.config.threading.set_intra_op_parallelism_threads(config.threads)
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    train_idx, val_idx = split_validation(len(data.x_train), config.validation_size, config.seed)
    report(f"normalising {len(data.x_train)} MNIST training digits ({len(val_idx)} held out for validation)")
    x_all = normalize_digits(data.x_train, bright_ink=True)
    x_val, y_val = x_all[val_idx], data.y_train[val_idx]

    # The SVM trains in a process of its own beside the CNN's first epochs: its fit is
    # single-threaded, and the two together took 101 s where in turn they took 137 s.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        svm_job = pool.submit(
            _train_svm_quietly,
            x_all[train_idx],
            data.y_train[train_idx],
            x_val,
            y_val,
            config,
            data.x_train[train_idx],
        )
        # Then, in the same process, the touching-digit detector (raw digits: it draws its own runs)
        # and the digit orientation model.
        touching_job = pool.submit(_train_touching_quietly, data.x_train[train_idx], data.x_train[val_idx], config)
        orientation_job = pool.submit(
            _train_orientation_quietly, data.x_train[train_idx], data.x_train[val_idx], config
        )
        report("HOG-SVM, touching-digit detector and digit orientation training in a separate process")
        model = train_cnn(
            data.x_train[train_idx],
            data.y_train[train_idx],
            x_val,
            y_val,
            config,
            report,
            x_train_normalized=x_all[train_idx],
        )
        svm, svm_lines = svm_job.result()
        touching, touching_figures = touching_job.result()
        orientation, orientation_figures = orientation_job.result()
    for line in svm_lines:
        report(line)
    report(_touching_line(touching_figures))
    report(_orientation_line(orientation_figures))
    # The rule is fitted on the float network's probabilities; the figures are measured with the
    # network as reading runs it (int8 weights with ``config.quantize_cnn``: within about 0.02).
    rule = fit_rule_on_validation(CnnClassifier(model), svm, x_val, y_val, config, report, data.x_train[val_idx])

    bare = _save_for_inference(model, out_dir / CNN_FILE)
    cnn_lite = write_lite_model(out_dir, bare, quantize=config.quantize_cnn)
    cnn = CnnClassifier(bare, lite_model=(out_dir / cnn_lite["file"]).read_bytes())

    svm.save(out_dir / SVM_FILE)
    touching.save(out_dir / TOUCHING_FILE)
    orientation.save(out_dir / ORIENTATION_FILE)
    (out_dir / DECISION_FILE).write_text(rule.to_json() + "\n")
    train_seconds = time.perf_counter() - started

    report("measuring the shipped models on MNIST test (never trained on)")
    from ocr.classifiers import Models

    metrics = evaluate_models(Models(cnn=cnn, svm=svm, rule=rule, manifest={}), data.x_test, data.y_test)
    manifest = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        "training_data": {
            "source": data.source,
            "sha256": data.sha256,
            "split": "x_train/y_train",
            "validation": {"size": len(val_idx), "seed": config.seed},
        },
        "config": {**{k: v for k, v in config.__dict__.items() if k != "hog"}, "hog": config.hog.__dict__},
        "training_seconds": round(train_seconds, 1),
        "machine": {"cpus": _cpu_count(), "platform": platform.platform()},
        "versions": {
            "python": sys.version.split()[0],
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
        },
        "decision_rule": json.loads(rule.to_json()),
        "cnn_second_look": _second_look_record(cnn),
        "cnn_lite": cnn_lite,
        "touching": touching_figures,
        "orientation": orientation_figures,
        "metrics": {"mnist_test": metrics},
    }
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    report(f"models written to {out_dir} in {train_seconds / 60:.1f} min")
    return manifest


def _second_look_record(cnn: CnnClassifier) -> dict | None:
    """The test-time augmentation the recorded figures were measured with."""
    look = cnn.second_look
    return None if look is None else {"threshold": look.threshold, "scales": list(look.scales)}


def _save_for_inference(model, path: Path):
    """Save the weights and architecture without the optimizer state (a third of the size); returns that model."""
    import keras

    bare = keras.models.clone_model(model)
    bare.set_weights(model.get_weights())
    bare.save(path)
    return bare


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
