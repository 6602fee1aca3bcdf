"""The one exception hierarchy of the reading engine.

Each error carries an ``exit_code`` so that the CLI can turn any of them into a
single clear line and a distinct process exit status.
"""

from __future__ import annotations


class DigitflowError(Exception):
    """Base class of every error digitflow raises on purpose."""

    exit_code = 1


class BlankCropError(DigitflowError, ValueError):
    """A digit crop holds no ink that could be a digit (blank, uniform or all ink)."""

    exit_code = 3


class ModelNotFoundError(DigitflowError, FileNotFoundError):
    """The shipped or requested model files are missing or incomplete."""

    exit_code = 4


class DatasetError(DigitflowError, ValueError):
    """A training or evaluation dataset cannot be read or has the wrong layout."""

    exit_code = 5


class UnreadableScanError(DigitflowError):
    """A scan file cannot be turned into page images; the message says why."""

    exit_code = 6
    reason = "unreadable"


class EmptyScanError(UnreadableScanError):
    reason = "empty file"


class UnsupportedFormatError(UnreadableScanError):
    reason = "not an image"


class CorruptScanError(UnreadableScanError):
    reason = "corrupt or truncated"


class ScanTooLargeError(UnreadableScanError):
    reason = "too many pixels"


class TooManyPagesError(UnreadableScanError):
    reason = "too many pages"


class FileTooLargeError(UnreadableScanError):
    reason = "file too large"


class NoPagesError(UnreadableScanError):
    reason = "no pages"


class EncryptedPdfError(UnreadableScanError):
    reason = "encrypted PDF"


class PageTooBusyError(DigitflowError):
    """A page holds far more box-like shapes than any form (graph paper, a halftone screen, noise)."""

    exit_code = 6
    reason = "too many boxes"


class TemplateError(DigitflowError):
    """A form template is malformed, or a page cannot be registered onto it."""

    exit_code = 7
