"""The product's retrain loop: one job's pipeline as stage functions (``pipeline``), its state, lock and events on disk
(``state``), running it to a final state (``execute``) in the foreground, a background worker process or behind the
app's service, the data it trains on (``datasets``), the promotion decision and the ``tsnet retrain --bench`` scenario.

Importing this package costs only the standard library: the heavy modules load when a job runs.
"""

from .state import INTERRUPTED, JobAlreadyRunning, JobCancelled, JobHandle, JobInfo, JobStore

__all__ = ["INTERRUPTED", "JobAlreadyRunning", "JobCancelled", "JobHandle", "JobInfo", "JobStore"]
