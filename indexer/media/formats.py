"""Which file extensions are photos we can decode: the one place for the list.

Apart from decode.py (OpenCV, numpy) so that walking folders, in the process that stores the
results, imports neither.
"""

from __future__ import annotations

STANDARD_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".webp", ".bmp"})
HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".hif"})
RAW_EXTENSIONS = frozenset({".cr2", ".cr3", ".nef", ".arw", ".dng", ".orf", ".rw2", ".raf"})
SUPPORTED_EXTENSIONS = STANDARD_EXTENSIONS | HEIF_EXTENSIONS | RAW_EXTENSIONS
