"""How fine and how faithful our Grad-CAM maps are, measured on a folder of face crops.

Two figures per model, both computed from the maps themselves:

- **effective grid**: the smallest k for which the least-squares best k x k grid, enlarged
  bilinearly to the map's size, reproduces the map with R^2 >= 0.97; the median over the faces.
  A map made from a k x k feature map comes out at k (the last layers of our models: 2), so
  "at least 8" means the map carries as much detail as an 8x8 grid of free values. The
  block-constant variant (``block_grid``: blocks replaced by their mean) is reported too; it
  needs about 3x more cells for the same smooth map (a 2x2 layer's map: 6).
- **deletion score**: how much more the predicted class's probability drops when the map's top
  20 % pixels are masked (filled with the crop's mean grey, or a blurred copy) than when 20 %
  random pixels are. The random pixels are the top 20 % of random maps with the same effective
  grid (``random_drop``: as clumped as the map's own mask); the score is the ratio of the mean
  drops over the faces, with a 95 % bootstrap interval. Independent random pixels
  (``deletion_score_scattered``) are reported too: scattered grey pixels hurt this model far more
  than one clump of the same area, so that figure rewards fragmented maps rather than faithful
  ones. Masks go on the grey face the classifier reads (at its ``face_size``: 48 px for the shipped
  student), and the probability is the product's own prediction (flip-TTA included), whatever
  input the explanation ran on.

``explain_bench`` runs the served recipe (:data:`core.explain.DEFAULT_RECIPE`) and, when asked,
every option of :data:`OPTIONS`; ``thread_cost`` compares serialising concurrent explanations on
the explainer's lock with building a fresh explainer per call.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageFilter

from .explain import DEFAULT_RECIPE, CamRecipe, GradCamExplainer

if TYPE_CHECKING:
    from .classifier import Classifier

__all__ = [
    "OPTIONS",
    "block_fit_r2",
    "grid_fit_r2",
    "deletion_drops",
    "effective_grid",
    "explain_bench",
    "load_crops",
    "measure_recipe",
    "thread_cost",
]

R2_THRESHOLD = 0.97
FILLS = ("mean", "blur")

# what explain_bench --options compares: target layer depth, fusion, an enlarged explaining forward
OPTIONS: tuple[CamRecipe, ...] = (
    CamRecipe("gradcam", (32,)),  # the last feature map, 2x2 at 64 px: what shipped before
    CamRecipe("gradcam", (16,)),
    CamRecipe("gradcam", (8,)),
    CamRecipe("hirescam", (8,)),
    CamRecipe("layercam", (8,)),
    CamRecipe("layercam", (8, 16)),
    CamRecipe("layercam", (8, 16, 32)),
    CamRecipe("gradcam", (32,), upsample=4),
    CamRecipe("gradcam", (16,), upsample=2),
    CamRecipe("layercam", (16,), upsample=2),
    CamRecipe("layercam", (16, 32), upsample=2),
    CamRecipe("layercam", (8, 16), upsample=2),
    CamRecipe("layercam", (8, 16, 32), upsample=2),
    CamRecipe("hirescam", (8,), flip=True),
    CamRecipe("layercam", (8,), flip=True),
)


def _bands(size: int, k: int) -> list[np.ndarray]:
    return np.array_split(np.arange(size), k)


def block_fit_r2(heatmap: np.ndarray, k: int) -> float:
    """R^2 of the best block-constant k x k approximation of ``heatmap`` (1.0 for a constant map)."""
    heat = np.asarray(heatmap, dtype=np.float64)
    total = float(((heat - heat.mean()) ** 2).sum())
    if total <= 1e-12:
        return 1.0
    fitted = np.empty_like(heat)
    for rows in _bands(heat.shape[0], k):
        for cols in _bands(heat.shape[1], k):
            fitted[np.ix_(rows, cols)] = heat[np.ix_(rows, cols)].mean()
    return 1.0 - float(((heat - fitted) ** 2).sum()) / total


def _bilinear_basis(size: int, k: int) -> np.ndarray:
    """(size, k) matrix that enlarges k samples to ``size`` pixels bilinearly (pixel centres, clamped edges)."""
    positions = np.clip((np.arange(size) + 0.5) * k / size - 0.5, 0, k - 1)
    return np.stack([np.interp(positions, np.arange(k), np.eye(k)[j]) for j in range(k)], axis=1)


def grid_fit_r2(heatmap: np.ndarray, k: int) -> float:
    """R^2 of the least-squares best k x k grid, enlarged bilinearly, against ``heatmap`` (separable fit)."""
    heat = np.asarray(heatmap, dtype=np.float64)
    total = float(((heat - heat.mean()) ** 2).sum())
    if total <= 1e-12:
        return 1.0
    rows, cols = _bilinear_basis(heat.shape[0], k), _bilinear_basis(heat.shape[1], k)
    grid = np.linalg.pinv(rows) @ heat @ np.linalg.pinv(cols).T
    return 1.0 - float(((heat - rows @ grid @ cols.T) ** 2).sum()) / total


def effective_grid(heatmap: np.ndarray, threshold: float = R2_THRESHOLD, fit: str = "bilinear") -> int:
    """The smallest k whose best k x k grid reproduces ``heatmap`` with R^2 >= ``threshold``.

    ``fit="bilinear"``: the grid enlarged bilinearly, as a k x k feature map becomes a heat map (a
    2x2 layer's map gives 2); ``fit="block"``: block-constant cells (the same map gives about 6).
    """
    score = grid_fit_r2 if fit == "bilinear" else block_fit_r2
    side = min(heatmap.shape)
    for k in range(1, side + 1):
        if score(heatmap, k) >= threshold:
            return k
    return side


def _masked(gray: np.ndarray, mask: np.ndarray, fill: str) -> Image.Image:
    if fill == "mean":
        replacement = np.full_like(gray, int(round(float(gray.mean()))))
    else:
        replacement = np.asarray(Image.fromarray(gray).filter(ImageFilter.GaussianBlur(4)), dtype=np.uint8)
    return Image.fromarray(np.where(mask, replacement, gray).astype(np.uint8))


def _top_mask(values: np.ndarray, count: int) -> np.ndarray:
    mask = np.zeros(values.size, dtype=bool)
    mask[np.argsort(-values.ravel(), kind="stable")[:count]] = True
    return mask.reshape(values.shape)


def deletion_drops(
    classifier: Classifier,
    crop: Image.Image,
    heatmap: np.ndarray,
    index: int,
    rng: np.random.Generator,
    fraction: float = 0.2,
    draws: int = 5,
    fill: str = "mean",
) -> dict[str, float]:
    """Drops of class ``index``'s probability when ``fraction`` of the face is masked, by how it is chosen.

    ``top``: the map's hottest pixels. ``random``: the hottest pixels of a random map with the same
    effective grid as this one (as clumped as the map's own mask). ``scattered``: independent random
    pixels. Both random figures are means over ``draws`` masks.
    """
    from .data.tensors import to_gray_array

    if fill not in FILLS:
        raise ValueError(f"unknown fill {fill!r}; choose one of {FILLS}")
    gray = to_gray_array(crop, classifier.config.face_size)
    heat = np.asarray(Image.fromarray(heatmap.astype(np.float32), mode="F").resize(gray.shape[::-1], Image.BILINEAR))
    count = int(round(fraction * gray.size))
    grain = effective_grid(heat)
    rows, cols = _bilinear_basis(gray.shape[0], grain), _bilinear_basis(gray.shape[1], grain)
    masks = [_top_mask(heat, count)]
    masks += [_top_mask(rows @ rng.random((grain, grain)) @ cols.T, count) for _ in range(draws)]
    masks += [_top_mask(rng.random(gray.shape), count) for _ in range(draws)]
    images = [Image.fromarray(gray)] + [_masked(gray, mask, fill) for mask in masks]
    probs = classifier.predict_crops(images)[:, index]
    drops = probs[0] - probs[1:]
    return {
        "top": float(drops[0]),
        "random": float(drops[1 : 1 + draws].mean()),
        "scattered": float(drops[1 + draws :].mean()),
    }


def load_crops(folder: str | Path, limit: int | None = None) -> list[Image.Image]:
    """The first ``limit`` readable images below ``folder`` (class subfolders or flat), sorted by path."""
    from .data.folder import list_images

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of face images")
    crops: list[Image.Image] = []
    for path in list_images(folder):
        if limit is not None and len(crops) >= limit:
            break
        try:
            with Image.open(path) as image:
                crops.append(image.copy())
        except (OSError, ValueError):
            continue  # unreadable files are skipped; the report counts the faces it used
    if not crops:
        raise ValueError(f"found no readable images in {folder}")
    return crops


def _ratio(top: list[float], baseline: list[float]) -> float:
    mean = float(np.mean(baseline))
    return float(np.mean(top)) / mean if mean > 0 else float("inf")


def _ratio_interval(top: list[float], baseline: list[float], seed: int, resamples: int = 1000) -> list[float]:
    """95 % bootstrap interval of the ratio of means over faces: how much the score could move with other faces."""
    rng = np.random.default_rng(seed)
    top_array, baseline_array = np.asarray(top), np.asarray(baseline)
    picks = rng.integers(0, len(top_array), (resamples, len(top_array)))
    ratios = top_array[picks].mean(axis=1) / np.maximum(baseline_array[picks].mean(axis=1), 1e-12)
    return [float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))]


def measure_recipe(
    classifier: Classifier,
    crops: Sequence[Image.Image],
    recipe: CamRecipe,
    fraction: float = 0.2,
    draws: int = 5,
    seed: int = 0,
    fill: str = "mean",
) -> dict[str, Any]:
    """Effective grid, deletion scores and time per explanation of one recipe over ``crops``."""
    explainer = GradCamExplainer(classifier, recipe)
    rng = np.random.default_rng(seed)
    grids, blocks, seconds = [], [], []
    drops: dict[str, list[float]] = {"top": [], "random": [], "scattered": []}
    for crop in crops:
        start = time.perf_counter()
        heat, label = explainer.crop_heatmap(crop)
        seconds.append(time.perf_counter() - start)
        grids.append(effective_grid(heat))
        blocks.append(effective_grid(heat, fit="block"))
        index = classifier.labels.index(label)
        for key, value in deletion_drops(classifier, crop, heat, index, rng, fraction, draws, fill).items():
            drops[key].append(value)
    return {
        "recipe": recipe.name,
        "layers": explainer.target_names,
        "layer_grid": max(explainer.target_sides),
        "effective_grid": float(statistics.median(grids)),
        "effective_grid_p10": float(np.percentile(grids, 10)),
        "share_at_least_8": float(np.mean(np.asarray(grids) >= 8)),
        "block_grid": float(statistics.median(blocks)),
        "deletion_score": _ratio(drops["top"], drops["random"]),
        "deletion_score_ci95": _ratio_interval(drops["top"], drops["random"], seed),
        "deletion_score_scattered": _ratio(drops["top"], drops["scattered"]),
        "top_drop": float(np.mean(drops["top"])),
        "random_drop": float(np.mean(drops["random"])),
        "scattered_drop": float(np.mean(drops["scattered"])),
        "ms_per_explanation": 1000.0 * float(np.mean(seconds)),
    }


def _as_classifier(model: str | Classifier) -> tuple[str, Classifier]:
    from .classifier import load_classifier

    if isinstance(model, str | Path):
        return str(model), load_classifier(model)
    return Path(model.source).name or model.config.architecture, model


def explain_bench(
    folder: str | Path,
    models: Sequence[str | Classifier] = ("student", "teacher"),
    limit: int | None = 150,
    options: bool | Sequence[CamRecipe] = False,
    fraction: float = 0.2,
    draws: int = 5,
    seed: int = 0,
    fill: str = "mean",
) -> dict[str, Any]:
    """Per model: the served recipe's effective grid and deletion score; per option too when ``options``.

    ``models`` are names or folders for ``load_classifier`` (or loaded classifiers); ``options=True``
    measures every recipe of :data:`OPTIONS`, a sequence measures those recipes.
    """
    if fill not in FILLS:
        raise ValueError(f"unknown fill {fill!r}; choose one of {FILLS}")
    crops = load_crops(folder, limit)
    recipes = list(OPTIONS) if options is True else list(options or [])
    report: dict[str, Any] = {
        "faces": len(crops),
        "recipe": DEFAULT_RECIPE.name,
        "fraction": fraction,
        "random_draws": draws,
        "fill": fill,
        "r2_threshold": R2_THRESHOLD,
        "models": {},
    }
    for model in models:
        name, classifier = _as_classifier(model)
        row = measure_recipe(classifier, crops, DEFAULT_RECIPE, fraction, draws, seed, fill)
        entry: dict[str, Any] = {"version": classifier.version, "architecture": classifier.config.architecture, **row}
        if recipes:
            entry["options"] = [measure_recipe(classifier, crops, r, fraction, draws, seed, fill) for r in recipes]
        report["models"][name] = entry
    return report


def thread_cost(classifier: Classifier, crops: Sequence[Image.Image], threads: int = 4) -> dict[str, float]:
    """ms per explanation: one thread; ``threads`` threads sharing the explainer's lock; a fresh explainer per call."""
    explainer = GradCamExplainer(classifier)
    explainer.crop_heatmap(crops[0])  # warm up

    def timed(function: Any) -> float:
        start = time.perf_counter()
        function()
        return 1000.0 * (time.perf_counter() - start) / len(crops)

    def serial() -> None:
        for crop in crops:
            explainer.crop_heatmap(crop)

    def shared_lock() -> None:
        workers = [
            threading.Thread(target=lambda part=crops[i::threads]: [explainer.crop_heatmap(c) for c in part])
            for i in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def fresh() -> None:
        for crop in crops:
            GradCamExplainer(classifier).crop_heatmap(crop)

    return {
        "serial_ms": timed(serial),
        f"lock_{threads}_threads_ms": timed(shared_lock),
        "fresh_explainer_per_call_ms": timed(fresh),
    }
