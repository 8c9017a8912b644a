"""Saving and loading models: one ``.npz`` of arrays plus JSON metadata, never pickle.

File layout: every parameter array under its own name, and a ``__meta__`` entry holding a
UTF-8 JSON document ``{"format": "rbmrec", "format_version": 1, "rbmrec_version": ...,
"class": "module:QualName", "meta": {...}}``. Loading uses ``allow_pickle=False`` and only
instantiates classes registered with :func:`register`, so a foreign or tampered file cannot
run code. Writes go to a temporary file that is renamed into place, so a crash never leaves a
half-written model; the file gets the permissions ``open()`` would give it (``0o666`` less the
umask for a new file, the old file's mode when one is replaced).

:func:`model_to_arrays` and :func:`model_from_arrays` are the format's one writer and one
reader: :func:`save` and :func:`load` store those arrays as a file of their own, and the model
bundle (:mod:`rbmrec.bundle`) stores them inside its file.

NumPy scalars in the metadata (e.g. ``n_hidden=np.int64(8)`` from a grid built with NumPy)
are written as the equivalent Python numbers, so :func:`load` gives back plain ``int`` and
``float`` values. Fields added after a file was written are optional when it is read: older
files load with their defaults.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import stat
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from rbmrec.errors import ModelFileError

FORMAT = "rbmrec"
FORMAT_VERSION = 1
_META_KEY = "__meta__"
_REGISTRY: dict[str, type] = {}


class Persistable(Protocol):
    """What a saveable model implements."""

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]: ...

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Any: ...


T = TypeVar("T", bound=type)


def register(cls: T) -> T:
    """Class decorator: allow :func:`load` to rebuild instances of ``cls``."""
    _REGISTRY[f"{cls.__module__}:{cls.__qualname__}"] = cls
    return cls


def registered_class(key: str) -> type | None:
    """The registered class of a file's ``"module:QualName"`` key (importing an rbmrec
    module registers its classes), or None; for models that save other models inside."""
    if key not in _REGISTRY and key.startswith("rbmrec."):
        with contextlib.suppress(ImportError):
            importlib.import_module(key.split(":", 1)[0])
    return _REGISTRY.get(key)


def _json_default(obj: Any) -> Any:
    """``json.dumps`` hook: NumPy scalars become the equivalent Python values."""
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def seed_to_json(random_state: Any) -> Any:
    """JSON form of a ``random_state``: an int, a SeedSequence as a dict, else None.

    A ``numpy.random.Generator`` has no seed to save (None); models that keep drawing from
    their generator after ``fit`` save its state separately.
    """
    if isinstance(random_state, bool):
        return None
    if isinstance(random_state, int | np.integer):
        return int(random_state)
    if isinstance(random_state, np.random.SeedSequence):
        entropy = random_state.entropy
        return {
            "seed_sequence": {
                "entropy": int(entropy) if np.ndim(entropy) == 0 else [int(e) for e in entropy],
                "spawn_key": [int(k) for k in random_state.spawn_key],
                "pool_size": int(random_state.pool_size),
            }
        }
    return None


def seed_from_json(value: Any) -> Any:
    """Inverse of :func:`seed_to_json`."""
    if value is None:
        return None
    if isinstance(value, dict):
        ss = value["seed_sequence"]
        return np.random.SeedSequence(
            ss["entropy"], spawn_key=tuple(ss["spawn_key"]), pool_size=int(ss["pool_size"])
        )
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"random_state must be an int, a seed sequence or null, got {value!r}")
    return value


#: Bit generators :func:`generator_from_json` may rebuild (never a name looked up freely).
_BIT_GENERATORS = {
    cls.__name__: cls
    for cls in (
        np.random.PCG64,
        np.random.PCG64DXSM,
        np.random.MT19937,
        np.random.Philox,
        np.random.SFC64,
    )
}


def _plain(value: Any) -> Any:
    """``value`` with arrays turned into lists and NumPy scalars into Python ones."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def generator_to_json(rng: np.random.Generator) -> dict[str, Any]:
    """JSON form of a Generator's exact position (its bit generator's ``state``)."""
    return _plain(rng.bit_generator.state)


def generator_from_json(state: dict[str, Any]) -> np.random.Generator:
    """A Generator at the position saved by :func:`generator_to_json`."""
    cls = _BIT_GENERATORS.get(state.get("bit_generator"))
    if cls is None:
        raise ValueError(f"unknown bit generator {state.get('bit_generator')!r}")
    bit_generator = cls()
    if cls is np.random.MT19937:
        state = {**state, "state": {**state["state"], "key": np.asarray(state["state"]["key"])}}
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: the classic set-and-restore
    os.umask(mask)
    return mask


def file_mode(path: str | os.PathLike) -> int:
    """Permissions ``open(path, "w")`` would leave: those of the existing file, or 0o666 less
    the umask for a new one (``mkstemp`` creates its files 0o600)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def write_atomically(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Write a file all or nothing: ``write(tmp)`` fills a temporary file, then it is renamed.

    The temporary file is created in ``path``'s folder (created when missing), so the final
    :func:`os.replace` is atomic; a failure (disk full, Ctrl-C) removes it and leaves any
    previous file at ``path`` untouched. A replaced file keeps its permissions; a symbolic
    link is written through (its target is replaced, as ``open()`` would write it).

    Parameters
    ----------
    path : str or path-like
        The final file.
    write : callable
        Called with the temporary path (which has ``path``'s suffix); writes the content.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    given = path = Path(path)
    if path.is_symlink():
        # Write through the link, as open() would, instead of replacing the link itself.
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with contextlib.suppress(OSError):
            os.chmod(tmp, file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    return given


# ---------------------------------------------------------------------- model file checks
# For the models' ``_from_state`` (RBM, RatingRBM, ImplicitRBM): the Numba kernels index
# memory with the loaded arrays unchecked, so a tampered or damaged file must fail here, with
# a ModelFileError naming the array, instead of crashing the process or predicting garbage.


def check_file_array(
    arrays: Mapping[str, np.ndarray],
    name: str,
    shape: Sequence[int | None],
    *,
    dims: Sequence[str] | None = None,
    dtype: Any = None,
    kind: str | None = None,
    finite: bool = False,
) -> np.ndarray:
    """The array ``name`` of a model file, after checking it.

    Parameters
    ----------
    arrays : mapping of str to ndarray
        The file's arrays.
    name : str
        The array to check (named in the error message).
    shape : sequence of int or None
        Expected shape; None for an axis of any length.
    dims : sequence of str, optional
        What each axis counts (``"n_items"``, ``"n_hidden"``, ...), for the error message.
    dtype : numpy dtype, optional
        Exact dtype required (the model's float dtype for parameters).
    kind : str, optional
        Allowed ``dtype.kind`` characters (``"iu"`` for index arrays), when ``dtype`` is None.
    finite : bool, default False
        Require every entry to be finite (no NaN or infinity).

    Returns
    -------
    ndarray
        The array, C-contiguous, dtype unchanged.

    Raises
    ------
    ModelFileError
        If the array is missing or fails a check.
    """
    if name not in arrays:
        raise ModelFileError(f"array {name!r} is missing")
    a = np.asarray(arrays[name])
    shape = tuple(shape)
    shown = "(" + ", ".join("*" if n is None else str(n) for n in shape)
    shown += ",)" if len(shape) == 1 else ")"
    what = f" = ({', '.join(dims)})" if dims else ""
    if a.ndim != len(shape) or any(
        n is not None and n != m for n, m in zip(shape, a.shape, strict=True)
    ):
        raise ModelFileError(f"array {name!r} has shape {a.shape}, expected {shown}{what}")
    if dtype is not None and a.dtype != np.dtype(dtype):
        raise ModelFileError(f"array {name!r} has dtype {a.dtype}, expected {np.dtype(dtype)}")
    if dtype is None and kind is not None and a.dtype.kind not in kind:
        expected = "an integer" if kind == "iu" else "a floating-point" if kind == "f" else kind
        raise ModelFileError(f"array {name!r} has dtype {a.dtype}, expected {expected} dtype")
    if finite and not np.all(np.isfinite(a)):
        raise ModelFileError(f"array {name!r} holds NaN or infinite values")
    return np.ascontiguousarray(a)


def check_file_range(name: str, a: np.ndarray, low: float, high: float) -> None:
    """ModelFileError unless every entry of the array ``name`` lies in ``[low, high)``."""
    if a.size and (a.min() < low or a.max() >= high):
        raise ModelFileError(
            f"array {name!r} holds values in [{a.min()}, {a.max()}], outside [{low}, {high})"
        )


def check_file_csr(
    arrays: Mapping[str, np.ndarray],
    indptr_name: str,
    indices_name: str,
    n_rows: int | None,
    n_cols: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The index arrays of a CSR matrix stored in a model file, checked.

    ``indptr`` must be an integer array of ``n_rows + 1`` entries (any length >= 1 when
    ``n_rows`` is None) rising from 0 to ``len(indices)`` without decreasing, and ``indices``
    integers in ``[0, n_cols)``.

    Returns
    -------
    indptr : int64 ndarray
    indices : int32 ndarray

    Raises
    ------
    ModelFileError
        Naming the array and the problem.
    """
    indices = check_file_array(arrays, indices_name, (None,), kind="iu")
    n = None if n_rows is None else n_rows + 1
    indptr = check_file_array(arrays, indptr_name, (n,), kind="iu")
    nnz = len(indices)
    # Value checks before any cast, so a huge unsigned value cannot wrap around.
    if len(indptr) == 0 or indptr[0] != 0 or indptr[-1] != nnz:
        ends = (indptr[0], indptr[-1]) if len(indptr) else "empty"
        raise ModelFileError(
            f"array {indptr_name!r} must run from 0 to {nnz} (the length of "
            f"{indices_name!r}), got {ends}"
        )
    check_file_range(indptr_name, indptr, 0, nnz + 1)
    indptr = indptr.astype(np.int64, copy=False)
    if np.any(np.diff(indptr) < 0):
        raise ModelFileError(f"array {indptr_name!r} decreases")
    check_file_range(indices_name, indices, 0, n_cols)
    return indptr, indices.astype(np.int32, copy=False)


def model_to_arrays(model: Persistable) -> dict[str, np.ndarray]:
    """The arrays that hold ``model`` in a file: its parameters plus the ``__meta__`` entry.

    The one writer of the model format: :func:`save` stores these arrays as an ``.npz``, and
    a container (the model bundle) can store them under a prefix of its own.

    Parameters
    ----------
    model : registered model instance
        Must be fitted; its ``_get_state()`` provides arrays and JSON-able metadata.

    Returns
    -------
    dict of str to ndarray
        ``__meta__`` (uint8, the UTF-8 JSON document) and the model's arrays.

    Raises
    ------
    TypeError
        If the class is not registered or the metadata is not JSON-serialisable.
    NotFittedError
        If the model is not fitted.
    """
    from rbmrec import __version__

    key = f"{type(model).__module__}:{type(model).__qualname__}"
    if key not in _REGISTRY:
        raise TypeError(f"{type(model).__name__} is not a registered rbmrec model")
    check = getattr(model, "_check_fitted", None)
    if callable(check):
        check()  # NotFittedError before fit, as the models' own save() gives
    arrays, meta = model._get_state()
    if _META_KEY in arrays:
        raise ValueError(f"array name {_META_KEY!r} is reserved")
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rbmrec_version": __version__,
        "class": key,
        "meta": meta,
    }
    try:
        # NaN and infinities are allowed: a history can hold them (the reconstruction error
        # of an epoch before a divergence, an infinite validation RMSE). They are written as
        # the NaN / Infinity tokens that json.loads reads back.
        blob = json.dumps(doc, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"model metadata is not JSON-serialisable: {exc}") from exc
    payload = {_META_KEY: np.frombuffer(blob.encode("utf-8"), dtype=np.uint8)}
    payload.update(arrays)
    return payload


def json_header(
    blob: np.ndarray, source: str, fmt: str, version: int, kind: str
) -> dict[str, Any]:
    """The JSON document a file stores as bytes, checked for its format and version.

    The one reader of the self-describing headers of model files and model bundles.

    Parameters
    ----------
    blob : ndarray of uint8, shape (n_bytes,)
        The UTF-8 encoded JSON object.
    source : str
        Where the bytes come from, for error messages (a path).
    fmt : str
        The expected ``"format"`` field.
    version : int
        The ``"format_version"`` this rbmrec reads.
    kind : str
        ``"model"`` or ``"bundle"``, for error messages.

    Returns
    -------
    dict
        The document.

    Raises
    ------
    ModelFileError
        If the bytes are not a JSON object, or name another format or version.
    """
    try:
        doc = json.loads(np.asarray(blob).tobytes().decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ModelFileError(f"{source} is corrupted (unreadable {kind} header: {exc})") from None
    name = "model file" if kind == "model" else f"model {kind}"
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise ModelFileError(f"{source} is not an rbmrec {name}")
    found = doc.get("format_version")
    if found != version:
        raise ModelFileError(
            f"{source} has {kind} format version {found}; this rbmrec reads version {version}"
        )
    return doc


def model_from_arrays(arrays: Mapping[str, np.ndarray], source: str = "the model file") -> Any:
    """The model held by ``arrays`` (as :func:`model_to_arrays` gives them).

    The one reader of the model format: :func:`load` and the model bundle call it with the
    arrays of their file.

    Parameters
    ----------
    arrays : mapping of str to ndarray
        ``__meta__`` and the model's arrays.
    source : str, default "the model file"
        Where the arrays come from, for error messages (a path).

    Raises
    ------
    ModelFileError
        If the arrays are not an rbmrec model, come from an incompatible format version, or
        hold malformed fields.
    """
    if _META_KEY not in arrays:
        raise ModelFileError(f"{source} is not an rbmrec model file (no metadata)")
    doc = json_header(arrays[_META_KEY], source, FORMAT, FORMAT_VERSION, "model")
    key = doc.get("class", "")
    if not isinstance(key, str):
        raise ModelFileError(f"{source} has a malformed model class {key!r}")
    if key not in _REGISTRY and key.startswith("rbmrec."):
        # Importing the defining module registers the class.
        with contextlib.suppress(ImportError):
            importlib.import_module(key.split(":", 1)[0])
    cls = _REGISTRY.get(key)
    if cls is None:
        raise ModelFileError(f"{source} holds an unknown model class {key!r}")
    meta = doc.get("meta", {})
    if not isinstance(meta, dict):
        raise ModelFileError(f"{source} has malformed model metadata ({type(meta).__name__})")
    state = {n: a for n, a in arrays.items() if n != _META_KEY}
    try:
        return cls._from_state(state, meta)
    except ModelFileError as exc:
        raise ModelFileError(f"{source}: {exc}") from exc
    except (KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ModelFileError(f"{source} is missing or has malformed model fields: {exc}") from exc


def save(model: Persistable, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` (``.npz`` is appended when missing) atomically.

    Parameters
    ----------
    model : registered model instance
        Must be fitted; its ``_get_state()`` provides arrays and JSON-able metadata.
    path : str or path-like
        Destination file.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    return write_npz(path, model_to_arrays(model))


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` to an uncompressed ``.npz`` atomically (:func:`write_atomically`).

    Parameters
    ----------
    path : str or path-like
        Destination; ``.npz`` is appended when the name has another suffix.
    arrays : mapping of str to ndarray
        The file's arrays, by name.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    return write_atomically(path, write)


def read_npz(path: str | os.PathLike, what: str = "rbmrec model file") -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read with ``allow_pickle=False``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is not an ``.npz`` archive or is corrupted or truncated (``what`` names
        the kind of file expected).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a .npy file gives an array
            raise ModelFileError(f"{path} is not an {what} (not an .npz archive)")
        with loaded as npz:
            return {n: npz[n] for n in npz.files}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
        raise ModelFileError(f"{path} is corrupted or not an {what}: {exc}") from exc


def load(path: str | os.PathLike) -> Any:
    """Load a model written by :func:`save`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is not an rbmrec model, is corrupted or truncated, or comes from an
        incompatible format version.
    """
    arrays = read_npz(path)
    if _META_KEY not in arrays and "__bundle__" in arrays:
        raise ModelFileError(
            f"{path} is a model bundle (as `rbmrec fit` writes): read it with "
            "rbmrec.ModelBundle.load (its model is the bundle's .model)"
        )
    return model_from_arrays(arrays, source=str(Path(path)))
