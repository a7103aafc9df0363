"""Skill-model training speed: gradient steps per second at batch 128, window 30 (CPU).

Synthetic in-memory segments (no dataset on disk), the real model, batch sampler and AdamW step,
for the state and the pixel (64x64, framestack 4) variants (pixel priors with an open-loop decoder,
and with a closed-loop decoder that observes the state, as in the bundled pixel library). Also times one batch-of-1 open-loop
decode, which the RL env calls once per skill.

    python benchmarks/skill_training.py [--threads 1] [--steps 30] [--pixel-steps 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from skillgym.skills.config import LibraryConfig
from skillgym.skills.data import SegmentData, make_batch
from skillgym.skills.library import SkillLibrary
from skillgym.skills.model import SkillVAE


def synthetic_data(obs_kind: str, episodes: int = 20, steps: int = 250, image_size: int = 64) -> SegmentData:
    rng = np.random.default_rng(0)
    n_act = episodes * steps
    segments = []
    for e in range(episodes):
        start = 0
        while start < steps - 5:
            n = int(min(rng.integers(10, 60), steps - start))
            segments.append((e, start, start + n, int(rng.integers(8))))
            start += n
    frames = None
    if obs_kind == "pixels":
        frames = rng.integers(0, 255, (episodes * (steps + 1), image_size, image_size, 3), dtype=np.uint8)
    return SegmentData(
        actions=rng.uniform(-1, 1, (n_act, 9)).astype(np.float32),
        states=rng.standard_normal((episodes * (steps + 1), 59)).astype(np.float32),
        frames=frames,
        act_offset=np.arange(episodes) * steps,
        obs_offset=np.arange(episodes) * (steps + 1),
        segments=np.asarray(segments, np.int64),
        episodes=np.arange(episodes),
    )


def bench(obs_kind: str, decoder: str, steps: int, batch_size: int = 128, window: int = 30,
          decoder_obs: str = "prior") -> float:
    torch.manual_seed(0)
    config = LibraryConfig(num_skills=8, obs_kind=obs_kind, decoder=decoder, max_skill_steps=window,
                           decoder_obs=decoder_obs)
    model = SkillVAE(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = synthetic_data(obs_kind, episodes=20 if obs_kind == "state" else 8)
    rng = np.random.default_rng(0)

    def one_step() -> None:
        idx = rng.integers(0, data.num_segments, size=batch_size)
        batch = make_batch(data, idx, window, rng=rng, obs_kind=obs_kind, frame_stack=4,
                           closed_loop=decoder == "closed_loop", step_obs_kind=config.decoder_obs_kind)
        loss, _ = model.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    one_step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        one_step()
    return steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--pixel-steps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch 128, window 30, hidden 128")
    variants = [("state", "open_loop", "prior", args.steps), ("state", "closed_loop", "prior", args.steps),
                ("pixels", "open_loop", "prior", args.pixel_steps),
                ("pixels", "closed_loop", "state", args.pixel_steps)]  # the bundled pixel library
    for obs_kind, decoder, decoder_obs, steps in variants:
        sps = bench(obs_kind, decoder, steps, decoder_obs=decoder_obs)
        name = f"{obs_kind} priors, {decoder}" + (" on state" if decoder_obs == "state" else "")
        print(f"{name:34s}: {sps:7.2f} steps/s  (20k steps ~ {20000 / sps / 60:.0f} min)")
    lib = SkillLibrary.build(LibraryConfig(num_skills=8))
    skill, z = np.array([3]), np.zeros((1, 5), np.float32)
    for _ in range(20):
        lib.decode(skill, z)
    t0 = time.perf_counter()
    for _ in range(200):
        lib.decode(skill, z)
    print(f"decode batch 1 x 30 steps (open loop): {(time.perf_counter() - t0) / 200 * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
