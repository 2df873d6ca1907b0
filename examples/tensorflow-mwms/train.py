"""Tiny TensorFlow MultiWorkerMirroredStrategy example for Trainyard (tensorflow-cpu, custom loop).

Trainyard starts this script once per node with TF_CONFIG set: the same `cluster` on every node and
this node's `task`. A custom training loop (no Keras `fit`, which Keras 3 does not run under
MultiWorkerMirroredStrategy) fits y = x·w + b on synthetic data, all-reducing gradients across
the workers.

Environment:
    TF_CONFIG               set by Trainyard (or by hand: see the README of this folder)
    SEED                    data seed (default 1)
    TRAINYARD_METRICS_FILE  if set, the first task appends {"step","total_steps","loss"} JSON lines
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

IN_DIM = 8
BATCH = 32


def main() -> int:
    parser = argparse.ArgumentParser(description="Trainyard TF MWMS example")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()

    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = tf_config.get("task", {"type": "worker", "index": 0})
    is_first = (task["type"] == "chief") or (task["type"] == "worker" and task["index"] == 0 and "chief" not in tf_config.get("cluster", {}))
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    world = strategy.num_replicas_in_sync
    seed = int(os.environ.get("SEED", "1"))

    tf.random.set_seed(seed)
    true_w = tf.random.normal([IN_DIM, 1], seed=seed)
    with strategy.scope():
        # MEAN aggregation: every replica assigns the same (all-reduced) update.
        w = tf.Variable(tf.zeros([IN_DIM, 1]), aggregation=tf.VariableAggregation.MEAN)
        b = tf.Variable(tf.zeros([1]), aggregation=tf.VariableAggregation.MEAN)

    def replica_step(step):
        ctx = tf.distribute.get_replica_context()
        rid = ctx.replica_id_in_sync_group
        x = tf.random.stateless_normal([BATCH, IN_DIM], seed=[seed * 1000 + rid, step])
        y = tf.matmul(x, true_w) + 0.5
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(tf.matmul(x, w) + b - y))
        gw, gb = tape.gradient(loss, [w, b])
        gw, gb, mean_loss = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, [gw, gb, loss])
        w.assign_sub(args.lr * gw)
        b.assign_sub(args.lr * gb)
        return mean_loss

    @tf.function
    def train_step(step):
        per_replica = strategy.run(replica_step, args=(step,))
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None)

    metrics_path = os.environ.get("TRAINYARD_METRICS_FILE") if is_first else None
    metrics = open(metrics_path, "a", encoding="utf-8") if metrics_path else None
    try:
        for i in range(args.steps):
            loss = float(train_step(tf.constant(i, dtype=tf.int32)))
            if is_first:
                print(f"step {i + 1}/{args.steps} loss {loss:.4f}", flush=True)
                if metrics is not None:
                    metrics.write(json.dumps({"step": i + 1, "total_steps": args.steps, "loss": round(loss, 6)}) + "\n")
                    metrics.flush()
    finally:
        if metrics is not None:
            metrics.close()

    # Every replica contributes its id: the sum is 0+1+…+(W-1) only if all workers are one group.
    @tf.function
    def rank_sum():
        def fn():
            return tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int64)

        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(fn), axis=None)

    total = int(rank_sum())
    print(f"task {task['type']}:{task['index']} replicas={world} allreduce={total}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
