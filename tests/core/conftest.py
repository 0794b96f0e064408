"""Fixtures shared by core's tests."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread: on a shared 2-core machine two threads spin-wait on each other and run ~10x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
