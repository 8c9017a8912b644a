"""Reading the three-file models of rbmrec 0.1.0's ``rbmrec fit``.

``MODEL.npz`` is a model file of :func:`rbmrec.save`; beside it:

- ``MODEL.npz.ids.json``: ``{"user_ids": [...], "item_ids": [...], "titles": [...] | null,
  "data": "...", "model": "...", "model_sha256": "...", "token": "..."}``, raw ids in index
  order, the model's class, the SHA-256 of the model file and a random token;
- ``MODEL.npz.seen.npz``: the training ratings (scipy sparse, users x items) plus the same
  token (an extra ``rbmrec_token`` array).

The side files are checked against the model (shapes, class, hash, token): a damaged or
foreign side file is a :class:`~rbmrec.errors.ModelFileError` naming it. Side files written
before the hash and token existed are read with a warning.
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.errors import ModelFileError

#: Name of the token array in ``MODEL.npz.seen.npz`` (scipy ignores it).
SEEN_TOKEN = "rbmrec_token"
_REFIT = "; refit the model with `rbmrec fit`"


def side_files(model_path: Path) -> tuple[Path, Path]:
    """``(MODEL.npz.ids.json, MODEL.npz.seen.npz)`` of a model path."""
    return (
        model_path.with_name(model_path.name + ".ids.json"),
        model_path.with_name(model_path.name + ".seen.npz"),
    )


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_shape(model: Any) -> tuple[int, int] | None:
    """``(n_users, n_items)`` a loaded model was fitted on, when it says."""
    if hasattr(model, "n_users_") and hasattr(model, "n_items_"):
        return int(model.n_users_), int(model.n_items_)
    stored = getattr(model, "user_items_", None)
    if stored is not None and getattr(stored, "ndim", 0) == 2:
        return int(stored.shape[0]), int(stored.shape[1])
    return None


def _read_doc(ids_path: Path) -> dict[str, Any]:
    """The JSON object of ``MODEL.npz.ids.json`` (ModelFileError when missing or damaged)."""
    if not ids_path.is_file():
        raise ModelFileError(
            f"{ids_path} is missing: models for `rbmrec recommend` are written by `rbmrec fit` "
            "(or rbmrec.bundle.ModelBundle.save)"
        )
    try:
        doc = json.loads(ids_path.read_text(encoding="utf-8"))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ModelFileError(f"{ids_path} is damaged (not valid JSON: {exc}){_REFIT}") from None
    if not isinstance(doc, dict):
        raise ModelFileError(f"{ids_path} is damaged (not a JSON object){_REFIT}")
    return doc


def read_ids(
    ids_path: Path, model_path: Path, model: Any
) -> tuple[list, list, list | None, str | None, str | None]:
    """``user_ids, item_ids, titles, data_name, token`` of ``MODEL.npz.ids.json``, checked
    against the model.

    The file must list as many users and items as the model was fitted on, name the model's
    class, and (files of the last three-file version) give the SHA-256 of the model file's
    bytes; ``token`` (None in older files) must then be in ``MODEL.npz.seen.npz`` too.
    """
    doc = _read_doc(ids_path)
    user_ids, item_ids, titles = doc.get("user_ids"), doc.get("item_ids"), doc.get("titles")
    for key, value in (("user_ids", user_ids), ("item_ids", item_ids)):
        if not isinstance(value, list):
            raise ModelFileError(f"{ids_path} is damaged ({key!r} missing or not a list){_REFIT}")
    if titles is not None and (not isinstance(titles, list) or len(titles) != len(item_ids)):
        raise ModelFileError(
            f"{ids_path} is damaged ('titles' is not a list of one title per item){_REFIT}"
        )
    shape = model_shape(model)
    if shape is not None and shape != (len(user_ids), len(item_ids)):
        raise ModelFileError(
            f"{ids_path} lists {len(user_ids)} users and {len(item_ids)} items, but "
            f"{model_path} was fitted on {shape[0]} users and {shape[1]} items: the side file "
            f"belongs to another model{_REFIT}"
        )
    kind = doc.get("model")
    if isinstance(kind, str) and kind != type(model).__name__:
        raise ModelFileError(
            f"{ids_path} was written for a model of class {kind}, but {model_path} is a "
            f"{type(model).__name__}: the side file belongs to another model{_REFIT}"
        )
    data = doc.get("data") if isinstance(doc.get("data"), str) else None
    digest, token = doc.get("model_sha256"), doc.get("token")
    if digest is None:
        warnings.warn(
            f"{ids_path} was written by an older rbmrec: its match with the model cannot be "
            "fully checked; refit with `rbmrec fit` to enable the check",
            UserWarning,
            stacklevel=2,
        )
        return user_ids, item_ids, titles, data, None
    if not isinstance(digest, str) or not isinstance(token, str):
        raise ModelFileError(f"{ids_path} is damaged ('model_sha256' or 'token'){_REFIT}")
    if digest != file_sha256(model_path):
        raise ModelFileError(
            f"{ids_path} was written for another model file than {model_path} (the model "
            f"was replaced or the side file copied from elsewhere){_REFIT}"
        )
    return user_ids, item_ids, titles, data, token


def read_seen(
    seen_path: Path, shape: tuple[int, int], excluding: bool, token: str | None = None
) -> sp.csr_matrix:
    """The training ratings of ``MODEL.npz.seen.npz``, checked to be ``shape`` and (``token``
    given) to carry the token of the model's ``ids.json``.

    ``excluding``: they are read to leave the seen items out (else only to merge a known
    user's new ratings), which the message of a missing file says.
    """
    if not seen_path.is_file():
        why = (
            "the training ratings that --exclude-seen (the default) leaves out"
            if excluding
            else "the user's training ratings, merged with --ratings for a known user"
        )
        raise ModelFileError(
            f"{seen_path} is missing: it holds {why}{_REFIT}"
            + (", or pass --include-seen" if excluding else "")
        )
    try:
        seen = sp.load_npz(seen_path).tocsr()
        with np.load(seen_path, allow_pickle=False) as npz:
            stored = str(npz[SEEN_TOKEN]) if SEEN_TOKEN in npz.files else None
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"{seen_path} is damaged ({exc}){_REFIT}") from None
    if seen.shape != shape:
        raise ModelFileError(
            f"{seen_path} holds {seen.shape[0]} users x {seen.shape[1]} items, but the model "
            f"has {shape[0]} x {shape[1]}: the side file belongs to another model{_REFIT}"
        )
    if token is not None and stored != token:
        raise ModelFileError(
            f"{seen_path} was written by another `rbmrec fit` than the model's ids.json: "
            f"the side file belongs to another model{_REFIT}"
        )
    return seen.astype(np.float32)
