"""A confusion matrix as a PNG, for the model card: drawn with OpenCV, so no plotting
library is needed by export.py or the benchmarks that call it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from indexer.fsutil import atomic_write
from indexer.vision.crop import CLASSES


def draw_confusion(cm: np.ndarray, title: list[str], path: Path) -> None:
    """Row-normalised confusion matrix as a PNG, drawn with OpenCV (no plotting dependency)."""
    import cv2

    cell, left, top, n = 84, 120, 110, len(CLASSES)
    width, height = left + n * cell + 20, top + n * cell + 60
    img = np.full((height, width, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    for k, line in enumerate(title):
        cv2.putText(img, line, (10, 22 + 22 * k), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "predicted", (left + n * cell // 2 - 40, top - 30), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for j, name in enumerate(CLASSES):
        cv2.putText(img, name, (left + j * cell + 8, top - 8), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, name, (10, top + j * cell + cell // 2 + 5), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for i in range(n):
        for j in range(n):
            v = float(rows[i, j])
            # white -> dark blue (BGR)
            color = tuple(int(round(255 - v * (255 - c))) for c in (140, 50, 10))
            x0, y0 = left + j * cell, top + i * cell
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), color, -1)
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), (200, 200, 200), 1)
            ink = (255, 255, 255) if v > 0.5 else (0, 0, 0)
            cv2.putText(img, f"{100 * v:.0f}%", (x0 + 20, y0 + 38), font, 0.55, ink, 1, cv2.LINE_AA)
            cv2.putText(img, f"{cm[i, j]}", (x0 + 22, y0 + 62), font, 0.4, ink, 1, cv2.LINE_AA)
    cv2.putText(img, "rows: true class (percent of the row, count)", (left, height - 20), font, 0.45,
                (0, 0, 0), 1, cv2.LINE_AA)
    ok, png = cv2.imencode(".png", img)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    atomic_write(path, png.tobytes())
