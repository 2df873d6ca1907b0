"""JAX multi-process example for Trainyard's `command` framework (CPU, Gloo collectives).

Trainyard runs this once per node. Each node is one JAX process; `jax.distributed.initialize`
takes everything from the environment every node of a `command` job gets:

    coordinator_address = MASTER_ENDPOINT (rank 0's host:MASTER_PORT)
    num_processes       = NNODES
    process_id          = NODE_RANK

Each process holds GPUS_PER_NODE CPU devices. A data-parallel linear regression averages its
gradients over every device of every process (pmap + psum); each process prints
`process P/N devices=D allreduce=<sum of process ids>`, the proof that they formed one group.
"""

import argparse
import json
import os

per_node = int(os.environ.get("GPUS_PER_NODE", "1"))
# Before jax is imported: one CPU device per rank slot of this node.
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={per_node}".strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

# CPU collectives across processes need an implementation; Gloo ships with jaxlib.
jax.config.update("jax_cpu_collectives_implementation", "gloo")


def main() -> None:
    parser = argparse.ArgumentParser(description="Trainyard JAX example")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()

    jax.distributed.initialize(
        coordinator_address=os.environ["MASTER_ENDPOINT"],
        num_processes=int(os.environ["NNODES"]),
        process_id=int(os.environ["NODE_RANK"]),
    )
    pid, nproc = jax.process_index(), jax.process_count()
    local = jax.local_device_count()

    # All-reduce across every device of every process: each device contributes its process id.
    total = jax.pmap(lambda x: jax.lax.psum(x, "d"), axis_name="d")(jnp.full((local,), float(pid)))
    print(f"process {pid}/{nproc} devices={jax.device_count()} allreduce={int(total[0]) // local}", flush=True)

    # Data-parallel training of y = 3x + 1: every device gets its shard, gradients are averaged.
    key = jax.random.PRNGKey(pid)
    x = jax.random.normal(key, (local, 64))
    y = 3.0 * x + 1.0

    step = jax.pmap(sgd_step, axis_name="d")
    w = jnp.zeros((local, 2))
    metrics = os.environ.get("TRAINYARD_METRICS_FILE")
    loss = None
    for i in range(1, args.steps + 1):
        w, loss = step(w, x, y)
        if pid == 0 and metrics:
            with open(metrics, "a") as f:
                f.write(json.dumps({"step": i, "total_steps": args.steps, "loss": round(float(loss[0]), 6)}) + "\n")
    print(f"process {pid} w={[round(float(v), 3) for v in w[0]]} loss={float(loss[0]):.6f}", flush=True)
    jax.distributed.shutdown()


def sgd_step(w, xs, ys):
    """One SGD step on this device's shard, with the gradient averaged over all devices."""
    loss, g = jax.value_and_grad(lambda w: jnp.mean((w[0] * xs + w[1] - ys) ** 2))(w)
    return w - 0.3 * jax.lax.pmean(g, "d"), jax.lax.pmean(loss, "d")


if __name__ == "__main__":
    main()
