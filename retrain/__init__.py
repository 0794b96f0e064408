"""Retraining: research training (``training/``), the product's retrain loop (``jobs/``), the model registry
(``registry/``) and the Hugging Face Hub (``hub/``).

The app uses::

    from retrain import RetrainService, JobAlreadyRunning

    service = RetrainService(home, store)
    job = service.start(epochs=3, push_repo="me/tsnet")    # background worker; JobAlreadyRunning if busy
    service.status(job.id).events, service.cancel()
    service.registry.list(), service.registry.promote("v2"), service.registry.rollback()
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["JobAlreadyRunning", "JobInfo", "ModelRegistry", "PromotionRules", "RetrainService", "RetrainSettings"]

# Imported when first used, so ``retrain.layout`` and ``retrain.settings`` load without torch.
_HOMES = {
    "JobAlreadyRunning": ".jobs",
    "JobInfo": ".jobs",
    "RetrainService": ".jobs.service",
    "ModelRegistry": ".registry",
    "PromotionRules": ".settings",
    "RetrainSettings": ".settings",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name], __name__), name)
