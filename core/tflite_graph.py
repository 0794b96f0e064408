"""A float32 LiteRT (TensorFlow Lite) flatbuffer written tensor by tensor, without TensorFlow.

Why: the graphs this product runs through LiteRT (the student, MTCNN's P-Net) are small and fixed, so they are
written directly with the flatbuffer schema that ``ai-edge-litert`` ships instead of converting from another
framework. :mod:`core.tflite_export` and :mod:`core.faces.pnet_litert` build on :class:`GraphWriter`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import flatbuffers
import numpy as np

__all__ = ["GraphWriter", "schema", "pack"]


def schema():  # the flatbuffer schema module generated for LiteRT (object API: ModelT, TensorT, ...)
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def pack(model: object, size_hint: int) -> bytes:
    builder = flatbuffers.Builder(size_hint)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")  # type: ignore[attr-defined]
    return bytes(builder.Output())


@dataclass
class GraphWriter:
    """Accumulates tensors, constant buffers and operators of one float32 subgraph."""

    schema: object
    tensors: list = field(default_factory=list)
    buffers: list = field(default_factory=list)
    operators: list = field(default_factory=list)
    opcodes: dict[int, int] = field(default_factory=dict)
    shapes: dict[int, tuple[int, ...]] = field(default_factory=dict)  # tensor index -> shape, for the next layer

    def __post_init__(self) -> None:
        self.buffers.append(self.schema.BufferT())  # buffer 0 is the empty buffer by convention

    def tensor(self, shape: tuple[int, ...], name: str, data: np.ndarray | None = None, dtype: str = "float32") -> int:
        s = self.schema
        entry = s.TensorT()
        entry.shape = list(shape)
        entry.name = name
        entry.type = {"float32": s.TensorType.FLOAT32, "int32": s.TensorType.INT32}[dtype]
        if data is not None:
            buffer = s.BufferT()
            buffer.data = np.ascontiguousarray(data, dtype=dtype).reshape(-1).view(np.uint8)
            self.buffers.append(buffer)
            entry.buffer = len(self.buffers) - 1
        self.tensors.append(entry)
        self.shapes[len(self.tensors) - 1] = tuple(shape)
        return len(self.tensors) - 1

    def operator(self, code: int, inputs: list[int], outputs: list[int], kind: int = 0, options: object = None) -> None:
        s = self.schema
        if code not in self.opcodes:
            self.opcodes[code] = len(self.opcodes)
        entry = s.OperatorT()
        entry.opcodeIndex = self.opcodes[code]
        entry.inputs, entry.outputs = inputs, outputs
        entry.builtinOptionsType, entry.builtinOptions = kind, options
        self.operators.append(entry)

    def fully_connected(self, x: int, weight: np.ndarray, bias: np.ndarray, name: str, out_name: str = "") -> int:
        """``x @ weight.T + bias`` for a (batch, in) input and a (out, in) weight; returns the (batch, out) output."""
        s = self.schema
        out = self.tensor((self.shapes[x][0], weight.shape[0]), out_name or name)
        weights = self.tensor(weight.shape, f"{name}/weights", weight)
        biases = self.tensor(bias.shape, f"{name}/bias", bias)
        self.operator(
            s.BuiltinOperator.FULLY_CONNECTED,
            [x, weights, biases],
            [out],
            s.BuiltinOptions.FullyConnectedOptions,
            s.FullyConnectedOptionsT(),
        )
        return out

    def serialize(
        self, inputs: list[int], outputs: list[int], description: str = "T-SNet student (core.tflite_export)"
    ) -> bytes:
        s = self.schema
        graph = s.SubGraphT()
        graph.tensors, graph.operators, graph.inputs, graph.outputs = self.tensors, self.operators, inputs, outputs
        graph.name = "main"
        model = s.ModelT()
        model.version = 3
        model.description = description
        model.subgraphs, model.buffers = [graph], self.buffers
        codes = []
        for code in sorted(self.opcodes, key=self.opcodes.get):
            entry = s.OperatorCodeT()
            entry.builtinCode = entry.deprecatedBuiltinCode = code
            codes.append(entry)
        model.operatorCodes = codes
        return pack(model, 1 << 20)
