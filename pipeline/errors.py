"""Errors the merchant may see. Each carries the stage name and one plain-words line."""

from __future__ import annotations


class PlinthError(Exception):
    """A problem with the input or the capture, explained in one line for a non-technical user.

    The CLI prints `str(error)` and exits non-zero; the web app shows it in the page. Never raise
    this for programming errors: those should stay loud tracebacks in tests.
    """

    def __init__(self, stage: str, message: str, advice: str = ""):
        self.stage = stage
        self.message = message
        self.advice = advice
        super().__init__(message if not advice else f"{message} {advice}")


class InputError(PlinthError):
    """A photo or an option the merchant gave is unusable."""


class CaptureError(PlinthError):
    """The photos are readable but cannot make a model (too few placed, no object found)."""


class OutlinesDisagree(CaptureError):
    """The item's outlines in the placed photos do not meet in one 3D shape (geometry stage)."""


class Cancelled(Exception):
    """Raised when the progress callback asks the pipeline to stop."""
