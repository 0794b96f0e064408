"""Serving through LiteRT (TensorFlow Lite) with XNNPACK: the fastest way this product classifies a crop.

ONNX Runtime pays a few microseconds per node on the ~95-node int8 ShuffleNet, which keeps a 64 px crop
near 0.3 ms at batch 1; LiteRT delegates the whole graph (written by :mod:`core.tflite_export`) to
XNNPACK, which runs it as one plan with AVX512-VNNI int8 kernels in about half that time.
:class:`LiteRtClassifier` is a :class:`~core.fast_classifier.FastClassifier`, so the predict API is
the same as PyTorch's and ONNX Runtime's.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch.nn as nn

from .fast_classifier import CONFIG_METADATA_KEY, FastClassifier, calibration_inputs, config_metadata, write_graph
from .tflite_export import is_quantized, quantize_tflite, read_metadata, tflite_float_graph, with_batch, with_metadata
from .weights import ModelConfig

__all__ = ["LiteRtClassifier", "export_tflite", "CONFIG_METADATA_KEY"]

MAX_BATCH = 64  # larger inputs run in chunks; smaller ones are padded up to a power of two


def export_tflite(
    model: nn.Module,
    config: ModelConfig,
    path: str | Path | None = None,
    calibration: np.ndarray | None = None,
) -> bytes:
    """TFLite bytes for the student (written to ``path`` when given); int8 when ``calibration`` faces are given.

    ``calibration``: uint8 grayscale faces (N, 1, H, W), preprocessed here exactly as at inference.
    """
    graph = tflite_float_graph(model, config.input_size)
    if calibration is not None:
        graph = quantize_tflite(graph, calibration_inputs(config, calibration).transpose(0, 2, 3, 1))
    return write_graph(with_metadata(graph, {CONFIG_METADATA_KEY: config_metadata(config)}), path)


def _bucket(count: int) -> int:
    """The batch size a graph is built for: the next power of two, at most :data:`MAX_BATCH`."""
    return min(MAX_BATCH, 1 << max(0, count - 1).bit_length())


class LiteRtClassifier(FastClassifier):
    """A :class:`Classifier` whose forward pass runs in LiteRT; ``model`` (PyTorch) is kept for Grad-CAM.

    XNNPACK wants static shapes, so there is one interpreter per batch size used (powers of two); an
    interpreter is not thread-safe, so calls are serialised by a lock.
    """

    file_kind = "tflite"
    export = staticmethod(export_tflite)
    read_metadata = staticmethod(read_metadata)

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
        faces = np.zeros((size, *batch.shape[2:], 1), dtype=np.float32)
        faces[:count, ..., 0] = batch[:, 0]  # one channel: NCHW -> NHWC is a reshape
        with self._lock:
            interpreter, source, target = self._interpreter(size)
            interpreter.set_tensor(source, faces)
            interpreter.invoke()
            return interpreter.get_tensor(target)[:count].copy()
