"""``tsnet train-teacher | train-student | distill | evaluate | report | average | train-bench``: research
training from the command line, over :mod:`retrain.training`.

The training flags mirror :class:`retrain.training.TrainConfig`'s fields and defaults, so they are added when one
of these commands is parsed (that import pulls torch), never when ``tsnet --help`` lists the commands.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from .._console import note_model, note_shipped_lookup, resolve_model

__all__ = ["register"]

_ARCHITECTURE = {"train-teacher": "eff_resnet18", "train-student": "shufflenet_v2", "distill": "shufflenet_v2"}


def _add_training_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    from retrain.training import TrainConfig

    defaults = {f.name: f.default for f in fields(TrainConfig) if not callable(f.default_factory)}  # type: ignore[arg-type]
    parser.add_argument("--data", required=True, help="training folder (FER+ layout or one subfolder per class)")
    parser.add_argument("--val-data", help="validation folder, used for model selection (majority rule)")
    parser.add_argument("--out", required=True, help="run folder: metrics.jsonl, last.pt, best/ weights")
    parser.add_argument("--arch", default=_ARCHITECTURE[command], help="model name (default: %(default)s)")
    parser.add_argument("--labels", help="label set name (paper7, ferplus8) or comma-separated classes")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    parser.add_argument(
        "--init-from", help="start from this weights folder, or student / teacher (same architecture and labels)"
    )
    for name in (
        "epochs",
        "batch_size",
        "lr",
        "momentum",
        "weight_decay",
        "plateau_patience",
        "plateau_factor",
        "warmup_epochs",
        "input_size",
        "dropout",
        "seed",
        "threads",
        "max_train_samples",
        "label_smoothing",
    ):
        default = defaults[name]
        kind = type(default) if default is not None else int
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default, help="default: %(default)s")
    parser.add_argument("--schedule", choices=("plateau", "cosine"), default=defaults["schedule"])
    parser.add_argument("--stem", choices=("imagenet", "lowres"), default=defaults["stem"])
    parser.add_argument("--target-mode", choices=("majority", "distribution"), default=defaults["target_mode"])
    parser.add_argument("--flip-tta", action="store_true", help="average predictions with the mirrored face")
    parser.add_argument(
        "--logit-adjust",
        type=float,
        default=defaults["logit_adjust"],
        metavar="TAU",
        help="train on logits + TAU * log(class prior) so rare classes (contempt, disgust) get recalled; 1 is the"
        " balanced posterior, 0 (default) plain training",
    )
    parser.add_argument(
        "--photo-augment",
        action="store_true",
        help="also degrade training faces like photos: JPEG, blur, resolution, gamma, side light, noise",
    )
    parser.add_argument(
        "--photo-val",
        metavar="DIR",
        help="photo folder with labels.csv (e.g. taiwanese-dev), scored each epoch through the photo pipeline;"
        " the best epoch is then the best mean of --val-data and photo accuracy",
    )
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    parser.add_argument("--full-precision", dest="half_weights", action="store_false", help="save float32 weights")
    if command == "distill":
        parser.add_argument(
            "--teacher",
            required=True,
            help="teacher weights folder, or 'teacher' for the shipped one; several, comma-separated, are averaged",
        )
        parser.add_argument("--temperature", "-T", type=float, default=defaults["temperature"])
        parser.add_argument("--alpha", type=float, default=defaults["alpha"])
        parser.add_argument("--teacher-cache", action="store_true", help="compute teacher logits once on clean faces")


def _run(args: argparse.Namespace) -> int:
    from core.labels import resolve_labels
    from retrain.training import TrainConfig, run_training

    if getattr(args, "teacher", None):
        note_shipped_lookup(args.command, args.teacher)
    config = TrainConfig(
        architecture=args.arch,
        train_data=args.data,
        val_data=args.val_data,
        out=args.out,
        labels=list(resolve_labels(args.labels)),
        **{
            f.name: getattr(args, f.name)
            for f in fields(TrainConfig)
            if f.name not in ("architecture", "train_data", "val_data", "out", "labels") and hasattr(args, f.name)
        },
    )
    best = run_training(config, resume=args.resume)
    print(f"best weights: {best}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from core.classifier import load_classifier
    from retrain.training import evaluate_classifier, format_report

    classifier = load_classifier(resolve_model(args.model))
    note_model("evaluate", args.model, classifier)
    if args.photos:
        from retrain.training.photos import evaluate_photos, format_photo_report, load_photo_set

        report = evaluate_photos(classifier, load_photo_set(args.data, classifier.labels))
        report["model"] = classifier.source
        print(format_photo_report(report))
    else:
        report = evaluate_classifier(classifier, args.data)
        print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _report(args: argparse.Namespace) -> int:
    command = "tsnet " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if not args.runs and not args.photos:
        raise ValueError(
            "tsnet report needs --runs DIR (the FER+ tables), --photos DIR (the cross-dataset table), or both"
        )
    if args.runs:
        _report_runs(args, command)
    if args.photos:
        from retrain.training.cross_dataset import evaluate_cross_dataset, write_cross_dataset

        models = dict(_named_model(text) for text in (args.model or ["teacher=teacher", "student=student"]))
        results = evaluate_cross_dataset(models, args.valid, args.photos)
        print(f"wrote {write_cross_dataset(results, Path(args.out), command)} (cross-dataset section)")
    return 0


def _named_model(text: str) -> tuple[str, str | Path]:
    """``NAME=WEIGHTS`` (or a bare student / teacher / folder, named after itself) for ``tsnet report --model``."""
    name, _, source = text.partition("=")
    return (name, resolve_model(source)) if source else (Path(text).name, resolve_model(text))


def _report_runs(args: argparse.Namespace, command: str) -> None:
    from retrain.training import evaluate_runs, experiment_plan, train_missing, write_report
    from retrain.training.earlier_results import RESULTS_NAME, earlier_names, with_earlier_results

    runs = Path(args.runs)
    plan = experiment_plan(args.seeds, args.grid_epochs)
    if args.train:
        if not args.train_data:
            raise ValueError("--train needs --train-data")
        train_missing(runs, args.train_data, args.valid, plan, args.threads)
    results = evaluate_runs(runs, args.valid, plan)
    if not results:
        raise ValueError(f"no finished runs under {runs}; pass --train --train-data DIR to create them")
    results = with_earlier_results(results, Path(args.out), plan)
    earlier = earlier_names(results)
    if earlier:
        print(
            f"kept {len(earlier)} rows of {Path(args.out) / RESULTS_NAME} evaluated earlier (no run folder under"
            f" {runs}): {', '.join(earlier)}",
            file=sys.stderr,
        )
    print(f"wrote {write_report(results, Path(args.out), args.valid, command)}")


def _average(args: argparse.Namespace) -> int:
    from retrain.training import average_checkpoints

    print(f"averaged {len(args.sources)} checkpoints into {average_checkpoints(args.sources, args.out)}")
    return 0


def _rebalance(args: argparse.Namespace) -> int:
    from core.weights import read_config
    from retrain.training.rebalance import class_prior, rebalance_weights, recorded_prior

    source = resolve_model(args.model)
    config = read_config(source)
    if args.train_data:
        prior = class_prior(args.train_data, list(config.labels))
    else:
        prior = recorded_prior(config)
    print(f"wrote {rebalance_weights(source, args.out, args.tau, prior)} (tau {args.tau:g})")
    return 0


def _train_bench(args: argparse.Namespace) -> int:
    from retrain.training import training_throughput

    rows = []
    for architecture in args.arch:
        for threads in args.threads:
            for channels_last in (True, False):
                speed = training_throughput(architecture, args.input_size, args.batch_size, threads, channels_last)
                rows.append(
                    {
                        "architecture": architecture,
                        "threads": threads,
                        "channels_last": channels_last,
                        "images_per_second": round(speed, 1),
                    }
                )
                print(
                    f"{architecture:<14} {args.input_size} px  threads {threads}  channels_last {channels_last!s:<5}"
                    f"  {speed:7.1f} img/s"
                )
    if args.json:
        print(json.dumps(rows))
    return 0


def _configure_training(command: str) -> Any:
    def configure(parser: argparse.ArgumentParser) -> None:
        _add_training_arguments(parser, command)
        parser.set_defaults(handler=_run)

    return configure


def _configure_evaluate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="FER+-layout folder (majority rule) or an image folder")
    parser.add_argument("--model", default="student", help="student, teacher or a weights folder (default: student)")
    parser.add_argument(
        "--photos",
        action="store_true",
        help="--data holds photos listed in labels.csv (path,label,subject[,raters_agree]): find, align and"
        " classify each face as tsnet predict does; only photos raters agreed on are scored",
    )
    parser.add_argument("--json", help="also write the full report as JSON to this file")
    parser.set_defaults(handler=_evaluate)


def _configure_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs",
        help="folder of run folders (teacher, face-teacher, student-s0, distill-s0, ...): the FER+ tables; a planned"
        " run without a folder there keeps its row from --out's results.json, marked as evaluated earlier",
    )
    parser.add_argument("--valid", required=True, help="FER2013Valid folder (majority rule)")
    parser.add_argument(
        "--photos",
        metavar="DIR",
        help="photo folder with labels.csv (e.g. taiwanese-dev): add the cross-dataset table, FER2013Valid beside"
        " the photo pipeline per class, for each --model",
    )
    parser.add_argument(
        "--model",
        action="append",
        metavar="NAME=WEIGHTS",
        help="a model of the cross-dataset table (repeatable; default: teacher=teacher student=student)",
    )
    parser.add_argument("--out", default="docs", help="where RESULTS.md and figures/ go (default: %(default)s)")
    parser.add_argument("--train", action="store_true", help="train the missing runs first (recipes.py)")
    parser.add_argument("--train-data", help="FER2013Train folder, for --train")
    parser.add_argument("--seeds", type=int, default=2, help="seeds of the student-alone vs distilled comparison")
    parser.add_argument("--grid-epochs", type=int, default=4, help="shortened schedule of the T x alpha grid")
    parser.add_argument("--threads", type=int, help="torch threads for training")
    parser.set_defaults(handler=_report)


def _configure_average(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", help="weights folders (RUN/best) or training checkpoints (RUN/last.pt)")
    parser.add_argument("--out", required=True, help="weights folder to write (config.json, model.safetensors)")
    parser.set_defaults(handler=_average)


def _configure_rebalance(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="student", help="student, teacher or a weights folder (default: student)")
    parser.add_argument(
        "--train-data",
        help="the folder the model was trained on (its class prior); default: the prior the model's config.json"
        " records (the shipped student and teacher record FER+ FER2013Train's)",
    )
    parser.add_argument("--tau", type=float, required=True, help="0: unchanged; 1: the class-balanced posterior")
    parser.add_argument("--out", required=True, help="weights folder to write")
    parser.set_defaults(handler=_rebalance)


def _configure_train_bench(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", nargs="+", default=["eff_resnet18", "shufflenet_v2"])
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    parser.set_defaults(handler=_train_bench)


def register(subparsers: Any) -> None:
    """Add the research training commands to the ``tsnet`` command."""
    helps = {
        "train-teacher": "train the EFF-ResNet18 teacher (paper recipe by default)",
        "train-student": "train the ShuffleNetV2 student alone (the ablation baseline)",
        "distill": "distill the student from a trained teacher with the Eq. 9 loss",
    }
    for command, text in helps.items():
        subparsers.add_command(command, _configure_training(command), help=text, description=text)
    subparsers.add_command(
        "evaluate", _configure_evaluate, help="accuracy, precision, recall, AUC, per-class, params, FLOPs, speed"
    )
    subparsers.add_command(
        "report", _configure_report, help="the paper's Tables I-IV from measured runs -> docs/RESULTS.md"
    )
    text = "uniform weight average of checkpoints of one model (a run's best and last epochs, a warm restart)"
    subparsers.add_command("average", _configure_average, help=text, description=text)
    text = "post-hoc logit adjustment: take tau x log(class prior) off the classifier's bias (rare classes recalled)"
    subparsers.add_command("rebalance", _configure_rebalance, help=text, description=text)
    subparsers.add_command(
        "train-bench", _configure_train_bench, help="training images/s per model, thread count and memory format"
    )
