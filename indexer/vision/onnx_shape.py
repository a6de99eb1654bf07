"""Set the input size (and output anchor counts) of an ONNX model, without the `onnx` package.

OpenCV Zoo's YuNet 2023mar release declares a fixed 1x3x640x640 input.  OpenCV's DNN module
ignores that and reshapes per image; ONNX Runtime enforces it.  The network itself is fully
convolutional (OpenCV Zoo's 2026may build is the same graph with the two dimensions made
symbolic), so renaming them here lets ONNX Runtime run the 2023mar file at any size.

An ONNX file is a protobuf: ModelProto.graph (7) -> GraphProto.input (11, repeated) ->
ValueInfoProto.type (2) -> TypeProto.tensor_type (1) -> Tensor.shape (2) ->
TensorShapeProto.dim (1, repeated) -> Dimension.dim_value (1) | dim_param (2).  Only the
messages on that path are re-encoded; everything else is copied byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class OnnxFormatError(ValueError):
    """The bytes are not the protobuf this module expects."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise OnnxFormatError("truncated varint")
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _fields(buf: bytes) -> list[tuple[int, int, int, int, int]]:
    """(field number, wire type, start of the field, start of its payload, end) for each field."""
    out, pos = [], 0
    while pos < len(buf):
        start = pos
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            _, end = _varint(buf, pos)
        elif wire == _I64:
            end = pos + 8
        elif wire == _I32:
            end = pos + 4
        elif wire == _LEN:
            length, pos = _varint(buf, pos)
            end = pos + length
        else:
            raise OnnxFormatError(f"unsupported wire type {wire}")
        if end > len(buf) or number == 0:
            raise OnnxFormatError("field runs past the end of its message")
        out.append((number, wire, start, pos, end))
        pos = end
    return out


def _rewrite(buf: bytes, number: int, edit: Callable[[bytes, int], bytes]) -> bytes:
    """`buf` with each length-delimited field `number` replaced by edit(payload, index)."""
    out, index = bytearray(), 0
    for field, wire, start, payload, end in _fields(buf):
        if field == number and wire == _LEN:
            new = edit(buf[payload:end], index)
            out += _encode_varint(number << 3 | _LEN) + _encode_varint(len(new)) + new
            index += 1
        else:
            out += buf[start:end]
    return bytes(out)


def _dimension(value: int | str) -> bytes:
    if isinstance(value, int):
        return _encode_varint(1 << 3 | _VARINT) + _encode_varint(value)
    text = value.encode()
    return _encode_varint(2 << 3 | _LEN) + _encode_varint(len(text)) + text


def _shape_edit(dims: dict[int, int | str]) -> Callable[[bytes, int], bytes]:
    """An edit of a ValueInfoProto that sets the given dimensions of its tensor's shape."""
    found: list[int] = []

    def dim(d: bytes, index: int) -> bytes:
        found.append(index)
        return _dimension(dims[index]) if index in dims else d

    shape = lambda sh, _: _rewrite(sh, 1, dim)  # noqa: E731 (TensorShapeProto.dim)
    tensor = lambda t, _: _rewrite(t, 2, shape)  # noqa: E731 (Tensor.shape)
    edit = lambda vi, _: _rewrite(vi, 2, lambda ty, _: _rewrite(ty, 1, tensor))  # noqa: E731
    edit.found = found  # type: ignore[attr-defined]
    return edit


def set_io_dims(model: bytes, height: int | str, width: int | str,
                anchors: Callable[[int], int | str] | None = None, drop_value_info: bool = False) -> bytes:
    """The model with H and W (dims 2, 3 of NCHW) of its first graph input set to a size (int) or a
    symbolic name (str); with `anchors`, dim 1 of output i set to anchors(i); with
    `drop_value_info`, without the graph's shape hints for intermediate tensors."""
    first = _shape_edit({2: height, 3: width})

    def graph(g: bytes, _: int) -> bytes:
        g = _rewrite(g, 11, lambda vi, i: first(vi, i) if i == 0 else vi)
        if anchors is not None:
            g = _rewrite(g, 12, lambda vi, i: _shape_edit({1: anchors(i)})(vi, i))
        if drop_value_info:
            g = b"".join(g[start:end] for number, _, start, _, end in _fields(g) if number != 13)
        return g

    out = _rewrite(model, 7, graph)
    if first.found != [0, 1, 2, 3]:
        raise OnnxFormatError("no 4-D first graph input found")
    return out


def free_spatial_dims(model: bytes) -> bytes:
    """What OpenCV Zoo did to make YuNet 2026may from 2023mar: input height and width, and the
    outputs' anchor counts, symbolic; the static shape hints of intermediate tensors dropped."""
    return set_io_dims(model, "height", "width", anchors=lambda _: "anchors", drop_value_info=True)
