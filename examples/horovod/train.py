"""Tiny Horovod (PyTorch, Gloo) example for Trainyard, fixed-size or Horovod Elastic.

Trainyard runs it under horovodrun on the job's head node, which starts every rank over SSH with a
key made for this attempt only:
    horovodrun -np 4 --hostfile <attempt dir>/hostfile --gloo …            (fixed size)
    horovodrun -np 4 --min-np 2 --max-np 4 --host-discovery-script …       (--elastic)

Each rank fits y = x·w + b on its own synthetic shard; hvd.DistributedOptimizer all-reduces the
gradients. With --elastic the loop runs under hvd.elastic.run and commits its state every step, so
when a node leaves (its host disappears from discovery) the remaining ranks reset and go on.

Environment:
    SEED                    data seed (default 1)
    TRAINYARD_METRICS_FILE  if set, rank 0 appends {"step","total_steps","loss"} JSON lines
"""

import argparse
import json
import os
import pwd
import sys
import time

import horovod.torch as hvd
import torch
import torch.nn as nn

IN_DIM = 8
BATCH = 32


def main() -> int:
    parser = argparse.ArgumentParser(description="Trainyard Horovod example")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds to sleep per step")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--elastic", action="store_true")
    args = parser.parse_args()

    torch.set_num_threads(1)
    hvd.init()
    seed = int(os.environ.get("SEED", "1"))
    torch.manual_seed(seed)
    true_w = torch.randn(IN_DIM, 1)
    model = nn.Linear(IN_DIM, 1)
    opt = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=args.lr), named_parameters=model.named_parameters())
    loss_fn = nn.MSELoss()
    metrics_path = os.environ.get("TRAINYARD_METRICS_FILE")

    def one_step(step: int) -> float:
        gen = torch.Generator().manual_seed(seed * 10007 + hvd.rank() * 101 + step)
        x = torch.randn(BATCH, IN_DIM, generator=gen)
        y = x @ true_w + 0.5
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        mean = hvd.allreduce(loss.detach(), name="loss").item()
        if hvd.rank() == 0:
            print(f"step {step + 1}/{args.steps} loss {mean:.4f} size {hvd.size()}", flush=True)
            if metrics_path:
                with open(metrics_path, "a", encoding="utf-8") as m:
                    m.write(json.dumps({"step": step + 1, "total_steps": args.steps, "loss": round(mean, 6)}) + "\n")
        if args.sleep > 0:
            time.sleep(args.sleep)
        return mean

    if args.elastic:
        state = hvd.elastic.TorchState(model=model, optimizer=opt, step=0)

        def on_reset():
            print(f"rank {hvd.rank()}: elastic reset, world size now {hvd.size()}", flush=True)

        state.register_reset_callbacks([on_reset])

        @hvd.elastic.run
        def train(state):
            while state.step < args.steps:
                one_step(state.step)
                state.step += 1
                state.commit()

        train(state)
    else:
        hvd.broadcast_parameters(model.state_dict(), root_rank=0)
        for step in range(args.steps):
            one_step(step)

    # Every rank contributes its rank: the sum is 0+1+…+(N-1) only if all ranks are one group.
    total = int(hvd.allreduce(torch.tensor([hvd.rank()], dtype=torch.float64), op=hvd.Sum, name="ranks").item())
    node = os.environ.get("TRAINYARD_NODE_RANK", "?")
    user = pwd.getpwuid(os.getuid()).pw_name
    print(f"rank {hvd.rank()}/{hvd.size()} node {node} user {user} allreduce={total}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
