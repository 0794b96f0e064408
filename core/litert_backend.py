"""Serving through LiteRT (TensorFlow Lite) with XNNPACK: the fastest way this product classifies a crop.

ONNX Runtime pays a few microseconds per node on the ~95-node int8 ShuffleNet, which keeps a 64 px crop
near 0.3 ms at batch 1; LiteRT delegates the whole graph (written by :mod:`core.tflite_export`) to
XNNPACK, which runs it as one plan with AVX512-VNNI int8 kernels in about half that time.
:class:`LiteRtEngine` is a :class:`~core.compiled.CompiledEngine`: a :class:`~core.classifier.Classifier` over it
behaves as over PyTorch or ONNX Runtime.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch.nn as nn

from .compiled import CONFIG_METADATA_KEY, CompiledEngine
from .tflite_export import is_quantized, quantize_tflite, read_metadata, tflite_float_graph, with_batch, with_metadata
from .weights import ModelConfig

__all__ = ["LiteRtEngine", "export_tflite", "CONFIG_METADATA_KEY"]

MAX_BATCH = 64  # larger inputs run in chunks; smaller ones are padded up to a power of two


def _bucket(count: int) -> int:
    """The batch size a graph is built for: the next power of two, at most :data:`MAX_BATCH`."""
    return min(MAX_BATCH, 1 << max(0, count - 1).bit_length())


class LiteRtEngine(CompiledEngine):
    """A forward pass in LiteRT with XNNPACK.

    XNNPACK wants static shapes, so there is one interpreter per batch size used (powers of two); an
    interpreter is not thread-safe, so calls are serialised by a lock.
    """

    name = "litert"
    file_kind = "tflite"
    read_metadata = staticmethod(read_metadata)
    _with_metadata = staticmethod(with_metadata)

    @staticmethod
    def _float_graph(model: nn.Module, config: ModelConfig) -> bytes:
        return tflite_float_graph(model, config.input_size)

    @staticmethod
    def _quantize(graph: bytes, faces: np.ndarray) -> bytes:
        return quantize_tflite(graph, faces.transpose(0, 2, 3, 1))  # one channel: NCHW -> NHWC

    def _load(self, graph: bytes) -> None:
        self.graph = graph
        self.int8 = is_quantized(graph)
        self._interpreters: dict[int, tuple[Any, int, int]] = {}
        self._lock = threading.Lock()
        self._interpreter(1)

    def _interpreter(self, batch: int) -> tuple[Any, int, int]:
        if batch not in self._interpreters:
            from ai_edge_litert.interpreter import Interpreter

            graph = self.graph if batch == 1 else with_batch(self.graph, batch)
            # One thread: at these sizes XNNPACK's thread hand-offs cost more than they save.
            interpreter = Interpreter(model_content=graph, num_threads=1)
            interpreter.allocate_tensors()
            inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
            self._interpreters[batch] = (interpreter, inputs[0]["index"], outputs[0]["index"])
        return self._interpreters[batch]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Logits for a preprocessed float32 batch (N, 1, input_size, input_size)."""
        count = len(batch)
        if count == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        if count > MAX_BATCH:
            return np.concatenate([self.run(batch[start : start + MAX_BATCH]) for start in range(0, count, MAX_BATCH)])
        size = _bucket(count)
        faces = np.asarray(batch, dtype=np.float32).reshape(count, *batch.shape[2:], 1)  # one channel: NCHW -> NHWC
        if size > count:
            faces = np.concatenate([faces, np.zeros((size - count, *faces.shape[1:]), dtype=np.float32)])
        with self._lock:
            interpreter, source, target = self._interpreter(size)
            interpreter.set_tensor(source, faces)
            interpreter.invoke()
            return interpreter.get_tensor(target)[:count].copy()


export_tflite = LiteRtEngine.export  # TFLite bytes for the student (see CompiledEngine.export)
