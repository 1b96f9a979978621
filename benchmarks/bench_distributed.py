"""Data-parallel training steps at 1 and 2 processes (MPI), and a model of
where communication stops paying at 8 and 64 processes.

    python benchmarks/bench_distributed.py            # measure, print tables
    python benchmarks/bench_distributed.py --quick    # fewer steps

For the MLP (the mnist recipe's 64-300-100-10) and the CNN (the CIFAR-10
tutorial model at width 0.25, 24x24x3 images) it runs
``make_train_step(..., distributed=True)`` under ``mpiexec -n P`` for
P = 1, 2 with ``TRACEJIT_NUM_THREADS=1`` per process (plus one process with
2 threads, the natural competitor on a 2-core machine) at a fixed per-rank
batch, and reports the throughput, the time share of the allreduce, and the
bytes each rank contributes per step.  It also times the one-process step
at two batch sizes to fit ``compute(b) = a + c*b``, and models a ring
allreduce (``2 (P-1)/P * bytes / bandwidth + 2 (P-1) * latency``) at 8 and
64 processes on 10 and 100 Gbit/s links.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

LATENCY = 5e-6          # seconds per message hop assumed by the model
PER_RANK_BATCH = {"mlp": 32, "cnn": 16}


def _setup(name, batch):
    from tracejit import nn, optim
    from tracejit.nn.models import cifar10_cnn
    rng = np.random.default_rng(0)
    if name == "mlp":
        model = nn.Sequential([nn.Dense(300, "relu"), nn.Dense(100, "relu"), nn.Dense(10)])
        x = rng.normal(size=(batch, 64)).astype(np.float32)
        optimizer = optim.adam(1e-3)
    else:
        model = cifar10_cnn(0.25)
        x = rng.normal(size=(batch, 24, 24, 3)).astype(np.float32)
        optimizer = optim.sgd(0.01)
    y = rng.integers(0, 10, size=batch).astype(np.int32)
    return model, optimizer, x, y


def worker(name, batch, steps, warm):
    """Under mpiexec: time ``steps`` distributed steps; rank 0 prints JSON."""
    import tracejit.distributed as dist
    from tracejit import tree_leaves, tree_map
    from tracejit.train import init_train_state, make_train_step
    world = dist.init()
    model, optimizer, x, y = _setup(name, batch)
    state = init_train_state(model, optimizer, x.shape[1:], seed=0)
    step = make_train_step(model, optimizer, distributed=True)
    for _ in range(warm):
        state, metrics = step(state, x, y)
    float(metrics["loss"])
    dist.barrier()
    dist.reset_stats()
    step.reset_timings()
    times, phase_lists = [], {k: [] for k in step.seconds}
    for _ in range(steps):
        before = dict(step.seconds)
        started = time.perf_counter()
        state, metrics = step(state, x, y)
        float(metrics["loss"])
        times.append(time.perf_counter() - started)
        for k in phase_lists:
            phase_lists[k].append(step.seconds[k] - before[k])
    stats = dist.stats()
    phases = {k: float(np.median(v)) for k, v in phase_lists.items()}
    grads = tree_map(np.asarray, state.params)
    grad_bytes = sum(v.nbytes for v in tree_leaves(grads))
    alone = []
    for _ in range(30 if world.size > 1 else 0):   # the transfer alone, ranks in step
        dist.barrier()
        started = time.perf_counter()
        dist.allreduce(grads)
        alone.append(time.perf_counter() - started)
    record = {"model": name, "processes": world.size, "batch_per_rank": batch,
              "step_median_s": float(np.median(times)), "step_min_s": float(np.min(times)),
              "step_mean_s": float(np.mean(times)),
              "comm_s_per_step": stats["seconds"] / steps,
              "bytes_per_step": stats["bytes"] / steps if world.size > 1 else 0,
              "grad_bytes": grad_bytes, "phases": phases,
              "allreduce_alone_s": float(np.median(alone)) if alone else 0.0}
    allrec = dist.allgather_object(record)
    if world.rank == 0:
        worst = max(allrec, key=lambda r: r["step_median_s"])
        record["step_median_s"] = worst["step_median_s"]
        print("RESULT " + json.dumps(record), flush=True)


def _mpiexec():
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else "mpiexec"


def launch(name, processes, batch, steps, warm, threads=1):
    env = dict(os.environ, TRACEJIT_NUM_THREADS=str(threads), TRACEJIT_BACKEND="cpu",
               PYTHONPATH=str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    command = [_mpiexec(), "-n", str(processes), sys.executable, __file__, "--worker", name,
               "--batch", str(batch), "--steps", str(steps), "--warm", str(warm)]
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)
    if out.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{out.stderr}")
    line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def ring_seconds(nbytes, processes, bandwidth_bits):
    return (2 * (processes - 1) / processes * nbytes * 8 / bandwidth_bits
            + 2 * (processes - 1) * LATENCY)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warm", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", help="also write the records to this file")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.batch, args.steps, args.warm)
    rows, fits = [], {}
    for name in ("mlp", "cnn"):
        b = PER_RANK_BATCH[name]
        steps = {"mlp": 200, "cnn": 30}[name] // (4 if args.quick else 1)
        one = launch(name, 1, b, steps, args.warm)
        two = launch(name, 2, b, steps, args.warm)
        threads = launch(name, 1, b, steps, args.warm, threads=2)
        big = launch(name, 1, 4 * b, max(steps // 2, 5), args.warm)
        per_example = min(one["step_median_s"] / b, big["step_median_s"] / (4 * b))
        fits[name] = {"per_example": per_example, "bytes": one["grad_bytes"],
                      "step_b": one["step_median_s"], "step_4b": big["step_median_s"]}
        print(f"{name}: 1-process step {one['step_median_s'] * 1e3:.2f} ms at b={b}, "
              f"{big['step_median_s'] * 1e3:.2f} ms at b={4 * b}; model uses "
              f"{per_example * 1e6:.1f} us per example", flush=True)
        for label, r in (("1 process", one), ("1 process, 2 threads", threads),
                         ("2 processes", two)):
            rate = r["processes"] * r["batch_per_rank"] / r["step_median_s"]
            ph = r["phases"]
            total = max(sum(ph.values()), 1e-12)
            rows.append((name, label, r["batch_per_rank"], r["step_median_s"] * 1e3,
                         r["step_min_s"] * 1e3, rate,
                         ph["gradients"] * 1e3, ph["allreduce"] * 1e3, ph["update"] * 1e3,
                         100 * ph["allreduce"] / total, r["allreduce_alone_s"] * 1e3,
                         r["bytes_per_step"]))
    print("| model | run | batch/rank | step ms (median) | step ms (min) | examples/s | "
          "gradients ms | "
          "allreduce ms (with wait) | update ms | comm share | allreduce alone ms | "
          "bytes/step/rank |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, label, b, ms, low, rate, g, a, u, share, alone, nbytes in rows:
        print(f"| {name} | {label} | {b} | {ms:.2f} | {low:.2f} | {rate:,.0f} | {g:.2f} | "
              f"{a:.2f} | "
              f"{u:.2f} | {share:.0f}% | {alone:.3f} | {nbytes:,.0f} |")
    print()
    print("Model (ring allreduce, latency 5 us/hop; compute = b x the measured time per "
          "example of the 1-process step, no fixed cost):")
    print()
    print("| model | grad MB | P | link | allreduce ms | compute ms at b/rank | comm share | "
          "comm > compute below b/rank |")
    print("|---|---|---|---|---|---|---|---|")
    for name, f in fits.items():
        b = PER_RANK_BATCH[name]
        for p in (8, 64):
            for gbit in (10, 100):
                comm = ring_seconds(f["bytes"], p, gbit * 1e9)
                compute = f["per_example"] * b
                cross_text = f"{comm / f['per_example']:,.1f}"
                print(f"| {name} | {f['bytes'] / 1e6:.2f} | {p} | {gbit} Gbit/s | "
                      f"{comm * 1e3:.3f} | {compute * 1e3:.2f} (b={b}) | "
                      f"{100 * comm / (comm + compute):.0f}% | {cross_text} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "fits": fits}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
