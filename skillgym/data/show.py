"""Contact sheet of one episode: a row per subtask performed, frames sampled along it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from skillgym import outputs
from skillgym.data.dataset import open_dataset

SOFTWARE = "skillgym"  # the PNG's Software field: a sheet skillgym wrote, which it may replace


def check_png_out(out: Path) -> None:
    """Refuse an ``--out`` that is not a ``.png`` path, or an existing file skillgym did not write."""
    from PIL import Image, UnidentifiedImageError

    if out.suffix.lower() != ".png":
        raise ValueError(f"--out {out} must name a .png file")
    if out.is_dir():
        raise FileExistsError(f"--out {out} is a folder; name a .png file")
    outputs.check_creatable(out)
    if out.exists():
        try:
            with Image.open(out) as image:
                ours = image.info.get("Software") == SOFTWARE
        except (OSError, UnidentifiedImageError):
            ours = False
        if not ours:
            raise FileExistsError(f"{out} exists and skillgym cannot tell it wrote it (sheets it writes say so in the "
                                  "PNG); it never replaces such a file: delete it if it is an old sheet, or pick "
                                  "another --out")


def label_runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Maximal runs ``(start, end, label)`` of equal labels, end exclusive."""
    if len(labels) == 0:
        return []
    cuts = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(labels)]])
    return [(int(s), int(e), int(labels[s])) for s, e in zip(starts, ends, strict=False)]


def contact_sheet(dataset_path: str | Path, episode: int, out: str | Path, frames_per_row: int = 8,
                  image_size: int | None = None) -> Path:
    """Write a PNG with one row per subtask of ``episode`` (or per time chunk if unlabelled)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    check_png_out(out)
    ds = open_dataset(dataset_path, image_size=image_size)
    ep = ds.episode(episode)
    if ep.frames is None:
        raise ValueError(f"{dataset_path} stores no frames to show; a kitchen dataset re-renders them "
                         "when given an image size")
    if ep.subtasks is not None:
        names = ds.subtask_names()
        rows = [(s, e, names[k] if k >= 0 else "transit") for s, e, k in label_runs(ep.subtasks)]
    else:
        bounds = np.linspace(0, ep.num_steps, 5).astype(int)
        rows = [(int(s), int(e), f"steps {s}-{e}") for s, e in zip(bounds[:-1], bounds[1:], strict=False)]
    fig, axes = plt.subplots(len(rows), frames_per_row, figsize=(1.6 * frames_per_row, 1.8 * len(rows)),
                             squeeze=False)
    for r, (start, end, name) in enumerate(rows):
        picks = np.linspace(start, end, frames_per_row).round().astype(int)
        for c, t in enumerate(picks):
            ax = axes[r, c]
            ax.imshow(ep.frames[t])
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"t={t}", fontsize=7)
        axes[r, 0].set_ylabel(f"{name}\n({end - start} steps)", fontsize=9)
    fig.suptitle(f"{Path(dataset_path).name} - episode {episode}: {ep.num_steps} steps, "
                 f"return {ep.rewards.sum():.0f}", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, metadata={"Software": SOFTWARE})
    plt.close(fig)
    return out
