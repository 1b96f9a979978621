"""Where a first call's time goes: trace, transforms, fusion, code generation,
Numba's front end, LLVM, linking; tracejit beside JAX.

    python benchmarks/bench_compile.py                      # every row
    python benchmarks/bench_compile.py --only mlp,my_func100
    python benchmarks/bench_compile.py --no-peers           # tracejit only

Each row runs in a new process with an empty kernel cache (and again with
that cache, for the warm-disk-cache column), so nothing compiled by an
earlier row helps a later one. In that process Numba is imported and its
CPU target initialized before the timed call and reported on its own
("Numba init"); "new process" is that plus the first call, what a user
waits for in a fresh interpreter (``import tracejit`` excluded). With the
direct LLVM translation (the default) Numba is not imported beforehand
("Numba init" 0): a kernel that needs Numba imports it inside the first
call. "CPU" is the process's CPU time during the call (all threads). The stage
columns are measured by wrapping the functions that do each stage:

- trace: running the user's function on tracers (``stages.trace``)
- transforms: ``stages.simplify`` (DCE, CSE, folding, algebra)
- fusion: ``transforms.fusion.fuse``
- codegen: kernel source generation
- translate: the direct translation of kernel source to LLVM IR
  (backends/cpu/irgen.py)
- Numba: Numba's front end on the kernel source (bytecode, typing, lowering
  to LLVM IR), without the LLVM passes it runs inside (only for kernels
  irgen.py does not cover, or with ``TRACEJIT_COMPILER=numba``)
- LLVM: LLVM's function and module passes and its machine-code emission
  (CPU time summed over the compiling threads: kernels compile in parallel)
- link: linking object code into the process
- other: the rest of the call (the plan's construction, running it,
  Python glue)

"tiered first call" runs the row again in a new process with an empty cache
and ``TRACEJIT_TIERED=1`` (tracejit/tiered.py: the first call runs on the
reference interpreter while the plan compiles in the background; Numba is
imported by that background compilation); "plan ready" is when its
compiled plan was ready, from the start of the first call.

JAX's first call (``jax.jit`` of the same computation, in its own new
process, ``import jax`` excluded) is shown beside when JAX is installed.
``my_funcN`` is the book's ``my_func`` (``z = a*cos(z+i) + z*sin(b-i)``
unrolled over N iterations) under ``value_and_grad`` with respect to both
scalars: its program grows linearly with N, so its rows show whether
compile time does.

This is a shared, noisy machine: compare columns of one run (proportions,
ratios), not absolute times across runs.
"""
from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROWS = ("mlp", "cnn", "lstm", "my_func10", "my_func30", "my_func100", "my_func300")
STAGES = ("trace", "transforms", "fusion", "codegen", "translate", "numba", "llvm", "link")


# --- the workloads, for tracejit and JAX ----------------------------------------------------
def my_func_factory(np_like, n):
    """The book's my_func, unrolled over n iterations, written with ``np_like``
    (tracejit.numpy or jax.numpy)."""
    def my_func(a, b):
        z = 0
        for i in range(n):
            z = a * np_like.cos(z + i) + z * np_like.sin(b - i)
        return z
    return my_func


def tracejit_row(name):
    """A zero-argument callable running the first call of row ``name``."""
    import numpy as np

    import tracejit
    import tracejit.numpy as tnp
    if name.startswith("my_func"):
        f = tracejit.jit(tracejit.value_and_grad(my_func_factory(tnp, int(name[7:])), argnums=(0, 1)))
        return lambda: f(np.float32(0.2), np.float32(0.3))
    import bench_cpu
    return bench_cpu.WORKLOADS[name][1]()["tracejit"]


def jax_row(name):
    import bench_cpu
    bench_cpu.load_peers()
    jax = bench_cpu.jax
    if name.startswith("my_func"):
        import numpy as np
        f = jax.jit(jax.value_and_grad(my_func_factory(bench_cpu.jnp, int(name[7:])), argnums=(0, 1)))
        return lambda: jax.block_until_ready(f(np.float32(0.2), np.float32(0.3)))
    impls = bench_cpu.WORKLOADS[name][1]()
    return next(f for k, f in impls.items() if k.startswith("jax"))


# --- the child process: one first call, timed by stage -------------------------------------
class Timers:
    def __init__(self):
        self.t = collections.Counter()
        self.info = {}
        self.depth = collections.Counter()
        self.lock = threading.Lock()

    def wrap(self, owner, attr, key, after=None):
        """Time every call of ``owner.attr`` into ``key`` (outermost calls only)."""
        f = getattr(owner, attr, None)
        if f is None:
            return False
        timers = self

        @functools.wraps(f)
        def timed(*args, **kwargs):   # per thread: kernels compile in several
            depth = (key, threading.get_ident())
            timers.depth[depth] += 1
            start = time.thread_time()
            try:
                out = f(*args, **kwargs)
            finally:
                timers.depth[depth] -= 1
                if timers.depth[depth] == 0:
                    with timers.lock:
                        timers.t[key] += time.thread_time() - start
            if after is not None:
                after(args, out)
            return out
        setattr(owner, attr, timed)
        return True


def install(timers, with_numba):
    """Wrap the stage functions; returns the names of stages not found.
    ``with_numba``: also Numba's (importing it: only for the Numba path)."""
    import llvmlite.binding as llvm

    from tracejit import stages
    from tracejit.transforms import fusion
    missing = []

    def count_in(args, out):   # the first (outermost) Function optimized is the program
        timers.info.setdefault("instructions_traced", len(args[0].body))
        timers.info.setdefault("instructions_optimized", len(out.body))

    def count_kernels(args, out):
        timers.info["kernels"] = timers.info.get("kernels", 0) + fusion.kernel_count(out)

    wraps = [(stages, "trace", "trace", None),
             (stages, "simplify", "transforms", count_in),
             (fusion, "fuse", "fusion", count_kernels),
             (llvm.TargetMachine, "emit_object", "llvm", None)]
    if with_numba:
        import numba.core.codegen as numba_codegen
        from numba.core import compiler as numba_compiler
        wraps += [(numba_compiler, "compile_extra", "numba", None),
                  (numba_codegen.CPUCodeLibrary, "_optimize_functions", "llvm_in_numba", None),
                  (numba_codegen.CPUCodeLibrary, "_optimize_final_module", "llvm", None)]
    for owner, attr, key, after in wraps:
        if not timers.wrap(owner, attr, key, after):
            missing.append(key)
    try:   # the kernel writer and the loader move between layouts; time them where found
        from tracejit.backends.cpu import codegen, loader
        timers.wrap(codegen, "generate", "codegen")
        timers.wrap(loader, "load", "link")
    except ImportError:
        missing += ["codegen", "link"]
    try:   # the direct LLVM translation (irgen.py): translating, then LLVM's passes
        from tracejit.backends.cpu import irgen
        timers.wrap(irgen, "translate", "translate")
        timers.wrap(irgen, "compile_ir", "llvm")
    except ImportError:
        missing += ["translate"]
    return missing


def child(name, peer):
    sys.path[:0] = [str(HERE.parent), str(HERE)]
    if peer == "jax":
        start = time.perf_counter()
        import jax  # noqa: F401
        imported = time.perf_counter() - start
        run = jax_row(name)
        start = time.perf_counter()
        run()
        print(json.dumps({"import": imported, "first": time.perf_counter() - start}))
        return
    import tracejit  # noqa: F401
    if peer == "tiered":   # what a user sees: Numba is imported by the background compile
        run = tracejit_row(name)
        start = time.perf_counter()
        run()
        first = time.perf_counter() - start
        from tracejit.tiered import wait_all
        wait_all()
        print(json.dumps({"first": first, "ready": time.perf_counter() - start}))
        return
    numba_path = os.environ.get("TRACEJIT_COMPILER", "") == "numba" or not _has_irgen()
    numba_init = 0.0
    if numba_path:   # Numba compiles every kernel: its start-up, reported on its own
        start = time.perf_counter()
        from numba.core.registry import cpu_target
        cpu_target.typing_context.refresh()
        cpu_target.target_context.refresh()
        numba_init = time.perf_counter() - start
    timers = Timers()
    missing = install(timers, numba_path)
    run = tracejit_row(name)
    start, cpu = time.perf_counter(), time.process_time()
    run()
    first, first_cpu = time.perf_counter() - start, time.process_time() - cpu
    from tracejit.backends.cpu import stats
    t = dict(timers.t)
    t["numba"] = t.get("numba", 0.0) - t.pop("llvm_in_numba", 0.0)
    t["llvm"] = t.get("llvm", 0.0) + timers.t.get("llvm_in_numba", 0.0)
    t["other"] = first_cpu - sum(t.get(k, 0.0) for k in STAGES)
    print(json.dumps({"numba_init": numba_init, "first": first, "first_cpu": first_cpu, "stages": t,
                      "missing": missing, "numba_imported": "numba" in sys.modules,
                      **timers.info, **stats()}))


def _has_irgen():
    import importlib.util
    return importlib.util.find_spec("tracejit.backends.cpu.irgen") is not None


def run_child(name, peer, cache, timeout):
    """The child's JSON, or None when it ran past ``timeout`` seconds."""
    env = dict(os.environ, TRACEJIT_CACHE_DIR=cache, TRACEJIT_TIERED="1" if peer == "tiered" else "0")
    env.pop("TRACEJIT_LOG", None)
    try:
        out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", name,
                              "--peer", peer], env=env, capture_output=True, text=True, check=False,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        raise RuntimeError(f"{name} ({peer}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the table ---------------------------------------------------------------------------------
def machine_line():
    import platform
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version
    versions = [f"Python {platform.python_version()}"]
    for package in ("numpy", "numba", "llvmlite", "jax"):
        try:
            versions.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            pass
    return f"{cpu}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; " + ", ".join(versions)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(ROWS), help="comma-separated rows: " + ", ".join(ROWS))
    ap.add_argument("--no-peers", action="store_true", help="skip JAX")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per first call (process)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--peer", default="tracejit", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.peer)
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in ROWS and not (n.startswith("my_func") and n[7:].isdigit())]
    if unknown:
        ap.error(f"unknown row {', '.join(unknown)}; choose from {', '.join(ROWS)} (or my_funcN)")
    sys.path[:0] = [str(HERE.parent), str(HERE)]
    try:
        import jax  # noqa: F401
        peers = not args.no_peers
    except ImportError:
        peers = False
    print(f"machine: {machine_line()}\n")
    print("First calls in new processes, empty kernel cache, seconds. 'first call': wall time; "
          "'CPU': the process's CPU time during it (all threads), which the stage columns split "
          "(CPU time, so load from other processes inflates them less than wall times).\n")
    head = ["row", "instrs", "kernels", "compiled", "first call", "CPU", "Numba init", "new process",
            *STAGES, "other", "warm cache", "tiered first call", "tiered: plan ready"]
    if peers:
        head += ["JAX first call", "first call / JAX", "tiered / JAX"]
    print("| " + " | ".join(head) + " |")
    print("|---|" + "---:|" * (len(head) - 1))
    for name in names:
        with tempfile.TemporaryDirectory() as cache:
            cold = run_child(name, "tracejit", cache, args.timeout)
            warm = cold and run_child(name, "tracejit", cache, args.timeout)
        with tempfile.TemporaryDirectory() as cache:
            tiered = run_child(name, "tiered", cache, args.timeout)
        if cold is None:
            print(f"| {name} | (first call over {args.timeout:.0f} s) |", flush=True)
            continue
        s = cold["stages"]
        cells = [name, str(cold.get("instructions_optimized", "?")), str(cold.get("kernels", "?")),
                 str(cold.get("compiled", "?")) + (f" ({cold['numba_fallbacks']} by Numba)"
                                                  if cold.get("numba_fallbacks") else ""),
                 f"{cold['first']:.2f}", f"{cold['first_cpu']:.2f}",
                 f"{cold['numba_init']:.2f}", f"{cold['first'] + cold['numba_init']:.2f}",
                 *(f"{s.get(k, 0.0):.2f}" for k in STAGES), f"{s['other']:.2f}",
                 (f"{warm['first']:.2f}" + (f" ({warm['compiled']} compiled)" if warm["compiled"] else ""))
                 if warm else "-",
                 f"{tiered['first']:.2f}" if tiered else "-", f"{tiered['ready']:.2f}" if tiered else "-"]
        if peers:
            j = run_child(name, "jax", "", args.timeout)
            cells += ([f"{j['first']:.2f}", f"{cold['first'] / j['first']:.1f}x",
                       f"{tiered['first'] / j['first']:.2f}x" if tiered else "-"] if j else ["-"] * 3)
        print("| " + " | ".join(cells) + " |", flush=True)
        if cold.get("missing"):
            print(f"(stages not found in this layout: {', '.join(cold['missing'])})")


if __name__ == "__main__":
    main()
