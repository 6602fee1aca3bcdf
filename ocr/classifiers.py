"""The two digit classifiers behind one interface, and loading the shipped models.

Both take a batch of normalised digits, shape (N, 28, 28) float32 in [0, 1]
with ink 1 (see :mod:`ocr.normalize`), and return ``(labels, probabilities)``:
labels (N,) int64 and probabilities (N, 10) float32 whose rows sum to 1.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import joblib
import numpy as np

from ocr.decision import DecisionRule
from ocr.errors import ModelNotFoundError
from ocr.hog import HogParams, deskew_digits, hog_features

MODEL_DIR = Path(__file__).parent / "models"
CNN_FILE = "cnn.keras"
SVM_FILE = "svm.joblib"
DECISION_FILE = "decision.json"
MANIFEST_FILE = "manifest.json"


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
    """A Keras CNN called through one traced TensorFlow function.

    ``model.predict`` pays a large fixed cost per call; a ``tf.function`` with
    a fixed input signature is traced once and then runs at the speed of the
    graph, which is what a worker reading one page at a time needs.  Digits it
    is unsure of get a :class:`SecondLook` unless ``second_look`` is None.
    """

    def __init__(self, model, second_look: SecondLook | None = SecondLook()) -> None:
        import tensorflow as tf

        self.model = model
        self.second_look = second_look
        self._call = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec((None, 28, 28, 1), tf.float32)],
            reduce_retracing=True,
        )

    @classmethod
    def load(cls, path: Path) -> CnnClassifier:
        _configure_tensorflow_logging()
        import keras

        if not path.is_file():
            raise ModelNotFoundError(f"CNN model not found at {path}; run `digitflow train` to create it")
        return cls(keras.saving.load_model(path, compile=False))

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
            extra = self._probabilities(views).reshape(len(look.scales), len(unsure), 10)
            probs[unsure] = (probs[unsure] + extra.sum(axis=0)) / (1 + len(look.scales))
        return probs.argmax(axis=1), probs

    def predict_single_look(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict` without the second look: the network alone."""
        batch = _check_batch(batch)
        if len(batch) == 0:
            return np.zeros(0, np.int64), np.zeros((0, 10), np.float32)
        probs = self._probabilities(batch)
        return probs.argmax(axis=1), probs

    def _probabilities(self, batch: np.ndarray) -> np.ndarray:
        return self._call(batch[..., None]).numpy().astype(np.float32)


@dataclass
class HogSvmClassifier:
    """Deskewed digits, HOG descriptors (see :mod:`ocr.hog`), a calibrated linear SVM."""

    hog: HogParams
    svm: object  # a fitted scikit-learn classifier with predict_proba

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
        probs = self.svm.predict_proba(self.features(batch)).astype(np.float32)
        return probs.argmax(axis=1), probs


@dataclass
class Models:
    """Everything needed to read digits; load once per process and pass around."""

    cnn: CnnClassifier
    svm: HogSvmClassifier
    rule: DecisionRule
    manifest: dict


def load_models(model_dir: Path | str = MODEL_DIR) -> Models:
    """Load the CNN, the HOG-SVM, the decision rule and the manifest from ``model_dir``."""
    model_dir = Path(model_dir)
    decision_path = model_dir / DECISION_FILE
    if not decision_path.is_file():
        raise ModelNotFoundError(f"decision rule not found at {decision_path}; run `digitflow train`")
    manifest_path = model_dir / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    return Models(
        cnn=CnnClassifier.load(model_dir / CNN_FILE),
        svm=HogSvmClassifier.load(model_dir / SVM_FILE),
        rule=DecisionRule.from_json(decision_path.read_text()),
        manifest=manifest,
    )


def _configure_tensorflow_logging() -> None:
    # TensorFlow prints several lines of C++ start-up chatter unless told not to.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def limit_threads(threads: int) -> None:
    """Size TensorFlow's and OpenCV's thread pools to ``threads`` (0: leave their defaults).

    A worker runs one process per core; extra threads inside each only
    contend for the same cores.  TensorFlow accepts this only before it has
    run its first operation; a process where it already ran keeps its pools.
    """
    if threads <= 0:
        return
    import cv2

    cv2.setNumThreads(threads)
    _configure_tensorflow_logging()
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass
