"""Research training and the paper's tables: the training loop behind ``tsnet train-teacher``, ``train-student``
and ``distill`` (and the retrain job), the recipes of the shipped models, checkpoint averaging, evaluation,
training throughput and ``tsnet report``.

The retrain job uses::

    from retrain.training import Dataset, TrainConfig, run_training

    best = run_training(TrainConfig(architecture="shufflenet_v2", train_data="", out="run"), train_set=faces)
"""

from .averaging import average_checkpoints
from .config import TrainConfig
from .data import Dataset, load_dataset
from .evaluation import evaluate_classifier, evaluate_dataset, format_report
from .experiments import evaluate_runs, experiment_plan, train_missing
from .loop import TrainingCancelled, distributed_context, run_training
from .report import write_report
from .run_folder import read_history, recorded_training_hours, training_hours
from .throughput import training_throughput

__all__ = [
    "Dataset",
    "TrainConfig",
    "TrainingCancelled",
    "average_checkpoints",
    "distributed_context",
    "evaluate_classifier",
    "evaluate_dataset",
    "evaluate_runs",
    "experiment_plan",
    "format_report",
    "load_dataset",
    "read_history",
    "recorded_training_hours",
    "run_training",
    "train_missing",
    "training_hours",
    "training_throughput",
    "write_report",
]
