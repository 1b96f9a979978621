"""Crash-safe training checkpoints: a safetensors file plus a JSON manifest.

A checkpoint for step ``N`` in a directory is the pair::

    ckpt-0000000N.safetensors   # the arrays (safetensors: no pickle, no code on load)
    ckpt-0000000N.json          # the manifest (structure, tensor table, sha256, metadata)

Both files are written to temporary files in the same directory, fsynced, and
moved into place with :func:`os.replace`, the data file first and the manifest
last.  A checkpoint *exists* only once its manifest exists, so a run killed at
any moment never leaves a half-written checkpoint visible: at worst a stray
temporary file or an orphaned ``.safetensors`` without a manifest, both ignored
and removed by the next save (or :func:`remove_stale_files`, which a resume
calls).

Nothing is trusted without verification.  The data file is covered by the
manifest's ``sha256`` (and size); the manifest by its own checksum,
``manifest_sha256``, over its other content, and it must be byte for byte the
canonical JSON the writer produces, so any change to either file -- one
digit of the step, of the pipeline position, of a config value -- is a
:class:`CheckpointError` naming the file.  Parsing is bounded: trees nest at
most :data:`MAX_DEPTH` containers deep.

The saved ``tree`` is a nested structure of ``dict`` (``str`` keys), ``list``,
``tuple``, ``None``, NumPy arrays, NumPy scalars and Python ``bool``/``int``/
``float``/``complex``/``str`` scalars.  Arrays and NumPy scalars are stored as
tensors named by their path (``"params/conv1/kernel"``, ``"opt_state/0/m/..."``);
Python scalars are stored in the manifest with their exact type and value.
Loading rebuilds exactly the same structure.  (Tuple subclasses such as
namedtuples are stored, and restored, as plain tuples.)

Partial and renamed loads (transfer learning, Hands-On ML Ch. 11: restore
``hidden[123]`` only): ``load_checkpoint(path, like, include=REGEX,
exclude=REGEX, rename={REGEX: REPLACEMENT})`` takes the checkpoint's
entries whose names (``"params/hidden1/kernel"``) ``include`` matches and
``exclude`` does not (``re.search``), renames them (each pattern in turn,
``re.sub``), and puts them into ``like``'s tree, whose other leaves keep
their values; the result's ``restored`` maps each restored name to the
checkpoint name it came from (:func:`select_names` does the selection).

Public API: :func:`save_checkpoint`, :func:`load_checkpoint`,
:func:`latest_checkpoint`, :func:`list_checkpoints`, :func:`select_names`,
:class:`Loaded`, :class:`CheckpointError`.

This module deliberately imports nothing else from :mod:`tracejit`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from typing import Any, Iterator

import numpy as np

from ..errors import CheckpointError

__all__ = [
    "CheckpointError",
    "FORMAT_VERSION",
    "MAX_DEPTH",
    "decode_manifest",
    "encode_manifest",
    "remove_stale_files",
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "select_names",
    "Loaded",
]

FORMAT_NAME = "tracejit-checkpoint"
FORMAT_VERSION = 2   # 2: the manifest carries its own checksum
#: How deeply containers may nest in a checkpoint tree (and its manifest).
MAX_DEPTH = 100
_MAX_MANIFEST_BYTES = 1 << 30

_PREFIX = "ckpt-"
_DATA_SUFFIX = ".safetensors"
_MANIFEST_SUFFIX = ".json"
_MANIFEST_RE = re.compile(r"^ckpt-(\d+)\.json$")
_DATA_RE = re.compile(r"^ckpt-(\d+)\.safetensors$")
_TEMP_RE = re.compile(r"^\.ckpt-\d+\.(json|safetensors)\..+\.tmp$")
_ROOT_NAME = "."  # tensor name used when the whole tree is a single array

# dtypes that safetensors' NumPy binding can store and load back exactly.
_SUPPORTED_DTYPES = frozenset(
    [
        "bool",
        "int8", "int16", "int32", "int64",
        "uint8", "uint16", "uint32", "uint64",
        "float16", "float32", "float64",
        "complex64",
    ]
)


# --------------------------------------------------------------------------
# File names
# --------------------------------------------------------------------------


def _stem(step: int) -> str:
    return f"{_PREFIX}{step:08d}"


def _data_path(directory: str, step: int) -> str:
    return os.path.join(directory, _stem(step) + _DATA_SUFFIX)


def _manifest_path(directory: str, step: int) -> str:
    return os.path.join(directory, _stem(step) + _MANIFEST_SUFFIX)


def list_checkpoints(directory: str | os.PathLike) -> list[tuple[int, str]]:
    """``[(step, manifest_path), ...]`` for every checkpoint (manifest present), by step.

    Only the presence of the manifest is checked here; validity is checked on load.
    """
    directory = os.fspath(directory)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        m = _MANIFEST_RE.match(name)
        if m:
            found.append((int(m.group(1)), os.path.join(directory, name)))
    found.sort()
    return found


def latest_checkpoint(directory: str | os.PathLike) -> str | None:
    """Path of the manifest of the highest-step checkpoint in ``directory``, or None."""
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


# --------------------------------------------------------------------------
# Tree flattening
# --------------------------------------------------------------------------


def _join(path: tuple[str, ...]) -> str:
    return "/".join(path) if path else _ROOT_NAME


def _is_array_like(x: Any) -> bool:
    return isinstance(x, np.ndarray) or (
        hasattr(x, "__array__") and not isinstance(x, (str, bytes))
    )


def _encode_float(x: float) -> str:
    # float.hex is exact and also covers nan/inf, which strict JSON cannot.
    return float(x).hex()


def _decode_float(s: str) -> float:
    return float.fromhex(s)


def _flatten(tree: Any, path: tuple[str, ...], tensors: dict[str, np.ndarray]) -> dict:
    """Return the JSON structure node for ``tree``, adding its tensors to ``tensors``."""
    where = _join(path)
    if len(path) > MAX_DEPTH:
        raise ValueError(f"checkpoint tree: nested more than {MAX_DEPTH} containers deep "
                         f"at {where[:200]!r}")
    if tree is None:
        return {"t": "none"}
    if isinstance(tree, dict):
        items = []
        for key, value in tree.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"checkpoint tree: dict keys must be str, got {type(key).__name__} "
                    f"key {key!r} at {where!r}"
                )
            items.append([key, _flatten(value, path + (key,), tensors)])
        return {"t": "dict", "items": items}
    if isinstance(tree, (list, tuple)):
        kind = "list" if isinstance(tree, list) else "tuple"
        children = [_flatten(v, path + (str(i),), tensors) for i, v in enumerate(tree)]
        return {"t": kind, "items": children}
    # Python scalars (bool before int: bool is an int subclass).  NumPy scalars
    # are np.generic, not Python numbers, except np.float64/np.complex128 which
    # subclass float/complex -- so test np.generic first.
    if isinstance(tree, np.generic):
        return {"t": "np_scalar", "name": _add_tensor(np.asarray(tree), path, tensors)}
    if isinstance(tree, bool):
        return {"t": "bool", "v": tree}
    if isinstance(tree, int):
        return {"t": "int", "v": int(tree)}
    if isinstance(tree, float):
        return {"t": "float", "v": _encode_float(tree)}
    if isinstance(tree, complex):
        return {"t": "complex", "v": [_encode_float(tree.real), _encode_float(tree.imag)]}
    if isinstance(tree, str):
        return {"t": "str", "v": tree}
    if _is_array_like(tree):
        return {"t": "array", "name": _add_tensor(np.asarray(tree), path, tensors)}
    raise TypeError(
        f"checkpoint tree: unsupported leaf of type {type(tree).__name__} at {where!r} "
        "(expected dict, list, tuple, None, a NumPy array or a scalar)"
    )


def _add_tensor(arr: np.ndarray, path: tuple[str, ...], tensors: dict) -> str:
    name = _join(path)
    if arr.dtype.name not in _SUPPORTED_DTYPES:
        raise TypeError(
            f"checkpoint tree: array {name!r} has dtype {arr.dtype}, which cannot be "
            f"stored; supported: {', '.join(sorted(_SUPPORTED_DTYPES))}"
        )
    if name in tensors:
        raise ValueError(
            f"checkpoint tree: two leaves map to the same name {name!r} "
            "(a dict key containing '/' collides with a nested path)"
        )
    # safetensors wants dense, little-endian buffers.
    # (np.ascontiguousarray would turn 0-d arrays into 1-d ones.)
    arr = np.asarray(arr, dtype=arr.dtype.newbyteorder("<"), order="C")
    tensors[name] = arr
    return name


def _iter_tensor_nodes(node: dict) -> Iterator[dict]:
    t = node["t"]
    if t == "dict":
        for _, child in node["items"]:
            yield from _iter_tensor_nodes(child)
    elif t in ("list", "tuple"):
        for child in node["items"]:
            yield from _iter_tensor_nodes(child)
    elif t in ("array", "np_scalar"):
        yield node


def _unflatten(node: dict, tensors: dict[str, np.ndarray]) -> Any:
    t = node["t"]
    if t == "none":
        return None
    if t == "dict":
        return {key: _unflatten(child, tensors) for key, child in node["items"]}
    if t == "list":
        return [_unflatten(child, tensors) for child in node["items"]]
    if t == "tuple":
        return tuple(_unflatten(child, tensors) for child in node["items"])
    if t == "array":
        return tensors[node["name"]]
    if t == "np_scalar":
        return tensors[node["name"]][()]
    if t == "bool":
        return bool(node["v"])
    if t == "int":
        return int(node["v"])
    if t == "float":
        return _decode_float(node["v"])
    if t == "complex":
        return complex(_decode_float(node["v"][0]), _decode_float(node["v"][1]))
    if t == "str":
        return str(node["v"])
    raise CheckpointError(f"unknown structure node type {t!r}")


# --------------------------------------------------------------------------
# Atomic file writes
# --------------------------------------------------------------------------


def _fsync_dir(directory: str) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync, then os.replace."""
    directory, base = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_stale_files(directory: str | os.PathLike, keep_step: int | None = None) -> list[str]:
    """Remove what a killed save leaves behind in ``directory``: temporary
    files, and data files whose manifest was never written (except step
    ``keep_step``'s); returns the removed paths.  Call it only while no other
    process saves into ``directory``."""
    directory = os.fspath(directory)
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for name in names:
        m = _DATA_RE.match(name)
        orphan = (m is not None and int(m.group(1)) != keep_step
                  and _stem(int(m.group(1))) + _MANIFEST_SUFFIX not in names)
        if orphan or _TEMP_RE.match(name):
            path = os.path.join(directory, name)
            try:
                os.unlink(path)
                removed.append(path)
            except FileNotFoundError:
                pass
    return removed


# --------------------------------------------------------------------------
# Manifest encoding
# --------------------------------------------------------------------------


def _canonical(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def encode_manifest(manifest: dict) -> bytes:
    """The bytes of a manifest file: canonical JSON of ``manifest`` plus
    ``manifest_sha256``, the checksum of the canonical JSON of the rest."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    signed = dict(body, manifest_sha256=hashlib.sha256(_canonical(body)).hexdigest())
    return _canonical(signed) + b"\n"


def _depth_ok(obj) -> bool:
    """Whether JSON value ``obj`` nests at most 2 * MAX_DEPTH + 8 deep (each
    tree level is two JSON levels), checked without recursion."""
    stack = [(obj, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > 2 * MAX_DEPTH + 8:
            return False
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return True


def decode_manifest(raw: bytes, manifest_path: str) -> dict:
    """The manifest in ``raw`` after checking its checksum and canonical form;
    CheckpointError naming ``manifest_path`` otherwise."""
    if len(raw) > _MAX_MANIFEST_BYTES:
        raise CheckpointError(f"{manifest_path}: manifest is {len(raw)} bytes, more than a "
                              f"checkpoint manifest can be")
    try:   # the C parser's recursion is bounded: a deep nest is a RecursionError
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise CheckpointError(f"{manifest_path}: unreadable manifest: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{manifest_path}: not a {FORMAT_NAME} manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        hint = (" (version 1 manifests carry no checksum of their own and cannot be "
                "verified; save the checkpoint again with the tracejit that wrote it)"
                if version == 1 else "")
        raise CheckpointError(
            f"{manifest_path}: unsupported format version {version!r} "
            f"(this reader supports {FORMAT_VERSION}){hint}"
        )
    digest = manifest.get("manifest_sha256")
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    if not isinstance(digest, str) or hashlib.sha256(_canonical(body)).hexdigest() != digest:
        raise CheckpointError(f"{manifest_path}: manifest checksum mismatch: the manifest is "
                              f"damaged or was edited")
    if encode_manifest(manifest) != raw:
        raise CheckpointError(f"{manifest_path}: manifest is not in canonical form: damaged "
                              f"or edited")
    if not _depth_ok(manifest):
        raise CheckpointError(f"{manifest_path}: manifest nests deeper than {MAX_DEPTH} levels")
    return manifest


# --------------------------------------------------------------------------
# Save
# --------------------------------------------------------------------------


def save_checkpoint(
    directory: str | os.PathLike,
    step: int,
    tree: Any,
    metadata: Any = None,
    keep: int | None = 5,
) -> str:
    """Save ``tree`` as the checkpoint for ``step`` in ``directory``; return the manifest path.

    ``metadata`` must be JSON-serialisable (data pipeline state, epoch, best
    metric, ...).  After writing, only the newest ``keep`` checkpoints remain
    (the one just written is never deleted); ``keep=None`` keeps everything.
    Saving a step that already exists replaces that checkpoint.
    """
    from safetensors.numpy import save as _st_save

    directory = os.fspath(directory)
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    step = int(step)
    if keep is not None and (not isinstance(keep, int) or keep < 1):
        raise ValueError(f"keep must be a positive int or None, got {keep!r}")
    try:
        metadata_json = json.loads(json.dumps(metadata))
    except (TypeError, ValueError) as e:
        raise TypeError(f"checkpoint metadata must be JSON-serialisable: {e}") from None

    tensors: dict[str, np.ndarray] = {}
    structure = _flatten(tree, (), tensors)

    data = _st_save(tensors, metadata={"format": FORMAT_NAME, "step": str(step)})
    sha256 = hashlib.sha256(data).hexdigest()

    data_path = _data_path(directory, step)
    manifest_path = _manifest_path(directory, step)
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "step": step,
        "data_file": os.path.basename(data_path),
        "data_size": len(data),
        "sha256": sha256,
        "tensors": [
            {"name": name, "dtype": arr.dtype.name, "shape": list(arr.shape)}
            for name, arr in tensors.items()
        ],
        "structure": structure,
        "metadata": metadata_json,
    }
    manifest_bytes = encode_manifest(manifest)

    os.makedirs(directory, exist_ok=True)
    remove_stale_files(directory, keep_step=step)
    # Re-saving an existing step: retract its manifest first, so the old
    # manifest never describes the new data file.
    if os.path.exists(manifest_path):
        _remove(manifest_path)
        _fsync_dir(directory)
    _atomic_write(data_path, data)
    _fsync_dir(directory)
    _atomic_write(manifest_path, manifest_bytes)
    _fsync_dir(directory)

    if keep is not None:
        _prune(directory, keep, step)
    return manifest_path


def _prune(directory: str, keep: int, current_step: int) -> None:
    found = list_checkpoints(directory)
    newest = {s for s, _ in found[-keep:]}
    newest.add(current_step)
    removed = False
    for step, manifest_path in found:
        if step in newest:
            continue
        # Manifest first: the checkpoint disappears atomically, then its data.
        _remove(manifest_path)
        _remove(_data_path(directory, step))
        removed = True
    if removed:
        _fsync_dir(directory)


# --------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------


def _fmt(dtype: str, shape) -> str:
    return f"{dtype}[{','.join(str(int(d)) for d in shape)}]"


def _resolve(path_or_directory: str | os.PathLike) -> tuple[str, str, list]:
    """Return ``(manifest_path, data_path, earlier_checkpoints)`` for a load request."""
    p = os.fspath(path_or_directory)
    earlier: list = []
    if os.path.isdir(p):
        found = list_checkpoints(p)
        if not found:
            raise CheckpointError(f"no checkpoint found in directory {p!r}")
        manifest_path = found[-1][1]
        earlier = found[:-1]
    elif p.endswith(_MANIFEST_SUFFIX):
        manifest_path = p
    elif p.endswith(_DATA_SUFFIX):
        manifest_path = p[: -len(_DATA_SUFFIX)] + _MANIFEST_SUFFIX
    else:
        manifest_path = p + _MANIFEST_SUFFIX  # a stem like ".../ckpt-00000010"
    if not os.path.exists(manifest_path):
        raise CheckpointError(
            f"checkpoint manifest {manifest_path!r} does not exist "
            "(a checkpoint is only complete once its manifest is written)"
        )
    data_path = manifest_path[: -len(_MANIFEST_SUFFIX)] + _DATA_SUFFIX
    return manifest_path, data_path, earlier


def _read_manifest(manifest_path: str) -> dict:
    try:
        with open(manifest_path, "rb") as f:
            raw = f.read(_MAX_MANIFEST_BYTES + 1)
    except OSError as e:
        raise CheckpointError(f"{manifest_path}: unreadable manifest: {e}") from None
    manifest = decode_manifest(raw, manifest_path)
    for key in ("step", "sha256", "tensors", "structure"):
        if key not in manifest:
            raise CheckpointError(f"{manifest_path}: manifest lacks {key!r}")
    named = _MANIFEST_RE.match(os.path.basename(manifest_path))
    if named and int(named.group(1)) != manifest["step"]:
        raise CheckpointError(f"{manifest_path}: the manifest is step {manifest['step']}'s, "
                              f"not step {int(named.group(1))}'s (renamed or swapped)")
    return manifest


def _load_verified(manifest_path: str, data_path: str) -> tuple[dict, dict[str, np.ndarray]]:
    from safetensors.numpy import load as _st_load

    manifest = _read_manifest(manifest_path)
    try:
        with open(data_path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CheckpointError(f"{data_path}: cannot read checkpoint data: {e}") from None

    if manifest.get("data_file", os.path.basename(data_path)) != os.path.basename(data_path):
        raise CheckpointError(f"{manifest_path}: manifest describes {manifest['data_file']!r}, "
                              f"not {os.path.basename(data_path)!r} (renamed or swapped)")
    expected_size = manifest.get("data_size")
    if expected_size is not None and len(data) != expected_size:
        raise CheckpointError(
            f"{data_path}: file is {len(data)} bytes, manifest says {expected_size} "
            f"({'truncated' if len(data) < expected_size else 'extra data'})"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest["sha256"]:
        raise CheckpointError(
            f"{data_path}: sha256 mismatch (file {digest[:16]}..., manifest "
            f"{str(manifest['sha256'])[:16]}...): the file is corrupt or was altered"
        )
    try:
        raw = _st_load(data)
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{data_path}: not a valid safetensors file: {e}") from None

    table = {t["name"]: t for t in manifest["tensors"]}
    problems = []
    for name in sorted(set(table) - set(raw)):
        problems.append(f"{name}: listed in manifest but missing from the data file")
    for name in sorted(set(raw) - set(table)):
        problems.append(f"{name}: in the data file but not listed in the manifest")
    for name in sorted(set(table) & set(raw)):
        want, arr = table[name], raw[name]
        if arr.dtype.name != want["dtype"] or list(arr.shape) != list(want["shape"]):
            problems.append(
                f"{name}: data file has {_fmt(arr.dtype.name, arr.shape)}, "
                f"manifest says {_fmt(want['dtype'], want['shape'])}"
            )
    structure_names = [n["name"] for n in _iter_tensor_nodes(manifest["structure"])]
    if sorted(structure_names) != sorted(table):
        problems.append("tree structure and tensor table in the manifest disagree")
    if problems:
        raise CheckpointError(
            f"{manifest_path}: manifest does not match {os.path.basename(data_path)}:\n  "
            + "\n  ".join(problems)
        )
    # np.frombuffer views of an immutable bytes object are read-only: copy.
    tensors = {name: np.array(arr, copy=True) for name, arr in raw.items()}
    return manifest, tensors


def _spec_of_like(node: Any, path: tuple[str, ...], out: dict) -> None:
    """Flatten a ``like`` tree into {path: description} for comparison."""
    where = _join(path)
    if node is None:
        out[where] = ("none",)
    elif isinstance(node, dict):
        out[where] = ("dict", tuple(sorted(node)))
        for k, v in node.items():
            _spec_of_like(v, path + (str(k),), out)
    elif isinstance(node, (list, tuple)):
        out[where] = ("list" if isinstance(node, list) else "tuple", len(node))
        for i, v in enumerate(node):
            _spec_of_like(v, path + (str(i),), out)
    elif isinstance(node, np.generic):
        # A NumPy scalar and a 0-d array of the same dtype are interchangeable.
        out[where] = ("array", node.dtype.name, ())
    elif isinstance(node, bool):
        out[where] = ("bool",)
    elif isinstance(node, int):
        out[where] = ("int",)
    elif isinstance(node, float):
        out[where] = ("float",)
    elif isinstance(node, complex):
        out[where] = ("complex",)
    elif isinstance(node, str):
        out[where] = ("str",)
    elif hasattr(node, "shape") and hasattr(node, "dtype"):
        out[where] = ("array", np.dtype(node.dtype).name, tuple(int(d) for d in node.shape))
    elif _is_array_like(node):
        a = np.asarray(node)
        out[where] = ("array", a.dtype.name, a.shape)
    else:
        out[where] = ("unsupported", type(node).__name__)


def _spec_of_structure(node: dict, path: tuple[str, ...], tensors: dict, out: dict) -> None:
    where = _join(path)
    t = node["t"]
    if t == "dict":
        out[where] = ("dict", tuple(sorted(k for k, _ in node["items"])))
        for k, child in node["items"]:
            _spec_of_structure(child, path + (k,), tensors, out)
    elif t in ("list", "tuple"):
        out[where] = (t, len(node["items"]))
        for i, child in enumerate(node["items"]):
            _spec_of_structure(child, path + (str(i),), tensors, out)
    elif t in ("array", "np_scalar"):
        arr = tensors[node["name"]]
        out[where] = ("array", arr.dtype.name, tuple(arr.shape))
    else:
        out[where] = (t,)


def _describe(spec: tuple) -> str:
    kind = spec[0]
    if kind == "array":
        return _fmt(spec[1], spec[2])
    if kind == "dict":
        return "dict with keys [" + ", ".join(spec[1]) + "]"
    if kind in ("list", "tuple"):
        return f"{kind} of length {spec[1]}"
    if kind == "none":
        return "None"
    if kind == "unsupported":
        return f"unsupported {spec[1]}"
    return f"Python {kind}"


def _check_like(manifest_path: str, structure: dict, tensors: dict, like: Any) -> None:
    have: dict = {}
    want: dict = {}
    _spec_of_structure(structure, (), tensors, have)
    _spec_of_like(like, (), want)
    problems = []
    reported: set[str] = set()
    for where in sorted(set(have) | set(want), key=lambda w: (w != _ROOT_NAME, w)):
        h, w = have.get(where), want.get(where)
        if h == w:
            continue
        label = "<root>" if where == _ROOT_NAME else where
        # Report each difference once, at the topmost path where it shows.
        parts = where.split("/") if where != _ROOT_NAME else []
        ancestors = {_ROOT_NAME} | {"/".join(parts[:i]) for i in range(1, len(parts))}
        if where != _ROOT_NAME and ancestors & reported:
            continue
        if h is None:
            problems.append(f"{label}: missing from checkpoint (model expects {_describe(w)})")
        elif w is None:
            problems.append(f"{label}: in checkpoint ({_describe(h)}) but not expected by model")
        elif h[0] == w[0] == "dict":
            continue  # differing keys are reported as missing/unexpected children
        else:
            problems.append(f"{label}: checkpoint has {_describe(h)}, model expects {_describe(w)}")
        reported.add(where)
    if problems:
        raise CheckpointError(
            f"{manifest_path}: checkpoint does not match the expected tree "
            f"({len(problems)} mismatch{'es' if len(problems) != 1 else ''}):\n  "
            + "\n  ".join(problems)
        )


def select_names(names, include=None, exclude=None, rename=None) -> dict:
    """``{new_name: old_name}`` for the ``names`` that ``include`` matches and
    ``exclude`` does not (regular expressions, ``re.search``; None: all and
    none), each renamed by ``rename``'s ``{pattern: replacement}`` items in
    turn (``re.sub``).  Two names renamed to one raise :class:`CheckpointError`."""
    try:
        inc = re.compile(include) if include is not None else None
        exc = re.compile(exclude) if exclude is not None else None
        subs = [(re.compile(p), r) for p, r in (rename or {}).items()]
    except re.error as e:
        raise CheckpointError(f"bad regular expression in include/exclude/rename: {e}") from None
    out: dict = {}
    for name in names:
        if (inc is not None and not inc.search(name)) or (exc is not None and exc.search(name)):
            continue
        new = name
        for pattern, replacement in subs:
            new = pattern.sub(replacement, new)
        if new in out:
            raise CheckpointError(f"rename maps both {out[new]!r} and {name!r} to {new!r}")
        out[new] = name
    return out


class Loaded(tuple):
    """``(step, tree, metadata)`` from :func:`load_checkpoint`, plus
    ``restored``: ``{name in the result: name in the checkpoint}`` of every
    array or scalar it took from the checkpoint."""

    def __new__(cls, step, tree, metadata, restored):
        self = super().__new__(cls, (step, tree, metadata))
        self.restored = restored
        return self

    step = property(lambda self: self[0])
    tree = property(lambda self: self[1])
    metadata = property(lambda self: self[2])


def _leaves(tree: Any, path: tuple[str, ...], out: dict) -> dict:
    """``{path: leaf}`` of a tree of dicts, lists and tuples (None is no leaf)."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            _leaves(value, path + (str(key),), out)
    elif isinstance(tree, (list, tuple)):
        for i, value in enumerate(tree):
            _leaves(value, path + (str(i),), out)
    elif tree is not None:
        out[_join(path)] = tree
    return out


def _replace_leaves(like: Any, path: tuple[str, ...], values: dict) -> Any:
    """``like`` with the leaves named in ``values`` replaced (types kept)."""
    if isinstance(like, dict):
        return type(like)((k, _replace_leaves(v, path + (str(k),), values))
                          for k, v in like.items())
    if isinstance(like, (list, tuple)):
        items = [_replace_leaves(v, path + (str(i),), values) for i, v in enumerate(like)]
        if isinstance(like, list):
            return items
        return type(like)(*items) if hasattr(like, "_fields") else type(like)(items)
    name = _join(path)
    return values[name] if name in values else like


def _nested(flat: dict) -> dict:
    tree: dict = {}
    for name, value in flat.items():
        *parents, last = name.split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return tree


def _spec_of_leaf(x: Any) -> str:
    if isinstance(x, (bool, int, float, complex, str)):
        return f"Python {type(x).__name__}"
    a = x if hasattr(x, "shape") and hasattr(x, "dtype") else np.asarray(x)
    return _fmt(np.dtype(a.dtype).name, tuple(int(d) for d in a.shape))


def _partial(manifest_path: str, tree: Any, like: Any, include, exclude, rename):
    """The selected (and renamed) entries of ``tree``, alone (``like`` None) or
    put into ``like``; and ``{new name: checkpoint name}``."""
    have = _leaves(tree, (), {})
    mapping = select_names(have, include, exclude, rename)
    values = {new: have[old] for new, old in mapping.items()}
    if like is None:
        check_selection(manifest_path, mapping, have, None)
        return _nested(values), mapping
    check_selection(manifest_path, mapping, have, _leaves(like, (), {}))
    return _replace_leaves(like, (), values), mapping


def check_selection(path, mapping: dict, have: dict, want: dict | None, prefix: str = ""):
    """Raise a ``CheckpointError`` naming ``path`` unless ``mapping`` (new name
    -> checkpoint name, from :func:`select_names`) selects something and every
    selected entry of ``have`` fits the leaf of ``want`` it is restored into
    (``want`` None: no model to fit)."""
    if not mapping:
        raise CheckpointError(f"{path}: include/exclude select nothing; the checkpoint "
                              f"has {sorted(prefix + n for n in have)}")
    if want is None:
        return
    problems = [f"{prefix}{new}: not in this model (from checkpoint entry {old})"
                for new, old in mapping.items() if new not in want]
    problems += [f"{prefix}{new}: checkpoint entry {old} has {_spec_of_leaf(have[old])}, model "
                 f"expects {_spec_of_leaf(want[new])}" for new, old in mapping.items()
                 if new in want and _spec_of_leaf(have[old]) != _spec_of_leaf(want[new])]
    if problems:
        raise CheckpointError(f"{path}: the selected entries do not fit this model "
                              f"({len(problems)} problem{'s' if len(problems) != 1 else ''}):"
                              f"\n  " + "\n  ".join(problems))


def load_checkpoint(
    path_or_directory: str | os.PathLike, like: Any = None, *, include: str | None = None,
    exclude: str | None = None, rename: dict | None = None,
) -> Loaded:
    """Load a checkpoint; return ``(step, tree, metadata)``.

    ``path_or_directory`` is a checkpoint's manifest (``.json``) or data
    (``.safetensors``) path, or a directory, meaning its latest checkpoint by
    step.  If that latest checkpoint is corrupt this raises
    :class:`CheckpointError`; it never silently falls back to an older one
    (load that one by path if that is what you want).

    The data file's size and sha256 and every tensor's dtype and shape are
    verified against the manifest.  If ``like`` is given, the loaded tree's
    structure, names, dtypes and shapes must match it (its leaves may be arrays
    or anything with ``.shape`` and ``.dtype``); every mismatch is reported.

    With ``include``, ``exclude`` or ``rename`` (module docstring) only the
    selected entries are loaded, renamed: into ``like`` (its other leaves
    kept; each selected entry must exist there with the same dtype and
    shape) or, without ``like``, as a tree of dicts of just those entries.
    The result's ``restored`` says which names were loaded from where.
    """
    manifest_path, data_path, earlier = _resolve(path_or_directory)
    try:
        manifest, tensors = _load_verified(manifest_path, data_path)
        tree = _unflatten(manifest["structure"], tensors)
    except CheckpointError as e:
        if earlier:
            prev = ", ".join(os.path.basename(p) for _, p in earlier[-3:])
            raise CheckpointError(
                f"{e}\n(latest checkpoint in the directory is unusable; earlier ones "
                f"exist: {prev} -- load one by path to fall back)"
            ) from None
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{manifest_path}: malformed manifest structure: {e!r}") from None
    step, metadata = int(manifest["step"]), manifest.get("metadata")
    if include is not None or exclude is not None or rename:
        tree, mapping = _partial(manifest_path, tree, like, include, exclude, rename)
        return Loaded(step, tree, metadata, mapping)
    if like is not None:
        _check_like(manifest_path, manifest["structure"], tensors, like)
    return Loaded(step, tree, metadata, {name: name for name in _leaves(tree, (), {})})
