"""Turn a finished run into a shipped default (``core/pretrained/<name>``): half-precision weights,
measured validation metrics in config.json, and a model card with protocol, command and provenance."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from core.classifier import Classifier, load_classifier, shipped_weights_folder
from core.weights import ModelConfig, read_config, save_weights

from .averaging import checkpoint_label
from .evaluation import evaluate_classifier
from .model_card import write_model_card
from .training import read_history, recorded_training_hours

__all__ = ["ship_run", "fp32_vs_fp16"]

PROVENANCE = (
    "Images: FER2013 (Goodfellow et al., ICML 2013 Challenges in Representation Learning). Labels: FER+ "
    "(Barsoum et al., ICMI 2016; MIT-licensed labels). Trained on FER2013Train, selected on FER2013Valid; "
    "the FER2013Test split was never used."
)


def fp32_vs_fp16(run_dir: Path, val_data: str) -> dict[str, float]:
    """Accuracy of the run's last float32 checkpoint against the same weights stored in float16."""
    state = torch.load(run_dir / "last.pt", weights_only=False)
    config = read_config(run_dir / "best")
    model = config.build_model()
    model.load_state_dict(state["model"])
    full = evaluate_classifier(Classifier(model.eval(), config), val_data, latency=False)["accuracy"]
    model.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in state["model"].items()})
    half = evaluate_classifier(Classifier(model.eval(), config), val_data, latency=False)["accuracy"]
    return {"fp32_accuracy": full, "fp16_accuracy": half}


def _card_body(name: str, config: ModelConfig, report: dict, command: str) -> str:
    training = config.training
    per_class = "\n".join(
        f"| {label} | {'n/a' if value is None else f'{100 * value:.2f}'} |"
        for label, value in report["per_class_accuracy"].items()
    )
    recipe = ", ".join(
        f"{key}={training[key]}"
        for key in (
            "epochs",
            "best_epoch",
            "batch_size",
            "lr",
            "schedule",
            "weight_decay",
            "input_size",
            "stem",
            "target_mode",
            "temperature",
            "alpha",
            "teacher_cache",
            "flip_tta",
            "seed",
            "threads",
            "train_hours",
        )
        if key in training and (key not in ("temperature", "alpha", "teacher_cache") or training.get("teacher"))
    )
    return "\n".join(
        [
            f"T-SNet Studio shipped **{name}** ({config.architecture}), facial expression recognition on 48x48"
            " grayscale faces (upscaled to the model input).",
            "",
            "## Measured on FER2013Valid",
            "",
            f"Protocol: FER+ official majority rule, {len(config.labels)} classes ({', '.join(config.labels)}),"
            f" {report['samples']} faces, evaluated with `tsnet evaluate --data FER2013Valid --model {name}`.",
            "",
            f"- accuracy: **{100 * report['accuracy']:.2f} %**",
            f"- macro precision {report['macro_precision']:.4f}, macro recall {report['macro_recall']:.4f},"
            f" macro one-vs-rest AUC {report['macro_auc']:.4f}",
            f"- parameters: {report['params']:,}; FLOPs per face: {report['flops'] / 1e6:.1f} M",
            "",
            "| class | accuracy (recall) % |",
            "|---|---|",
            per_class,
            "",
            "## Training",
            "",
            f"Command: `{command}`",
            "",
            f"Recipe: {recipe}.",
            "",
            *(
                [f"Weights: the uniform average of {', '.join(training['averaged_from'])} (`tsnet average`).", ""]
                if training.get("averaged_from")
                else []
            ),
            "## Data provenance",
            "",
            PROVENANCE,
        ]
    )


def ship_run(run_dir: str | Path, name: str, val_data: str, command: str, destination: Path | None = None) -> Path:
    """Copy ``run_dir/best`` to the shipped folder in float16 with measured metrics and a model card."""
    run_dir = Path(run_dir)
    destination = destination or shipped_weights_folder(name)
    classifier = load_classifier(run_dir / "best")
    report = evaluate_classifier(classifier, val_data)
    config = classifier.config
    config.training = {**config.training, "command": command, "shipped_as": name, "version": "base"}
    hours = recorded_training_hours(read_history(run_dir), config.training)
    if hours is not None:
        config.training["train_hours"] = round(hours, 2)
    if config.training.get("averaged_from"):
        config.training["averaged_from"] = [checkpoint_label(source) for source in config.training["averaged_from"]]
    for key in ("train_data", "val_data", "teacher"):
        if config.training.get(key):
            config.training[key] = Path(config.training[key]).name if key != "teacher" else "shipped teacher"
    config.metrics = {
        "val_accuracy": report["accuracy"],
        "val_macro_precision": report["macro_precision"],
        "val_macro_recall": report["macro_recall"],
        "val_macro_auc": report["macro_auc"],
        "val_per_class_accuracy": report["per_class_accuracy"],
        "val_confusion_matrix": report["confusion_matrix"],
        "val_samples": report["samples"],
        "params": report["params"],
        "flops": report["flops"],
    }
    if destination.exists():
        shutil.rmtree(destination)
    save_weights(classifier.model, config, destination, half=True)
    scalar = {k: v for k, v in config.metrics.items() if isinstance(v, int | float)}
    card = _card_body(name, config, report, command)
    write_model_card(destination, metrics=scalar, repo_id=f"tsnet-studio/tsnet-{name}", description=card)
    return destination
