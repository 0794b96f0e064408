"""EFF-ResNet18, the teacher: a ResNet18 stem and first two stages, then two FFE modules (PAPER.md)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn as nn

from ._registry import register_model
from ._stems import check_stem
from ._torchvision import BasicBlock

__all__ = ["FFEModule", "EFFResNet18", "eff_resnet18"]


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def init_conv_bn(modules: Iterable[nn.Module]) -> None:
    """He init for convolutions, unit/zero batch norms: the teachers' fresh layers start alike."""
    for module in modules:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class FFEModule(nn.Module):
    """Fine-grained feature extraction: two opposite Res2Net-style chains over n channel subsets.

    The left chain lets subset i see subsets 1..i, the right chain subsets i..n, so every output
    group mixes scales from both directions (Y_i = Y_i^L + Y_i^R). A 1x1 conv, batch norm and a
    residual shortcut close the block as in Res2Net, which the paper leaves implicit.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, subsets: int = 4) -> None:
        super().__init__()
        if out_channels % subsets:
            raise ValueError(f"out_channels={out_channels} is not divisible by subsets={subsets}")
        self.subsets = subsets
        width = out_channels // subsets
        self.entry = _conv_bn_relu(in_channels, out_channels, 3, stride)
        self.left = nn.ModuleList(_conv_bn_relu(width, width) for _ in range(subsets))
        self.right = nn.ModuleList(_conv_bn_relu(width, width) for _ in range(subsets))
        self.fuse = nn.Sequential(nn.Conv2d(out_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        self.relu = nn.ReLU(inplace=True)

    def branches(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Return the left (Y^L) and right (Y^R) chain outputs, one tensor per subset."""
        parts = torch.chunk(self.entry(x), self.subsets, dim=1)
        left: list[torch.Tensor] = []
        for index, part in enumerate(parts):
            left.append(self.left[index](part if index == 0 else part + left[-1]))
        right: list[torch.Tensor | None] = [None] * self.subsets
        for index in reversed(range(self.subsets)):
            above = right[index + 1] if index + 1 < self.subsets else None
            right[index] = self.right[index](parts[index] if above is None else parts[index] + above)
        return left, [r for r in right if r is not None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right = self.branches(x)
        merged = torch.cat([y_left + y_right for y_left, y_right in zip(left, right)], dim=1)
        return self.relu(self.fuse(merged) + self.shortcut(x))


class EFFResNet18(nn.Module):
    """ResNet18 stem + stages 1-2 (64, 128 channels), FFE modules, global pooling, dropout, classifier."""

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        ffe_channels: tuple[int, int] = (384, 1024),
        subsets: int = 4,
        dropout: float = 0.5,
        stem: str = "imagenet",
    ) -> None:
        super().__init__()
        check_stem(stem)
        layers: list[nn.Module] = [
            nn.Conv2d(in_chans, 64, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
        ]
        if stem == "imagenet":
            layers.append(nn.MaxPool2d(3, stride=2, padding=1))
        self.stem = nn.Sequential(*layers)
        downsample = nn.Sequential(nn.Conv2d(64, 128, 1, stride=2, bias=False), nn.BatchNorm2d(128))
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, stride=2, downsample=downsample), BasicBlock(128, 128))
        self.ffe1 = FFEModule(128, ffe_channels[0], stride=2, subsets=subsets)
        self.ffe2 = FFEModule(ffe_channels[0], ffe_channels[1], stride=2, subsets=subsets)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(ffe_channels[1], num_classes)
        init_conv_bn(self.modules())

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffe2(self.ffe1(self.layer2(self.layer1(self.stem(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.pool(self.forward_features(x)), 1)))


@register_model("eff_resnet18")
def eff_resnet18(num_classes: int = 7, **kwargs) -> EFFResNet18:
    """The paper's teacher (~11.8M parameters with the default widths)."""
    return EFFResNet18(num_classes=num_classes, **kwargs)
