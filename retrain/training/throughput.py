"""Training throughput (images/s) of a model on synthetic batches, to choose threads and memory format."""

from __future__ import annotations

import time

import torch

from core.data import augment_batch
from core.models import create_model

__all__ = ["training_throughput"]


def training_throughput(
    architecture: str,
    input_size: int = 64,
    batch_size: int = 128,
    threads: int = 2,
    channels_last: bool = True,
    steps: int = 6,
    warmup: int = 2,
) -> float:
    """Images per second of augmentation + forward + backward + SGD step, the trainer's inner loop."""
    torch.set_num_threads(threads)
    model = create_model(architecture, num_classes=7).train()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randint(0, 255, (batch_size, 1, 48, 48), dtype=torch.uint8)
    targets = torch.randint(0, 7, (batch_size,))
    generator = torch.Generator().manual_seed(0)
    started = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            started = time.perf_counter()
        batch = augment_batch(images, input_size, 0.5, 0.5, generator).contiguous(memory_format=memory_format)
        loss = torch.nn.functional.cross_entropy(model(batch), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps * batch_size / (time.perf_counter() - started)
