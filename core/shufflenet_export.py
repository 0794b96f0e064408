"""ShuffleNetV2 rewritten for ONNX export without channel shuffles: channels are routed, weights permuted.

torchvision's channel shuffle and ``chunk`` trace to ~150 Shape/Reshape/Transpose/Slice nodes; gathering
the shuffled channels instead still costs two Gathers per block, and ONNX Runtime wraps each in a pair of
NHWC<->NCHW Transposes. But the shuffles are fixed, so where every channel goes is known before export:

* a stride-1 block's branch takes the second half of the shuffled channels, the first half passes through;
* a channel that passes through moves from position ``p`` to ``2p``, so each channel a branch makes has a
  known *due* block, the one whose branch will consume it (or the end of the stage).

Each branch's last 1x1 convolution is reordered so its output channels come sorted by due block and
split into one piece per due block; a block concatenates the pieces due to it, and the convolution that
reads them absorbs their order in its input weights. Per block that is one Split and at most one Concat,
and the graph computes exactly what torchvision's model computes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ShuffleNetForExport"]


@dataclass(frozen=True)
class _Piece:
    """One routed tensor: the shuffled channel positions it holds (in its own order) and its due block."""

    positions: tuple[int, ...]
    due: int


@dataclass(frozen=True)
class _BlockPlan:
    take: tuple[int, ...]  # pieces concatenated as the block's input, in this order
    keep: tuple[int, ...]  # pieces passed through unchanged
    splits: tuple[tuple[int, ...], ...]  # per branch output: piece sizes, sorted by due block


def _due(position: int, channels: int, block: int, blocks: int) -> int:
    """The stage block (index) whose branch consumes the channel at ``position`` after ``block``'s shuffle."""
    half = channels // 2
    for later in range(block + 1, blocks):
        if position >= half:
            return later
        position *= 2  # passed through as the first half: pre-shuffle p lands at 2p
    return blocks


def _shuffled(index: int, channels: int) -> int:
    """Where pre-shuffle channel ``index`` lands after a two-group channel shuffle."""
    half = channels // 2
    return 2 * index if index < half else 2 * (index - half) + 1


def _permute(module: nn.Module, order: list[int], dim: int) -> None:
    """Reorder a convolution's (dim 0: output, dim 1: input) or a batch norm's channels to ``order``."""
    index = torch.tensor(order)
    if isinstance(module, nn.BatchNorm2d):
        for tensor in (module.weight, module.bias, module.running_mean, module.running_var):
            tensor.data = tensor.data[index]
    else:
        module.weight.data = module.weight.data.index_select(dim, index)


class ShuffleNetForExport(nn.Module):
    """A copy of a torchvision ShuffleNetV2 with shuffles replaced by routing (see the module docstring)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).eval()
        self.blocks = [block for stage in (self.model.stage2, self.model.stage3, self.model.stage4) for block in stage]
        pieces = [_Piece(tuple(range(self.model.conv1[0].out_channels)), due=0)]
        self.plans: list[_BlockPlan] = []
        for stage in (self.model.stage2, self.model.stage3, self.model.stage4):
            for index, block in enumerate(stage):
                pieces = self._plan_block(block, index, len(stage), pieces)
        _permute(self.model.conv5[0], [p for piece in pieces for p in piece.positions], dim=1)

    def _plan_block(self, block: nn.Module, index: int, blocks: int, pieces: list[_Piece]) -> list[_Piece]:
        """Permute ``block``'s weights for its routed input and output; return the pieces after it."""
        consumed = [block.stride == 2 or piece.due == index for piece in pieces]
        take = [i for i, taken in enumerate(consumed) if taken]
        keep = [i for i, taken in enumerate(consumed) if not taken]
        taken = [p for i in take for p in pieces[i].positions]
        if block.stride == 1:
            half = block.branch2[0].in_channels
            _permute(block.branch2[0], [p - half for p in taken], dim=1)
            after = [_Piece(tuple(2 * p for p in pieces[i].positions), pieces[i].due) for i in keep]
            branches = [(block.branch2[5], block.branch2[6], half)]
            channels = 2 * half
        else:
            # branch1 starts with a per-channel (depthwise) conv and BN: the input order passes on to its 1x1 conv.
            _permute(block.branch1[0], taken, dim=0)
            _permute(block.branch1[1], taken, dim=0)
            _permute(block.branch1[2], taken, dim=1)
            _permute(block.branch2[0], taken, dim=1)
            after = []
            channels = block.branch1[2].out_channels + block.branch2[5].out_channels
            branches = [(block.branch1[2], block.branch1[3], 0), (block.branch2[5], block.branch2[6], channels // 2)]
        splits = []
        for conv, norm, start in branches:
            positions = [_shuffled(start + i, channels) for i in range(conv.out_channels)]
            dues = [_due(p, channels, index, blocks) for p in positions]
            order = sorted(range(conv.out_channels), key=lambda i: dues[i])
            _permute(conv, order, dim=0)
            _permute(norm, order, dim=0)
            groups = sorted(set(dues))
            splits.append(tuple(dues.count(due) for due in groups))
            after.extend(_Piece(tuple(positions[i] for i in order if dues[i] == due), due) for due in groups)
        self.plans.append(_BlockPlan(tuple(take), tuple(keep), tuple(splits)))
        return after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        model = self.model
        tensors = [model.maxpool(model.conv1(x))]
        for block, plan in zip(self.blocks, self.plans):
            taken = [tensors[i] for i in plan.take]
            inputs = taken[0] if len(taken) == 1 else torch.cat(taken, dim=1)
            outputs = [block.branch2(inputs)] if block.stride == 1 else [block.branch1(inputs), block.branch2(inputs)]
            tensors = [tensors[i] for i in plan.keep]
            for output, sizes in zip(outputs, plan.splits):
                tensors.extend(torch.split(output, list(sizes), dim=1) if len(sizes) > 1 else [output])
        x = tensors[0] if len(tensors) == 1 else torch.cat(tensors, dim=1)
        # GlobalAveragePool (not ReduceMean) has an int8 kernel, so the quantized graph stays int8 up to fc.
        x = torch.flatten(F.adaptive_avg_pool2d(model.conv5(x), 1), 1)
        return model.fc(x)
