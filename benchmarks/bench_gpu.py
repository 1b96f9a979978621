"""tracejit's CUDA backend against PyTorch (eager, torch.compile) and CuPy, side by side on one GPU.

    python benchmarks/bench_gpu.py                    # full sizes, on a GPU
    python benchmarks/bench_gpu.py --quick            # smaller sizes
    python benchmarks/bench_gpu.py --only chain,cnn   # some workloads
    python benchmarks/bench_gpu.py --simulator        # tiny sizes in Numba's CUDA simulator

Every implementation of a workload runs in this process, interleaved
(round robin, ``--rounds`` rounds of ``--calls`` back-to-back calls after
``--warm`` untimed ones), so load from elsewhere falls on all alike. A
block's time per call is its wall time, ending with a device
synchronization, divided by ``--calls``: calls queue up as in a training
loop, so a time is the larger of the GPU time and the host's launch time.
The tables give the median and the minimum over rounds and each median's
ratio to tracejit's; memory-bound workloads also give the bandwidth their
minimal traffic implies and its share of the device's measured
device-to-device copy bandwidth. ``overhead`` times tiny jitted steps: the
per-step cost of launching.

tracejit runs ``tracejit.jit(..., backend="cuda")`` on inputs placed on the
GPU once with ``tracejit.device_put``. Peers are used where installed:
PyTorch (eager; torch.compile) and CuPy (hand-written array code, and
``cupy.fuse`` for the elementwise chain). ``--simulator`` proves the code
path on a machine without a GPU; its times mean nothing.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

SIZES = {
    "full": dict(chain=1 << 26, ce=(16384, 1000), mlp=(4096, (784, 300, 100, 10)),
                 cnn=(128, 24, (64, 384, 192)), copy=1 << 26),
    "quick": dict(chain=1 << 22, ce=(2048, 1000), mlp=(512, (784, 300, 100, 10)),
                  cnn=(32, 24, (64, 384, 192)), copy=1 << 22),
    "tiny": dict(chain=1 << 12, ce=(32, 10), mlp=(8, (16, 8, 4, 3)),
                 cnn=(2, 8, (4, 8, 6)), copy=1 << 12),
}


def optional(name):
    try:
        return __import__(name)
    except ImportError:
        return None


def gpu_or_exit(simulator: bool):
    """Switch the simulator on when asked (before numba.cuda is imported);
    otherwise exit with a message unless numba-cuda finds a GPU."""
    if simulator:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
        return
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        sys.exit("bench_gpu: NUMBA_ENABLE_CUDASIM is set; pass --simulator to run the tiny "
                 "sizes in the simulator, or unset it to benchmark the GPU")
    try:
        from numba import cuda
        found = cuda.is_available()
    except Exception as e:      # numba-cuda missing or broken, no driver
        found, why = False, f"{type(e).__name__}: {e}"
    else:
        why = "numba-cuda finds no CUDA device"
    if not found:
        sys.exit(f"bench_gpu: no CUDA GPU ({why}). Run it on a machine with an NVIDIA GPU, or "
                 f"pass --simulator to run tiny sizes in Numba's CUDA simulator (times meaningless).")


# Imported after gpu_or_exit (the simulator is fixed when numba.cuda is imported).
tracejit = W = cuda = torch = cupy = None


def load(simulator: bool):
    global tracejit, W, cuda, torch, cupy
    import tracejit as _tj
    import workloads as _w
    from numba import cuda as _cuda
    tracejit, W, cuda = _tj, _w, _cuda
    if not simulator:            # peers would run on the real GPU, beside a simulated tracejit
        torch = optional("torch")
        if torch is not None and not torch.cuda.is_available():
            torch = None
        cupy = optional("cupy")


# --- synchronization: each implementation waits for its own work ---------------------------

def tj_ready(result):
    for leaf in tracejit.tree_leaves(result):
        leaf.block_until_ready()         # a device synchronization: one leaf is enough
        return


def torch_ready(_):
    torch.cuda.synchronize()


def cupy_ready(_):
    cupy.cuda.get_current_stream().synchronize()


def tj_jit(fn, **kw):
    return tracejit.jit(fn, backend="cuda", **kw)


def put(x):
    return tracejit.device_put(x)


# --- workloads: each returns {name: (call, ready)} ------------------------------------------

def chain_impls(n):
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    tj, xd = tj_jit(W.chain), put(x)
    impls = {"tracejit": (lambda: tj(xd), tj_ready)}

    def chain_xp(xp, x):
        return xp.tanh(x * 0.7 - 0.3) * (1 / (1 + xp.exp(-x))) + 0.5 * x * x
    if torch is not None:
        tx = torch.from_numpy(x).cuda()

        def tf(x):
            return torch.tanh(x * 0.7 - 0.3) * torch.sigmoid(x) + 0.5 * x * x
        impls["torch eager"] = (lambda: tf(tx), torch_ready)
        tc = torch.compile(tf)
        impls["torch.compile"] = (lambda: tc(tx), torch_ready)
    if cupy is not None:
        cx = cupy.asarray(x)
        impls["cupy"] = (lambda: chain_xp(cupy, cx), cupy_ready)
        fused = cupy.fuse()(lambda x: chain_xp(cupy, x))
        impls["cupy.fuse"] = (lambda: fused(cx), cupy_ready)
    return impls


def ce_xp(xp, logits, labels, grad):
    """Softmax cross-entropy (and its gradient) in NumPy-style array code."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = xp.exp(z)
    s = e.sum(axis=1, keepdims=True)
    n = logits.shape[0]
    rows = xp.arange(n)
    loss = -(z[rows, labels] - xp.log(s[:, 0])).mean()
    if not grad:
        return loss
    g = e / s
    g[rows, labels] -= 1
    return loss, g / n


def ce_impls(n, k, grad):
    logits, labels = W.ce_data(n, k)
    tj = tj_jit(W.softmax_ce_grad if grad else W.softmax_ce)
    ld, yd = put(logits), put(labels)
    impls = {"tracejit": (lambda: tj(ld, yd), tj_ready)}
    if torch is not None:
        tl, ty = torch.from_numpy(logits).cuda(), torch.from_numpy(labels.astype(np.int64)).cuda()

        def tce(x, y):
            if not grad:
                return torch.nn.functional.cross_entropy(x, y)
            x = x.detach().requires_grad_()
            loss = torch.nn.functional.cross_entropy(x, y)
            loss.backward()
            return loss, x.grad
        impls["torch eager"] = (lambda: tce(tl, ty), torch_ready)
        tc = torch.compile(tce)
        impls["torch.compile"] = (lambda: tc(tl, ty), torch_ready)
    if cupy is not None:
        cl, cy = cupy.asarray(logits), cupy.asarray(labels)
        impls["cupy"] = (lambda: ce_xp(cupy, cl, cy, grad), cupy_ready)
    return impls


def mlp_xp_step(xp, params, x, y, lr):
    hs, h = [x], x
    for i, p in enumerate(params):
        h = h @ p["w"] + p["b"]
        if i < len(params) - 1:
            h = xp.maximum(h, 0)
        hs.append(h)
    loss, g = ce_xp(xp, h, y, True)
    for i in reversed(range(len(params))):
        p = params[i]
        gw, gb = hs[i].T @ g, g.sum(axis=0)
        if i:
            g = (g @ p["w"].T) * (hs[i] > 0)
        p["w"] -= lr * gw
        p["b"] -= lr * gb
    return loss


def mlp_impls(batch, sizes):
    params, x, y = W.mlp_data(batch, sizes)
    tj = tj_jit(W.mlp_step, donate_argnums=0)
    state = {"p": put(params)}
    xd, yd = put(x), put(y)

    def run_tj():
        state["p"], loss = tj(state["p"], xd, yd, 0.01)
        return loss
    impls = {"tracejit": (run_tj, tj_ready)}
    if torch is not None:
        tp = [{k: torch.from_numpy(v.copy()).cuda().requires_grad_() for k, v in p.items()}
              for p in params]
        flat = [t for p in tp for t in p.values()]
        tx, ty = torch.from_numpy(x).cuda(), torch.from_numpy(y.astype(np.int64)).cuda()

        def tstep(x, y):
            h = x
            for i, p in enumerate(tp):
                h = h @ p["w"] + p["b"]
                if i < len(tp) - 1:
                    h = torch.relu(h)
            loss = torch.nn.functional.cross_entropy(h, y)
            grads = torch.autograd.grad(loss, flat)
            with torch.no_grad():
                for t, g in zip(flat, grads):
                    t.sub_(0.01 * g)
            return loss
        impls["torch eager"] = (lambda: tstep(tx, ty), torch_ready)
        tc = torch.compile(tstep)
        impls["torch.compile"] = (lambda: tc(tx, ty), torch_ready)
    if cupy is not None:
        cp_params = [{k: cupy.asarray(v) for k, v in p.items()} for p in params]
        cx, cy = cupy.asarray(x), cupy.asarray(y)
        impls["cupy"] = (lambda: mlp_xp_step(cupy, cp_params, cx, cy, 0.01), cupy_ready)
    return impls


def cnn_data(batch, hw, widths, seed=0):
    """The CIFAR-10 tutorial CNN of workloads.py (conv 5x5, max pool 3/2,
    conv 5x5, max pool 3/2, dense, dense, 10 logits; no LRN) for ``hw`` x
    ``hw`` x 3 images and layer widths (conv, local3, local4)."""
    conv, l3, l4 = widths
    side = math.ceil(math.ceil(hw / 2) / 2)          # after two SAME poolings of stride 2
    shapes = {"conv1": (5, 5, 3, conv), "conv2": (5, 5, conv, conv),
              "local3": (side * side * conv, l3), "local4": (l3, l4), "logits": (l4, 10)}
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in shapes.items():
        fan_in = int(np.prod(shape[:-1]))
        params[name] = {"w": (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32),
                        "b": np.zeros(shape[-1], np.float32)}
    x = rng.standard_normal((batch, hw, hw, 3)).astype(np.float32)
    y = rng.integers(0, 10, batch).astype(np.int32)
    return params, x, y


def cnn_impls(batch, hw, widths):
    params, x, y = cnn_data(batch, hw, widths)
    tj = tj_jit(W.cnn_step, donate_argnums=0)
    state = {"p": put(params)}
    xd, yd = put(x), put(y)

    def run_tj():
        state["p"], loss = tj(state["p"], xd, yd, 0.01)
        return loss
    impls = {"tracejit": (run_tj, tj_ready)}
    if torch is not None:
        F = torch.nn.functional
        tp = {}
        for name, p in params.items():
            w = p["w"] if p["w"].ndim == 2 else p["w"].transpose(3, 2, 0, 1)   # HWIO -> OIHW
            tp[name] = {"w": torch.from_numpy(np.ascontiguousarray(w)).cuda().requires_grad_(),
                        "b": torch.from_numpy(p["b"].copy()).cuda().requires_grad_()}
        tx = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).cuda()
        ty = torch.from_numpy(y.astype(np.int64)).cuda()
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
        impls["torch eager"] = (lambda: tstep(tx, ty), torch_ready)
        tc = torch.compile(tstep)
        impls["torch.compile"] = (lambda: tc(tx, ty), torch_ready)
    return impls


def overhead_impls():
    """Per-step cost of tiny steps: what a launch costs each runtime."""
    x = np.ones(1, np.float32)
    xd = put(x)
    ident, inc = tj_jit(lambda x: x), tj_jit(lambda x: x + 1)
    impls = {"tracejit": (lambda: inc(xd), tj_ready),
             "tracejit, step returning its input": (lambda: ident(xd), tj_ready)}

    @cuda.jit("void(float32[::1])")
    def add_one(a):
        i = cuda.grid(1)
        if i < a.size:
            a[i] += 1
    launch, raw = add_one[1, 32], cuda.to_device(x)
    impls["numba-cuda kernel launch (floor)"] = (lambda: launch(raw), lambda _: cuda.synchronize())
    if torch is not None:
        tx = torch.ones(1, device="cuda")
        impls["torch eager"] = (lambda: tx + 1, torch_ready)
    if cupy is not None:
        cx = cupy.ones(1, np.float32)
        impls["cupy"] = (lambda: cx + 1, cupy_ready)
    return impls


def workloads(size):
    s = SIZES[size]
    n = s["chain"]
    (cn, ck), (mb, msz), (bb, hw, widths) = s["ce"], s["mlp"], s["cnn"]
    return {
        # name: (title, build, minimal bytes moved per call or None)
        "overhead": ("launch overhead: x + 1 on one float32", overhead_impls, None),
        "chain": (f"elementwise chain, {n} float32", lambda: chain_impls(n), 8 * n),
        "ce_fwd": (f"softmax cross-entropy {cn}x{ck}, forward", lambda: ce_impls(cn, ck, False),
                   4 * cn * ck + 4 * cn),
        "ce_grad": (f"softmax cross-entropy {cn}x{ck}, forward+backward",
                    lambda: ce_impls(cn, ck, True), 8 * cn * ck + 4 * cn),
        "mlp": (f"MLP {'-'.join(map(str, msz))} SGD step, batch {mb}", lambda: mlp_impls(mb, msz), None),
        "cnn": (f"CIFAR-10 tutorial CNN SGD step, batch {bb}, {hw}x{hw}x3",
                lambda: cnn_impls(bb, hw, widths), None),
    }


# --- timing ---------------------------------------------------------------------------------

def measure(impls, rounds, calls, warm):
    """First-call times, and per round each implementation's time per call
    (a block of back-to-back calls, then its synchronization). An
    implementation whose first call fails is reported and dropped."""
    first, times = {}, {}
    for name, (f, ready) in list(impls.items()):
        t = time.perf_counter()
        try:
            ready(f())
        except Exception as e:   # a peer that does not run here (e.g. torch.compile without triton)
            print(f"\n{name}: skipped, first call failed: {type(e).__name__}: {str(e)[:200]}")
            del impls[name]
            continue
        first[name] = time.perf_counter() - t
        times[name] = []
    for _ in range(rounds):
        for name, (f, ready) in impls.items():
            for _ in range(warm):
                r = f()
            if warm:
                ready(r)
            t = time.perf_counter()
            for _ in range(calls):
                r = f()
            ready(r)
            times[name].append((time.perf_counter() - t) / calls)
    return first, times


def copy_bandwidth(n, reps=20):
    """Device-to-device copy of ``n`` float32 (read + write), in GB/s."""
    src = cuda.to_device(np.ones(n, np.float32))
    dst = cuda.device_array(n, np.float32)
    dst.copy_to_device(src)
    cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        dst.copy_to_device(src)
    cuda.synchronize()
    return 2 * 4 * n * reps / (time.perf_counter() - t) / 1e9


def ms(t):
    v = 1e3 * t
    return f"{v:.4f}" if v < 0.1 else f"{v:.3f}" if v < 10 else f"{v:.2f}"


def table(title, first, times, nbytes, copy_gbs):
    print(f"\n### {title}\n")
    base = np.median(times["tracejit"]) if "tracejit" in times else None
    head = "| implementation | median ms | min ms | median / tracejit | first call s |"
    rule = "|---|---:|---:|---:|---:|"
    if nbytes:
        head += " GB/s | % of copy |"
        rule += "---:|---:|"
    print(head)
    print(rule)
    for name, ts in times.items():
        med = float(np.median(ts))
        ratio = f"{med / base:.2f}" if base else "-"
        row = f"| {name} | {ms(med)} | {ms(min(ts))} | {ratio} | {first[name]:.2f} |"
        if nbytes:
            gbs = nbytes / med / 1e9
            row += f" {gbs:.0f} | {100 * gbs / copy_gbs:.0f}% |"
        print(row)
    sys.stdout.flush()


def machine(simulator):
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("numba", "numba-cuda"):
        try:
            versions[mod] = __import__("importlib.metadata").metadata.version(mod)
        except Exception:
            pass
    if torch is not None:
        versions["torch"] = torch.__version__
    if cupy is not None:
        versions["cupy"] = cupy.__version__
    if simulator:
        gpu = "Numba's CUDA simulator (times are meaningless)"
    else:
        dev = cuda.get_current_device()
        name = dev.name.decode() if isinstance(dev.name, bytes) else dev.name
        gpu = f"{name}, compute capability {'.'.join(map(str, dev.compute_capability))}"
    return f"{gpu}; " + ", ".join(f"{k} {v}" for k, v in versions.items())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=None, help="comma-separated workloads "
                    "(overhead, chain, ce_fwd, ce_grad, mlp, cnn)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    ap.add_argument("--simulator", action="store_true",
                    help="tiny sizes in Numba's CUDA simulator, tracejit only (proves the code path)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=20, help="back-to-back calls per timed block")
    ap.add_argument("--warm", type=int, default=3, help="untimed calls before each block")
    args = ap.parse_args()
    gpu_or_exit(args.simulator)
    load(args.simulator)
    size = "tiny" if args.simulator else "quick" if args.quick else "full"
    if args.simulator:
        args.rounds, args.calls, args.warm = 1, 1, 0
    specs = workloads(size)
    names = args.only.split(",") if args.only else list(specs)
    unknown = [n for n in names if n not in specs]
    if unknown:
        sys.exit(f"bench_gpu: unknown workload(s) {', '.join(unknown)}; choose from {', '.join(specs)}")
    print(f"device: {machine(args.simulator)}")
    copy_gbs = copy_bandwidth(SIZES[size]["copy"])
    print(f"device-to-device copy of {SIZES[size]['copy']} float32: {copy_gbs:.0f} GB/s (read + write)")
    for name in names:
        title, build, nbytes = specs[name]
        first, times = measure(build(), args.rounds, args.calls, args.warm)
        table(title, first, times, nbytes, copy_gbs)


if __name__ == "__main__":
    main()
