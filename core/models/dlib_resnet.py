"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) as a PyTorch module.

The network is dlib's ``anet_type`` (tools/python/src/face_recognition.cpp), trained on about 3 million
faces of 7,485 people: a 7x7 stride-2 convolution with 32 filters, 3x3 max-pooling, then residual
levels of 32, 64, 128, 256 and 256 channels (3, 4, 3, 3 and 1 blocks), global average pooling and a
128-D linear embedding. Its geometry is kept exactly: strided convolutions and pools have no padding,
down-sampling shortcuts are 2x2 average pools, and dlib's ``add_prev`` zero-pads the smaller operand
(channels and, where the sizes differ by one, the last row and column). Batch norm was folded into
per-channel ``affine`` layers by dlib, kept here as :class:`Affine2d`. The weights are read by
:mod:`core.models.dlib_format` from the ``face-recognition-models`` wheel, offline.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..face_models import face_models_file
from .dlib_format import DlibFormatError, DlibNetwork, LayerRecord, read_dlib_network

__all__ = [
    "DLIB_MEAN_RGB",
    "DLIB_CHIP_SIZE",
    "Affine2d",
    "DlibResidual",
    "DlibFaceResNet",
    "dlib_model_path",
    "dlib_state_dict",
    "dlib_input_tensor",
]

RECOGNITION_MODEL_NAME = "dlib_face_recognition_resnet_model_v1.dat"
DLIB_MEAN_RGB = (122.782, 117.001, 104.298)  # input_rgb_image: (pixel - mean) / 256 per channel
DLIB_INPUT_SCALE = 256.0
DLIB_CHIP_SIZE = 150
LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))  # width, blocks, down


class Affine2d(nn.Module):
    """Per-channel scale and shift: dlib's ``affine`` layer (a batch norm with its statistics folded in).

    Unlike ``BatchNorm2d`` it behaves the same in training and evaluation, so fine-tuning starts from
    exactly the function dlib trained.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.bias.view(1, -1, 1, 1), x, self.weight.view(1, -1, 1, 1))


def add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: the sum over the larger of each dimension, the smaller tensor zero-padded at the end."""
    if a.shape == b.shape:
        return a + b
    channels, rows, cols = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def grow(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, cols - t.shape[3], 0, rows - t.shape[2], 0, channels - t.shape[1]))

    return grow(a) + grow(b)


class DlibResidual(nn.Module):
    """dlib's ``ares`` (and ``ares_down`` when ``down``): conv-affine-relu-conv-affine plus the input, relu.

    Down-sampling blocks use a 3x3 stride-2 convolution without padding and a 2x2 average pool of the
    input as the shortcut, whose missing channels are zeros.
    """

    def __init__(self, in_channels: int, out_channels: int, down: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.affine1 = Affine2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.affine2 = Affine2d(out_channels)
        self.shortcut: nn.Module = nn.AvgPool2d(2, 2) if down else nn.Identity()
        self.down = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        return F.relu(add_prev(y, self.shortcut(x)))


def _level(in_channels: int, width: int, blocks: int, down: bool) -> nn.Sequential:
    first = DlibResidual(in_channels, width, down)
    return nn.Sequential(first, *(DlibResidual(width, width) for _ in range(blocks - 1)))


class DlibFaceResNet(nn.Module):
    """The face-recognition network layer for layer; ``forward`` takes dlib's input tensor (see
    :func:`dlib_input_tensor`) and returns the 128-D descriptor ``compute_face_descriptor`` returns."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 7, stride=2), Affine2d(32), nn.ReLU(), nn.MaxPool2d(3, 2))
        levels, channels = [], 32
        for width, blocks, down in LEVELS:
            levels.append(_level(channels, width, blocks, down))
            channels = width
        self.level4, self.level3, self.level2, self.level1, self.level0 = levels  # dlib's names, input first
        self.fc = nn.Linear(channels, 128, bias=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.level2(self.level3(self.level4(self.stem(x))))
        return self.level0(self.level1(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x).mean(dim=(2, 3)))

    def fold_affine(self) -> DlibFaceResNet:
        """Fold every ``affine`` into the convolution before it, leaving the affines at identity: the same
        function, but with filters at a normal scale (dlib's are ~10x small with 5-20x gains after them,
        which makes SGD's effective step on them 25-400x too large)."""
        pairs = [(self.stem[0], self.stem[1])]
        for level in (self.level4, self.level3, self.level2, self.level1, self.level0):
            pairs += [pair for block in level for pair in ((block.conv1, block.affine1), (block.conv2, block.affine2))]
        with torch.no_grad():
            for conv, affine in pairs:
                conv.weight.mul_(affine.weight.view(-1, 1, 1, 1))
                conv.bias.mul_(affine.weight).add_(affine.bias)
                affine.weight.fill_(1.0)
                affine.bias.zero_()
        return self

    @classmethod
    def from_dlib(cls, path: str | Path | None = None) -> DlibFaceResNet:
        """The network with dlib's trained weights (default: the model in the face-recognition-models wheel)."""
        with torch.device("meta"):  # no random initialisation: every tensor comes from the file
            model = cls()
        model.load_state_dict({key: value.clone() for key, value in dlib_state_dict(path).items()}, assign=True)
        return model.eval()


def dlib_model_path() -> Path:
    """``dlib_face_recognition_resnet_model_v1.dat`` from the face-recognition-models wheel."""
    return face_models_file(RECOGNITION_MODEL_NAME)


def _expected_layers(model: DlibFaceResNet) -> list[tuple[str, str | None, nn.Module | None]]:
    """The dlib layer sequence of ``model``, input first: (kind, state-dict prefix, module)."""
    modules = {module: name for name, module in model.named_modules()}
    stem_conv, stem_affine = model.stem[0], model.stem[1]
    sequence = [("con", stem_conv), ("affine", stem_affine), ("relu", None), ("max_pool", model.stem[3])]
    for level in (model.level4, model.level3, model.level2, model.level1, model.level0):
        for block in level:
            sequence += [("con", block.conv1), ("affine", block.affine1), ("relu", None)]
            sequence += [("con", block.conv2), ("affine", block.affine2)]
            sequence += [("avg_pool", block.shortcut)] if block.down else []
            sequence += [("add_prev", None), ("relu", None)]
    sequence += [("avg_pool", None), ("fc", model.fc)]
    return [(kind, modules.get(module) if module is not None else None, module) for kind, module in sequence]


def _check(condition: bool, index: int, record: LayerRecord, what: str) -> None:
    if not condition:
        raise DlibFormatError(f"layer {index} ({record.kind} {record.options}) does not match the network: {what}")


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def state_dict_from_network(network: DlibNetwork) -> dict[str, torch.Tensor]:
    """Map the records of dlib's face-recognition network onto :class:`DlibFaceResNet`'s state dict."""
    mean = network.input.options["mean_rgb"]
    if not np.allclose(mean, DLIB_MEAN_RGB, atol=1e-3):
        raise DlibFormatError(f"input mean {mean} differs from dlib's {DLIB_MEAN_RGB}")
    expected = _expected_layers(DlibFaceResNet())
    if [kind for kind, _, _ in expected] != [record.kind for record in network.layers]:
        raise DlibFormatError("the file's layers are not dlib's face-recognition ResNet (anet_type)")
    state: dict[str, torch.Tensor] = {}
    for index, ((kind, prefix, module), record) in enumerate(zip(expected, network.layers)):
        _check(not record.options.get("disabled", False), index, record, "disabled layers are not supported")
        if kind == "con":
            assert isinstance(module, nn.Conv2d)
            _check(record.options["stride"] == _pair(module.stride), index, record, "stride")
            _check(record.options["padding"] == _pair(module.padding), index, record, "padding")
            _check(record.weights["weight"].shape == tuple(module.weight.shape), index, record, "filter shape")
            state[f"{prefix}.weight"] = torch.from_numpy(record.weights["weight"])
            state[f"{prefix}.bias"] = torch.from_numpy(record.weights["bias"])
        elif kind == "affine":
            _check(record.options["mode"] == 0, index, record, "a per-channel (convolutional) affine")
            state[f"{prefix}.weight"] = torch.from_numpy(record.weights["gamma"].reshape(-1))
            state[f"{prefix}.bias"] = torch.from_numpy(record.weights["beta"].reshape(-1))
        elif kind in ("max_pool", "avg_pool"):
            window = _pair(module.kernel_size) if module is not None else (0, 0)  # (0, 0): the whole map
            _check(record.options["window"] == window, index, record, "pooling window")
            stride = _pair(module.stride) if module is not None else (1, 1)
            _check(record.options["stride"] == stride, index, record, "pooling stride")
            _check(record.options["padding"] == (0, 0), index, record, "unpadded pooling")
        elif kind == "fc":
            state[f"{prefix}.weight"] = torch.from_numpy(np.ascontiguousarray(record.weights["weight"].T))
    return state


@lru_cache(maxsize=2)
def _cached_state(path: str) -> dict[str, torch.Tensor]:
    return state_dict_from_network(read_dlib_network(path))


def dlib_state_dict(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """:class:`DlibFaceResNet`'s weights read from dlib's ``.dat`` (parsed once per process; copy before editing)."""
    return dict(_cached_state(str(Path(path) if path is not None else dlib_model_path())))


def dlib_input_tensor(chips: np.ndarray) -> torch.Tensor:
    """dlib's ``input_rgb_image`` on uint8 RGB chips (H, W, 3) or (N, H, W, 3): (pixel - mean) / 256, NCHW."""
    array = np.asarray(chips)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"expected RGB chips shaped (N, H, W, 3), got {array.shape}")
    pixels = torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2))).float()
    mean = torch.tensor(DLIB_MEAN_RGB, dtype=torch.float32).view(1, 3, 1, 1)
    return (pixels - mean) / DLIB_INPUT_SCALE
