"""Retraining: research training (``training/``), the product's retrain loop (``jobs/``), the model registry
(``registry/``) and the Hugging Face Hub (``hub/``).

The app uses::

    from retrain import RetrainService, JobAlreadyRunning

    service = RetrainService(home, store)
    job = service.start(epochs=3, push_repo="me/tsnet")    # background worker; JobAlreadyRunning if busy
    service.status(job.id).events, service.cancel()
    service.registry.list(), service.registry.promote("v2"), service.registry.rollback()
"""

from .jobs import JobAlreadyRunning, JobInfo
from .jobs.service import RetrainService
from .registry import ModelRegistry
from .settings import PromotionRules, RetrainSettings

__all__ = ["JobAlreadyRunning", "JobInfo", "ModelRegistry", "PromotionRules", "RetrainService", "RetrainSettings"]
