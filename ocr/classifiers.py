"""The two digit classifiers behind one interface, and loading the shipped models.

Both take a batch of normalised digits, shape (N, 28, 28) float32 in [0, 1]
with ink 1 (see :mod:`ocr.normalize`), and return ``(labels, probabilities)``:
labels (N,) int64 and probabilities (N, 10) float32 whose rows sum to 1.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import joblib
import numpy as np

from ocr.decision import DecisionRule
from ocr.errors import ModelNotFoundError
from ocr.hog import HogParams, deskew_digits, hog_features
from ocr.orientation import ORIENTATION_FILE, DigitOrientation
from ocr.touching import TOUCHING_FILE, TouchingDetector

MODEL_DIR = Path(__file__).parent / "models"
CNN_FILE = "cnn.keras"
CNN_LITE_FILE = "cnn.tflite"  # the same network for LiteRT, written beside it by training
SVM_FILE = "svm.joblib"
DECISION_FILE = "decision.json"
MANIFEST_FILE = "manifest.json"

log = logging.getLogger(__name__)

# Threads for each LiteRT interpreter made after :func:`limit_threads` (None: LiteRT's default).
_LITE_THREADS: dict[str, int | None] = {"threads": None}


class DigitClassifier(Protocol):
    def predict(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def _check_batch(batch: np.ndarray) -> np.ndarray:
    batch = np.asarray(batch, dtype=np.float32)
    if batch.ndim != 3 or batch.shape[1:] != (28, 28):
        raise ValueError(f"a digit batch must have shape (N, 28, 28), got {batch.shape}")
    return batch


@dataclass(frozen=True)
class SecondLook:
    """Test-time augmentation for the digits the CNN is unsure of.

    A digit whose top CNN probability is below ``threshold`` is classified
    again scaled by each of ``scales`` about the centre of its 28x28 field,
    and its probabilities become the mean over the views (itself included).
    Chosen on the validation split (README, "The CNN's second look"): it cut
    the validation errors from 23 to 18, and it touches about 2% of MNIST
    digits, so it costs little.
    """

    threshold: float = 0.99
    scales: tuple[float, ...] = (0.9, 1.1)


def zoom_digits(batch: np.ndarray, scale: float) -> np.ndarray:
    """Normalised digits (N, 28, 28) scaled by ``scale`` about the field's centre."""
    import cv2

    matrix = cv2.getRotationMatrix2D((13.5, 13.5), 0.0, scale)
    return np.stack([cv2.warpAffine(digit, matrix, (28, 28), flags=cv2.INTER_LINEAR) for digit in batch])


class CnnClassifier:
    """The Keras CNN, run either by LiteRT or by TensorFlow itself.

    Reading runs the network through LiteRT (TensorFlow Lite's runtime and its
    XNNPACK kernels) from the ``cnn.tflite`` that training converts from
    ``cnn.keras`` with int8 weights (:func:`convert_to_lite`): the same
    network within rounding (probabilities within about 0.02 of Keras's, the
    same MNIST test figures), computed in the calling thread without
    TensorFlow's executor.  On the
    2-core development machine that made a page's CNN calls 2-3 times
    cheaper (docs/performance.md, "This round (LiteRT, bulk inserts)").  A
    worker that reads only through LiteRT never imports TensorFlow.  A
    LiteRT interpreter serves one thread at a time: one classifier per
    worker process (or thread), as :func:`load_models` is used.  Built from
    a Keras model (training, tests), the classifier calls it through one
    traced ``tf.function`` instead, whose fixed input signature avoids
    ``model.predict``'s large per-call cost.  Digits it is unsure of get a
    :class:`SecondLook` unless ``second_look`` is None.
    """

    def __init__(
        self,
        model=None,
        second_look: SecondLook | None = SecondLook(),
        *,
        lite_model: bytes | None = None,
        model_path: Path | None = None,
    ) -> None:
        if model is None and lite_model is None:
            raise ValueError("a CNN needs a Keras model or a LiteRT model")
        self._model = model
        self._model_path = model_path
        self.second_look = second_look
        self._run = _LiteRunner(lite_model) if lite_model is not None else _KerasRunner(model)

    @property
    def engine(self) -> str:
        """What runs the network: ``"litert"`` or ``"tensorflow"``."""
        return self._run.engine

    @property
    def model(self):
        """The Keras model (loaded from ``cnn.keras`` on first use when the classifier runs on LiteRT)."""
        if self._model is None:
            self._model = _load_keras(self._model_path)
        return self._model

    @classmethod
    def load(cls, path: Path, manifest: dict | None = None) -> CnnClassifier:
        """The CNN saved at ``path`` (``cnn.keras``), run by LiteRT.

        ``manifest``: the models' manifest; when it records that the
        ``cnn.tflite`` beside ``path`` was converted from this very
        ``cnn.keras``, that file is used.  Otherwise (no such file, or a
        ``cnn.keras`` replaced since) the network is converted again in memory.
        """
        if not path.is_file():
            raise ModelNotFoundError(f"CNN model not found at {path}; run `digitflow train` to create it")
        lite = read_lite_model(path, manifest or {})
        if lite is not None:
            return cls(lite_model=lite, model_path=path)
        log.warning("%s has no LiteRT copy made from it; converting it now", path)
        model = _load_keras(path)
        quantize = bool((manifest or {}).get("cnn_lite", {}).get("quantized"))
        return cls(model, lite_model=convert_to_lite(model, quantize), model_path=path)

    def predict(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = _check_batch(batch)
        return self.look_again(batch, self.predict_single_look(batch)[1])

    def look_again(self, batch: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The :class:`SecondLook` on ``batch`` given its single-look ``probs`` (left unchanged)."""
        probs = probs.copy()
        look = self.second_look
        unsure = np.flatnonzero(probs.max(axis=1) < look.threshold) if look is not None else []
        if len(unsure):
            views = np.concatenate([zoom_digits(batch[unsure], scale) for scale in look.scales])
            extra = self._run(views).reshape(len(look.scales), len(unsure), 10)
            probs[unsure] = (probs[unsure] + extra.sum(axis=0)) / (1 + len(look.scales))
        return probs.argmax(axis=1), probs

    def predict_single_look(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict` without the second look: the network alone."""
        batch = _check_batch(batch)
        if len(batch) == 0:
            return np.zeros(0, np.int64), np.zeros((0, 10), np.float32)
        probs = self._run(batch)
        return probs.argmax(axis=1), probs


class _KerasRunner:
    engine = "tensorflow"

    def __init__(self, model) -> None:
        import tensorflow as tf

        self._call = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec((None, 28, 28, 1), tf.float32)],
            reduce_retracing=True,
        )

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self._call(batch[..., None]).numpy().astype(np.float32)


class _LiteRunner:
    """One LiteRT interpreter; its input is resized to each batch (cheap when the size repeats)."""

    engine = "litert"

    def __init__(self, lite_model: bytes) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_content=lite_model, num_threads=_LITE_THREADS["threads"])
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._size = -1

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch[..., None], dtype=np.float32)
        if len(x) != self._size:
            self._interpreter.resize_tensor_input(self._input, x.shape)
            # The first allocation creates the XNNPACK delegate, which says so on stderr.
            with _quiet_native_stderr() if self._size < 0 else contextlib.nullcontext():
                self._interpreter.allocate_tensors()
            self._size = len(x)
        self._interpreter.set_tensor(self._input, x)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).astype(np.float32)


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence what native code writes to file descriptor 2 (Python exceptions still propagate)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _load_keras(path: Path | None):
    if path is None or not Path(path).is_file():
        raise ModelNotFoundError(f"CNN model not found at {path}; run `digitflow train` to create it")
    _configure_tensorflow_logging()
    import keras

    return keras.saving.load_model(path, compile=False)


def convert_to_lite(model, quantize: bool = False) -> bytes:
    """The Keras ``model`` as a LiteRT flatbuffer.

    Without ``quantize``: float32, the same probabilities as Keras (within
    1e-5).  With it: dynamic-range quantisation, weights stored as int8 and
    activations quantised on the fly by XNNPACK, which runs the convolutions
    in integer arithmetic: about 2.6 times the digits per second on one
    core, probabilities within about 0.02 of the float network's
    (docs/performance.md, "int8 weights").
    """
    _configure_tensorflow_logging()
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the exported signature
        return converter.convert()


def write_lite_model(model_dir: Path | str, model=None, quantize: bool = False) -> dict:
    """Write ``cnn.tflite`` beside ``cnn.keras`` in ``model_dir``; returns the record for the manifest.

    ``model``: the Keras model saved there, when the caller has it loaded.
    ``quantize``: see :func:`convert_to_lite`.
    """
    model_dir = Path(model_dir)
    keras_path = model_dir / CNN_FILE
    blob = convert_to_lite(model if model is not None else _load_keras(keras_path), quantize)
    (model_dir / CNN_LITE_FILE).write_bytes(blob)
    return {
        "file": CNN_LITE_FILE,
        "sha256": _sha256(blob),
        "from_sha256": _sha256(keras_path.read_bytes()),
        "quantized": "dynamic-range int8" if quantize else None,
    }


def read_lite_model(keras_path: Path, manifest: dict) -> bytes | None:
    """The ``cnn.tflite`` beside ``keras_path`` if ``manifest`` records it as converted from that file, else None."""
    record = manifest.get("cnn_lite") or {}
    lite_path = keras_path.with_name(record.get("file", CNN_LITE_FILE))
    if not lite_path.is_file():
        return None
    blob = lite_path.read_bytes()
    if record.get("sha256") != _sha256(blob) or record.get("from_sha256") != _sha256(keras_path.read_bytes()):
        return None
    return blob


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class HogSvmClassifier:
    """Deskewed digits, HOG descriptors (see :mod:`ocr.hog`), a calibrated linear SVM."""

    hog: HogParams
    svm: object  # a fitted scikit-learn classifier with predict_proba
    # Its sums, when it is a sigmoid-calibrated linear SVM; None: its own predict_proba is used.
    _sigmoid_svms: SigmoidCalibratedSvms | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._sigmoid_svms = SigmoidCalibratedSvms.of(self.svm)

    @classmethod
    def load(cls, path: Path) -> HogSvmClassifier:
        if not path.is_file():
            raise ModelNotFoundError(f"HOG-SVM model not found at {path}; run `digitflow train` to create it")
        saved = joblib.load(path)
        return cls(hog=HogParams(**saved["hog"]), svm=saved["svm"])

    def save(self, path: Path) -> None:
        joblib.dump({"hog": asdict(self.hog), "svm": self.svm}, path, compress=3)

    def features(self, batch: np.ndarray) -> np.ndarray:
        return hog_features(deskew_digits(_check_batch(batch)), self.hog)

    def predict(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = _check_batch(batch)
        if len(batch) == 0:
            return np.zeros(0, np.int64), np.zeros((0, 10), np.float32)
        features = self.features(batch)
        model = self._sigmoid_svms if self._sigmoid_svms is not None else self.svm
        probs = model.predict_proba(features).astype(np.float32)
        return probs.argmax(axis=1), probs


@dataclass(frozen=True)
class SigmoidCalibratedSvms:
    """The arithmetic of a scikit-learn ``CalibratedClassifierCV(method="sigmoid")`` over linear SVMs.

    Its ``predict_proba`` validates its input about fifteen times a call,
    which on a page's batch of some 40 digits cost ten times the arithmetic
    (3.1 ms against 0.3).  This does the same sums: each SVM's scores, each
    class's sigmoid, normalised over the classes, averaged over the
    calibrated copies.  A test holds it to scikit-learn's own results.
    """

    coef: np.ndarray  # (copies, classes, features)
    intercept: np.ndarray  # (copies, classes)
    a: np.ndarray  # (copies, classes)
    b: np.ndarray  # (copies, classes)

    @classmethod
    def of(cls, model) -> SigmoidCalibratedSvms | None:
        """The parameters of ``model``, or None if it is not a sigmoid-calibrated linear multi-class model."""
        copies = getattr(model, "calibrated_classifiers_", None)
        if not copies:
            return None
        coef, intercept, a, b = [], [], [], []
        for copy in copies:
            svm = getattr(copy.estimator, "estimator", copy.estimator)  # inside a FrozenEstimator
            classes = np.asarray(getattr(copy, "classes", []))
            if (
                copy.method != "sigmoid"
                or len(classes) <= 2
                or not hasattr(svm, "coef_")
                or not np.array_equal(np.asarray(svm.classes_), classes)
                or len(copy.calibrators) != len(classes)
            ):
                return None
            coef.append(np.asarray(svm.coef_, np.float64))
            intercept.append(np.asarray(svm.intercept_, np.float64))
            a.append([c.a_ for c in copy.calibrators])
            b.append([c.b_ for c in copy.calibrators])
        return cls(np.stack(coef), np.stack(intercept), np.array(a, np.float64), np.array(b, np.float64))

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        from scipy.special import expit

        features = np.asarray(features, np.float64)
        mean = np.zeros((len(features), self.coef.shape[1]))
        for coef, intercept, a, b in zip(self.coef, self.intercept, self.a, self.b, strict=True):
            scores = features @ coef.T + intercept
            proba = expit(-(a * scores + b))
            total = proba.sum(axis=1, keepdims=True)
            uniform = np.full_like(proba, 1.0 / proba.shape[1])
            proba = np.divide(proba, total, out=uniform, where=total != 0)
            proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
            mean += proba
        return mean / len(self.coef)


@dataclass
class Models:
    """Everything needed to read digits; load once per process and pass around."""

    cnn: CnnClassifier
    svm: HogSvmClassifier
    rule: DecisionRule
    manifest: dict
    # Tells one wide digit from touching digits in free writing (ocr.touching); None: models
    # trained before it existed, and touching digits are cut by the classifiers' readings alone.
    touching: TouchingDetector | None = None
    # Tells a digit as written from one turned upside down (ocr.orientation); None: models trained
    # before it existed, and a photo of digits is turned by its digits' readings alone.
    orientation: DigitOrientation | None = None


def load_models(model_dir: Path | str = MODEL_DIR) -> Models:
    """Load the CNN, the HOG-SVM, the decision rule, the touching-digit detector, the digit orientation model
    and the manifest from ``model_dir``."""
    model_dir = Path(model_dir)
    decision_path = model_dir / DECISION_FILE
    if not decision_path.is_file():
        raise ModelNotFoundError(f"decision rule not found at {decision_path}; run `digitflow train`")
    manifest_path = model_dir / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    return Models(
        cnn=CnnClassifier.load(model_dir / CNN_FILE, manifest),
        svm=HogSvmClassifier.load(model_dir / SVM_FILE),
        rule=DecisionRule.from_json(decision_path.read_text()),
        manifest=manifest,
        touching=_load_optional(
            TouchingDetector, model_dir / TOUCHING_FILE, "touching digits are cut by their readings alone"
        ),
        orientation=_load_optional(
            DigitOrientation, model_dir / ORIENTATION_FILE, "photos of digits are turned by their readings alone"
        ),
    )


def _load_optional(kind, path: Path, without: str):
    """A model of models trained before it existed: None (with a warning saying what goes without it) if missing."""
    if not path.is_file():
        log.warning("no %s at %s: %s", kind.__name__, path, without)
        return None
    return kind.load(path)


def _configure_tensorflow_logging() -> None:
    # TensorFlow prints several lines of C++ start-up chatter unless told not to.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def limit_threads(threads: int) -> None:
    """Size the thread pools of LiteRT, TensorFlow, OpenCV and BLAS to ``threads`` (0: leave their defaults).

    A worker runs one process per core; extra threads inside each only
    contend for the same cores, and on a virtual machine waking an idle
    thread for each small call costs more than the call.  TensorFlow takes
    the setting only before it has run its first operation (an environment
    variable if it is not imported yet); LiteRT interpreters made from now
    on get it.
    """
    if threads <= 0:
        return
    import cv2
    from threadpoolctl import threadpool_limits

    cv2.setNumThreads(threads)
    threadpool_limits(threads)
    _LITE_THREADS["threads"] = threads
    _configure_tensorflow_logging()
    if "tensorflow" not in sys.modules:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = str(threads)
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass
