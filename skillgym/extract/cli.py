"""``skillgym extract`` and ``skillgym download``, as argparse sub-commands.

The main ``skillgym`` parser wires them in::

    sub = parser.add_subparsers(dest="command", required=True)
    add_extract_parser(sub)
    add_download_parser(sub)
    args = parser.parse_args()
    args.func(args)

Each sub-parser stores its handler in ``func``; bad arguments end in ``parser.error(...)`` (one
line, exit status 2). This module also runs on its own:
``python -m skillgym.extract.cli extract data/kitchen --out runs/labels``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from skillgym.extract.clustering import DEFAULT_BATCH_SIZE, DEFAULT_FIT_SAMPLES
from skillgym.extract.segments import DEFAULT_KERNEL, DEFAULT_MIN_LENGTH


def add_extract_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``extract DATASET --encoder NAME --k 8 --seed S --out DIR ...``."""
    from skillgym.extract.encoders import available_encoders

    p = subparsers.add_parser(
        "extract", help="stage 1: label a dataset with skills (encoder + K-means + median filter)",
        description="Cluster embedding differences of a dataset into K skills and cut them into "
                    "segments. Writes labels.npz/json, labeler/, report/ and cache/ into --out.",
    )
    p.add_argument("dataset", help="Minari dataset folder or D4RL kitchen .hdf5")
    p.add_argument("--out", required=True, help="labels folder to write")
    p.add_argument("--encoder", default="auto",
                   help=f"one of {', '.join(available_encoders())}, or 'auto' (r3m-50 if its checkpoint "
                        "is on disk, else efficientnet-lite0)")
    p.add_argument("--k", type=int, default=8, help="number of skills (default 8, as in the paper)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", help="R3M checkpoint (model.pt) for the r3m-* encoders")
    p.add_argument("--min-length", type=int, default=DEFAULT_MIN_LENGTH,
                   help=f"drop segments shorter than this many steps (default {DEFAULT_MIN_LENGTH})")
    p.add_argument("--kernel", type=int, default=DEFAULT_KERNEL, help=f"median filter width, odd (default {DEFAULT_KERNEL})")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                   help="rows per K-means assignment batch (bounds memory)")
    p.add_argument("--encoder-batch-size", type=int, default=64, help="frames per encoder forward pass")
    p.add_argument("--fit-samples", type=int, default=DEFAULT_FIT_SAMPLES,
                   help=f"fit K-means on at most this many random steps (default {DEFAULT_FIT_SAMPLES})")
    p.add_argument("--image-size", type=int, help="re-render frames at this size for datasets without frames")
    p.add_argument("--cache-dtype", choices=["float32", "float16"], default="float32",
                   help="dtype of the on-disk embedding cache")
    p.add_argument("--no-report", action="store_true", help="skip the plots and summary.json")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=lambda args: run_extract(args, p))
    return p


def run_extract(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from skillgym.data.dataset import DatasetError, open_dataset
    from skillgym.extract.clustering import ClusteringError
    from skillgym.extract.encoders import (
        EncoderError,
        EncoderInputError,
        available_encoders,
        default_image_encoder,
        make_encoder,
    )
    from skillgym.extract.labeler import extract_skills
    from skillgym.extract.report import format_summary, summarize

    for name in ("k", "min_length", "batch_size", "fit_samples", "encoder_batch_size", "kernel"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.k < 2:
        parser.error(f"--k must be >= 2, got {args.k}")
    if args.kernel % 2 == 0:
        parser.error(f"--kernel must be odd, got {args.kernel}")
    if args.fit_samples < args.k:
        parser.error(f"--fit-samples ({args.fit_samples}) must be >= --k ({args.k})")
    encoder_name = default_image_encoder() if args.encoder == "auto" else args.encoder
    if encoder_name not in available_encoders():
        parser.error(f"unknown encoder {encoder_name!r}; choose one of {', '.join(available_encoders())}")
    if args.weights and not encoder_name.startswith("r3m-"):
        parser.error(f"--weights is for the r3m-* encoders, not {encoder_name}")
    kwargs: dict = {}
    if encoder_name.startswith("r3m-"):
        kwargs = {"weights": args.weights, "batch_size": args.encoder_batch_size}
    elif encoder_name == "efficientnet-lite0":
        kwargs = {"batch_size": args.encoder_batch_size}
    try:
        dataset = open_dataset(args.dataset, image_size=args.image_size)
        encoder = make_encoder(encoder_name, **kwargs)
        if encoder.input == "frames" and not dataset.has_frames and not dataset.frame_size:
            parser.error(f"{args.dataset} stores no frames; pass --image-size 64 or 128 to re-render them, "
                         "or use --encoder state/action")
        if args.k > dataset.total_steps:
            parser.error(f"--k {args.k} is larger than the number of steps in the dataset ({dataset.total_steps})")
        if not args.quiet:
            print(f"extracting skills from {args.dataset}: {len(dataset)} episodes, {dataset.total_steps} steps, "
                  f"encoder {encoder.name} ({encoder.dim}-d), K={args.k}, seed={args.seed}")
        labels = extract_skills(
            dataset, args.out, encoder=encoder, k=args.k, seed=args.seed, kernel=args.kernel,
            min_length=args.min_length, fit_samples=args.fit_samples, batch_size=args.batch_size,
            cache_dtype=args.cache_dtype, report=not args.no_report, progress=not args.quiet,
        )
    except (DatasetError, EncoderError, EncoderInputError, ClusteringError) as e:
        parser.error(str(e))
    out = Path(args.out)
    if not args.quiet:
        if args.no_report:
            print(format_summary(summarize(labels, dataset)))
        print(f"wrote {out / 'labels.npz'}, {out / 'labeler'}" + ("" if args.no_report else f", {out / 'report'}"))
    return 0


def add_download_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``download NAME [--url URL] [--dest PATH]``."""
    from skillgym.extract.download import DOWNLOADABLE, default_destination

    p = subparsers.add_parser(
        "download", help="fetch pretrained weights (R3M) into skillgym's cache",
        description=f"Download a checkpoint. Default destination: {default_destination('r3m-50').parent}/",
    )
    p.add_argument("name", help=f"one of {', '.join(sorted(DOWNLOADABLE))}")
    p.add_argument("--url", help="download from this URL instead (a mirror)")
    p.add_argument("--dest", help="write the file here instead of the cache")
    p.add_argument("--sha256", help="expected sha256 of the file")
    p.add_argument("--force", action="store_true", help="download again even if the file exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=lambda args: run_download(args, p))
    return p


def run_download(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from skillgym.extract.download import DOWNLOADABLE, DownloadError, download_weights

    if args.name not in DOWNLOADABLE:
        parser.error(f"unknown checkpoint {args.name!r}; choose one of {', '.join(sorted(DOWNLOADABLE))}")
    try:
        path = download_weights(args.name, url=args.url, dest=args.dest, sha256=args.sha256,
                                progress=not args.quiet, overwrite=args.force)
    except DownloadError as e:
        parser.error(str(e))
    print(f"{args.name}: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="skillgym", description="skillgym stage 1 commands")
    sub = parser.add_subparsers(dest="command", required=True)
    add_extract_parser(sub)
    add_download_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
