"""MTCNN's ONNX graphs are written without the onnx package: the bytes are what onnx.helper would write."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from core.faces import mtcnn, onnx_proto

onnx = pytest.importorskip("onnx")


def test_each_message_matches_onnx_helper():
    from onnx import TensorProto, helper, numpy_helper

    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 7.5
    assert onnx_proto.tensor("w1", array) == numpy_helper.from_array(array, "w1").SerializeToString()
    for attributes in ({}, {"axis": 1}, {"axis": -1}, {"kernel_shape": [3, 3], "pads": [0, 0, 1, 1], "ceil_mode": 0}):
        expected = helper.make_node("MaxPool", ["x"], ["y"], **attributes).SerializeToString()
        assert onnx_proto.node("MaxPool", ["x"], ["y"], **attributes) == expected, attributes
    for shape in (None, [1, 3, "height", "width"], ["batch", 3, 24, 24]):
        expected = helper.make_tensor_value_info("image", TensorProto.FLOAT, shape).SerializeToString()
        assert onnx_proto.value_info("image", shape) == expected, shape


@pytest.mark.parametrize("build", [mtcnn._pnet, mtcnn._rnet, mtcnn._onet])
def test_the_mtcnn_graphs_are_valid_onnx_in_canonical_form(build):
    """onnx parses them, and writes them back byte for byte (its checker wants output shapes, which these leave
    open on purpose; ONNX Runtime infers them)."""
    data = build()
    model = onnx.load_from_string(data)
    assert model.SerializeToString() == data  # re-serialising changes nothing: fields, order and encoding agree
    assert (model.ir_version, model.opset_import[0].version) == (7, 13)


def test_detection_does_not_import_onnx():
    code = (
        "import sys, numpy as np; from skimage import data; from core.faces.mtcnn import MtcnnDetector; "
        "faces = MtcnnDetector().detect(data.astronaut()); print(len(faces), 'onnx' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["1", "False"]


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
