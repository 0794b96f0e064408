"""MTCNN's three networks as LiteRT (XNNPACK) graphs, written from the ``mtcnn`` wheel's Keras-layout weights.

Why: every MTCNN layer ends in a PReLU, which keeps ONNX Runtime off its blocked NCHWc convolutions; XNNPACK runs
PReLU natively. On a 640x480 photo, side by side on this project's 2-core machine, P-Net's pyramid took 7.9 ms in
ONNX Runtime and 3.7 ms here, R-Net's 45 crops 3.4 ms in ONNX Runtime (outputs equal to 2e-6). XNNPACK wants
static shapes, so each input shape (a pyramid level's size, a batch of crops) gets its own interpreter, written
once and kept in a bounded pool (:class:`NetPool`): photos of one size reuse them, a new size costs a few
milliseconds per level once. Batches of crops run in power-of-two pieces, so a handful of shapes serves them all.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..tflite_graph import GraphWriter, schema

__all__ = ["NetPool", "pnet_graph", "rnet_graph", "onet_graph", "MAX_CROP_BATCH"]

MAX_IDLE_INTERPRETERS = 96  # each holds its activations (about 2 MB for a 640x480 photo's largest level)
MAX_CROP_BATCH = 64  # crops run in power-of-two pieces of at most this many


class _NetWriter:
    """MTCNN's layers as NHWC LiteRT operators; each method returns its output tensor."""

    def __init__(self, arrays: list[np.ndarray]) -> None:
        self.w = GraphWriter(schema())
        self.s = self.w.schema
        self.arrays = iter(arrays)

    def conv(self, x: int, name: str) -> int:
        s = self.s
        kernel, bias = next(self.arrays), next(self.arrays)  # (kh, kw, in, out), (out,); no padding, stride 1
        height, width, _, channels = kernel.shape
        batch, rows, cols, _ = self.w.shapes[x]
        out = self.w.tensor((batch, rows - height + 1, cols - width + 1, channels), name)
        filters = self.w.tensor((channels, height, width, kernel.shape[2]), f"{name}/w", kernel.transpose(3, 0, 1, 2))
        options = s.Conv2DOptionsT()
        options.padding, options.strideH, options.strideW = s.Padding.VALID, 1, 1
        biases = self.w.tensor((channels,), f"{name}/b", bias)
        self.w.operator(s.BuiltinOperator.CONV_2D, [x, filters, biases], [out], s.BuiltinOptions.Conv2DOptions, options)
        return out

    def prelu(self, x: int, name: str) -> int:
        slope = next(self.arrays).reshape(-1)
        slope = slope.reshape(1, 1, -1) if len(self.w.shapes[x]) == 4 else slope
        out = self.w.tensor(self.w.shapes[x], name)
        self.w.operator(self.s.BuiltinOperator.PRELU, [x, self.w.tensor(slope.shape, f"{name}/slope", slope)], [out])
        return out

    def pool(self, x: int, size: int, same: bool, name: str) -> int:
        """Max pooling, stride 2; ``same`` pads after only, as TensorFlow (and the weights' training) did."""
        s = self.s
        batch, rows, cols, channels = self.w.shapes[x]
        if same:
            rows, cols = -(-rows // 2), -(-cols // 2)
        else:
            rows, cols = (rows - size) // 2 + 1, (cols - size) // 2 + 1
        out = self.w.tensor((batch, rows, cols, channels), name)
        options = s.Pool2DOptionsT()
        options.padding = s.Padding.SAME if same else s.Padding.VALID
        options.strideH = options.strideW = 2
        options.filterHeight = options.filterWidth = size
        self.w.operator(s.BuiltinOperator.MAX_POOL_2D, [x], [out], s.BuiltinOptions.Pool2DOptions, options)
        return out

    def flatten(self, x: int, name: str) -> int:
        s = self.s
        batch, *rest = self.w.shapes[x]
        shape = (batch, int(np.prod(rest)))
        out = self.w.tensor(shape, name)
        options = s.ReshapeOptionsT()
        options.newShape = list(shape)
        target = self.w.tensor((2,), f"{name}/shape", np.array(shape), "int32")
        self.w.operator(s.BuiltinOperator.RESHAPE, [x, target], [out], s.BuiltinOptions.ReshapeOptions, options)
        return out

    def dense(self, x: int, name: str, grid: tuple[int, int] | None = None) -> int:
        """A fully connected layer; ``grid`` (rows, cols) when its input is a flattened NHWC map.

        The Keras models flattened width-major features (a ``Permute((2, 1, 3))`` before ``Flatten``): their
        rows are reordered here so the plain NHWC flatten feeds them the same values.
        """
        kernel, bias = next(self.arrays), next(self.arrays)  # (in, out), (out,)
        if grid is not None:
            rows, cols = grid
            kernel = kernel.reshape(cols, rows, -1, kernel.shape[1]).transpose(1, 0, 2, 3).reshape(kernel.shape)
        return self.w.fully_connected(x, kernel.T, bias, name)

    def softmax(self, x: int, name: str) -> int:
        s = self.s
        out = self.w.tensor(self.w.shapes[x], name)
        options = s.SoftmaxOptionsT()
        options.beta = 1.0
        self.w.operator(s.BuiltinOperator.SOFTMAX, [x], [out], s.BuiltinOptions.SoftmaxOptions, options)
        return out

    def graph(self, image: int, outputs: list[int], net: str) -> bytes:
        return self.w.serialize([image], outputs, f"MTCNN {net} (core.faces.mtcnn_litert)")


def pnet_graph(arrays: list[np.ndarray], height: int, width: int) -> bytes:
    """P-Net on one (height, width) level in [-1, 1]: box regression (4) and face softmax (2) per 12 px cell."""
    emit = _NetWriter(arrays)
    image = emit.w.tensor((1, height, width, 3), "image")
    x = emit.pool(emit.prelu(emit.conv(image, "conv1"), "prelu1"), 2, False, "pool1")
    x = emit.prelu(emit.conv(emit.prelu(emit.conv(x, "conv2"), "prelu2"), "conv3"), "prelu3")
    regression = emit.conv(x, "regression")
    probability = emit.softmax(emit.conv(x, "face_logits"), "probability")
    return emit.graph(image, [regression, probability], "P-Net")


def rnet_graph(arrays: list[np.ndarray], batch: int) -> bytes:
    """R-Net on ``batch`` 24x24 crops: box regression (4) and face softmax (2) per crop."""
    emit = _NetWriter(arrays)
    image = emit.w.tensor((batch, 24, 24, 3), "image")
    x = emit.pool(emit.prelu(emit.conv(image, "conv1"), "prelu1"), 3, True, "pool1")  # 22 -> 11
    x = emit.pool(emit.prelu(emit.conv(x, "conv2"), "prelu2"), 3, False, "pool2")  # 9 -> 4
    x = emit.flatten(emit.prelu(emit.conv(x, "conv3"), "prelu3"), "flatten")  # 3x3x64
    x = emit.prelu(emit.dense(x, "dense4", grid=(3, 3)), "prelu4")
    regression = emit.dense(x, "regression")
    probability = emit.softmax(emit.dense(x, "face_logits"), "probability")
    return emit.graph(image, [regression, probability], "R-Net")


def onet_graph(arrays: list[np.ndarray], batch: int) -> bytes:
    """O-Net on ``batch`` 48x48 crops: box regression (4), five landmarks (10) and face softmax (2) per crop."""
    emit = _NetWriter(arrays)
    image = emit.w.tensor((batch, 48, 48, 3), "image")
    x = emit.pool(emit.prelu(emit.conv(image, "conv1"), "prelu1"), 3, True, "pool1")  # 46 -> 23
    x = emit.pool(emit.prelu(emit.conv(x, "conv2"), "prelu2"), 3, False, "pool2")  # 21 -> 10
    x = emit.pool(emit.prelu(emit.conv(x, "conv3"), "prelu3"), 2, False, "pool3")  # 8 -> 4
    x = emit.flatten(emit.prelu(emit.conv(x, "conv4"), "prelu4"), "flatten")  # 3x3x128
    x = emit.prelu(emit.dense(x, "dense5", grid=(3, 3)), "prelu5")
    regression, points = emit.dense(x, "regression"), emit.dense(x, "points")
    probability = emit.softmax(emit.dense(x, "face_logits"), "probability")
    return emit.graph(image, [regression, points, probability], "O-Net")


class NetPool:
    """One MTCNN network's interpreters by input shape, each borrowed by one call at a time (an interpreter is
    not thread-safe). Idle ones are kept, the least recently used shapes dropped first beyond ``max_idle``; two
    threads running the same shape at once each get their own."""

    def __init__(self, build: Any, max_idle: int = MAX_IDLE_INTERPRETERS) -> None:
        self.build_graph = build  # shape -> LiteRT flatbuffer
        self.max_idle = max_idle
        self._idle: OrderedDict[tuple[int, ...], list[Any]] = OrderedDict()
        self._lock = threading.Lock()

    def _build(self, shape: tuple[int, ...]) -> Any:
        from ai_edge_litert.interpreter import Interpreter

        # One thread: requests run side by side on the cores; these small maps gain little from more.
        interpreter = Interpreter(model_content=self.build_graph(shape), num_threads=1)
        interpreter.allocate_tensors()
        return interpreter

    @contextmanager
    def _borrow(self, shape: tuple[int, ...]) -> Iterator[Any]:
        with self._lock:
            free = self._idle.get(shape)
            interpreter = free.pop() if free else None
            if free is not None and not free:  # no empty lists: the eviction below pops the oldest shape's
                del self._idle[shape]
        if interpreter is None:
            interpreter = self._build(shape)
        try:
            yield interpreter
        finally:
            with self._lock:
                self._idle.setdefault(shape, []).append(interpreter)
                self._idle.move_to_end(shape)
                while sum(len(free) for free in self._idle.values()) > self.max_idle:
                    oldest = next(iter(self._idle))
                    self._idle[oldest].pop()
                    if not self._idle[oldest]:
                        del self._idle[oldest]

    def run(self, inputs: np.ndarray, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        """The network's named outputs for float32 NHWC ``inputs`` (in [-1, 1]), on the interpreter for ``shape``."""
        with self._borrow(shape) as interpreter:
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.ascontiguousarray(inputs))
            interpreter.invoke()
            return {
                detail["name"]: interpreter.get_tensor(detail["index"]) for detail in interpreter.get_output_details()
            }

    def run_level(self, level: np.ndarray) -> dict[str, np.ndarray]:
        """P-Net on one (H, W, 3) level: outputs without the batch axis."""
        outputs = self.run(level[None], level.shape[:2])
        return {name: value[0] for name, value in outputs.items()}

    def run_crops(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """R-Net or O-Net on (N, S, S, 3) crops, in power-of-two pieces (each shape one cached interpreter)."""
        pieces, start = [], 0
        while start < len(crops):
            size = min(MAX_CROP_BATCH, 1 << (len(crops) - start).bit_length() - 1)
            pieces.append(self.run(crops[start : start + size], (size,)))
            start += size
        return {name: np.concatenate([piece[name] for piece in pieces]) for name in pieces[0]}
