"""MTCNN's LiteRT graphs compute what the Keras networks did: checked against the same layers in PyTorch."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.faces import mtcnn
from core.faces.mtcnn_litert import NetPool, onet_graph, pnet_graph, rnet_graph


class KerasReference:
    """The Keras models' layers, NCHW in PyTorch, read from the same weight arrays (an independent transcription)."""

    def __init__(self, name: str) -> None:
        self.arrays = iter(torch.from_numpy(array) for array in mtcnn._load_arrays(name))

    def conv(self, x: torch.Tensor) -> torch.Tensor:
        kernel, bias = next(self.arrays), next(self.arrays)
        return F.conv2d(x, kernel.permute(3, 2, 0, 1), bias)

    def prelu(self, x: torch.Tensor) -> torch.Tensor:
        return F.prelu(x, next(self.arrays).reshape(-1))

    @staticmethod
    def pool(x: torch.Tensor, size: int, same: bool) -> torch.Tensor:
        if same:  # TensorFlow's "same": the missing row and column go after, and never win the max
            rows, cols = x.shape[-2:]
            pad_rows, pad_cols = (
                max(0, (-(-rows // 2) - 1) * 2 + size - rows),
                max(0, (-(-cols // 2) - 1) * 2 + size - cols),
            )
            x = F.pad(x, (0, pad_cols, 0, pad_rows), value=-torch.inf)
        return F.max_pool2d(x, size, 2)

    def dense(self, x: torch.Tensor) -> torch.Tensor:
        kernel, bias = next(self.arrays), next(self.arrays)
        return x @ kernel + bias

    @staticmethod
    def flatten(x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 2, 1).flatten(1)  # Keras: NHWC, Permute((2, 1, 3)), Flatten


def reference_pnet(x: torch.Tensor) -> dict[str, torch.Tensor]:
    k = KerasReference("pnet")
    x = k.pool(k.prelu(k.conv(x)), 2, False)
    x = k.prelu(k.conv(k.prelu(k.conv(x))))
    regression = k.conv(x)
    return {"regression": regression, "probability": torch.softmax(k.conv(x), 1)}


def reference_rnet(x: torch.Tensor) -> dict[str, torch.Tensor]:
    k = KerasReference("rnet")
    x = k.pool(k.prelu(k.conv(x)), 3, True)
    x = k.pool(k.prelu(k.conv(x)), 3, False)
    x = k.prelu(k.dense(k.flatten(k.prelu(k.conv(x)))))
    regression = k.dense(x)
    return {"regression": regression, "probability": torch.softmax(k.dense(x), 1)}


def reference_onet(x: torch.Tensor) -> dict[str, torch.Tensor]:
    k = KerasReference("onet")
    x = k.pool(k.prelu(k.conv(x)), 3, True)
    x = k.pool(k.prelu(k.conv(x)), 3, False)
    x = k.pool(k.prelu(k.conv(x)), 2, False)
    x = k.prelu(k.dense(k.flatten(k.prelu(k.conv(x)))))
    regression, points = k.dense(x), k.dense(x)
    return {"regression": regression, "points": points, "probability": torch.softmax(k.dense(x), 1)}


def _inputs(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


@pytest.mark.parametrize("height, width", [(12, 12), (37, 50), (192, 256)])
def test_pnet_matches_the_keras_layers(height, width):
    pool = NetPool(lambda shape: pnet_graph(mtcnn._load_arrays("pnet"), *shape))
    level = _inputs((height, width, 3))
    got = pool.run_level(level)
    with torch.no_grad():
        expected = reference_pnet(torch.from_numpy(level).permute(2, 0, 1)[None])
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value[0].permute(1, 2, 0).numpy(), atol=1e-4, err_msg=name)


@pytest.mark.parametrize(
    "name, build, reference, side", [("rnet", rnet_graph, reference_rnet, 24), ("onet", onet_graph, reference_onet, 48)]
)
def test_crop_networks_match_the_keras_layers_at_any_batch(name, build, reference, side):
    """45 crops run as 32 + 8 + 4 + 1: every crop's outputs equal the reference's."""
    pool = NetPool(lambda shape: build(mtcnn._load_arrays(name), *shape))
    crops = _inputs((45, side, side, 3))
    got = pool.run_crops(crops)
    with torch.no_grad():
        expected = reference(torch.from_numpy(crops).permute(0, 3, 1, 2))
    assert set(got) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value.numpy(), atol=1e-4, err_msg=key)


def test_the_pool_answers_threads_at_once_and_keeps_a_bounded_number_idle():
    pool = NetPool(lambda shape: pnet_graph(mtcnn._load_arrays("pnet"), *shape), max_idle=3)
    levels = [_inputs((20 + size, 30 + size, 3), seed=size) for size in range(6)]
    alone = [pool.run_level(level)["probability"] for level in levels]
    with ThreadPoolExecutor(4) as workers:
        together = list(workers.map(lambda level: pool.run_level(level)["probability"], levels * 4))
    for index, probability in enumerate(together):
        np.testing.assert_array_equal(probability, alone[index % len(levels)])
    assert sum(len(idle) for idle in pool._idle.values()) <= 3


def test_detection_imports_neither_onnx_nor_onnx_runtime():
    code = (
        "import sys, numpy as np; from skimage import data; from core.faces.mtcnn import MtcnnDetector; "
        "faces = MtcnnDetector().detect(data.astronaut()); print(len(faces), 'onnx' in sys.modules, "
        "'onnxruntime' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["1", "False", "False"]


def test_matrix_nms_keeps_what_greedy_nms_keeps():
    """The one-matrix NMS and the one-box-at-a-time pass agree, degenerate boxes (NaN overlaps) included."""
    rng = np.random.default_rng(0)
    for trial in range(200):
        count = int(rng.integers(1, 300))
        boxes = rng.uniform(0, 200, (count, 4)).astype(np.float32)
        boxes[:, 2:] += boxes[:, :2] * rng.uniform(-0.2, 1.0, (count, 2)).astype(np.float32)
        scores = rng.uniform(0, 1, count).astype(np.float32)
        scores[: count // 4] = scores[0]  # ties keep their input order
        for by_min in (False, True):
            expected = mtcnn._nms_greedy(boxes, scores, 0.5, by_min)
            assert np.array_equal(mtcnn._nms(boxes, scores, 0.5, by_min), expected), (trial, by_min)
