"""The networks moodindex trains: 1.x's VGG and 2.0's small residual net (TensorFlow/Keras).

Both output logits for `CLASSES`; both use plain 3x3 convolutions + BatchNorm + ReLU, which
the TFLite converter folds and fuses and which quantize to int8 with almost no loss.
"""

from __future__ import annotations

from indexer.vision.crop import CLASSES, INPUT_SIZE


def build_vgg(widths: list[int], tf):
    """1.x: blocks of two 3x3 conv + BN + ReLU, max-pool, then GAP and a small head
    (235 M multiply-accumulates per face at widths 32-256: full resolution is expensive)."""
    keras = tf.keras
    L = keras.layers
    inp = keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="face")
    x = inp
    for i, w in enumerate(widths):
        for j in range(2):
            x = L.Conv2D(w, 3, padding="same", use_bias=False, name=f"b{i}c{j}")(x)
            x = L.BatchNormalization(name=f"b{i}bn{j}")(x)
            x = L.ReLU(name=f"b{i}relu{j}")(x)
        x = L.MaxPooling2D(2, name=f"b{i}pool")(x)
        if i >= 2:
            x = L.Dropout(0.1 * (i - 1), name=f"b{i}drop")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(256, use_bias=False, name="fc")(x)
    x = L.BatchNormalization(name="fcbn")(x)
    x = L.ReLU(name="fcrelu")(x)
    x = L.Dropout(0.4, name="fcdrop")(x)
    out = L.Dense(len(CLASSES), name="logits")(x)
    return keras.Model(inp, out, name="moodindex_vgg")


def build_resnet(stem: int, widths: list[int], blocks: list[int], tf, dropout: float = 0.3):
    """2.0: a strided residual net that spends its compute where 48x48 faces need it.

    A narrow stem at full resolution, then one stage per width; each stage halves the
    resolution in its first block (3x3 stride-2 conv, 1x1 stride-2 projection shortcut) and
    adds `blocks - 1` identity blocks.  Most multiply-accumulates land at 12x12 and 6x6,
    where mouth corners, eyes and brows are a few pixels wide."""
    keras = tf.keras
    L = keras.layers

    def conv_bn(x, width, stride, name, relu=True, kernel=3):
        x = L.Conv2D(width, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
        x = L.BatchNormalization(name=f"{name}_bn")(x)
        return L.ReLU(name=f"{name}_relu")(x) if relu else x

    inp = keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="face")
    x = conv_bn(inp, stem, 1, "stem")
    for s, (width, n) in enumerate(zip(widths, blocks, strict=True)):
        for b in range(n):
            name = f"s{s}b{b}"
            stride = 2 if b == 0 else 1
            y = conv_bn(x, width, stride, f"{name}a")
            y = conv_bn(y, width, 1, f"{name}b", relu=False)
            shortcut = x if b else conv_bn(x, width, 2, f"{name}proj", relu=False, kernel=1)
            x = L.ReLU(name=f"{name}_out")(L.Add(name=f"{name}_add")([y, shortcut]))
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dropout(dropout, name="drop")(x)
    out = L.Dense(len(CLASSES), name="logits")(x)
    return keras.Model(inp, out, name="moodindex_resnet")


def keras_macs(model) -> int:
    """Multiply-accumulates of one forward pass (conv and dense layers), for design only;
    the figure we report is counted from the exported TFLite graph (benchmarks/model_cost.py)."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * c_out * kh * kw * layer.input.shape[-1]
        elif kind == "Dense":
            total += layer.input.shape[-1] * layer.units
    return int(total)
