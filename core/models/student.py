"""ShuffleNetV2 x1.0, the student (the product's "T-SNet" after distillation)."""

from __future__ import annotations

import torch.nn as nn

from ._registry import register_model
from ._stems import check_stem
from ._torchvision import shufflenet_v2_x1_0

__all__ = ["shufflenet_v2"]


@register_model("shufflenet_v2")
def shufflenet_v2(num_classes: int = 7, in_chans: int = 1, dropout: float = 0.5, stem: str = "imagenet") -> nn.Module:
    """torchvision's ShuffleNetV2 x1.0 with a grayscale-capable first conv, dropout 0.5 and the label-set head."""
    check_stem(stem)
    model = shufflenet_v2_x1_0(num_classes=num_classes)
    if in_chans != 3:
        first = model.conv1[0]
        model.conv1[0] = nn.Conv2d(in_chans, first.out_channels, 3, stride=2, padding=1, bias=False)
    if stem == "lowres":
        model.maxpool = nn.Identity()
    model.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(model.fc.in_features, num_classes))
    return model
