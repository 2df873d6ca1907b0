"""Tiny DistributedDataParallel example for Trainyard (torch 1.13, CPU, gloo).

Launch with torchrun, e.g. on each of 2 nodes:
    torchrun --nnodes=2 --nproc_per_node=2 --node_rank=<r> \
        --master_addr=<node0> --master_port=29500 train.py --steps 40

Environment:
    SEED                      data/model seed (default 1)
    TRAINYARD_METRICS_FILE    if set, rank 0 appends {"step","total_steps","loss"} JSON lines
    TRAINYARD_CHECKPOINT_DIR  where rank 0 writes step-<n>/ checkpoints (with --checkpoint-every)
    TRAINYARD_RESUME_FROM     a checkpoint to resume from (set by Trainyard on a retry)

Checkpoints are written atomically (to a temporary directory, then renamed) and announced in the
metrics file as {"checkpoint": <path>, "step": n, "loss": ...}. Only rank 0 reads the checkpoint on
resume: DDP broadcasts rank 0's parameters to every rank, and the step is broadcast too.
"""

import argparse
import json
import os
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

IN_DIM = 16
HIDDEN = 32
BATCH = 64


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def save_checkpoint(root: str, step: int, model: nn.Module) -> str:
    """Write <root>/step-<n>/state.pt atomically: a reader never sees a half-written checkpoint."""
    final = os.path.join(root, f"step-{step}")
    tmp = os.path.join(root, f".tmp-step-{step}-{os.getpid()}")
    os.makedirs(tmp, exist_ok=True)
    torch.save({"model": model.state_dict(), "step": step}, os.path.join(tmp, "state.pt"))
    if os.path.exists(final):
        import shutil

        shutil.rmtree(final)
    os.rename(tmp, final)
    return final


def main() -> int:
    parser = argparse.ArgumentParser(description="Trainyard DDP MLP example")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--sleep", type=float, default=0.05, help="seconds to sleep per step")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--checkpoint-every", type=int, default=0, help="write a checkpoint every N steps (0: never)")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be >= 1")

    # Several ranks share a few CPU cores; one intra-op thread each avoids oversubscription.
    torch.set_num_threads(1)

    if "RANK" not in os.environ and "WORLD_SIZE" not in os.environ:
        # Not started by torchrun: run as a single-process group so `python3 train.py` works.
        print("train.py: no torchrun environment, running as a world of 1", file=sys.stderr, flush=True)
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
    dist.init_process_group(backend="gloo")  # env:// — MASTER_ADDR/PORT, RANK, WORLD_SIZE
    rank = dist.get_rank()
    world = dist.get_world_size()
    seed = int(os.environ.get("SEED", "1"))

    # Same model init on every rank (DDP also broadcasts rank 0's parameters).
    torch.manual_seed(seed)
    true_w = torch.randn(IN_DIM, 1)
    model = nn.Sequential(nn.Linear(IN_DIM, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 1))
    # Resume: rank 0 loads the checkpoint; DDP's constructor broadcasts its parameters to all ranks.
    start = torch.zeros(1, dtype=torch.int64)
    resume_from = os.environ.get("TRAINYARD_RESUME_FROM", "")
    if rank == 0 and resume_from:
        state = torch.load(os.path.join(resume_from, "state.pt"))
        model.load_state_dict(state["model"])
        start[0] = state["step"]
    dist.broadcast(start, src=0)
    first_step = int(start.item())
    if rank == 0 and resume_from:
        print(f"resumed from {resume_from} at step {first_step}", flush=True)
    ddp_model = DDP(model)
    opt = torch.optim.SGD(ddp_model.parameters(), lr=args.lr)
    loss_fn = nn.MSELoss()

    # Each rank draws its own shard of synthetic data: y = x·w + noise.
    gen = torch.Generator().manual_seed(seed * 10007 + rank)

    metrics_path = os.environ.get("TRAINYARD_METRICS_FILE") if rank == 0 else None
    metrics = open(metrics_path, "a", encoding="utf-8") if metrics_path else None
    if metrics is not None and resume_from:
        metrics.write(json.dumps({"resumed_from": resume_from, "resumed_at_step": first_step}) + "\n")
        metrics.flush()
    checkpoint_dir = os.environ.get("TRAINYARD_CHECKPOINT_DIR", "")

    try:
        for i in range(first_step, args.steps):
            x = torch.randn(BATCH, IN_DIM, generator=gen)
            y = x @ true_w + 0.1 * torch.randn(BATCH, 1, generator=gen)
            opt.zero_grad()
            loss = loss_fn(ddp_model(x), y)
            loss.backward()  # DDP all-reduces gradients here
            opt.step()

            # Report the mean loss over all ranks.
            mean_loss = loss.detach().clone()
            dist.all_reduce(mean_loss)
            mean_loss = mean_loss.item() / world

            if rank == 0:
                print(f"step {i + 1}/{args.steps} loss {mean_loss:.4f}", flush=True)
                if metrics is not None:
                    metrics.write(
                        json.dumps(
                            {"step": i + 1, "total_steps": args.steps, "loss": round(mean_loss, 6)},
                            separators=(",", ":"),
                        )
                        + "\n"
                    )
                    metrics.flush()
                step = i + 1
                if args.checkpoint_every > 0 and checkpoint_dir and step % args.checkpoint_every == 0 and step < args.steps:
                    path = save_checkpoint(checkpoint_dir, step, model)
                    print(f"checkpoint step {step} -> {path}", flush=True)
                    if metrics is not None:
                        metrics.write(json.dumps({"checkpoint": path, "step": step, "loss": round(mean_loss, 6)}) + "\n")
                        metrics.flush()
            if args.sleep > 0:
                time.sleep(args.sleep)
    finally:
        if metrics is not None:
            metrics.close()

    # Every rank contributes its rank: the sum is 0+1+…+(W-1) only if all ranks are one group.
    t = torch.tensor([rank], dtype=torch.int64)
    dist.all_reduce(t)
    print(f"rank {rank}/{world} allreduce={int(t.item())}", flush=True)

    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
