"""The student as a LiteRT (TensorFlow Lite) flatbuffer, written directly from its PyTorch weights.

Why: at batch 1 a 64 px ShuffleNetV2 is overhead-bound. ONNX Runtime spends a few microseconds per node
on ~95 nodes; LiteRT hands the whole graph to XNNPACK, whose int8 kernels (AVX512-VNNI here) run it as
one fused plan. No TensorFlow is needed: the graph is small and fixed, so it is written with the
flatbuffer schema that ``ai-edge-litert`` ships, and quantized by LiteRT's own calibrator
(:mod:`core.tflite_quantize`).

The graph is the channel-routed ShuffleNet of :mod:`core.shufflenet_export` (no shuffles), laid out
NHWC, with batch norms folded into the convolutions. PyTorch pads stride-2 windows on both sides where
TFLite's SAME pads only after, so stride-2 convolutions and the max pool take an explicit PAD (XNNPACK
folds it into the kernel); zero padding before the max pool equals PyTorch's -inf padding because its
input is a ReLU output.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from .shufflenet_export import ShuffleNetForExport
from .tflite_graph import GraphWriter, pack, schema

__all__ = [
    "tflite_float_graph",
    "is_exportable",
    "quantize_tflite",
    "with_batch",
    "with_metadata",
    "read_metadata",
    "is_quantized",
    "INPUT_NAME",
    "OUTPUT_NAME",
]

INPUT_NAME, OUTPUT_NAME = "faces", "logits"
MAX_CONCAT_INPUTS = 5  # the most inputs XNNPACK's concatenation takes; more would leave LiteRT's own kernel


def _folded(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    """Convolution weights (O, I, kh, kw) and bias with the batch norm folded in."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    weight = conv.weight * scale[:, None, None, None]
    bias = norm.bias - norm.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    return weight.detach().numpy(), bias.detach().numpy()


class _ShuffleNetWriter:
    """Emits the routed ShuffleNet's operators; each method returns its output tensor (NHWC)."""

    def __init__(self, writer: GraphWriter) -> None:
        self.w = writer
        self.s = writer.schema

    def pad(self, x: int, name: str) -> int:
        n, h, w, c = self.w.shapes[x]
        paddings = self.w.tensor((4, 2), f"{name}/paddings", np.array([[0, 0], [1, 1], [1, 1], [0, 0]]), "int32")
        out = self.w.tensor((n, h + 2, w + 2, c), f"{name}/padded")
        self.w.operator(
            self.s.BuiltinOperator.PAD, [x, paddings], [out], self.s.BuiltinOptions.PadOptions, self.s.PadOptionsT()
        )
        return out

    def conv(self, x: int, conv: nn.Conv2d, norm: nn.BatchNorm2d, relu: bool, name: str) -> int:
        s = self.s
        weight, bias = _folded(conv, norm)
        stride, (kernel, _) = conv.stride[0], conv.kernel_size
        if kernel > 1 and stride == 2:
            x, padding = self.pad(x, name), s.Padding.VALID
        else:
            padding = s.Padding.SAME  # 1x1, or 3x3 stride 1 with padding 1: both sides alike
        n, h, w, _ = self.w.shapes[x]
        size = (h - kernel) // stride + 1 if padding == s.Padding.VALID else (h + stride - 1) // stride
        out = self.w.tensor((n, size, size, conv.out_channels), name)
        bias_index = self.w.tensor((conv.out_channels,), f"{name}/bias", bias)
        activation = s.ActivationFunctionType.RELU if relu else s.ActivationFunctionType.NONE
        if conv.groups > 1:  # depthwise: weights (1, kh, kw, channels)
            filters = self.w.tensor(
                (1, kernel, kernel, conv.out_channels), f"{name}/weights", weight[:, 0].transpose(1, 2, 0)[None]
            )
            options = s.DepthwiseConv2DOptionsT()
            options.depthMultiplier = 1
            kind, code = s.BuiltinOptions.DepthwiseConv2DOptions, s.BuiltinOperator.DEPTHWISE_CONV_2D
        else:  # weights (out, kh, kw, in)
            filters = self.w.tensor(
                (conv.out_channels, kernel, kernel, conv.in_channels), f"{name}/weights", weight.transpose(0, 2, 3, 1)
            )
            options = s.Conv2DOptionsT()
            kind, code = s.BuiltinOptions.Conv2DOptions, s.BuiltinOperator.CONV_2D
        options.padding, options.strideH, options.strideW = padding, stride, stride
        options.fusedActivationFunction = activation
        self.w.operator(code, [x, filters, bias_index], [out], kind, options)
        return out

    def max_pool(self, x: int, name: str) -> int:
        s = self.s
        x = self.pad(x, name)  # zeros: the input is a ReLU output, so zero padding acts as -inf
        n, h, w, c = self.w.shapes[x]
        out = self.w.tensor((n, (h - 3) // 2 + 1, (w - 3) // 2 + 1, c), name)
        options = s.Pool2DOptionsT()
        options.padding, options.strideH, options.strideW = s.Padding.VALID, 2, 2
        options.filterHeight = options.filterWidth = 3
        self.w.operator(s.BuiltinOperator.MAX_POOL_2D, [x], [out], s.BuiltinOptions.Pool2DOptions, options)
        return out

    def concat(self, pieces: list[int], name: str) -> int:
        if len(pieces) == 1:
            return pieces[0]
        if len(pieces) > MAX_CONCAT_INPUTS:  # XNNPACK takes at most five; a deeper tree keeps the order
            groups = [pieces[i : i + MAX_CONCAT_INPUTS] for i in range(0, len(pieces), MAX_CONCAT_INPUTS)]
            pieces = [self.concat(group, f"{name}/{index}") for index, group in enumerate(groups)]
            return self.concat(pieces, name)
        n, h, w, _ = self.w.shapes[pieces[0]]
        out = self.w.tensor((n, h, w, sum(self.w.shapes[p][3] for p in pieces)), name)
        options = self.s.ConcatenationOptionsT()
        options.axis = 3
        self.w.operator(
            self.s.BuiltinOperator.CONCATENATION, pieces, [out], self.s.BuiltinOptions.ConcatenationOptions, options
        )
        return out

    def split(self, x: int, sizes: tuple[int, ...], name: str) -> list[int]:
        if len(sizes) == 1:
            return [x]
        n, h, w, _ = self.w.shapes[x]
        pieces, start = [], 0
        for index, size in enumerate(sizes):
            begin = self.w.tensor((4,), f"{name}/{index}/begin", np.array([0, 0, 0, start]), "int32")
            extent = self.w.tensor((4,), f"{name}/{index}/size", np.array([n, h, w, size]), "int32")
            out = self.w.tensor((n, h, w, size), f"{name}/{index}")
            self.w.operator(
                self.s.BuiltinOperator.SLICE,
                [x, begin, extent],
                [out],
                self.s.BuiltinOptions.SliceOptions,
                self.s.SliceOptionsT(),
            )
            pieces.append(out)
            start += size
        return pieces

    def head(self, x: int, conv5: nn.Sequential, fc: nn.Module) -> int:
        s = self.s
        fc = next(layer for layer in fc.modules() if isinstance(layer, nn.Linear))  # the student's fc has dropout
        x = self.conv(x, conv5[0], conv5[1], True, "conv5")
        n, _, _, c = self.w.shapes[x]
        axes = self.w.tensor((2,), "pool/axes", np.array([1, 2]), "int32")
        pooled = self.w.tensor((n, c), "pool")
        self.w.operator(
            s.BuiltinOperator.MEAN, [x, axes], [pooled], s.BuiltinOptions.ReducerOptions, s.ReducerOptionsT()
        )
        return self.w.fully_connected(pooled, fc.weight.detach().numpy(), fc.bias.detach().numpy(), "fc", OUTPUT_NAME)


def is_exportable(model: nn.Module) -> bool:
    """Whether :func:`tflite_float_graph` can write ``model``: a one-channel torchvision ShuffleNetV2 (the student)."""
    from .models._torchvision import ShuffleNetV2

    return isinstance(model, ShuffleNetV2) and model.conv1[0].in_channels == 1


def tflite_float_graph(model: nn.Module, input_size: int, batch: int = 1) -> bytes:
    """A float32 TFLite flatbuffer computing ``model``'s logits from NHWC grayscale faces (batch, size, size, 1).

    ``model`` must be a torchvision ShuffleNetV2 with one input channel (the student).
    """
    if not is_exportable(model):
        raise ValueError("the LiteRT export covers the one-channel (grayscale) ShuffleNetV2 student only")
    routed = ShuffleNetForExport(model)
    net = routed.model
    emit = _ShuffleNetWriter(GraphWriter(schema()))
    with torch.no_grad():
        faces = emit.w.tensor((batch, input_size, input_size, 1), INPUT_NAME)
        x = emit.conv(faces, net.conv1[0], net.conv1[1], True, "conv1")
        tensors = [emit.max_pool(x, "maxpool")]
        for number, (block, plan) in enumerate(zip(routed.blocks, routed.plans)):
            name = f"block{number}"
            inputs = emit.concat([tensors[i] for i in plan.take], f"{name}/input")
            if block.stride == 1:
                outputs = [_branch2(emit, block, inputs, name)]
            else:
                b1 = block.branch1
                left = emit.conv(inputs, b1[0], b1[1], False, f"{name}/branch1/dw")
                outputs = [
                    emit.conv(left, b1[2], b1[3], True, f"{name}/branch1/pw"),
                    _branch2(emit, block, inputs, name),
                ]
            tensors = [tensors[i] for i in plan.keep]
            for branch, (output, sizes) in enumerate(zip(outputs, plan.splits)):
                tensors.extend(emit.split(output, sizes, f"{name}/out{branch}"))
        logits = emit.head(emit.concat(tensors, "stage4/output"), net.conv5, net.fc)
    return emit.w.serialize([faces], [logits])


def _branch2(emit: _ShuffleNetWriter, block: nn.Module, x: int, name: str) -> int:
    b2 = block.branch2
    x = emit.conv(x, b2[0], b2[1], True, f"{name}/branch2/pw1")
    x = emit.conv(x, b2[3], b2[4], False, f"{name}/branch2/dw")
    return emit.conv(x, b2[5], b2[6], True, f"{name}/branch2/pw2")


def with_batch(graph: bytes, batch: int) -> bytes:
    """The same (float or quantized) graph for another fixed batch size: activations and slice sizes rewritten.

    XNNPACK needs static slice sizes, so a batch size is baked into the graph; rewriting keeps the very
    same weights and quantization parameters.
    """
    s = schema()
    model = s.ModelT.InitFromPackedBuf(bytearray(graph), 0)
    graph_t = model.subgraphs[0]
    codes = [code.builtinCode for code in model.operatorCodes]
    for operator in graph_t.operators:
        if codes[operator.opcodeIndex] == s.BuiltinOperator.SLICE:
            buffer = model.buffers[graph_t.tensors[operator.inputs[2]].buffer]
            sizes = np.frombuffer(bytes(bytearray(buffer.data)), dtype=np.int32).copy()
            sizes[0] = batch
            buffer.data = sizes.view(np.uint8)
    for tensor in graph_t.tensors:
        constant = model.buffers[tensor.buffer].data is not None and len(model.buffers[tensor.buffer].data) > 0
        if not constant and tensor.shape is not None and len(tensor.shape) > 0:
            tensor.shape[0] = batch
            if tensor.shapeSignature is not None and len(tensor.shapeSignature) > 0:
                tensor.shapeSignature[0] = batch
    return pack(model, len(graph) + 1024)


def quantize_tflite(graph: bytes, faces: np.ndarray) -> bytes:
    """Full-integer (int8) ``graph`` calibrated on preprocessed NHWC ``faces``; float32 input and output.

    LiteRT's own calibrator and quantizer (what TensorFlow's converter runs): per-channel int8 weights,
    int8 activations, and concatenation inputs requantized to one scale as XNNPACK requires. The wrapper
    is ai-edge-litert's internal module, hence the <3 pin in pyproject.
    """
    from ai_edge_litert import _pywrap_tensorflow_lite_calibration_wrapper as calibration

    if len(faces) == 0:
        raise ValueError("int8 export needs at least one calibration face")
    calibrator = calibration.CalibrationWrapper(graph, [], [])
    calibrator.Prepare()
    for face in np.ascontiguousarray(faces, dtype=np.float32):
        calibrator.FeedTensor([face[None]])
    float32, int8, int32 = (np.dtype(kind).num for kind in (np.float32, np.int8, np.int32))
    # Arguments: input type, output type, allow float ops, activation type, bias type, no per-channel (x2).
    return bytes(calibrator.QuantizeModel(float32, float32, False, int8, int32, False, False))


def with_metadata(graph: bytes, entries: dict[str, str]) -> bytes:
    """``graph`` with named metadata buffers (how the model's config travels inside the file)."""
    s = schema()
    model = s.ModelT.InitFromPackedBuf(bytearray(graph), 0)
    model.metadata = list(model.metadata or [])
    for name, text in entries.items():
        buffer = s.BufferT()
        buffer.data = np.frombuffer(text.encode(), dtype=np.uint8)
        model.buffers.append(buffer)
        entry = s.MetadataT()
        entry.name, entry.buffer = name, len(model.buffers) - 1
        model.metadata.append(entry)
    return pack(model, len(graph) + 1024)


def read_metadata(graph: bytes) -> dict[str, str]:
    """The named metadata buffers of a TFLite flatbuffer, decoded as UTF-8 text."""
    s = schema()
    if len(graph) < 8 or graph[4:8] != b"TFL3":
        raise ValueError("not a TFLite flatbuffer (no TFL3 identifier)")
    model = s.Model.GetRootAs(graph, 0)
    entries = {}
    for index in range(model.MetadataLength()):
        entry = model.Metadata(index)
        name = entry.Name().decode()
        entries[name] = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode(errors="replace")
    return entries


def is_quantized(graph: bytes) -> bool:
    """Whether the graph's convolutions run in int8 (it starts with a QUANTIZE)."""
    s = schema()
    model = s.Model.GetRootAs(graph, 0)
    codes = {model.OperatorCodes(i).BuiltinCode() for i in range(model.OperatorCodesLength())}
    return s.BuiltinOperator.QUANTIZE in codes
