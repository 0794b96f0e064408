"""FER+ rehearsed without FER+: the face head's input features on FER+'s training faces, kept as a low-rank
Gaussian shipped with the package (``retrain/statistics/fer_features.safetensors``, about 0.4 MB).

A retrain with no FER+ copy at hand (installed from PyPI, on a Space) cannot rehearse FER+ faces, and a head fitted
on a few hundred photos alone forgets what the student knew (FER2013Valid 87 % -> 50-60 % in the README's probe).
Samples of this Gaussian stand in for the replay faces: the head learns to add nothing where the features look like
FER+'s. They are statistics of the shipped student's and dlib's features, no faces, so they ship as weights do;
they describe one student only (its fingerprint is kept with them), so a version whose student was fine-tuned
does without them.

Regenerate after shipping a new student: ``python -m retrain.training.feature_replay PATH/FER2013Train``.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from core.classifier import shipped_weights_folder
from core.data import read_labelled_folder
from core.data.tensors import load_gray_images
from core.models.face_head import FACE_FEATURES, STUDENT_FEATURES, StudentWithFaceHead
from core.weights import load_weights

from .face_head import HeadInputs, face_head_model, head_inputs, plain_student

__all__ = [
    "STATISTICS_NAME",
    "SHIPPED_STATISTICS",
    "FeatureStatistics",
    "fit_statistics",
    "shipped_statistics",
    "student_fingerprint",
    "statistics_for",
    "synthetic_replay",
]

STATISTICS_NAME = "fer_features.safetensors"
SHIPPED_STATISTICS = Path(__file__).parents[1] / "statistics" / STATISTICS_NAME
RANK = 128  # directions kept exactly; the rest of the spread is kept per feature


@dataclass
class FeatureStatistics:
    """``mean + (z * scales) @ basis + e * residual_std`` with standard normal ``z`` (rank) and ``e`` (features)."""

    mean: torch.Tensor  # (features,)
    basis: torch.Tensor  # (rank, features), orthonormal rows
    scales: torch.Tensor  # (rank,) the spread along each row
    residual_std: torch.Tensor  # (features,) the spread left outside the basis
    faces: int  # how many faces the statistics were taken on
    student: str = ""  # the fingerprint of the student whose features they are

    def sample(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """``count`` feature rows; pooled ReLU features are never negative, so neither are these."""
        rank, features = self.basis.shape
        along = (torch.randn(count, rank, generator=generator) * self.scales) @ self.basis
        rows = self.mean + along + torch.randn(count, features, generator=generator) * self.residual_std
        return rows.clamp_min(0)

    def save(self, path: Path) -> Path:
        tensors = {"mean": self.mean, "basis": self.basis, "scales": self.scales, "residual_std": self.residual_std}
        halved = {name: t.to(torch.float16).contiguous() for name, t in tensors.items()}
        save_file(halved, path, {"faces": str(self.faces), "student": self.student})
        return path

    @classmethod
    def load(cls, path: Path) -> FeatureStatistics:
        with safe_open(path, "pt") as handle:  # one read for the tensors and the metadata
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name).float() for name in handle.keys()}
        parts = (tensors["mean"], tensors["basis"], tensors["scales"], tensors["residual_std"])
        return cls(*parts, int(metadata.get("faces", 0)), metadata.get("student", ""))


def fit_statistics(features: torch.Tensor, rank: int = RANK, student: str = "") -> FeatureStatistics:
    """The Gaussian of ``features`` (faces, features): its top ``rank`` principal directions and a diagonal rest."""
    mean = features.mean(0)
    centred = features - mean
    _, singular, basis = torch.linalg.svd(centred, full_matrices=False)
    rank = min(rank, len(singular))
    basis, scales = basis[:rank], singular[:rank] / max(len(features) - 1, 1) ** 0.5
    residual = centred - (centred @ basis.T) @ basis
    return FeatureStatistics(mean, basis, scales, residual.std(0), len(features), student)


def shipped_statistics() -> FeatureStatistics | None:
    """The statistics shipped with the package; None where it has none."""
    return FeatureStatistics.load(SHIPPED_STATISTICS) if SHIPPED_STATISTICS.is_file() else None


def student_fingerprint(student: torch.nn.Module) -> str:
    """A digest of the student's weights in half precision, as every weights folder keeps them: the same for the
    shipped student and for the copy inside a face-head version, different for any fine-tuned one."""
    digest = hashlib.sha256()
    for name, tensor in sorted(student.state_dict().items()):
        tensor = tensor.detach().cpu()
        tensor = tensor.half() if tensor.is_floating_point() else tensor
        digest.update(name.encode())
        digest.update(tensor.reshape(-1).numpy().tobytes())
    return digest.hexdigest()[:16]


def statistics_for(student_folder: Path) -> FeatureStatistics | None:
    """The shipped statistics when they describe the student of ``student_folder`` (itself, or the one inside a
    version with a face head); else None."""
    statistics = shipped_statistics()
    if statistics is None or len(statistics.mean) != FACE_FEATURES + STUDENT_FEATURES:
        return None  # statistics of another head layout
    if statistics.student != student_fingerprint(plain_student(student_folder)[0]):
        return None
    return statistics


@torch.no_grad()
def synthetic_replay(model: StudentWithFaceHead, statistics: FeatureStatistics, count: int, seed: int) -> HeadInputs:
    """``count`` rows drawn from the statistics, with the student's own logits on their student part (its
    classifier reads only those pooled features): what :func:`.face_head.fit_head` rehearses as replay faces."""
    features = statistics.sample(count, torch.Generator().manual_seed(seed + 7))
    student = model.student.eval()
    logits = student.fc(features[:, -STUDENT_FEATURES:])
    return HeadInputs(logits, features, logits.argmax(1), views=1)


def build(folder: Path, out: Path, student_folder: Path, rank: int = RANK) -> FeatureStatistics:
    """Read every majority-labelled face of a FER+ training folder as the retrain's replay sample reads it, and fit
    the statistics of ``student_folder``'s student (a plain student's weights folder)."""
    student, config = load_weights(student_folder)
    model, head_config = face_head_model(student, config)
    samples = read_labelled_folder(folder, list(config.labels), "majority")
    images = load_gray_images(samples.paths)
    started = time.perf_counter()
    inputs = head_inputs(model, head_config, images, torch.from_numpy(samples.label_indices), mirrored=False)
    print(f"features of {len(images)} faces in {time.perf_counter() - started:.0f} s")
    statistics = fit_statistics(inputs.features, rank, student_fingerprint(student))
    statistics.save(out)
    return statistics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a FER+ FER2013Train folder")
    parser.add_argument("--out", type=Path, default=SHIPPED_STATISTICS)
    parser.add_argument("--student", type=Path, default=shipped_weights_folder("student"), help="weights folder")
    parser.add_argument("--rank", type=int, default=RANK)
    args = parser.parse_args(argv)
    statistics = build(args.folder, args.out, args.student, args.rank)
    print(f"wrote {args.out}: {statistics.faces} faces, rank {len(statistics.scales)}")


if __name__ == "__main__":
    main()
