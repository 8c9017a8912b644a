"""Saving and loading models: one ``.npz`` of arrays plus JSON metadata, never pickle.

File layout: every parameter array under its own name, and a ``__meta__`` entry holding a
UTF-8 JSON document ``{"format": "rbmrec", "format_version": 1, "rbmrec_version": ...,
"class": "module:QualName", "meta": {...}}``. Loading uses ``allow_pickle=False`` and only
instantiates classes registered with :func:`register`, so a foreign or tampered file cannot
run code. Writes go to a temporary file that is renamed into place, so a crash never leaves a
half-written model.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
import zipfile
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
    from rbmrec import __version__

    key = f"{type(model).__module__}:{type(model).__qualname__}"
    if key not in _REGISTRY:
        raise TypeError(f"{type(model).__name__} is not a registered rbmrec model")
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
        blob = json.dumps(doc, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"model metadata is not JSON-serialisable: {exc}") from exc
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            payload = {_META_KEY: np.frombuffer(blob.encode("utf-8"), dtype=np.uint8)}
            payload.update(arrays)
            np.savez(fh, **payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            if _META_KEY not in names:
                raise ModelFileError(f"{path} is not an rbmrec model file (no metadata)")
            doc = json.loads(npz[_META_KEY].tobytes().decode("utf-8"))
            arrays = {n: npz[n] for n in names if n != _META_KEY}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
        raise ModelFileError(f"{path} is corrupted or not an rbmrec model file: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not an rbmrec model file")
    version = doc.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has model format version {version}; this rbmrec reads version {FORMAT_VERSION}"
        )
    key = doc.get("class", "")
    if key not in _REGISTRY and isinstance(key, str) and key.startswith("rbmrec."):
        # Importing the defining module registers the class.
        try:
            importlib.import_module(key.split(":", 1)[0])
        except ImportError:
            pass
    cls = _REGISTRY.get(key)
    if cls is None:
        raise ModelFileError(f"{path} holds an unknown model class {key!r}")
    try:
        return cls._from_state(arrays, doc.get("meta", {}))
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelFileError(f"{path} is missing or has malformed model fields: {exc}") from exc
