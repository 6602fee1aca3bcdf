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
