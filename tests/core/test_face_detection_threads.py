"""Face detection and landmarks called from many threads at once: same answers as one at a time, no crash."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# Run in a child process: a thread-safety bug in native code kills the process (SIGSEGV, malloc abort),
# which must fail this test rather than take pytest down with it.
_SCRIPT = textwrap.dedent(
    """
    import threading

    import numpy as np
    from PIL import Image
    from skimage import data

    from core.faces import FaceDetector

    def canvas():
        face = Image.fromarray(data.astronaut())
        photo = Image.new("RGB", (1920, 1080), (128, 128, 128))
        for i, side in enumerate((520, 400, 300, 240)):
            photo.paste(face.resize((side, side)), (40 + 470 * i, 60 + 90 * (i % 2)))
        return np.asarray(photo)

    def summary(faces):
        return [(f.box, f.score, f.landmarks, f.aligned_crop.tobytes()) for f in faces]

    pixels = canvas()
    detector = FaceDetector()
    expected = summary(detector.detect_array(pixels))
    assert expected, "no face found"
    results, errors = [], []
    start = threading.Barrier(4)

    def work():
        try:
            start.wait()
            for _ in range(3):
                results.append(summary(detector.detect_array(pixels)))
                results.append(summary(FaceDetector().detect_array(pixels)))
        except Exception as error:
            errors.append(repr(error))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(results) == 24 and all(result == expected for result in results)
    print("identical", len(results))
    """
)


def test_concurrent_detection_matches_sequential_and_the_process_survives():
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", _SCRIPT], cwd=root, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"exit status {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    assert "identical 24" in done.stdout
