"""The model bundle: a fitted model with its raw-id maps and the users' seen items.

Models work in dense int32 indices (the ``implicit`` contract); a bundle takes and returns
the raw ids of the data (strings or integers, as in the user's files) and keeps the training
ratings, so seen items can be left out of recommendations.

File format (one ``.npz``, written atomically, read with ``allow_pickle=False``):

- ``__bundle__``: uint8, a UTF-8 JSON document ``{"format": "rbmrec-bundle",
  "format_version": 1, "rbmrec_version": ..., "model": class name, "name": data name or
  null, "n_users": ..., "n_items": ..., "has_seen": bool, "has_titles": bool}``;
- ``model/<array>``: the arrays of :func:`rbmrec.models.persistence.model_to_arrays` (the
  model file format, ``model/__meta__`` included);
- ``user_ids``, ``item_ids``: raw ids in index order, shape (n_users,) and (n_items,),
  int64 or unicode;
- ``titles`` (when ``has_titles``): unicode, shape (n_items,);
- ``seen_indptr`` (int64, shape (n_users + 1,)), ``seen_indices`` (int32, shape (nnz,)),
  ``seen_data`` (float32, shape (nnz,)) (when ``has_seen``): the training ratings as CSR.

:meth:`ModelBundle.load` also reads the three files of rbmrec 0.1.0's ``rbmrec fit``
(``MODEL.npz`` + ``MODEL.npz.ids.json`` + ``MODEL.npz.seen.npz``).
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.bundle import _legacy
from rbmrec.bundle._ratings_file import ItemRatings
from rbmrec.data.idmap import IdMap, UnknownIdError
from rbmrec.errors import DataError, ModelFileError
from rbmrec.models.persistence import (
    check_file_array,
    check_file_csr,
    json_header,
    model_from_arrays,
    model_to_arrays,
    read_npz,
    write_npz,
)

BUNDLE_FORMAT = "rbmrec-bundle"
BUNDLE_FORMAT_VERSION = 1
_HEADER = "__bundle__"
_MODEL_PREFIX = "model/"
_MODEL_META = "__meta__"


def _id_map(ids: Any, name: str) -> IdMap:
    return ids if isinstance(ids, IdMap) else IdMap(ids, name=name)


def _index(ids: IdMap, raw: Any) -> int:
    """Index of one raw id, -1 when unknown. Text is accepted for integer ids when it is the
    id as written (``"42"``; not ``"042"``), so ids typed on a command line or read from a
    CSV file match."""
    found = int(ids.to_index(raw, unknown="minus_one"))
    if found < 0 and ids.dtype.kind == "i" and isinstance(raw, str):
        text = raw.strip()
        try:
            value = int(text)
        except ValueError:
            return -1
        if str(value) == text:
            found = int(ids.to_index(value, unknown="minus_one"))
    return found


def _indices(ids: IdMap, raw: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(raw ids as a 1-D array, their int32 indices with -1 for unknown ids)``; one
    vectorised lookup, then :func:`_index` for the misses (text forms of integer ids)."""
    values = np.asarray(raw)
    values = values.reshape(-1) if values.ndim else values.reshape(1)
    found = np.asarray(ids.to_index(values, unknown="minus_one"), dtype=np.int32)
    for k in np.flatnonzero(found < 0):
        found[k] = _index(ids, values[k].item())
    return values, found


class ModelBundle:
    """A fitted model with its raw-id maps, item titles and the users' seen items.

    Parameters
    ----------
    model : fitted recommender
        Any rbmrec model (``recommend`` in dense int32 indices; ``predict`` for rating
        models); saved with the bundle when it is a registered model class.
    user_ids, item_ids : IdMap or array-like
        Raw id of each user / item index, shapes (n_users,) and (n_items,).
    seen : scipy sparse matrix, shape (n_users, n_items), optional
        The training ratings, used to leave seen items out (``exclude_seen``) and to merge a
        known user's new ratings. None: recommendations need ``exclude_seen=False``.
    titles : sequence of str, optional
        Title of each item index, length n_items.
    name : str, optional
        Name of the training data.

    Examples
    --------
    >>> bundle = ModelBundle.fit(RatingRBM(), ratings)  # doctest: +SKIP
    >>> items, scores = bundle.recommend("alice", N=5)  # doctest: +SKIP
    >>> bundle.save("model.npz"); ModelBundle.load("model.npz")  # doctest: +SKIP
    """

    def __init__(
        self,
        model: Any,
        user_ids: Any,
        item_ids: Any,
        seen: Any = None,
        titles: Any = None,
        name: str | None = None,
    ) -> None:
        self.model = model
        self.user_ids = _id_map(user_ids, "user")
        self.item_ids = _id_map(item_ids, "item")
        self.name = name
        self.source = "the bundle"
        shape = (len(self.user_ids), len(self.item_ids))
        fitted = _legacy.model_shape(model)
        if fitted is not None and fitted != shape:
            raise DataError(
                f"the model was fitted on {fitted[0]} users x {fitted[1]} items, but the id "
                f"maps hold {shape[0]} users and {shape[1]} items"
            )
        if seen is not None:
            if not sp.issparse(seen) or seen.shape != shape:
                raise DataError(
                    f"seen must be a scipy sparse matrix of shape {shape} (users x items), "
                    f"got {getattr(seen, 'shape', type(seen).__name__)}"
                )
            seen = sp.csr_matrix(seen, dtype=np.float32)
        self._seen = seen
        self._seen_loader: Callable[[bool], sp.csr_matrix] | None = None
        if titles is not None:
            titles = [str(t) for t in titles]
            if len(titles) != shape[1]:
                raise DataError(
                    f"titles must give one title per item ({shape[1]}), got {len(titles)}"
                )
        self.titles: list[str] | None = titles

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_ratings(cls, model: Any, ratings: Any, seen: Any = None) -> ModelBundle:
        """A bundle of a model fitted on ``ratings`` (a :class:`rbmrec.data.Ratings`).

        The id maps, titles (when the items have a ``title`` column) and name come from
        ``ratings``; ``seen`` defaults to ``ratings.user_items``.
        """
        titles = None
        if ratings.items is not None and "title" in ratings.items.columns:
            titles = ratings.item_titles(np.arange(ratings.n_items))
        return cls(
            model,
            ratings.user_ids,
            ratings.item_ids,
            seen=ratings.user_items if seen is None else seen,
            titles=titles,
            name=ratings.name,
        )

    @classmethod
    def fit(cls, model: Any, ratings: Any, **fit_params: Any) -> ModelBundle:
        """Fit ``model`` on ``ratings.user_items`` and bundle it (see :meth:`from_ratings`).

        ``fit_params`` go to ``model.fit`` (e.g. ``validation=``).
        """
        model.fit(ratings.user_items, **fit_params)
        return cls.from_ratings(model, ratings)

    # ------------------------------------------------------------------ ids

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def user_index(self, user: Any) -> int | None:
        """Index of a raw user id, None when the training data has no such user."""
        found = _index(self.user_ids, user)
        return None if found < 0 else found

    def item_index(self, item: Any) -> int | None:
        """Index of a raw item id, None when unknown."""
        found = _index(self.item_ids, item)
        return None if found < 0 else found

    def _user(self, user: Any) -> int:
        found = self.user_index(user)
        if found is None:
            raise UnknownIdError(
                f"unknown user {user!r}: not in the training data of {self.source} "
                f"({self.n_users} users); fold a new user in with fold_in()"
            )
        return found

    def _items(self, items: Any) -> np.ndarray:
        raw, idx = _indices(self.item_ids, items)
        if np.any(idx < 0):
            bad = ", ".join(repr(v) for v in raw[idx < 0][:5].tolist())
            raise UnknownIdError(f"unknown item id(s): {bad} (not in {self.source})")
        return idx

    def item_title(self, item: Any) -> str | None:
        """Title of a raw item id (None without titles)."""
        return None if self.titles is None else self.titles[self._items([item])[0]]

    # ------------------------------------------------------------------ seen items

    @property
    def seen(self) -> sp.csr_matrix | None:
        """Training ratings, CSR float32 of shape (n_users, n_items), or None."""
        return self._seen_matrix(excluding=True, required=False)

    def _seen_matrix(self, excluding: bool, required: bool = True) -> sp.csr_matrix | None:
        if self._seen is None and self._seen_loader is not None:
            self._seen = self._seen_loader(excluding)
            self._seen_loader = None
        if self._seen is None and required:
            raise DataError(
                f"{self.source} holds no seen items (training ratings): pass "
                "exclude_seen=False"
            )
        return self._seen

    def user_items(self, user: Any) -> sp.csr_matrix:
        """A known user's training ratings: CSR float32 of shape (1, n_items)."""
        return self._seen_matrix(excluding=False)[self._user(user)]

    # ------------------------------------------------------------------ scoring

    def _ranked(self, ids: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
        ids, scores = np.asarray(ids).reshape(-1), np.asarray(scores, np.float32).reshape(-1)
        keep = ids >= 0  # padding of lists shorter than N
        return self.item_ids.to_raw(ids[keep]), scores[keep]

    def recommend(
        self, user: Any, N: int = 10, *, exclude_seen: bool = True, filter_items: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``N`` items for a known user.

        Parameters
        ----------
        user : raw user id
        N : int, default 10
            List length (at most the number of items).
        exclude_seen : bool, default True
            Leave out the user's training items.
        filter_items : sequence of raw item ids, optional
            Items never recommended.

        Returns
        -------
        items : ndarray, shape (<= N,)
            Raw item ids, best first.
        scores : ndarray of float32, same shape

        Raises
        ------
        UnknownIdError
            If the user is not in the training data (the message names the id).
        """
        index = self._user(user)
        if exclude_seen:
            row = self._seen_matrix(excluding=True)[index]
        else:
            row = sp.csr_matrix((1, self.n_items), dtype=np.float32)
        filtered = None if filter_items is None else self._items(filter_items)
        ids, scores = self.model.recommend(
            index,
            row,
            N=min(int(N), self.n_items),
            filter_already_liked_items=exclude_seen,
            filter_items=filtered,
        )
        return self._ranked(ids, scores)

    def predict(self, users: Any, items: Any) -> np.ndarray:
        """Predicted ratings of raw ``(user, item)`` pairs (rating models only).

        Parameters
        ----------
        users, items : sequences of raw ids, same length n

        Returns
        -------
        ndarray of float, shape (n,)
        """
        if not hasattr(self.model, "predict"):
            raise TypeError(f"{type(self.model).__name__} does not predict ratings")
        raw, u = _indices(self.user_ids, users)
        if np.any(u < 0):
            self._user(raw[u < 0][0].item())  # the error names the first unknown user
        i = self._items(items)
        if len(u) != len(i):
            raise DataError(f"users and items differ in length ({len(u)} vs {len(i)})")
        return np.asarray(self.model.predict(u, i))

    # ------------------------------------------------------------------ fold-in

    @property
    def rating_levels(self) -> np.ndarray | None:
        """The rating levels a new user's ratings must map to (a softmax rating RBM), or
        None (any finite rating)."""
        levels = getattr(self.model, "values_", None)
        if levels is None or np.size(levels) == 0:  # no levels: a gaussian RatingRBM
            return None
        return np.asarray(levels, dtype=np.float64)

    def check_fold_in(self) -> None:
        """NotImplementedError unless the model can score a user absent from training."""
        recommend = getattr(self.model, "recommend", None)
        orientation = getattr(self.model, "orientation", "user")
        members = getattr(self.model, "members_", None) or {}
        if orientation == "item" or (orientation == "both" and "user" not in members):
            what = (
                "this model is item-based"
                if orientation == "item"
                else "this model has no user-based member (its training was interrupted)"
            )
            raise NotImplementedError(
                f"fold-in needs a RatingRBM with a user-based part: {what}; refit with "
                "orientation='both' (the default) or 'user'"
            )
        if recommend is None or "recalculate_user" not in inspect.signature(recommend).parameters:
            raise NotImplementedError(f"{type(self.model).__name__} cannot fold in new users")

    def new_user_row(self, ratings: Any) -> sp.csr_matrix:
        """A new user's ratings as a CSR float32 row of shape (1, n_items).

        Parameters
        ----------
        ratings : mapping of raw item id -> rating, sequence of ``(item, rating)`` pairs, or
            :class:`ItemRatings`
            Each item once; unknown items are an error (an :class:`ItemRatings` lists them
            in ``unknown`` and holds known items only). Any finite rating, 0 and negative
            values included; each is a stored entry of the row.
        """
        if isinstance(ratings, ItemRatings):
            items, values, source = ratings.items, ratings.ratings, ratings.source
        else:
            pairs = list(ratings.items()) if isinstance(ratings, Mapping) else list(ratings)
            items = [p[0] for p in pairs]
            values = np.array([float(p[1]) for p in pairs], dtype=np.float32)
            source = "the ratings"
        if len(items) == 0:
            raise DataError(f"{source}: no ratings of known items")
        cols = self._items(items).astype(np.int64)
        if len(np.unique(cols)) != len(cols):
            raise DataError(f"{source}: an item is given more than once; give each item once")
        if not np.all(np.isfinite(values)):
            raise DataError(f"{source}: ratings must be finite numbers")
        row = sp.csr_matrix(
            (np.asarray(values, np.float32), (np.zeros(len(cols), np.int32), cols)),
            shape=(1, self.n_items),
        )
        row.sort_indices()
        return row

    def fold_in(
        self, ratings: Any, N: int = 10, *, user: Any = None, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``N`` items for a user given by their ratings (the model's fold-in,
        ``recalculate_user=True``).

        Parameters
        ----------
        ratings : see :meth:`new_user_row`
        N : int, default 10
        user : raw user id, optional
            A known user: their training ratings are merged with ``ratings`` (``ratings``
            wins where both rate an item). Unknown or None: ``ratings`` alone.
        exclude_seen : bool, default True
            Leave out every rated item (training and given).

        Returns
        -------
        items : ndarray (raw item ids), scores : ndarray of float32
        """
        self.check_fold_in()
        row = self.new_user_row(ratings)
        index = None if user is None else self.user_index(user)
        if index is not None:
            row = merge_rows(self._seen_matrix(excluding=False)[index], row)
        ids, scores = self.model.recommend(
            self.n_users if index is None else index,
            row,
            N=min(int(N), self.n_items),
            filter_already_liked_items=exclude_seen,
            recalculate_user=True,
        )
        return self._ranked(ids, scores)

    # ------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike) -> Path:
        """Write the bundle to one ``.npz`` file (``.npz`` appended when missing), all or
        nothing: a failure leaves any previous file untouched.

        Returns
        -------
        pathlib.Path
            The path written.
        """
        from rbmrec import __version__

        arrays = {_MODEL_PREFIX + k: v for k, v in model_to_arrays(self.model).items()}
        seen = self.seen
        header = {
            "format": BUNDLE_FORMAT,
            "format_version": BUNDLE_FORMAT_VERSION,
            "rbmrec_version": __version__,
            "model": type(self.model).__name__,
            "name": self.name,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "has_seen": seen is not None,
            "has_titles": self.titles is not None,
        }
        arrays[_HEADER] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
        arrays["user_ids"] = np.asarray(self.user_ids.raw)
        arrays["item_ids"] = np.asarray(self.item_ids.raw)
        if self.titles is not None:
            arrays["titles"] = np.array(self.titles, dtype=str).reshape(-1)
        if seen is not None:
            arrays["seen_indptr"] = seen.indptr.astype(np.int64)
            arrays["seen_indices"] = seen.indices.astype(np.int32)
            arrays["seen_data"] = seen.data.astype(np.float32)
        return write_npz(path, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ModelBundle:
        """Read a bundle written by :meth:`save`, or the three files of rbmrec 0.1.0's
        ``rbmrec fit`` (``path`` is then the model file).

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ModelFileError
            If the file (or a side file of the three-file format) is corrupted, foreign,
            from another format version, or inconsistent; the message names the file.
        """
        path = Path(path)
        arrays = read_npz(path, what="rbmrec model bundle")
        if _HEADER in arrays:
            bundle = _from_arrays(cls, arrays, str(path))
        elif _MODEL_META in arrays:
            bundle = _from_three_files(cls, path, model_from_arrays(arrays, str(path)))
        else:
            raise ModelFileError(f"{path} is not an rbmrec model bundle (no {_HEADER!r} entry)")
        bundle.source = str(path)
        return bundle

    def __repr__(self) -> str:
        return (
            f"ModelBundle({type(self.model).__name__}, {self.n_users} users x "
            f"{self.n_items} items, data={self.name!r})"
        )


def merge_rows(stored: sp.csr_matrix, given: sp.csr_matrix) -> sp.csr_matrix:
    """``stored`` with ``given``'s entries added; ``given`` wins where both rate an item.

    Both rows are CSR of shape (1, n_items); the result is CSR float32 of that shape.
    """
    base = sp.csr_matrix(stored).tocoo()
    keep = ~np.isin(base.col, given.indices)
    cols = np.r_[base.col[keep], given.indices].astype(np.int64)
    vals = np.r_[base.data[keep], given.data].astype(np.float32)
    row = sp.csr_matrix((vals, (np.zeros(len(cols), np.int32), cols)), shape=given.shape)
    row.sort_indices()
    return row


def _header(arrays: Mapping[str, np.ndarray], source: str) -> dict[str, Any]:
    """The checked ``__bundle__`` document of a bundle file."""
    doc = json_header(arrays[_HEADER], source, BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, "bundle")
    for key in ("n_users", "n_items"):
        if not isinstance(doc.get(key), int) or isinstance(doc[key], bool) or doc[key] < 0:
            raise ModelFileError(f"{source} has a malformed bundle header ({key!r})")
    return doc


def _from_arrays(cls: type[ModelBundle], arrays: Mapping[str, np.ndarray], source: str) -> Any:
    """The bundle held by the arrays of a bundle file (every array checked)."""
    doc = _header(arrays, source)
    shape = (doc["n_users"], doc["n_items"])
    model = model_from_arrays(
        {k[len(_MODEL_PREFIX) :]: v for k, v in arrays.items() if k.startswith(_MODEL_PREFIX)},
        source,
    )
    try:
        users = check_file_array(arrays, "user_ids", (shape[0],), dims=["n_users"], kind="iU")
        items = check_file_array(arrays, "item_ids", (shape[1],), dims=["n_items"], kind="iU")
        titles = None
        if doc.get("has_titles"):
            titles = check_file_array(arrays, "titles", (shape[1],), dims=["n_items"], kind="U")
        seen = None
        if doc.get("has_seen"):
            indptr, indices = check_file_csr(arrays, "seen_indptr", "seen_indices", *shape)
            data = check_file_array(
                arrays, "seen_data", (len(indices),), dtype=np.float32, finite=True
            )
            seen = sp.csr_matrix((data, indices, indptr), shape=shape)
        return cls(
            model,
            IdMap(users, name="user"),
            IdMap(items, name="item"),
            seen=seen,
            titles=None if titles is None else titles.tolist(),
            name=doc.get("name") if isinstance(doc.get("name"), str) else None,
        )
    except (ModelFileError, DataError) as exc:
        raise ModelFileError(f"{source}: {exc}") from None


def _from_three_files(cls: type[ModelBundle], path: Path, model: Any) -> ModelBundle:
    """A bundle of a model file and its ``ids.json`` / ``seen.npz`` side files (rbmrec 0.1.0);
    the seen items are read when first needed."""
    ids_path, seen_path = _legacy.side_files(path)
    user_ids, item_ids, titles, data, token = _legacy.read_ids(ids_path, path, model)
    try:
        bundle = cls(model, user_ids, item_ids, titles=titles, name=data)
    except DataError as exc:
        raise ModelFileError(f"{ids_path} is damaged ({exc}); refit the model") from None
    shape = (bundle.n_users, bundle.n_items)
    bundle._seen_loader = lambda excluding: _legacy.read_seen(seen_path, shape, excluding, token)
    return bundle
