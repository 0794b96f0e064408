"""``python -m core.models.dlib_check``: how long reading dlib's network takes, and how close it is to dlib.

Prints the time to read and convert the weights (first load, then cached), then the largest difference
between the converted network's descriptor and dlib's ``compute_face_descriptor`` on the astronaut's face
chip, as shot and mirrored.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .dlib_resnet import DlibFaceResNet, dlib_input_tensor, dlib_model_path


def _chips() -> list[np.ndarray]:
    import dlib
    from skimage import data

    from core.faces.detector import landmark_model_path

    detector, predictor = dlib.get_frontal_face_detector(), dlib.shape_predictor(str(landmark_model_path()))
    chips = []
    for photo in (data.astronaut(), np.ascontiguousarray(data.astronaut()[:, ::-1])):
        boxes, scores, _ = detector.run(photo, 0, 0.0)
        chips.append(dlib.get_face_chip(photo, predictor(photo, boxes[int(np.argmax(scores))]), size=150))
    return chips


def main() -> None:
    path = dlib_model_path()
    started = time.perf_counter()
    model = DlibFaceResNet.from_dlib(path)
    first = time.perf_counter()
    DlibFaceResNet.from_dlib(path)
    again = time.perf_counter()
    print(
        f"{path.name} ({path.stat().st_size / 1e6:.1f} MB): first load (parse + convert) {first - started:.2f} s,"
        f" later loads in the process {again - first:.2f} s"
    )
    import dlib

    recognizer = dlib.face_recognition_model_v1(str(path))
    chips = _chips()
    with torch.no_grad():
        ours = model.eval()(dlib_input_tensor(np.stack(chips))).numpy()
    theirs = np.stack([np.asarray(recognizer.compute_face_descriptor(chip)) for chip in chips])
    print(f"max abs difference to dlib over {len(chips)} chips: {np.abs(ours - theirs).max():.2e}")


if __name__ == "__main__":
    main()
