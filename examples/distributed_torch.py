"""Beyond one machine: a minidl model trained with PyTorch's DistributedDataParallel.

minidl is a one-machine engine. A model that outgrows it goes to PyTorch with
``minidl.interop.to_torch`` and trains there with PyTorch's own distributed training. This
script shows the path working, on this machine:

1. build a small CNN in minidl and export it with ``to_torch`` (float64);
2. start two processes (ranks) that talk over the loopback interface with the ``gloo``
   backend; each wraps its copy in ``torch.nn.parallel.DistributedDataParallel`` and
   trains on its own half of every batch. After each backward pass DDP averages the
   gradients of the two ranks (an all-reduce), so both take the same step;
3. train one process on the whole batches with the same optimizer, and check that both
   ranks end with identical weights, equal (to rounding) to the single process's.

With the loss a mean over the batch and halves of equal size, the average of the two
halves' gradients is the whole batch's gradient: data parallelism changes where the work
is done, not the result.

    python examples/distributed_torch.py [--steps 5] [--batch 8]

Exits with status 0 and prints ``OK`` when the checks hold (tests/nn/test_distributed.py
runs it).
"""

import argparse
import os
import socket
import sys
import tempfile

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import minidl
from minidl import interop, nn

WORLD = 2  # processes


def make_model():
    """The minidl model, the same in every process (seeded), exported to PyTorch."""
    minidl.seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)
    ).to(np.float64)
    return interop.to_torch(model)


def batches(steps, batch):
    """The same data in every process: ``steps`` batches of 8x8 images and labels."""
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.standard_normal((steps, batch, 1, 8, 8)))
    y = torch.from_numpy(rng.integers(0, 3, (steps, batch)))
    return x, y


def train(model, x, y, steps):
    """SGD with momentum on cross-entropy, one step per batch."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for t in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[t]), y[t]).backward()
        opt.step()


def rank_main(rank, port, steps, batch, out_dir):
    """One process: its half of every batch, gradients averaged with the other rank by DDP."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        model = torch.nn.parallel.DistributedDataParallel(make_model())
        x, y = batches(steps, batch)
        half = batch // WORLD
        mine = slice(rank * half, (rank + 1) * half)
        train(model, x[:, mine], y[:, mine], steps)
        torch.save(model.module.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8, help="the whole batch; each rank takes half")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(rank_main, args=(free_port(), args.steps, args.batch, out_dir), nprocs=WORLD, join=True)
        ranks = [torch.load(os.path.join(out_dir, f"rank{r}.pt")) for r in range(WORLD)]
    single = make_model()
    train(single, *batches(args.steps, args.batch), args.steps)
    identical = all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])
    gap = max(float((ranks[0][k] - v).abs().max()) for k, v in single.state_dict().items())
    moved = max(float((v - make_model().state_dict()[k]).abs().max()) for k, v in single.state_dict().items())
    print(f"ranks bit-identical: {identical}")
    print(f"max |DDP - one process| over all weights: {gap:.3g} (the weights moved by up to {moved:.3g})")
    ok = identical and gap < 1e-12 and moved > 1e-3
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
