"""The CLI through typer's CliRunner: exit codes, output a user reads, JSON a script reads."""

import hashlib
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from ocr.errors import DatasetError
from tests.conftest import MNIST_PATH

runner = CliRunner()


def test_evaluate_json_reports_every_figure():
    result = runner.invoke(app, ["evaluate", "--data", str(MNIST_PATH), "--limit", "500", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["digits"] == 500
    assert figures["cnn_accuracy"] > 0.98 and figures["svm_accuracy"] > 0.95
    assert [p["reject_rate"] for p in figures["reject_curve"]] == [0.0, 0.005, 0.01, 0.02, 0.05]
    assert figures["speed"]["cnn_digits_per_s"] > 0 and figures["speed"]["cores"] == 1
    assert "cnn_accuracy" in figures["distorted"]
    ones = figures["flagged_ones"]
    assert 0 <= ones["cnn_accuracy"] <= 1 and "page_decision" in ones


def test_evaluate_table_names_the_figures():
    result = runner.invoke(app, ["evaluate", "--data", str(MNIST_PATH), "--limit", "300"])
    assert result.exit_code == 0, result.output
    for text in ("CNN accuracy", "HOG-SVM accuracy", "agreement rate", "error at 2.0% rejected", "digits/s", "scanned"):
        assert text in result.output


def test_train_passes_the_page_target_to_the_rule_fit(monkeypatch, tmp_path):
    import json

    import ocr.training
    from ocr.classifiers import MODEL_DIR

    seen = []

    def refit(data, model_dir, config, command, report, retrain_svm=False):
        seen.append(config)
        return json.loads((MODEL_DIR / "manifest.json").read_text())

    monkeypatch.setattr(ocr.training, "refit_decision", refit)
    args = ["train", "--data", str(MNIST_PATH), "--out", str(tmp_path), "--decision-only"]
    assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, [*args, "--page-target-error", "0.002"]).exit_code == 0
    assert [c.page_target_error for c in seen] == [ocr.training.TrainConfig().page_target_error, 0.002]
    assert runner.invoke(app, [*args, "--page-target-error", "0.5"]).exit_code == 2  # out of range


def test_evaluate_with_missing_models_exits_4(tmp_path):
    result = runner.invoke(app, ["evaluate", "--data", str(MNIST_PATH), "--models", str(tmp_path)])
    assert result.exit_code == 4
    assert "digitflow train" in result.output


def test_evaluate_with_a_file_that_is_not_mnist_exits_5(tmp_path):
    bogus = tmp_path / "mnist.npz"
    np.savez(bogus, images=np.zeros((3, 28, 28)))
    result = runner.invoke(app, ["evaluate", "--data", str(bogus)])
    assert result.exit_code == 5
    assert "not an MNIST" in result.output


def test_evaluate_with_a_missing_data_file_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["evaluate", "--data", str(tmp_path / "nope.npz")])
    assert result.exit_code == 2


@pytest.mark.slow
def test_train_writes_loadable_models_and_manifest(tmp_path, mnist):
    """A miniature run of the real training path (seconds, not the 20-minute full run)."""
    from ocr.classifiers import load_models
    from ocr.mnist import Mnist
    from ocr.training import TrainConfig, train_models

    small = Mnist(
        x_train=mnist.x_train[:1500],
        y_train=mnist.y_train[:1500],
        x_test=mnist.x_test[:300],
        y_test=mnist.y_test[:300],
        source="subset",
        sha256=mnist.sha256,
    )
    lines: list[str] = []
    config = TrainConfig(epochs=1, validation_size=300, touching_runs=2000, orientation_digits=2000)
    manifest = train_models(small, tmp_path, config, "test", lines.append)
    assert any(line.startswith("CNN epoch 1/1") for line in lines)
    assert any(line.startswith("HOG-SVM (1296 features") for line in lines)  # reported from its own process
    assert manifest["cnn_second_look"] == {"threshold": 0.99, "scales": [0.9, 1.1]}
    loaded = load_models(tmp_path)
    assert loaded.manifest["metrics"]["mnist_test"]["digits"] == 300
    # the LiteRT copy is written beside the Keras model, recorded, and is what reading runs
    assert (tmp_path / manifest["cnn_lite"]["file"]).is_file() and loaded.cnn.engine == "litert"
    assert manifest["cnn_lite"]["from_sha256"] == hashlib.sha256((tmp_path / "cnn.keras").read_bytes()).hexdigest()
    assert manifest["cnn_lite"]["quantized"] == "dynamic-range int8" and manifest["config"]["quantize_cnn"] is True
    assert manifest["training_data"]["validation"]["size"] == 300
    labels, _ = loaded.cnn.predict(np.zeros((2, 28, 28), np.float32))
    assert labels.shape == (2,)
    assert any(line.startswith("decision rule (on 300 validation digits)") for line in lines)
    assert loaded.touching is not None and manifest["touching"]["train_runs"] == 2000
    assert any(line.startswith("touching-digit detector (2000 runs)") for line in lines)
    assert loaded.orientation is not None and manifest["orientation"]["validation_digits"] == 300

    # --decision-only refits the rule of these models on their own validation split
    from ocr.training import refit_decision

    (tmp_path / "decision.json").write_text('{"svm_weight": 0.5, "min_confidence": 0.5, "target_error": 0.01}')
    refit = refit_decision(small, tmp_path, TrainConfig(), "refit", lines.append)
    # same split, same models: the same rule, up to float rounding in the CNN's arithmetic
    assert refit["decision_rule"]["svm_weight"] == manifest["decision_rule"]["svm_weight"]
    fitted = manifest["decision_rule"]["min_confidence"]
    assert refit["decision_rule"]["min_confidence"] == pytest.approx(fitted, abs=1e-5)
    assert load_models(tmp_path).rule.min_confidence == pytest.approx(fitted, abs=1e-5)
    # the page threshold is refitted with it, and is the stricter one
    page = refit["decision_rule"]["page_min_confidence"]
    assert page == pytest.approx(manifest["decision_rule"]["page_min_confidence"], abs=1e-5)
    assert 0 < page <= 1 and refit["config"]["page_rule_copies"] == TrainConfig().page_rule_copies
    assert refit["decision_rule"]["page_target_error"] == TrainConfig().page_target_error
    assert refit["config"]["page_target_error"] == TrainConfig().page_target_error
    assert "page_decision" in refit["metrics"]["mnist_test"]["distorted"]
    other = Mnist(**{**small.__dict__, "sha256": "0" * 64})
    with pytest.raises(DatasetError):
        refit_decision(other, tmp_path, TrainConfig(), "refit", lines.append)

    # --svm-only retrains the SVM on the same split (here without the shifted copies), keeps the CNN
    cnn_before = (tmp_path / "cnn.keras").read_bytes()
    svm_before = (tmp_path / "svm.joblib").read_bytes()
    lines.clear()
    refit = refit_decision(small, tmp_path, TrainConfig(svm_shifts=False), "svm", lines.append, retrain_svm=True)
    assert any(line.startswith("HOG-SVM (1296 features") for line in lines)
    assert (tmp_path / "cnn.keras").read_bytes() == cnn_before
    assert (tmp_path / "svm.joblib").read_bytes() != svm_before
    assert refit["svm_command"] == "svm" and refit["config"]["svm_shifts"] is False
    assert refit["metrics"]["mnist_test"]["digits"] == 300

    # --touching-only retrains the detector alone, on the same split
    from ocr.training import retrain_detector

    (tmp_path / "touching.npz").unlink()
    svm_before = (tmp_path / "svm.joblib").read_bytes()
    config = TrainConfig(touching_runs=1000, orientation_digits=500)
    again = retrain_detector("touching", small, tmp_path, config, "touching", lines.append)
    assert again["touching"]["train_runs"] == 1000 and again["touching_command"] == "touching"
    assert (tmp_path / "svm.joblib").read_bytes() == svm_before and (tmp_path / "cnn.keras").read_bytes() == cnn_before
    assert load_models(tmp_path).touching is not None
    with pytest.raises(DatasetError):
        retrain_detector("touching", other, tmp_path, config, "touching", lines.append)
    # --orientation-only the same way
    (tmp_path / "orientation.npz").unlink()
    assert load_models(tmp_path).orientation is None  # models from before it still load
    again = retrain_detector("orientation", small, tmp_path, config, "orientation", lines.append)
    assert again["orientation"]["train_digits"] == 500 and again["orientation_command"] == "orientation"
    assert again["touching"]["train_runs"] == 1000  # the rest of the manifest is kept
    assert (tmp_path / "svm.joblib").read_bytes() == svm_before and load_models(tmp_path).orientation is not None
    assert any(line.startswith("digit orientation (500 digits") for line in lines)


def test_shifted_digits_move_and_lose_what_falls_off():
    from ocr.training import shift_digits

    digits = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    down = shift_digits(digits, 1, 0)
    assert np.array_equal(down[:, 1:], digits[:, :-1]) and not down[:, 0].any()
    left = shift_digits(digits, 0, -1)
    assert np.array_equal(left[:, :, :-1], digits[:, :, 1:]) and not left[:, :, -1].any()
    assert np.array_equal(shift_digits(digits, 0, 0), digits)


def test_augmenting_with_normalised_originals_draws_the_same_digits(mnist):
    from ocr.augment import augment_digits
    from ocr.normalize import normalize_digits

    images = mnist.x_train[:200]
    plain = augment_digits(images, np.random.default_rng(7), clean_share=0.5)
    given = augment_digits(
        images, np.random.default_rng(7), clean_share=0.5, normalized=normalize_digits(images, bright_ink=True)
    )
    np.testing.assert_array_equal(plain, given)
    assert not np.array_equal(plain, normalize_digits(images, bright_ink=True))  # half of them were distorted


def test_mild_share_draws_variants_closer_to_the_original_than_full_ones(mnist):
    # TrainConfig.mild_share: writer-like variation only (small slant, rotation, warp).
    from ocr.augment import augment_digits
    from ocr.normalize import normalize_digits

    images = mnist.x_train[:300]
    clean = normalize_digits(images, bright_ink=True)
    mild = augment_digits(images, np.random.default_rng(3), clean_share=0.0, mild_share=1.0)
    full = augment_digits(images, np.random.default_rng(3), clean_share=0.0, mild_share=0.0)
    mild_change, full_change = np.abs(mild - clean).mean(), np.abs(full - clean).mean()
    assert 0 < mild_change < 0.8 * full_change
    np.testing.assert_array_equal(augment_digits(images, np.random.default_rng(3), clean_share=1.0), clean)


def test_scanned_digits_are_read_as_segments_are_from_a_thresholded_mask(mnist):
    # TrainConfig.scanned_share / svm_scanned: digits as reading cuts them from a page.
    from ocr.augment import as_scanned, augment_digits, upscale_digit
    from ocr.normalize import normalize_digits
    from ocr.segment import reading_crop

    images = mnist.x_train[:40]
    for image in images[:10]:
        big = upscale_digit(image, 2.0)
        got = as_scanned(big, np.random.default_rng(5), image)
        level = np.random.default_rng(5).uniform(0.25, 0.6) * big.max()
        np.testing.assert_array_equal(got, reading_crop(np.where(big > level, 255, 0).astype(np.uint8)))
    # A crop with no ink above any threshold falls back to the clean digit.
    blank = np.zeros((40, 40), np.uint8)
    np.testing.assert_array_equal(
        as_scanned(blank, np.random.default_rng(0), images[0]), normalize_digits(images[:1], bright_ink=True)[0]
    )
    # Every digit scanned: nothing is MNIST's own gray digit, and the shares keep their draws apart.
    clean = normalize_digits(images, bright_ink=True)
    scanned = augment_digits(images, np.random.default_rng(3), clean_share=1.0, scanned_share=1.0)
    assert scanned.shape == clean.shape and all(not np.array_equal(s, c) for s, c in zip(scanned, clean, strict=True))
    assert 0 < np.abs(scanned - clean).mean() < 0.2  # the same digits, drawn another way
    np.testing.assert_array_equal(
        augment_digits(images, np.random.default_rng(3), clean_share=1.0, scanned_share=0.0), clean
    )


def test_svm_scanned_copies_need_the_raw_digits(mnist):
    from ocr.augment import scanned_digits
    from ocr.normalize import normalize_digits
    from ocr.training import TrainConfig, train_svm

    images = mnist.x_train[:30]
    copies = scanned_digits(images, 1)
    assert copies.shape == (30, 28, 28) and copies.dtype == np.float32
    np.testing.assert_array_equal(copies, scanned_digits(images, 1))
    assert not np.array_equal(copies, scanned_digits(images, 2))
    x = normalize_digits(images, bright_ink=True)
    with pytest.raises(ValueError, match="raw_train"):
        train_svm(x, mnist.y_train[:30], x, mnist.y_train[:30], TrainConfig(svm_scanned=True), print)


def test_flagged_ones_add_a_stroke_down_and_left_from_the_top(mnist):
    # TrainConfig.flagged_ones_share and evaluate's flagged_ones copy: 1s as much of the world writes them.
    from ocr.augment import augment_digits, flagged_one, flagged_ones

    ones = mnist.x_train[mnist.y_train == 1][:20]
    for i, image in enumerate(ones):
        out = flagged_one(image, np.random.default_rng(i))
        assert out.shape == image.shape and out.dtype == np.uint8
        assert np.all(out >= image)  # ink is only added
        added = (out > 128) & ~(image > 128)
        assert added.sum() >= 3
        ys, xs = np.nonzero(image > 128)
        top_x = xs[np.argmin(ys)]
        ay, ax = np.nonzero(added)
        # The flag starts at the 1's top and leans left of it (a foot, when drawn, lies on its bottom row).
        flag = ay < ys.min() + 0.6 * (ys.max() - ys.min())
        assert flag.any() and ax[flag].mean() < top_x
    assert flagged_one(np.zeros((28, 28), np.uint8), np.random.default_rng(0)).max() == 0
    copies = flagged_ones(ones, 7)
    assert copies.shape == (20, 28, 28) and copies.dtype == np.float32
    np.testing.assert_array_equal(copies, flagged_ones(ones, 7))
    # In training only the 1s are flagged, and only with their labels known.
    images, labels = mnist.x_train[:200], mnist.y_train[:200]
    plain = augment_digits(images, np.random.default_rng(3), clean_share=1.0)
    flagged = augment_digits(images, np.random.default_rng(3), clean_share=1.0, labels=labels, flagged_ones_share=1.0)
    changed = np.array([not np.array_equal(a, b) for a, b in zip(plain, flagged, strict=True)])
    assert changed.any() and np.all(labels[changed] == 1)


@pytest.mark.parametrize(
    ("label", "draw", "copies", "band"),
    [
        # TrainConfig.svm_crossed_sevens_share and bench/other_writing.py: 7s as written where 1s are flagged.
        (7, "crossed_seven", "crossed_sevens", (0.3, 0.75)),
        # TrainConfig.svm_footed_ones_share: a 1 on a foot, without a flag.
        (1, "footed_one", "footed_ones", (0.8, 1.3)),
    ],
)
def test_crossed_sevens_and_footed_ones_get_a_bar_at_their_height(mnist, label, draw, copies, band):
    import ocr.augment

    digits = mnist.x_train[mnist.y_train == label][:20]
    for i, image in enumerate(digits):
        out = getattr(ocr.augment, draw)(image, np.random.default_rng(i))
        assert np.all(out >= image)  # ink is only added
        ay, ax = np.nonzero((out > 128) & ~(image > 128))
        ys, _ = np.nonzero(image > 128)
        height = ys.max() - ys.min()
        assert ay.size >= 3
        # A bar: wider than tall, in its band of the digit's height (a foot is centred on the bottom row).
        assert np.ptp(ax) > np.ptp(ay)
        assert ys.min() + band[0] * height <= ay.mean() <= ys.min() + band[1] * height
    drawn = getattr(ocr.augment, copies)(digits, 3)
    assert drawn.shape == (20, 28, 28) and drawn.dtype == np.float32
    np.testing.assert_array_equal(drawn, getattr(ocr.augment, copies)(digits, 3))
