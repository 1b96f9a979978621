"""tracejit's CPU backend against NumPy, JAX and PyTorch, side by side.

    python benchmarks/bench_cpu.py                  # everything
    python benchmarks/bench_cpu.py --only mlp,cnn   # some workloads
    python benchmarks/bench_cpu.py --first-call     # also cold/warm first calls

Every implementation of a workload runs in this process, interleaved
(round robin, ``--rounds`` rounds of ``--calls`` timed calls each, after
``--warm`` untimed ones, so that each block measures a runtime in steady
use, as a training loop uses it), so that load from other processes falls
on all of them alike; the table gives the median
and the minimum time per call and each median's ratio to tracejit's. JAX
and PyTorch are used when installed (``pip install -e .[bench]``). NumPy
eager means hand-written NumPy where a workload is small enough to write by
hand (chain, softmax cross-entropy, MLP), else tracejit's reference
interpreter, which runs the traced program one NumPy call per primitive.
The first-call table runs each tracejit workload in a new process with an
empty kernel cache (cold) and again with that cache (warm).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import tracejit  # noqa: E402
from tracejit.tiered import wait_all  # noqa: E402
import workloads as W  # noqa: E402


def optional(name):
    try:
        return __import__(name)
    except ImportError:
        return None


torch = jax = jnp = jlax = None


def load_peers():
    """Import JAX and PyTorch when installed (not in first-call processes,
    which time tracejit alone)."""
    global torch, jax, jnp, jlax
    torch, jax = optional("torch"), optional("jax")
    if jax is not None:
        import jax.numpy as jnp
        from jax import lax as jlax


def scipy_expit(x):
    return 1.0 / (1.0 + np.exp(-x))


# --- peers, per workload ----------------------------------------------------------------
# Each builder returns {implementation name: zero-argument callable}; the
# callables return something that has been computed (JAX results are
# blocked on).

def jax_ready(f):
    return lambda: jax.block_until_ready(f())


def hand_fused_chain():
    """The chain as one parallel Numba loop written by hand, with libm's
    tanh and exp (issue 16's reference: tracejit within 2x of it)."""
    import numba

    @numba.njit(parallel=True, cache=False)
    def run(x, out):
        for i in numba.prange(x.shape[0]):
            v = x[i]
            s = np.float32(1.0) / (np.float32(1.0) + np.exp(-v))
            out[i] = np.tanh(v * np.float32(0.7) - np.float32(0.3)) * s + np.float32(0.5) * v * v
        return out
    return run


def chain_impls(n):
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    tj = tracejit.jit(W.chain)
    neg = tracejit.jit(lambda x: -x)
    impls = {"tracejit": lambda: tj(x),
             "numpy": lambda: np.tanh(x * np.float32(0.7) - np.float32(0.3)) * scipy_expit(x)
             + np.float32(0.5) * x * x,
             "floor (tracejit -x: same bytes moved)": lambda: neg(x)}
    hand = hand_fused_chain()
    out = np.empty_like(x)
    impls["numba, hand-fused loop"] = lambda: hand(x, out)
    if jax is not None:
        jx = jnp.asarray(x)
        jf = jax.jit(lambda x: jnp.tanh(x * 0.7 - 0.3) * jax.nn.sigmoid(x) + 0.5 * x * x)
        impls["jax.jit"] = jax_ready(lambda: jf(jx))
    if torch is not None:
        tx = torch.from_numpy(x)

        def tf(x):
            return torch.tanh(x * 0.7 - 0.3) * torch.sigmoid(x) + 0.5 * x * x
        impls["torch eager"] = lambda: tf(tx)
        tc = torch.compile(tf)
        impls["torch.compile"] = lambda: tc(tx)
    return impls


def numpy_ce(logits, labels, grad):
    m = logits.max(axis=1, keepdims=True)
    z = logits - m
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    n = logits.shape[0]
    loss = -(z[np.arange(n), labels] - np.log(s[:, 0])).mean()
    if not grad:
        return loss
    g = e / s
    g[np.arange(n), labels] -= 1
    return loss, g / n


def ce_impls(grad):
    logits, labels = W.ce_data()
    tj = tracejit.jit(W.softmax_ce_grad if grad else W.softmax_ce)
    impls = {"tracejit": lambda: tj(logits, labels),
             "numpy": lambda: numpy_ce(logits, labels, grad)}
    if jax is not None:
        jl, jy = jnp.asarray(logits), jnp.asarray(labels)

        def jce(x, y):
            logp = jax.nn.log_softmax(x, axis=1)
            return -jnp.mean(logp[jnp.arange(x.shape[0]), y])
        jf = jax.jit(jax.value_and_grad(jce) if grad else jce)
        impls["jax.jit"] = jax_ready(lambda: jf(jl, jy))
    if torch is not None:
        tl, ty = torch.from_numpy(logits), torch.from_numpy(labels.astype(np.int64))

        def tce(x, y):
            if not grad:
                return torch.nn.functional.cross_entropy(x, y)
            x = x.detach().requires_grad_()
            loss = torch.nn.functional.cross_entropy(x, y)
            loss.backward()
            return loss, x.grad
        impls["torch eager"] = lambda: tce(tl, ty)
        tc = torch.compile(tce)
        impls["torch.compile"] = lambda: tc(tl, ty)
    return impls


def ce_forms_impls():
    """The four ways to write the cross-entropy, forward+backward: tracejit's
    (the first, advanced indexing, is "tracejit"), JAX's index and one-hot
    forms, PyTorch's cross_entropy."""
    logits, labels = W.ce_data()
    impls = {}
    for form, f in W.CE_FORMS.items():
        g = tracejit.jit(tracejit.value_and_grad(f))
        impls["tracejit" if form == "index" else f"tracejit {form}"] = \
            lambda g=g: g(logits, labels)
    if jax is not None:
        jl, jy = jnp.asarray(logits), jnp.asarray(labels)

        def by_index(x, y):
            return -jnp.mean(jax.nn.log_softmax(x, axis=1)[jnp.arange(x.shape[0]), y])

        def by_one_hot(x, y):
            return -jnp.mean(jnp.sum(jax.nn.log_softmax(x, axis=1)
                                     * jax.nn.one_hot(y, x.shape[1]), axis=1))
        for form, f in (("index", by_index), ("one_hot", by_one_hot)):
            jf = jax.jit(jax.value_and_grad(f))
            impls[f"jax.jit {form}"] = jax_ready(lambda jf=jf: jf(jl, jy))
    if torch is not None:
        impls.update({k: v for k, v in ce_impls(True).items() if k.startswith("torch")})
    return impls


def numpy_mlp_step(params, x, y, lr):
    hs, h = [x], x
    for i, p in enumerate(params):
        h = h @ p["w"] + p["b"]
        if i < len(params) - 1:
            h = np.maximum(h, 0)
        hs.append(h)
    loss, g = numpy_ce(h, y, True)
    new = [None] * len(params)
    for i in reversed(range(len(params))):
        p = params[i]
        new[i] = {"w": p["w"] - lr * (hs[i].T @ g), "b": p["b"] - lr * g.sum(axis=0)}
        if i:
            g = (g @ p["w"].T) * (hs[i] > 0)
    return new, loss


def mlp_impls():
    params, x, y = W.mlp_data()
    tj = tracejit.jit(W.mlp_step, donate_argnums=0)
    state = {"p": tracejit.tree_map(np.copy, params)}

    def run_tj():
        state["p"], loss = tj(state["p"], x, y, 0.01)
        return loss
    impls = {"tracejit": run_tj, "numpy": lambda: numpy_mlp_step(params, x, y, 0.01)}
    if jax is not None:
        jp = jax.tree_util.tree_map(jnp.asarray, params)
        jx, jy = jnp.asarray(x), jnp.asarray(y)

        def jloss(params, x, y):
            h = x
            for i, p in enumerate(params):
                h = h @ p["w"] + p["b"]
                if i < len(params) - 1:
                    h = jnp.maximum(h, 0)
            logp = jax.nn.log_softmax(h, axis=1)
            return -jnp.mean(logp[jnp.arange(x.shape[0]), y])

        @jax.jit
        def jstep(params, x, y):
            loss, g = jax.value_and_grad(jloss)(params, x, y)
            return jax.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, g), loss
        jstate = {"p": jp}

        def run_jax():
            jstate["p"], loss = jstep(jstate["p"], jx, jy)
            return jax.block_until_ready(loss)
        impls["jax.jit"] = run_jax
    if torch is not None:
        tp = [{k: torch.from_numpy(v.copy()).requires_grad_() for k, v in p.items()} for p in params]
        tx, ty = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

        def tstep(tp, x, y):
            h = x
            for i, p in enumerate(tp):
                h = h @ p["w"] + p["b"]
                if i < len(tp) - 1:
                    h = torch.relu(h)
            loss = torch.nn.functional.cross_entropy(h, y)
            grads = torch.autograd.grad(loss, [t for p in tp for t in p.values()])
            with torch.no_grad():
                for t, g in zip([t for p in tp for t in p.values()], grads):
                    t.sub_(0.01 * g)
            return loss
        impls["torch eager"] = lambda: tstep(tp, tx, ty)
        tc = torch.compile(tstep)
        impls["torch.compile"] = lambda: tc(tp, tx, ty)
    return impls


def cnn_impls():
    params, x, y = W.cnn_data()
    tj = tracejit.jit(W.cnn_step, donate_argnums=0)
    ref = tracejit.jit(W.cnn_step, backend="reference")
    state = {"p": tracejit.tree_map(np.copy, params)}

    def run_tj():
        state["p"], loss = tj(state["p"], x, y, 0.01)
        return loss
    impls = {"tracejit": run_tj, "numpy (reference interpreter)": lambda: ref(params, x, y, 0.01)}
    if jax is not None:
        jp = jax.tree_util.tree_map(jnp.asarray, params)
        jx, jy = jnp.asarray(x), jnp.asarray(y)

        def jloss(params, x, y):
            h = x
            for name in ("conv1", "conv2"):
                p = params[name]
                h = jlax.conv_general_dilated(h, p["w"], (1, 1), "SAME",
                                              dimension_numbers=("NHWC", "HWIO", "NHWC"))
                h = jnp.maximum(h + p["b"], 0)
                h = jlax.reduce_window(h, -jnp.inf, jlax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")
            h = h.reshape(h.shape[0], -1)
            for name in ("local3", "local4", "logits"):
                h = h @ params[name]["w"] + params[name]["b"]
                if name != "logits":
                    h = jnp.maximum(h, 0)
            logp = jax.nn.log_softmax(h, axis=1)
            return -jnp.mean(logp[jnp.arange(x.shape[0]), y])

        @jax.jit
        def jstep(params, x, y):
            loss, g = jax.value_and_grad(jloss)(params, x, y)
            return jax.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, g), loss
        jstate = {"p": jp}

        def run_jax():
            jstate["p"], loss = jstep(jstate["p"], jx, jy)
            return jax.block_until_ready(loss)
        impls["jax.jit"] = run_jax
    if torch is not None:
        F = torch.nn.functional
        tp = {}
        for name, p in params.items():
            w = p["w"] if p["w"].ndim == 2 else p["w"].transpose(3, 2, 0, 1)   # HWIO -> OIHW
            tp[name] = {"w": torch.from_numpy(np.ascontiguousarray(w)).requires_grad_(),
                        "b": torch.from_numpy(p["b"].copy()).requires_grad_()}
        tx = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        ty = torch.from_numpy(y.astype(np.int64))
        flat = [t for p in tp.values() for t in p.values()]

        def tstep(x, y):
            h = x
            for name in ("conv1", "conv2"):
                h = F.relu(F.conv2d(h, tp[name]["w"], tp[name]["b"], padding=2))
                h = F.max_pool2d(h, 3, 2, padding=1)
            h = h.flatten(1)
            for name in ("local3", "local4", "logits"):
                h = h @ tp[name]["w"] + tp[name]["b"]
                if name != "logits":
                    h = F.relu(h)
            loss = F.cross_entropy(h, y)
            grads = torch.autograd.grad(loss, flat)
            with torch.no_grad():
                for t, g in zip(flat, grads):
                    t.sub_(0.01 * g)
            return loss
        impls["torch eager"] = lambda: tstep(tx, ty)
    return impls


def lstm_impls():
    params, xs = W.lstm_data()
    tj = tracejit.jit(W.lstm_grad)
    ref = tracejit.jit(W.lstm_grad, backend="reference")
    impls = {"tracejit": lambda: tj(params, xs),
             "numpy (reference interpreter)": lambda: ref(params, xs)}
    hidden = params["wh"].shape[0]
    if jax is not None:
        jp = jax.tree_util.tree_map(jnp.asarray, params)
        jxs = jnp.asarray(xs)

        def jloss(params, xs):
            def cell(carry, x):
                h, c = carry
                z = x @ params["wx"] + h @ params["wh"] + params["b"]
                i, f, g, o = jnp.split(z, 4, axis=1)
                c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
                h = jax.nn.sigmoid(o) * jnp.tanh(c)
                return (h, c), h
            zeros = jnp.zeros((xs.shape[1], hidden), jnp.float32)
            _, hs = jlax.scan(cell, (zeros, zeros), xs)
            return jnp.mean(hs * hs)
        jf = jax.jit(jax.value_and_grad(jloss))
        impls["jax.jit (lax.scan)"] = jax_ready(lambda: jf(jp, jxs))
    if torch is not None:
        tp = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in params.items()}
        txs = torch.from_numpy(xs)

        def tloss():
            h = c = torch.zeros(xs.shape[1], hidden)
            hs = []
            for x in txs:
                z = x @ tp["wx"] + h @ tp["wh"] + tp["b"]
                i, f, g, o = z.chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                hs.append(h)
            loss = torch.stack(hs).pow(2).mean()
            return loss, torch.autograd.grad(loss, list(tp.values()))
        impls["torch eager"] = tloss
    return impls


WORKLOADS = {
    "chain": ("elementwise chain, 16M float32", lambda: chain_impls(1 << 24)),
    "ce_fwd": ("softmax cross-entropy 4096x1000, forward", lambda: ce_impls(False)),
    "ce_grad": ("softmax cross-entropy 4096x1000, forward+backward", lambda: ce_impls(True)),
    "ce_forms": ("softmax cross-entropy 4096x1000, forward+backward, four ways to write it",
                 ce_forms_impls),
    "mlp": ("MLP 784-300-100-10 SGD step, batch 256", mlp_impls),
    "cnn": ("CIFAR-10 CNN SGD step, batch 64, 24x24x3", cnn_impls),
    "lstm": ("LSTM h128 in64 batch64, 32 steps, forward+backward", lstm_impls),
}


# --- timing ---------------------------------------------------------------------------------

def measure(impls, rounds, calls, warm):
    first, times = {}, {k: [] for k in impls}
    for name, f in impls.items():
        t = time.perf_counter()
        f()
        first[name] = time.perf_counter() - t
    wait_all()   # with TRACEJIT_TIERED=1, time the compiled plans, not the interpreter
    for _ in range(rounds):
        for name, f in impls.items():
            # Untimed calls first: the previous runtime's worker threads may
            # still be spinning, and this one's may have gone idle.
            for _ in range(warm):
                f()
            for _ in range(calls):
                t = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - t)
    return first, times


def table(title, first, times):
    base = np.median(times["tracejit"])
    print(f"\n### {title}\n")
    print("| implementation | median ms | min ms | median / tracejit | first call s |")
    print("|---|---:|---:|---:|---:|")
    for name, ts in times.items():
        med = np.median(ts)
        print(f"| {name} | {1e3 * med:.2f} | {1e3 * min(ts):.2f} | {med / base:.2f} | "
              f"{first[name]:.2f} |")
    sys.stdout.flush()


FIRST_CALL = """
import json, sys, time
sys.path[:0] = {paths!r}
t0 = time.perf_counter()
import bench_cpu as B
impls = B.WORKLOADS[{name!r}][1]()
t1 = time.perf_counter()
impls["tracejit"]()
t2 = time.perf_counter()
from tracejit.backends.cpu import stats
print(json.dumps(dict(setup=t1 - t0, first=t2 - t1, numba="numba" in sys.modules, **stats())))
"""


def first_calls(names):
    print("\n### First call of tracejit (trace + fuse + compile or load), new process\n")
    print("| workload | cold s | kernels compiled | warm-cache s | kernels loaded | "
          "Numba imported (warm) |")
    print("|---|---:|---:|---:|---:|---|")
    for name in names:
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, TRACEJIT_CACHE_DIR=cache)
            script = FIRST_CALL.format(paths=[str(HERE.parent), str(HERE)], name=name)
            runs = []
            for _ in range(2):
                out = subprocess.run([sys.executable, "-c", script], env=env, check=True,
                                     capture_output=True, text=True).stdout
                runs.append(json.loads(out.strip().splitlines()[-1]))
        cold, warm = runs
        print(f"| {name} | {cold['first']:.2f} | {cold['compiled']} | {warm['first']:.2f} | "
              f"{warm['disk_hits']} | {warm['numba']} |")
        sys.stdout.flush()


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "numba": __import__("importlib.metadata").metadata.version("numba")}
    if jax is not None:
        versions["jax"] = jax.__version__
    if torch is not None:
        versions["torch"] = torch.__version__
    load = os.getloadavg() if hasattr(os, "getloadavg") else "?"
    return (f"{cpu}, {os.cpu_count()} CPUs, load average {load}; "
            + ", ".join(f"{k} {v}" for k, v in versions.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=10, help="timed calls per block")
    ap.add_argument("--warm", type=int, default=5, help="untimed calls before each block")
    ap.add_argument("--first-call", action="store_true", help="also time first calls")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workload {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    load_peers()
    print(f"machine: {machine()}")
    for name in names:
        title, build = WORKLOADS[name]
        first, times = measure(build(), args.rounds, args.calls, args.warm)
        table(title, first, times)
    if args.first_call:
        first_calls(names)


if __name__ == "__main__":
    main()
