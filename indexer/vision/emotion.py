"""The emotion classifier at run time: our int8 TFLite model, run by LiteRT.

No TensorFlow here: the indexer depends on `ai-edge-litert` only (falling back to
`tflite_runtime` or `tensorflow.lite` when that is what is installed).  The model takes
faces from `indexer.vision.crop.crop_faces`, passed through `crop.normalise` -- the same
function training and export used -- and returns logits; the softmax is done here in
float, which ranks photos by score more finely than an int8 softmax would.

A model file `X.tflite` comes with `X.json` (written by models/export.py): name, version,
class order, quantization, validation figures and the test-time-augmentation default.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from indexer.vision.crop import CLASSES, INPUT_SIZE, normalise
from indexer.vision.errors import ModelError

# where the shipped model lies is known without numpy or a runtime (vision/identity.py)
from indexer.vision.identity import DEFAULT_MODEL_FILE, default_model_path  # noqa: F401

log = logging.getLogger(__name__)

# Largest batch handed to the interpreter in one invoke; bigger inputs are chunked.
MAX_BATCH = 64


def _interpreter_class() -> tuple[type, str]:
    """The first TFLite interpreter that is installed, and its module's name."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai_edge_litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite_runtime"
    except ImportError:
        pass
    try:
        import tensorflow as tf

        return tf.lite.Interpreter, "tensorflow.lite"
    except ImportError:
        pass
    raise ModelError("no TFLite runtime found: pip install ai-edge-litert")


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """The TFLite runtimes print "INFO: Created TensorFlow Lite XNNPACK delegate" from C++
    straight to fd 2 on every load; keep that out of the CLI's output, and pass anything
    else they print on to the log."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2 (embedded interpreters): nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as captured:
        try:
            sys.stderr.flush()
            os.dup2(captured.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines():
                if line.strip() and not line.startswith("INFO: "):
                    log.warning("%s", line)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, returned as float32."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _read_metadata(path: Path) -> dict[str, Any]:
    meta_path = path.with_suffix(".json")
    if not meta_path.exists():
        return {}
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{meta_path}: unreadable model metadata ({exc})") from exc
    if not isinstance(meta, dict):
        raise ModelError(f"{meta_path}: model metadata must be a JSON object")
    return meta


def _describe_quantization(in_dtype: Any, out_dtype: Any) -> str:
    if in_dtype == np.int8 and out_dtype == np.int8:
        return "int8 (full integer)"
    if in_dtype == np.uint8 and out_dtype == np.uint8:
        return "uint8 (full integer)"
    return f"{np.dtype(in_dtype).name} input, {np.dtype(out_dtype).name} output"


class EmotionModel:
    """One loaded model.  `predict` is safe to call from several threads (calls are
    serialised); for parallelism use one EmotionModel per worker process."""

    def __init__(self, path: Path | None = None, threads: int = 1, tta: bool | None = None) -> None:
        self.path = Path(path) if path is not None else default_model_path()
        if threads < 1:
            raise ModelError(f"threads must be >= 1, got {threads}")
        self.threads = threads
        if not self.path.is_file():
            raise ModelError(f"{self.path}: model file not found")
        meta = _read_metadata(self.path)
        interpreter_cls, self.runtime = _interpreter_class()
        try:
            with _quiet_native_stderr():
                self._interp = interpreter_cls(model_path=str(self.path), num_threads=threads)
                self._interp.allocate_tensors()
        except Exception as exc:  # the runtimes raise ValueError/RuntimeError with C++ messages
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelError(f"{self.path}: not a usable TFLite model ({detail})") from exc

        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{self.path}: expected one input and one output, got {len(inputs)} and {len(outputs)}")
        self._in, self._out = inputs[0], outputs[0]
        in_sig = tuple(int(d) for d in self._in.get("shape_signature", self._in["shape"]))
        out_sig = tuple(int(d) for d in self._out.get("shape_signature", self._out["shape"]))
        classes = meta.get("classes", CLASSES)
        if not isinstance(classes, (list, tuple)) or not all(isinstance(c, str) for c in classes):
            raise ModelError(f"{self.path}: metadata 'classes' must be a list of class names")
        self.classes: tuple[str, ...] = tuple(classes)
        if in_sig[1:] != (INPUT_SIZE, INPUT_SIZE, 1) or len(in_sig) != 4:
            raise ModelError(f"{self.path}: input shape {in_sig}, expected (N, {INPUT_SIZE}, {INPUT_SIZE}, 1)")
        if len(out_sig) != 2 or out_sig[1] != len(self.classes):
            raise ModelError(f"{self.path}: output shape {out_sig}, expected (N, {len(self.classes)})")
        if self.classes != CLASSES:
            raise ModelError(f"{self.path}: class order {self.classes} differs from the indexer's {CLASSES}")
        self._resizable = in_sig[0] == -1
        self._batch = int(self._in["shape"][0])

        self.input_shape: tuple[int, ...] = in_sig
        self.name: str = str(meta.get("name", self.path.stem))
        self.version: str = str(meta.get("version", "unknown"))
        self.quantization: str = str(meta.get("quantization") or
                                     _describe_quantization(self._in["dtype"], self._out["dtype"]))
        self.output_kind: str = str(meta.get("output", "logits"))
        if self.output_kind not in ("logits", "probabilities"):
            raise ModelError(f"{self.path}: metadata 'output' must be 'logits' or 'probabilities'")
        self.tta: bool = bool(meta.get("tta_default", False)) if tta is None else bool(tta)
        self.metadata = meta
        self.size_bytes = self.path.stat().st_size
        self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """Name, version and content fingerprint: what an index row records, so that a
        re-exported model (same version, new weights) is recognised as a different one."""
        from indexer.vision.identity import model_id

        return model_id(self.name, self.version, self.sha256)

    # -- inference -----------------------------------------------------------------
    def _to_input(self, faces_u8: np.ndarray) -> np.ndarray:
        x = normalise(faces_u8)
        dtype = self._in["dtype"]
        if dtype == np.float32:
            return x
        scale, zero = self._in["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)

    def _from_output(self, q: np.ndarray) -> np.ndarray:
        if self._out["dtype"] == np.float32:
            return q.astype(np.float32)
        scale, zero = self._out["quantization"]
        return (q.astype(np.float32) - zero) * scale

    def _run(self, x: np.ndarray) -> np.ndarray:
        """Raw model outputs (dequantized) for an input batch of any size."""
        out = np.empty((len(x), len(self.classes)), np.float32)
        step = MAX_BATCH if self._resizable else self._batch
        for start in range(0, len(x), step):
            chunk = x[start:start + step]
            n = len(chunk)
            if self._resizable and n != self._batch:
                self._interp.resize_tensor_input(self._in["index"], [n, INPUT_SIZE, INPUT_SIZE, 1])
                self._interp.allocate_tensors()
                self._batch = n
            elif not self._resizable and n != self._batch:  # fixed batch: pad the last chunk
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self._batch - n, axis=0)])
            self._interp.set_tensor(self._in["index"], chunk)
            self._interp.invoke()
            out[start:start + n] = self._from_output(self._interp.get_tensor(self._out["index"]))[:n]
        return out

    def _probabilities(self, raw: np.ndarray) -> np.ndarray:
        if self.output_kind == "logits":
            return softmax(raw)
        p = np.clip(raw, 0.0, None) + 1e-12
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)

    def predict(self, faces_u8: np.ndarray, tta: bool | None = None) -> np.ndarray:
        """(N, 48, 48) uint8 crops -> (N, 7) float32 probabilities in CLASSES order.

        With test-time augmentation the mirrored face is classified too and the two
        probability vectors are averaged."""
        faces = np.asarray(faces_u8)
        if faces.ndim == 2:
            faces = faces[None]
        if faces.dtype != np.uint8 or faces.ndim != 3 or faces.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"faces must be uint8 (N, {INPUT_SIZE}, {INPUT_SIZE}), got {faces.dtype} {faces.shape}")
        if len(faces) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        use_tta = self.tta if tta is None else tta
        with self._lock:
            probs = self._probabilities(self._run(self._to_input(faces)))
            if use_tta:
                flipped = np.ascontiguousarray(faces[:, :, ::-1])
                probs = (probs + self._probabilities(self._run(self._to_input(flipped)))) / 2.0
        return probs.astype(np.float32)

    def info(self) -> dict[str, Any]:
        """What `moodindex model info` shows."""
        figures = {k: self.metadata[k] for k in ("val_accuracy", "float_val_accuracy", "checkpoint_epoch",
                                                  "training_finished", "training_commit") if k in self.metadata}
        return {
            "name": self.name,
            "version": self.version,
            "model_id": self.model_id,
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "classes": list(self.classes),
            "input_shape": list(self.input_shape),
            "input_dtype": np.dtype(self._in["dtype"]).name,
            "output": self.output_kind,
            "quantization": self.quantization,
            "tta": self.tta,
            "threads": self.threads,
            "runtime": self.runtime,
            **figures,
        }
