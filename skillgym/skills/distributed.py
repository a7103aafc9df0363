"""Data-parallel skill training: ``torchrun --nproc-per-node N -m skillgym.skills.train LABELS --out DIR``.

torchrun starts N copies of ``skillgym train-skills`` and tells each its rank in the environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``). Each process joins a gloo process group (skill
training runs on CPU), wraps the model in ``DistributedDataParallel`` and, at every step, draws
the same global batch of ``batch_size`` windows (segments, window offsets and noise) from the
shared seed, then trains on its own ``batch_size / N`` rows of it: the processes see disjoint
shards of one batch, as with a distributed sampler, and DDP averages their gradients. The
training loop samples windows with replacement at every step rather than in epochs, so the
sharding is of each step's batch, and a single process under torchrun trains exactly as a plain
run does. Rank 0 alone writes checkpoints, logs and the library; the others wait for it.

Outside torchrun, :func:`join_torchrun` returns a single rank and nothing changes.

Example:
    >>> ranks = join_torchrun()            # a plain process: rank 0 of 1
    >>> ranks.is_main, ranks.shard(128)
    (True, slice(0, 128, None))
    >>> Ranks(rank=1, world_size=4).shard(128)
    slice(32, 64, None)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes; ``launched`` when torchrun started it."""

    rank: int = 0
    world_size: int = 1
    launched: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints, logs and the library."""
        return self.rank == 0

    def shard(self, batch_size: int) -> slice:
        """This rank's rows of a global batch of ``batch_size`` rows."""
        if batch_size % self.world_size:
            raise ValueError(f"batch_size {batch_size} must be a multiple of the {self.world_size} processes")
        per_rank = batch_size // self.world_size
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)

    def data_parallel(self, model: nn.Module) -> nn.Module:
        """``model`` in DistributedDataParallel under torchrun (it averages the gradients), else ``model``."""
        return DistributedDataParallel(model) if self.launched else model

    def wait(self) -> None:
        """Under torchrun: return when every rank has called this (a barrier)."""
        if self.launched:
            dist.barrier()

    def leave(self) -> None:
        """Under torchrun: leave the process group :func:`join_torchrun` joined."""
        if self.launched and dist.is_initialized():
            dist.destroy_process_group()


def join_torchrun() -> Ranks:
    """Join the process group when torchrun launched this process, else a single rank (see the module docstring)."""
    if not all(name in os.environ for name in TORCHRUN_VARIABLES):
        return Ranks()
    if not dist.is_initialized():
        # gloo: the model and batches are CPU tensors (nccl needs them on GPUs).
        dist.init_process_group(backend="gloo")
    return Ranks(rank=dist.get_rank(), world_size=dist.get_world_size(), launched=True)
