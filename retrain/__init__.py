"""Retraining: training loops, evaluation, the retrain job, the model registry and publishing to the Hub.

The app uses::

    from retrain import RetrainService, JobAlreadyRunning

    service = RetrainService(home, store)
    job = service.start(epochs=3, push_repo="me/tsnet")    # background worker; JobAlreadyRunning if busy
    service.status(job.id).events, service.cancel()
    service.registry.list(), service.registry.promote("v2"), service.registry.rollback()
"""

from .jobs import JobAlreadyRunning, JobInfo
from .registry import ModelRegistry
from .service import RetrainService
from .settings import PromotionRules, RetrainSettings

__all__ = ["JobAlreadyRunning", "JobInfo", "ModelRegistry", "PromotionRules", "RetrainService", "RetrainSettings"]
