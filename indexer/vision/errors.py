"""Why the model or the detector cannot be used.  Apart from emotion.py and faces.py (numpy,
OpenCV) because the process that runs `index` or `watch` catches them, as they come back from
its worker processes, without loading either."""

from __future__ import annotations


class ModelError(RuntimeError):
    """The model cannot be used: missing, corrupt, wrong shape, or no TFLite runtime installed."""


class DetectorError(RuntimeError):
    """A detector cannot be loaded; the message says how to get it."""
