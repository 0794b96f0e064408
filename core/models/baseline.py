"""Plain ResNet18, the paper's baseline (Table III)."""

from __future__ import annotations

import torch.nn as nn

from ._registry import register_model
from ._stems import check_stem

__all__ = ["resnet18"]


@register_model("resnet18")
def resnet18(num_classes: int = 7, in_chans: int = 1, dropout: float = 0.5, stem: str = "imagenet") -> nn.Module:
    """torchvision's ResNet18 with a grayscale-capable stem and a dropout + label-set head."""
    from torchvision.models import resnet18 as tv_resnet18  # here: importing torchvision costs ~1 s

    check_stem(stem)
    model = tv_resnet18(weights=None, num_classes=num_classes)
    if in_chans != 3:
        model.conv1 = nn.Conv2d(in_chans, 64, 7, stride=2, padding=3, bias=False)
    if stem == "lowres":
        model.maxpool = nn.Identity()
    model.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(model.fc.in_features, num_classes))
    return model
