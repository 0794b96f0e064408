"""The few ONNX protobuf messages MTCNN's graphs need, written without the ``onnx`` package.

``import onnx`` costs about 0.5 s (it loads protobuf and its C++ checker) for graphs of some twenty nodes, so
they are encoded here: each function returns one message's bytes, its fields in field-number order as protobuf
writes them (``onnx.proto`` is proto2: repeated numbers are not packed). The bytes equal what ``onnx.helper``
makes of the same arguments (``tests/core/test_faces.py`` compares them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["model", "node", "tensor", "value_info"]

_FLOAT = 1  # TensorProto.FLOAT
_ATTRIBUTE_INT, _ATTRIBUTE_INTS = 2, 7  # AttributeProto.INT, AttributeProto.INTS


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64s are written as ten-byte two's complement
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _number(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _attribute(name: str, value: int | Sequence[int]) -> bytes:
    if isinstance(value, int):
        return _bytes(1, name) + _number(3, value) + _number(20, _ATTRIBUTE_INT)
    return _bytes(1, name) + b"".join(_number(8, v) for v in value) + _number(20, _ATTRIBUTE_INTS)


def node(op: str, inputs: Sequence[str], outputs: Sequence[str], **attributes: int | Sequence[int]) -> bytes:
    """A NodeProto; attributes are integers or lists of integers, written in name order like ``make_node``."""
    fields = [_bytes(1, name) for name in inputs] + [_bytes(2, name) for name in outputs] + [_bytes(4, op)]
    fields += [_bytes(5, _attribute(key, value)) for key, value in sorted(attributes.items())]
    return b"".join(fields)


def tensor(name: str, array: np.ndarray) -> bytes:
    """A float32 TensorProto holding ``array`` as raw little-endian data."""
    data = np.ascontiguousarray(array, dtype="<f4")
    return (
        b"".join(_number(1, dim) for dim in data.shape)
        + _number(2, _FLOAT)
        + _bytes(8, name)
        + _bytes(9, data.tobytes())
    )


def value_info(name: str, shape: Sequence[int | str] | None) -> bytes:
    """A float32 ValueInfoProto; ``shape`` holds sizes and symbolic names, ``None`` leaves the shape unknown."""
    tensor_type = _number(1, _FLOAT)
    if shape is not None:
        dims = [_bytes(1, _bytes(2, dim) if isinstance(dim, str) else _number(1, dim)) for dim in shape]
        tensor_type += _bytes(2, b"".join(dims))
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def model(
    nodes: Sequence[bytes],
    name: str,
    inputs: Sequence[bytes],
    outputs: Sequence[bytes],
    initializers: Sequence[bytes],
    opset: int,
    ir_version: int,
) -> bytes:
    """A serialized ModelProto: one graph, the default operator domain at ``opset``."""
    graph = [_bytes(1, n) for n in nodes] + [_bytes(2, name)] + [_bytes(5, t) for t in initializers]
    graph += [_bytes(11, v) for v in inputs] + [_bytes(12, v) for v in outputs]
    opset_import = _bytes(1, "") + _number(2, opset)
    return _number(1, ir_version) + _bytes(7, b"".join(graph)) + _bytes(8, opset_import)
