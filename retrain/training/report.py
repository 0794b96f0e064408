"""``tsnet report``: the paper's Tables I-IV from measured runs, written to docs/RESULTS.md with figures.

A runs folder holds one sub-folder per experiment, each a ``tsnet train-*``/``distill`` run folder
(``best/``, ``metrics.jsonl``): ``teacher``, ``resnet18``, ``student-s<seed>``, ``distill-s<seed>``
and ``grid-T<T>-a<alpha>``. With ``--train`` the missing ones are trained first with the recipes in
retrain/training/recipes.py (the grid on a shortened schedule), so one command reproduces everything.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import fields
from pathlib import Path
from typing import Any

from core.classifier import load_classifier
from core.labels import default_labels

from .averaging import average_checkpoints, checkpoint_label
from .evaluation import evaluate_classifier
from .loop import TrainConfig, read_history, recorded_training_hours, run_training
from .recipes import (
    AVERAGED_CHECKPOINTS,
    BASELINE_EPOCHS,
    DISTILL_RECIPE,
    FAST_48PX_RECIPE,
    GRID_ALPHAS,
    GRID_TEMPERATURES,
    LONG_DISTILL_RECIPE,
    RESTART_RECIPE,
    SHIPPED_STUDENT_RUN,
    STUDENT_RECIPE,
    TEACHER_RECIPE,
)

__all__ = ["experiment_plan", "train_missing", "evaluate_runs", "write_report"]


def experiment_plan(seeds: int = 2, grid_epochs: int = 4) -> dict[str, dict[str, Any]]:
    """Experiment name -> recipe overrides; distillation runs name their teacher run."""
    plan: dict[str, dict[str, Any]] = {"teacher": dict(TEACHER_RECIPE)}
    plan["tsnet-s0"] = {**LONG_DISTILL_RECIPE, "seed": 0, "teacher": "teacher"}
    plan["tsnet-s0-restart"] = {**RESTART_RECIPE, "seed": 0, "teacher": "teacher", "init_from": "tsnet-s0"}
    plan["tsnet-a0.6-s0"] = {**LONG_DISTILL_RECIPE, "alpha": 0.6, "seed": 0, "teacher": "teacher"}
    restart = {**RESTART_RECIPE, "alpha": 0.6, "seed": 0, "teacher": "teacher", "init_from": "tsnet-s0"}
    plan["tsnet-s0-restart-a0.6"] = restart
    plan["tsnet48-ft"] = {**FAST_48PX_RECIPE, "seed": 0, "teacher": "teacher", "init_from": "tsnet-s0"}
    plan["tsnet-s0-avg"] = {"average_of": AVERAGED_CHECKPOINTS}
    plan["resnet18"] = {**TEACHER_RECIPE, "architecture": "resnet18", "epochs": BASELINE_EPOCHS}
    plan["eff_resnet18-short"] = {**TEACHER_RECIPE, "epochs": BASELINE_EPOCHS}
    for seed in range(seeds):
        plan[f"student-s{seed}"] = {**STUDENT_RECIPE, "seed": seed}
        plan[f"distill-s{seed}"] = {**DISTILL_RECIPE, "seed": seed, "teacher": "teacher"}
    # The grid's best alpha checked on the comparison schedule (seed 0), against distill-s0's alpha 0.4.
    plan["distill-a0.6-s0"] = {**DISTILL_RECIPE, "alpha": 0.6, "seed": 0, "teacher": "teacher"}
    for temperature in GRID_TEMPERATURES:
        for alpha in GRID_ALPHAS:
            plan[f"grid-T{temperature:g}-a{alpha:g}"] = {
                **DISTILL_RECIPE,
                "temperature": temperature,
                "alpha": alpha,
                "epochs": grid_epochs,
                "teacher": "teacher",
            }
    return plan


def train_missing(
    runs: Path, train_data: str, val_data: str, plan: dict[str, dict[str, Any]], threads: int | None
) -> None:
    """Train (or resume) every planned run whose best weights are missing; teachers first."""
    known = {f.name for f in fields(TrainConfig)}
    for name in sorted(plan, key=lambda n: ("teacher" in plan[n], "init_from" in plan[n], "average_of" in plan[n])):
        recipe = dict(plan[name])
        out = runs / name
        if "average_of" in recipe:  # checkpoints of other planned runs: "<run>/best" or "<run>/last.pt"
            if not (out / "best" / "config.json").is_file():
                average_checkpoints([runs / source for source in recipe["average_of"]], out / "best")
            continue
        if len(read_history(out)) >= recipe["epochs"]:
            continue
        for source in ("teacher", "init_from"):  # these name other runs of the plan
            if source in recipe:
                recipe[source] = str(runs / recipe[source] / "best")
        config = TrainConfig(
            train_data=train_data,
            val_data=val_data,
            out=str(out),
            labels=list(default_labels()),
            threads=threads,
            **{key: value for key, value in recipe.items() if key in known},
        )
        run_training(config, resume=(out / "last.pt").is_file())


def _run_summary(run_dir: Path, val_data: str) -> dict[str, Any] | None:
    if not (run_dir / "best" / "config.json").is_file():
        return None
    classifier = load_classifier(run_dir / "best")
    report = evaluate_classifier(classifier, val_data)
    history = read_history(run_dir)
    report["epochs"] = len(history)
    report["train_hours"] = recorded_training_hours(history, classifier.config.training)
    report["history"] = history
    report["training"] = classifier.config.training
    return report


def evaluate_runs(runs: Path, val_data: str, plan: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Evaluate each planned run's best weights on the validation folder (majority rule)."""
    results = {}
    for name in plan:
        summary = _run_summary(runs / name, val_data)
        if summary is not None:
            results[name] = summary
    return results


def _tsnet_title(name: str, result: dict[str, Any]) -> str:
    """A long-schedule distillation run's row title: the settings that tell the T-SNet runs apart."""
    training = result["training"]
    settings = [f"T={training.get('temperature'):g}", f"alpha {training.get('alpha'):g}"]
    settings += [f"{training.get('input_size')} px", f"seed {training.get('seed')}"]
    if training.get("init_from"):
        start = Path(training["init_from"])
        settings.append(f"warm start from `{start.parent.name if start.name == 'best' else start.name}`")
    if training.get("averaged_from"):
        checkpoints = [f"`{checkpoint_label(source)}`" for source in training["averaged_from"]]
        settings.append("weight average of " + ", ".join(checkpoints))
    shipped = ", shipped" if name == SHIPPED_STUDENT_RUN else ""
    return f"T-SNet `{name}` ({', '.join(settings)}{shipped})"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def _row(name: str, result: dict[str, Any] | None) -> str:
    if result is None:
        return f"| {name} | not run | | | | | | | |"
    planned, done = result["training"].get("epochs"), result["epochs"]  # done < planned: stopped early
    if result["training"].get("averaged_from"):
        epochs = f"average of {len(result['training']['averaged_from'])} checkpoints"
    else:
        epochs = f"{done} of {planned}" if done and planned and done < planned else (done or planned)
    return (
        f"| {name} | {epochs} | {result['params'] / 1e6:.2f} | {_pct(result['accuracy'])} |"
        f" {result['macro_precision']:.3f} |"
        f" {result['macro_recall']:.3f} | {result['macro_auc']:.3f} | {result['flops'] / 1e6:.1f} |"
        f" {result['latency_batch1']['p50_ms']:.2f} |"
    )


def _confusion_figure(result: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    matrix = np.asarray(result["confusion_matrix"], dtype=float)
    normalised = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    labels = result["labels"]
    figure, axes = plt.subplots(figsize=(6, 5))
    image = axes.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            colour = "white" if normalised[i, j] > 0.5 else "black"
            axes.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=8, color=colour)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _seed_stats(results: dict[str, dict[str, Any]], prefix: str) -> tuple[float, float, int] | None:
    values = [r["accuracy"] for name, r in results.items() if name.startswith(prefix)]
    if not values:
        return None
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), spread, len(values)


def write_report(results: dict[str, dict[str, Any]], out: Path, val_data: str, command: str) -> Path:
    """Write RESULTS.md (Tables I-IV, KD gain across seeds, protocol) and confusion-matrix PNGs into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    labels = list(default_labels())
    header = (
        "| model | epochs | params (M) | accuracy % | macro precision | macro recall | macro AUC | MFLOPs"
        " | CPU ms/face |"
    )
    rule = "|---|---|---|---|---|---|---|---|---|"
    student = results.get("student-s0")
    distilled = results.get("distill-s0")
    shipped = results.get(SHIPPED_STUDENT_RUN)
    lines = [
        "# Results: T-SNet on FER+ (measured)",
        "",
        "Generated by `" + command + "`; every number below comes from a run in this table, evaluated now.",
        "",
        "## Protocol",
        "",
        f"- Evaluation data: `{val_data}` (FER2013Valid), FER+ official **majority** rule (single votes dropped, "
        "one emotion with more than half of the remaining votes, unknown / not-a-face skipped), "
        f"label set: {', '.join(labels)} (FER+ without fear). The FER+ test split is held out and never used.",
        "- Training data: FER2013Train; model selection on FER2013Valid (best epoch by accuracy).",
        "- CPU ms/face: eager PyTorch, batch 1, median of 50, on the machine that ran the report (2 cores).",
        "- Recipes: `retrain/training/recipes.py`; each model's full settings are in its `config.json`.",
        "",
        "## Table II: teacher, student alone, distilled student",
        "",
        header,
        rule,
        _row("EFF-ResNet18 (teacher)", results.get("teacher")),
        _row("ShuffleNetV2 (student alone, seed 0)", student),
        _row("T-SNet (distilled student, seed 0)", distilled),
        *[_row(_tsnet_title(name, result), result) for name, result in results.items() if name.startswith("tsnet")],
        "",
        "The student-alone and distilled rows share one (shortened) schedule; the T-SNet rows are the same"
        " distillation recipe run longer, with the settings named in the row (`retrain/training/recipes.py`)."
        f" Shipped as the student: `{SHIPPED_STUDENT_RUN}`.",
        "",
        "## Distillation gain across seeds",
        "",
    ]
    alone, kd = _seed_stats(results, "student-s"), _seed_stats(results, "distill-s")
    if alone and kd:
        lines += [
            "Same recipe and schedule for both; mean +/- standard deviation over seeds.",
            "",
            f"- student alone: {100 * alone[0]:.2f} % +/- {100 * alone[1]:.2f} (n = {alone[2]})",
            f"- distilled: {100 * kd[0]:.2f} % +/- {100 * kd[1]:.2f} (n = {kd[2]})",
            f"- gain: {100 * (kd[0] - alone[0]):+.2f} points",
        ]
    else:
        lines.append("- not measured yet: needs `student-s*` and `distill-s*` runs.")
    lines += ["", "## Table I: temperature x alpha (shortened schedule)", ""]
    grid_runs = {name: r for name, r in results.items() if name.startswith("grid-")}
    if grid_runs:
        epochs = {r["epochs"] for r in grid_runs.values()}
        lines += [f"Each cell: accuracy % / macro precision after {sorted(epochs)} epochs.", ""]
        lines.append("| T \\ alpha | " + " | ".join(f"{a:g}" for a in GRID_ALPHAS) + " |")
        lines.append("|---" * (len(GRID_ALPHAS) + 1) + "|")
        for temperature in GRID_TEMPERATURES:
            cells = []
            for alpha in GRID_ALPHAS:
                r = grid_runs.get(f"grid-T{temperature:g}-a{alpha:g}")
                cells.append("not run" if r is None else f"{_pct(r['accuracy'])} / {r['macro_precision']:.3f}")
            lines.append(f"| {temperature:g} | " + " | ".join(cells) + " |")
        best = max(grid_runs, key=lambda name: grid_runs[name]["accuracy"])
        lines += ["", f"Best cell: `{best}` ({_pct(grid_runs[best]['accuracy'])} %)."]
        check, baseline = results.get("distill-a0.6-s0"), results.get("distill-s0")
        if check and baseline:
            lines.append(
                f"On the comparison schedule ({check['epochs']} epochs, seed 0): alpha 0.6 {_pct(check['accuracy'])} %"
                f" vs alpha 0.4 {_pct(baseline['accuracy'])} % (`distill-a0.6-s0` vs `distill-s0`, both T=6)."
            )
        long_06, long_04 = results.get("tsnet-a0.6-s0"), results.get("tsnet-s0")
        if long_06 and long_04:
            flipped = long_06["accuracy"] < long_04["accuracy"]
            lines.append(
                f"On the long schedule ({long_04['epochs']} epochs, seed 0): alpha 0.6 {_pct(long_06['accuracy'])} %"
                f" vs alpha 0.4 {_pct(long_04['accuracy'])} % (`tsnet-a0.6-s0` vs `tsnet-s0`)"
                + (": the short-schedule ranking did not carry over to it." if flipped else ".")
            )
    else:
        lines.append("Not measured yet: needs `grid-T<T>-a<alpha>` runs (`tsnet report --train`).")
    lines += ["", "## Table III: with the plain ResNet18 baseline", "", header, rule]
    lines += [_row("ResNet18 (short schedule)", results.get("resnet18"))]
    lines += [_row("EFF-ResNet18 (short schedule)", results.get("eff_resnet18-short"))]
    lines += [_row("EFF-ResNet18 (shipped teacher)", results.get("teacher")), _row("T-SNet (shipped)", shipped)]
    lines += ["", "The first two rows share one schedule and recipe: the fair ResNet18 vs EFF-ResNet18 comparison."]
    plain, eff = results.get("resnet18"), results.get("eff_resnet18-short")
    if plain and eff:
        leader = "ResNet18" if plain["accuracy"] >= eff["accuracy"] else "EFF-ResNet18"
        margin = abs(plain["accuracy"] - eff["accuracy"])
        lines.append(
            f"On it, {leader} leads by {100 * margin:.2f} points; a short schedule from scratch, so it says little"
            " about the paper's 150-epoch, face-pretrained setting."
        )
    for name in ("resnet18", "eff_resnet18-short"):
        if name in results and results[name]["history"]:
            by_epoch = ", ".join(_pct(epoch.get("val_accuracy")) for epoch in results[name]["history"])
            lines.append(f"- `{name}` validation accuracy % after each epoch: {by_epoch}")
    lines += ["", "## Table IV: per-class accuracy (recall)", ""]
    table4_runs = ("teacher", "student-s0", "distill-s0", SHIPPED_STUDENT_RUN)
    shown = [(name, results[name]) for name in table4_runs if name in results]
    if shown:
        lines.append("| class | " + " | ".join(name for name, _ in shown) + " |")
        lines.append("|---" * (len(shown) + 1) + "|")
        for label in labels:
            lines.append(
                f"| {label} | " + " | ".join(_pct(r["per_class_accuracy"].get(label)) for _, r in shown) + " |"
            )
        lines.append("")
        for name, result in shown:
            figure = out / "figures" / f"confusion-{name}.png"
            _confusion_figure(result, figure, f"{name}: FER2013Valid (majority)")
            lines.append(f"![confusion matrix {name}](figures/{figure.name})")
    lines += ["", "## Training cost", "", "| run | epochs | training wall hours (2-core CPU) |", "|---|---|---|"]
    for name, result in results.items():
        hours = "n/a (training log not kept)" if result["train_hours"] is None else f"{result['train_hours']:.2f}"
        epochs = "(its checkpoints' runs)" if result["training"].get("averaged_from") else None
        lines.append(f"| {name} | {epochs or result['epochs'] or result['training'].get('epochs')} | {hours} |")
    path = out / "RESULTS.md"
    path.write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(
        json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "history"} for k, v in results.items()}, indent=1)
    )
    return path
