"""A reader of dlib's DNN serialization (``dlib::serialize`` of a network), in pure Python.

It turns a ``.dat`` such as ``dlib_face_recognition_resnet_model_v1.dat`` into a list of layer
records (kind, hyper-parameters, weights as numpy arrays), input layer first, so no C++ build is
needed to reuse dlib's weights. The byte format, as dlib writes it:

- integers: one control byte (bits 0-3: byte count, bit 7: negative) then little-endian bytes;
- floats and doubles: ``float_details``, i.e. an integer mantissa and an integer exponent (value
  ``mantissa * 2**exponent``, exponents 32000-32002 meaning inf, -inf and NaN);
- bools: the character ``'0'`` or ``'1'``; strings: their length (an integer) then the bytes;
- tensors: version 2, four integer dimensions, then little-endian float32 values;
- a network: ``add_loss_layer`` (version, loss details), then every wrapper's version from the
  outermost layer inwards, the input layer, then each layer's details followed by its state
  (flags and empty work tensors), innermost layer first. Tag and skip layers write only their
  version, so the graph's wiring (which tag an ``add_prev`` adds) comes from the network's type,
  not from the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DlibFormatError", "LayerRecord", "DlibNetwork", "read_dlib_network"]

_INF, _NINF, _NAN = 32000, 32001, 32002


class DlibFormatError(ValueError):
    """The bytes are not a dlib network this reader understands (truncated, another layer type, ...)."""


@dataclass
class LayerRecord:
    """One computational layer: ``kind`` (``con``, ``affine``, ``relu``, ``max_pool``, ``avg_pool``,
    ``add_prev``, ``fc``), its hyper-parameters and its weights (float32 arrays, dlib's layout)."""

    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class DlibNetwork:
    """A whole serialized network: loss, input layer and the layers from the input to the output."""

    loss: LayerRecord
    input: LayerRecord
    layers: list[LayerRecord]


class _Reader:
    """Cursor over the file's bytes with dlib's primitive decoders."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            raise DlibFormatError(f"the file ends early (wanted {count} bytes at offset {self.pos})")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def integer(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            raise DlibFormatError(f"no integer at offset {self.pos - 1} (control byte {control:#04x})")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def real(self) -> float:
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise DlibFormatError(f"old text-format float at offset {self.pos} is not supported")
        mantissa, exponent = self.integer(), self.integer()
        if exponent == _INF:
            return float("inf")
        if exponent == _NINF:
            return float("-inf")
        if exponent == _NAN:
            return float("nan")
        return float(np.ldexp(float(mantissa), exponent))

    def boolean(self) -> bool:
        char = self._take(1)
        if char not in (b"0", b"1"):
            raise DlibFormatError(f"no bool at offset {self.pos - 1}")
        return char == b"1"

    def string(self) -> str:
        return self._take(self.integer()).decode("latin-1")

    def peek_string(self) -> str | None:
        """The string starting here, without consuming it, or None when the bytes cannot be one."""
        start = self.pos
        try:
            return self.string()
        except (DlibFormatError, UnicodeDecodeError):
            return None
        finally:
            self.pos = start

    def tensor(self) -> np.ndarray:
        self._version("tensor", 2)
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        return np.frombuffer(self._take(4 * count), dtype="<f4").reshape(shape).astype(np.float32)

    def alias_shape(self) -> tuple[int, int, int, int]:
        self._version("alias_tensor", 1)
        n, k, rows, cols = (self.integer() for _ in range(4))
        return n, k, rows, cols

    def _version(self, what: str, *accepted: int) -> int:
        version = self.integer()
        if version not in accepted:
            raise DlibFormatError(f"unexpected {what} version {version} at offset {self.pos}")
        return version


def _split(params: np.ndarray, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    """Cut a layer's flat parameter tensor into its alias tensors, laid out one after another."""
    flat, parts, offset = params.reshape(-1), [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        if offset + size > flat.size:
            raise DlibFormatError(f"parameter tensor of {flat.size} values is too small for {shapes}")
        parts.append(flat[offset : offset + size].reshape(shape))
        offset += size
    return parts


def _con(r: _Reader, version: str) -> LayerRecord:
    params = r.tensor()
    filters, rows, cols = r.integer(), r.integer(), r.integer()
    stride = (r.integer(), r.integer())
    padding = (r.integer(), r.integer())
    filter_shape, bias_shape = r.alias_shape(), r.alias_shape()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.real()
    use_bias = r.boolean() if version in ("con_5", "con_6") else True
    if version == "con_6" and r.boolean():
        raise DlibFormatError("convolutions with a fused ReLU (con_6 use_relu) are not supported")
    weight, bias = _split(params, filter_shape, bias_shape) if params.size else (None, None)
    weights = {"weight": weight} if weight is not None else {}
    if use_bias and bias is not None:
        weights["bias"] = bias.reshape(-1)
    options = {"filters": filters, "kernel": (rows, cols), "stride": stride, "padding": padding}
    return LayerRecord("con", options, weights)


def _affine(r: _Reader, version: str) -> LayerRecord:
    params = r.tensor()
    gamma_shape, beta_shape = r.alias_shape(), r.alias_shape()
    mode = r.integer()
    disabled = r.boolean() if version == "affine_2" else False
    gamma, beta = _split(params, gamma_shape, beta_shape)
    return LayerRecord("affine", {"mode": mode, "disabled": disabled}, {"gamma": gamma, "beta": beta})


def _pool(kind: str) -> Any:
    def read(r: _Reader, _version: str) -> LayerRecord:
        window = (r.integer(), r.integer())
        stride = (r.integer(), r.integer())
        padding = (r.integer(), r.integer())
        return LayerRecord(kind, {"window": window, "stride": stride, "padding": padding})

    return read


def _relu(r: _Reader, version: str) -> LayerRecord:
    return LayerRecord("relu", {"disabled": r.boolean() if version == "relu_2" else False})


def _add_prev(_r: _Reader, _version: str) -> LayerRecord:
    return LayerRecord("add_prev")


def _fc(r: _Reader, version: str) -> LayerRecord:
    outputs, inputs = r.integer(), r.integer()
    params = r.tensor()
    weight_shape, bias_shape = r.alias_shape(), r.alias_shape()
    bias_mode = r.integer()  # 0: FC_HAS_BIAS, 1: FC_NO_BIAS
    for _ in range(4):
        r.real()
    use_bias = r.boolean() if version == "fc_3" else True
    weights = {}
    if bias_mode == 0 and use_bias:
        weight, bias = _split(params, weight_shape, bias_shape)
        weights["bias"] = bias.reshape(-1)
    else:
        (weight,) = _split(params, weight_shape)
    weights["weight"] = weight.reshape(inputs, outputs)  # dlib computes x @ W
    return LayerRecord("fc", {"outputs": outputs, "inputs": inputs}, weights)


_LAYER_READERS = {
    "con_4": _con,
    "con_5": _con,
    "con_6": _con,
    "affine_": _affine,
    "affine_2": _affine,
    "relu_": _relu,
    "relu_2": _relu,
    "max_pool_2": _pool("max_pool"),
    "avg_pool_2": _pool("avg_pool"),
    "add_prev_": _add_prev,
    "fc_2": _fc,
    "fc_3": _fc,
}


def _details(r: _Reader) -> LayerRecord:
    version = r.string()
    try:
        reader = _LAYER_READERS[version]
    except KeyError:
        raise DlibFormatError(f"layer type {version!r} is not supported by this reader") from None
    return reader(r, version)


def _input(r: _Reader) -> LayerRecord:
    version = r.string()
    if version not in ("input_rgb_image", "input_rgb_image_sized"):
        raise DlibFormatError(f"input layer {version!r} is not supported by this reader")
    options: dict[str, Any] = {"mean_rgb": (r.real(), r.real(), r.real())}
    if version == "input_rgb_image_sized":
        options["size"] = (r.integer(), r.integer())
    return LayerRecord("input_rgb_image", options)


def _loss(r: _Reader) -> LayerRecord:
    version = r.string()
    if version == "loss_metric_":
        return LayerRecord("loss_metric", {"margin": 0.1, "distance_threshold": 0.75})
    if version == "loss_metric_2":
        return LayerRecord("loss_metric", {"margin": r.real(), "distance_threshold": r.real()})
    raise DlibFormatError(f"loss layer {version!r} is not supported by this reader")


def read_dlib_network(source: str | Path | bytes) -> DlibNetwork:
    """Parse a serialized dlib network (path or bytes) into its loss, input and layers, input first."""
    r = _Reader(source if isinstance(source, bytes) else Path(source).read_bytes())
    r._version("add_loss_layer", 1)
    loss = _loss(r)
    outer_version = None  # every add_layer in one file is written with the same version
    versions: list[int] = []
    while not (r.peek_string() or "").startswith("input_"):
        versions.append(r.integer())
        outer_version = outer_version or versions[-1]
        if len(versions) > 100_000:
            raise DlibFormatError("no input layer found")
    if not versions or versions[-1] not in (2, 3):
        raise DlibFormatError("the innermost layer has an unknown version")
    input_layer = _input(r)
    layers = [_details(r)]
    for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, get_output..._disabled
        r.boolean()
    r.tensor(), r.tensor(), r.tensor()  # x_grad, cached_output, grad_final
    if versions[-1] == 3:
        r.integer()  # sample expansion factor
    while r.pos < len(r.data):
        layers.append(_details(r))
        for _ in range(3):
            r.boolean()
        r.tensor(), r.tensor()  # x_grad, cached_output
        if outer_version == 2:
            r.tensor()  # params_grad
    return DlibNetwork(loss, input_layer, layers)
