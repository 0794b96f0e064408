"""`tsnet label import --faces` stores dlib's aligned face crop and box, not the whole photo."""

import subprocess
import sys

from PIL import Image
from skimage import data

from labeling import AnnotationStore


def test_import_with_faces_keeps_the_detected_box(tmp_path):
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(photo)
    db = tmp_path / "store.db"
    subprocess.run(
        [sys.executable, "-m", "tsnet", "label", "import", str(photo), "--db", str(db), "--faces"],
        check=True,
        capture_output=True,
    )
    with AnnotationStore(db) as store:
        record = store.image(store.image_ids()[0])
    assert record.face_count == 1
    x0, y0, x1, y1 = record.faces[0].box
    assert 150 < x0 < x1 < 300 and 20 < y0 < y1 < 200  # the astronaut's face, not the 512x512 frame
