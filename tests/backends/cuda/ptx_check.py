"""Compile the CUDA kernels of representative programs to PTX for a real
GPU, without one: ``python tests/backends/cuda/ptx_check.py`` (with
NUMBA_ENABLE_CUDASIM unset and NVVM installed, e.g. the pip packages
nvidia-cuda-nvcc-cu12 and nvidia-cuda-nvrtc-cu12). The simulator runs
kernels as Python, so it cannot catch code that Numba's CUDA target does
not type or lower (libdevice calls, shared arrays, casts); this does.
Prints one line per kernel and exits 1 if any fails."""
import hashlib
import sys

import numpy as np

import tracejit
import tracejit.numpy as tnp
from tracejit import lax
from tracejit.nn import functional as F
from tracejit.primitives import PRIMITIVES
from tracejit.stages import simplify as optimize
from tracejit.transforms.fusion import fuse

UNARY_F = ["neg", "exp", "log", "log1p", "expm1", "tanh", "logistic", "sqrt", "rsqrt",
           "sin", "cos", "erf", "abs", "sign", "floor", "ceil", "round", "is_finite"]
BINARY_F = ["add", "sub", "mul", "div", "rem", "pow", "atan2", "max", "min", "eq", "ne", "lt", "le",
            "gt", "ge"]
UNARY_I = ["neg", "abs", "sign", "not"]
BINARY_I = ["add", "sub", "mul", "div", "rem", "max", "min", "and", "or", "xor", "eq", "ne",
            "lt", "le", "gt", "ge", "pow"]


def programs():
    rng = np.random.default_rng(0)
    f32 = rng.standard_normal((4, 5)).astype(np.float32)
    for dt in ("float32", "float64"):
        x = f32.astype(dt)
        yield f"float elementwise {dt}", (lambda x, y: [PRIMITIVES[n](x) for n in UNARY_F] +
                                          [PRIMITIVES[n](x, y) for n in BINARY_F]), (x, x)
    for dt in ("int32", "int64", "uint32"):
        i = np.arange(6, dtype=dt)
        yield f"int elementwise {dt}", (lambda x, y: [PRIMITIVES[n](x) for n in UNARY_I] +
                                        [PRIMITIVES[n](x, y) for n in BINARY_I]), (i, i)
    b = np.array([True, False, True])
    yield "bool", (lambda p, q: [PRIMITIVES[n](p, q) for n in
                                 ("and", "or", "xor", "eq", "lt", "max", "min")] +
                   [PRIMITIVES["not"](p), tnp.any(p), tnp.all(q)] +
                   [PRIMITIVES["convert"](p, dtype=d) for d in ("int32", "float32", "uint32")]), (b, b)
    yield "reductions", (lambda x: [x.sum(0), x.max(1), x.min(), tnp.prod(x, 1), tnp.argmax(x, 0),
                                    tnp.argmin(x, 1), tnp.argmax(x.astype("int32"), 1),
                                    tnp.sum(x.astype("int32"), 0), tnp.var(x, 0)]), (f32,)
    yield "index maps", (lambda x, i: [tnp.transpose(x) * 2, tnp.reshape(x, (2, 10)) + 1,
                                       x[1:4:2, ::-1] * 3, tnp.concatenate([x, x[:, :1]], 1),
                                       PRIMITIVES["pad"](x, np.float32(0.5),
                                                         config=((1, 2, 1), (-1, 0, 0))),
                                       PRIMITIVES["gather"](x, i, axis=1),
                                       tnp.arange(5, dtype="float32") * x]), \
        (f32, np.array([0, -1, 7], np.int32))
    labels = np.array([0, 1, 4, 2], np.int32)
    yield "softmax, cross-entropy", (lambda x, y: [F.softmax(x), F.log_softmax(x),
                                                   F.sparse_softmax_cross_entropy_with_logits(y, x)]), \
        (f32, labels)
    img = rng.standard_normal((1, 6, 6, 2)).astype(np.float32)

    def pool(x):
        p = lax.reduce_window(x, "max", (1, 3, 3, 1), (1, 2, 2, 1), ((0, 0), (1, 1), (1, 1), (0, 0)))
        a = lax.reduce_window(x, "sum", (1, 2, 2, 1), (1, 2, 2, 1), ((0, 0),) * 4)
        return tnp.sum(p * p) + tnp.mean(a)
    yield "pooling gradient", tracejit.value_and_grad(pool), (img,)
    yield "random", (lambda k: [PRIMITIVES["random_bits"](k, shape=(3, 7)),
                                tracejit.random.normal(k, (6,))]), (tracejit.random.key(1),)

    def control(x, n):
        y = tracejit.cond(x.sum() > 0, lambda v: v * 2, lambda v: v - 1, x)
        i, z = tracejit.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] * 1.5), (0, y))
        c, ys = tracejit.scan(lambda c, xi: (tnp.tanh(c + xi), c * 2), x[0], x)
        return y, z, i, c, ys
    yield "control flow", control, (f32, 3)


def kernels(fn):
    for ins in fn.body:
        if ins.prim == "fusion":
            yield ins
        for sub in ins.subfunctions().values():
            if ins.prim != "fusion":
                yield from kernels(sub)


def main():
    from numba import config
    from tracejit.backends.cuda import codegen
    if config.ENABLE_CUDASIM:
        sys.exit("run without NUMBA_ENABLE_CUDASIM: this compiles for a real GPU")
    # Device functions compile for the current device's compute capability;
    # without a GPU, name one.
    import types
    from numba.cuda import dispatcher
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=(8, 0))
    failed = 0
    for name, fun, args in programs():
        fn = fuse(optimize(tracejit.make_ir(fun)(*args)))
        for ins in kernels(fn):
            body, kind = ins.attrs["body"], ins.attrs["kind"]
            layouts = ["rows"]    # every reduction layout the plan may pick (plan.reduction_layout)
            if kind == "reduction" and codegen.reduction_shape(body).single:
                layouts += ["columns", "split_partial", "split_final", "column_partial",
                            "column_final"]
            for layout in layouts:
                ks = codegen.generate(body, kind, 256, layout, 4)
                what = f"{name}: {body.name} ({kind}{'' if kind == 'loop' else ', ' + layout})"
                failed += compile_one(what, ks)
    sys.exit(1 if failed else 0)


def compile_one(what, ks) -> int:
    """0 if the kernel of ``ks`` compiles to PTX, else 1 (and its source is printed)."""
    from numba import cuda
    from tracejit.backends import cache_store
    from tracejit.backends.cuda import cache
    text = f"# ptx check\n{ks.source}"
    key = hashlib.sha256(text.encode()).hexdigest()[:24]
    path = cache_store.cache_dir() / "cuda-ptx-check" / f"k_{key}.py"
    cache_store.write_file(path, text.encode())
    module = cache._import(path, f"tracejit_ptx_check_{key}")
    try:
        cuda.compile_ptx(module.kernel, cache.signature(ks.arg_types).args, cc=(8, 0))
        print(f"ok     {what}")
        return 0
    except Exception as e:   # reported, then the exit status
        print(f"FAILED {what}: {type(e).__name__}: {e}\n{ks.source}")
        return 1


if __name__ == "__main__":
    main()
