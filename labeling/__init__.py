"""The annotation store: images, label history, frozen splits, an active-learning queue, and exports.

One SQLite file (WAL, migrations applied on open) plus a content-addressed media folder beside it.
The retrain loop and the Gradio app use it through this API::

    from labeling import AnnotationStore

    store = AnnotationStore("tsnet-data/annotations.db")          # labels: the set recorded in the DB
    image_id = store.add_image(Path("me.jpg"), source="upload")   # SHA-256 id; re-adding is a no-op
    store.label(image_id, "happiness", annotator="ana")           # aliases ok; out-of-set labels refused
    store.undo_last("ana")                                        # withdraws ana's latest label
    store.current_label(image_id), store.votes(image_id)          # majority of annotators' latest votes
    store.split_of(image_id)                                      # fixed at the first label (6:2:2)
    store.next_to_label(10, classifier=student, annotator="ana")  # QueueItems, most uncertain first
    store.samples("train")                                        # (image_id, crop path, label index, soft target)
    store.import_paths(["faces.zip"], labels_from_folders=True)   # ImportReport; bad files skipped
    store.stats()                                                 # counts[split][class], annotators, agreement
    store.export_dataset()                                        # datasets.DatasetDict(train/validation/test)
    store.export_folder("out/")                                   # out/<split>/<label>/<id>.png
    store.push_dataset("me/fer-labels", token=..., endpoint=...)  # one Hub commit (HF_ENDPOINT honoured)

Faces: pass ``detect_faces(image) -> [(box, aligned_crop), ...]`` (e.g. a wrapper over core.faces) to
store each face's box and crop; without it the whole image, as grayscale (48-96 px square), is the crop.
The classifier for the queue is anything with ``.labels`` and ``.predict_crops(list[PIL.Image])``.
"""

from .records import FaceRecord, ImageRecord, ImportReport, LabelEvent, QueueItem, Sample
from .splits import SPLIT_RATIOS, SPLITS, choose_split
from .store import AnnotationStore, LabelNotInSetError, UnknownImageError

__all__ = [
    "AnnotationStore",
    "FaceRecord",
    "ImageRecord",
    "ImportReport",
    "LabelEvent",
    "LabelNotInSetError",
    "QueueItem",
    "SPLITS",
    "SPLIT_RATIOS",
    "Sample",
    "UnknownImageError",
    "choose_split",
]
