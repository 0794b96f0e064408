"""The student with a face-feature head: what a retrain on a user's photos serves.

Measured on real photos (README, "Retrain with dlib's face features"): what a few hundred labelled photos of
some people cannot teach the 48 px student is person-invariant face detail, and dlib's face-recognition ResNet,
trained on 3 million faces, has it. So the retrained model keeps the student exactly as it was and adds a small
head that reads dlib's frozen face features (of the sharper 96 px face) beside the student's own, and *adds* its
answer to the student's logits. A head of zeros is the student itself; the retrain fits the head so that the
user's people are read right while FER+ faces keep the student's answers (learning without forgetting).

A head may also carry a *domain gate*: a logistic regression on the same features that tells the user's kind of
photo from FER+'s web crops, by which the head's answer is scaled, face by face. The head then corrects the
user's kind of face and leaves FER+'s kind of face, where the student was selected, as the student reads it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._registry import register_model
from .dlib_resnet import DLIB_CHIP_SIZE, DlibFaceResNet
from .face_teacher import DlibInput
from .student import shufflenet_v2

__all__ = [
    "FaceFeatureHead",
    "StudentWithFaceHead",
    "shufflenet_v2_face_head",
    "FACE_LEVELS",
    "FACE_FEATURES",
    "STUDENT_FEATURES",
    "face_feature_count",
    "GATE_OPEN",
]

LEVEL_CHANNELS = {"level2": 128, "level1": 256, "level0": 256}  # dlib's last three levels, input first
FACE_LEVELS = ("level2", "level1", "level0")  # what a retrain fits on now, each mean-pooled
EARLIER_FACE_LEVELS = ("level1", "level0")  # heads saved before level2 was read (configs without face_levels)
STUDENT_FEATURES = 1024  # the student's conv5, mean-pooled


def face_feature_count(levels: Sequence[str] = FACE_LEVELS) -> int:
    """How many of dlib's pooled features a head on ``levels`` reads (before the student's)."""
    return sum(LEVEL_CHANNELS[level] for level in levels)


FACE_FEATURES = face_feature_count()


GATE_OPEN = 30.0  # the gate's bias while it has not been fitted: sigmoid(30) is 1 in float32 and float16


class FaceFeatureHead(nn.Module):
    """Standardised features -> a logit correction; starts at exactly zero (the student unchanged).

    With ``domain_gate`` the correction is scaled by ``sigmoid(gate(features))``, a per-face weight in [0, 1]
    that starts fully open (the head as without a gate) until a retrain fits it."""

    def __init__(self, features: int, num_classes: int, hidden: int = 64, domain_gate: bool = False) -> None:
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(features))
        self.register_buffer("feature_std", torch.ones(features))
        self.hidden = nn.Linear(features, hidden)
        self.out = nn.Linear(hidden, num_classes)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.gate = nn.Linear(features, 1) if domain_gate else None
        if self.gate is not None:
            nn.init.zeros_(self.gate.weight)
            nn.init.constant_(self.gate.bias, GATE_OPEN)

    def standardised(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.feature_mean) / self.feature_std

    def _correction(self, standard: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.hidden(standard)))

    def _openness(self, standard: torch.Tensor) -> torch.Tensor:
        if self.gate is None:
            return standard.new_ones(len(standard), 1)
        return torch.sigmoid(self.gate(standard))

    def correction(self, features: torch.Tensor) -> torch.Tensor:
        """The head's answer before the gate scales it (what the retrain fits)."""
        return self._correction(self.standardised(features))

    def openness(self, features: torch.Tensor) -> torch.Tensor:
        """How much of the correction each face gets, (rows, 1): 1 everywhere without a gate."""
        return self._openness(self.standardised(features))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        standard = self.standardised(features)  # once, for the correction and its gate
        if self.gate is None:
            return self._correction(standard)
        return self._openness(standard) * self._correction(standard)


class StudentWithFaceHead(nn.Module):
    """``student(face at 48 px, read at 64) + head([dlib features of the face at 150 px, student features])``.

    The input is the model's normalised grey face at ``input_size`` (96: the store's photo faces); the student
    sees it exactly as the plain student's preprocessing would (reduced to 48 px, then enlarged to 64).
    ``pretrained`` loads dlib's weights from the face-recognition-models wheel; a saved model brings its own.
    ``face_levels`` and ``domain_gate`` default to the layout of heads saved before they existed.
    """

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        dropout: float = 0.2,
        stem: str = "imagenet",
        hidden: int = 64,
        student_face: int = 48,
        student_input: int = 64,
        pretrained: bool = True,
        input_mean: float = 0.5,
        input_std: float = 0.5,
        face_levels: Sequence[str] = EARLIER_FACE_LEVELS,
        domain_gate: bool = False,
    ) -> None:
        super().__init__()
        unknown = set(face_levels) - set(LEVEL_CHANNELS)
        if unknown or not face_levels:
            raise ValueError(f"face_levels must be some of {', '.join(LEVEL_CHANNELS)}, not {list(face_levels)}")
        self.face_levels = tuple(level for level in LEVEL_CHANNELS if level in face_levels)
        self.student = shufflenet_v2(num_classes=num_classes, in_chans=in_chans, dropout=dropout, stem=stem)
        face = DlibFaceResNet.from_dlib().fold_affine() if pretrained else DlibFaceResNet()
        face.fc = nn.Identity()  # the identity embedding is not used: its levels carry the expression
        self.face = face
        self.face_input = DlibInput(in_chans, input_mean, input_std)
        features = face_feature_count(self.face_levels) + STUDENT_FEATURES
        self.head = FaceFeatureHead(features, num_classes, hidden, domain_gate)
        self.student_face, self.student_input = student_face, student_input

    @property
    def feature_input_size(self) -> int:
        """The side the student's feature maps are strided from (Grad-CAM picks its stage by that stride)."""
        return self.student_input

    def _resized(self, x: torch.Tensor, side: int) -> torch.Tensor:
        if x.shape[-1] == side and x.shape[-2] == side:
            return x
        # antialiasing changes nothing when enlarging (to 1e-6), and plain bilinear exports to ONNX
        shrinking = x.shape[-1] > side
        return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False, antialias=shrinking)

    def student_view(self, x: torch.Tensor) -> torch.Tensor:
        """The face as the plain student reads it: reduced to its face side (by a block average where the side is
        a whole multiple: a 48 px face enlarged by repeated pixels comes back exactly), then enlarged to 64."""
        side = x.shape[-1]
        if side > self.student_face and side % self.student_face == 0:
            x = F.avg_pool2d(x, side // self.student_face)
        return self._resized(self._resized(x, self.student_face), self.student_input)

    def student_parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The student's logits and its pooled conv5 features."""
        s = self.student
        maps = s.conv5(s.stage4(s.stage3(s.stage2(s.maxpool(s.conv1(self.student_view(x)))))))
        pooled = maps.mean(dim=(2, 3))
        return s.fc(pooled), pooled

    def face_features(self, x: torch.Tensor) -> torch.Tensor:
        """dlib's ``face_levels``, each mean-pooled, on the face enlarged to dlib's 150 px chip."""
        f = self.face
        chip = self._resized(self.face_input(x), DLIB_CHIP_SIZE).contiguous(memory_format=torch.channels_last)
        level2 = f.level2(f.level3(f.level4(f.stem(chip))))
        level1 = f.level1(level2)
        maps = {"level2": level2, "level1": level1, "level0": f.level0(level1)}
        return torch.cat([maps[level].mean(dim=(2, 3)) for level in self.face_levels], dim=1)

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The student's logits and the head's input features (what a retrain caches once to fit the head)."""
        logits, student_features = self.student_parts(x)
        return logits, torch.cat([self.face_features(x), student_features], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits, features = self.parts(x)
        return logits + self.head(features)


@register_model("shufflenet_v2_face_head")
def shufflenet_v2_face_head(num_classes: int = 7, **kwargs) -> StudentWithFaceHead:
    """The student plus dlib's frozen face features and a residual head (about 7M parameters, 1.3M of them the
    student's)."""
    return StudentWithFaceHead(num_classes=num_classes, **kwargs)
