"""ModelBundle: a fitted model with raw-id maps and seen items, in one file."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import rbmrec
from rbmrec.bundle import ItemRatings, ModelBundle, read_item_ratings
from rbmrec.data import IdMap, Ratings, UnknownIdError
from rbmrec.errors import DataError, ModelFileError
from rbmrec.evaluation import BiasBaseline, Popularity
from rbmrec.models.persistence import model_from_arrays, model_to_arrays

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"


def _ratings(int_ids: bool = False) -> Ratings:
    """30 users x 12 items, ratings 1..5, raw ids ``u0..`` / ``m0..`` (or 1000.. / 70..)."""
    rng = np.random.default_rng(0)
    dense = np.where(rng.random((30, 12)) < 0.4, rng.integers(1, 6, (30, 12)), 0)
    dense[np.arange(30), np.arange(30) % 12] = 3  # every user and item rated
    users = [1000 + u for u in range(30)] if int_ids else [f"u{u}" for u in range(30)]
    items = [70 + i for i in range(12)] if int_ids else [f"m{i}" for i in range(12)]
    return Ratings(sp.csr_matrix(dense.astype(np.float32)), user_ids=users, item_ids=items,
                   name="tiny")  # fmt: skip


@pytest.fixture(scope="module")
def rbm_bundle() -> ModelBundle:
    from rbmrec import RatingRBM

    model = RatingRBM(orientation="user", n_hidden=4, n_epochs=2, random_state=0, num_threads=1)
    return ModelBundle.fit(model, _ratings())


def test_round_trip_with_string_ids(rbm_bundle: ModelBundle, tmp_path: Path) -> None:
    path = rbm_bundle.save(tmp_path / "b")  # .npz appended
    assert path == tmp_path / "b.npz" and sorted(p.name for p in tmp_path.iterdir()) == ["b.npz"]
    loaded = ModelBundle.load(path)
    assert loaded.user_ids == rbm_bundle.user_ids and loaded.item_ids == rbm_bundle.item_ids
    assert loaded.name == "tiny" and loaded.titles is None and loaded.source == str(path)
    assert (loaded.seen != rbm_bundle.seen).nnz == 0
    for user in ("u0", "u7", "u29"):
        want, got = rbm_bundle.recommend(user, N=5), loaded.recommend(user, N=5)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
        assert got[0].dtype.kind == "U" and got[1].dtype == np.float32
    np.testing.assert_allclose(
        loaded.predict(["u1", "u2"], ["m3", "m4"]), rbm_bundle.predict(["u1", "u2"], ["m3", "m4"])
    )
    with np.load(path, allow_pickle=False) as npz:  # no pickled object anywhere
        doc = json.loads(npz["__bundle__"].tobytes())
    assert doc["format"] == "rbmrec-bundle" and doc["format_version"] == 1
    assert doc["model"] == "RatingRBM" and (doc["n_users"], doc["n_items"]) == (30, 12)


def test_integer_ids_titles_and_text_lookups(tmp_path: Path) -> None:
    data = _ratings(int_ids=True)
    bundle = ModelBundle(BiasBaseline().fit(data.user_items), data.user_ids, data.item_ids,
                         seen=data.user_items, titles=[f"Film {i}" for i in range(12)])  # fmt: skip
    loaded = ModelBundle.load(bundle.save(tmp_path / "int.npz"))
    assert loaded.item_title(71) == "Film 1" and loaded.user_ids.dtype == np.int64
    items, _ = loaded.recommend(1003, N=3)
    assert items.dtype == np.int64
    # Text as typed on a command line finds integer ids written the same way, not "01003".
    np.testing.assert_array_equal(loaded.recommend(" 1003", N=3)[0], items)
    assert loaded.user_index("01003") is None and loaded.item_index("71") == 1


def test_recommend_excludes_seen_and_filters(rbm_bundle: ModelBundle) -> None:
    seen = set(rbm_bundle.item_ids.to_raw(rbm_bundle.user_items("u4").indices).tolist())
    items, scores = rbm_bundle.recommend("u4", N=12)
    assert not seen & set(items.tolist()) and len(items) == 12 - len(seen)
    assert np.all(np.diff(scores) <= 0)
    everything, _ = rbm_bundle.recommend("u4", N=100, exclude_seen=False)
    assert len(everything) == 12
    blocked = everything[:2].tolist()
    assert not set(blocked) & set(rbm_bundle.recommend("u4", filter_items=blocked)[0].tolist())


def test_unknown_user_and_item_name_the_id(rbm_bundle: ModelBundle) -> None:
    with pytest.raises(UnknownIdError, match="unknown user 'nobody'"):
        rbm_bundle.recommend("nobody")
    with pytest.raises(UnknownIdError, match="'zz'"):
        rbm_bundle.predict(["u1"], ["zz"])


def test_fold_in_new_and_known_users(rbm_bundle: ModelBundle) -> None:
    items, _ = rbm_bundle.fold_in({"m1": 5, "m2": 4}, N=3)
    assert len(items) == 3 and not {"m1", "m2"} & set(items.tolist())
    same, _ = rbm_bundle.fold_in([("m1", 5), ("m2", 4)], N=3)
    np.testing.assert_array_equal(same, items)
    seen = set(rbm_bundle.item_ids.to_raw(rbm_bundle.user_items("u4").indices).tolist())
    merged, _ = rbm_bundle.fold_in({"m0": 5}, N=12, user="u4")
    assert not (seen | {"m0"}) & set(merged.tolist())
    with pytest.raises(UnknownIdError, match="'nope'"):
        rbm_bundle.fold_in({"nope": 5})
    with pytest.raises(DataError, match="no ratings"):
        rbm_bundle.fold_in({})


def test_fold_in_refused_for_item_based_models() -> None:
    from rbmrec import RatingRBM

    data = _ratings()
    model = RatingRBM(orientation="item", n_hidden=3, n_epochs=1, random_state=0, num_threads=1)
    bundle = ModelBundle.fit(model, data)
    with pytest.raises(NotImplementedError, match="item-based"):
        bundle.fold_in({"m1": 5})


def test_failed_write_keeps_the_previous_file(
    rbm_bundle: ModelBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = rbm_bundle.save(tmp_path / "keep.npz")
    before = path.read_bytes()

    def disk_full(file, *args, **kwargs):
        file.write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OSError, match="No space"):
        rbm_bundle.save(path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["keep.npz"]


def _rewrite(path: Path, changes: dict[str, np.ndarray | None]) -> None:
    """Rewrite the bundle file at ``path`` with arrays replaced (None: removed)."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    np.savez(path, **arrays)


def _header(**fields: object) -> np.ndarray:
    doc = {"format": "rbmrec-bundle", "format_version": 1, "n_users": 30, "n_items": 12,
           "has_seen": True, "has_titles": False, **fields}  # fmt: skip
    return np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncated", "corrupted or not an rbmrec model bundle"),
        ("foreign npz", "not an rbmrec model bundle"),
        ("npy", "not an .npz archive"),
        ("version", "bundle format version 99"),
        ("bad header", "unreadable bundle header"),
        ("seen out of range", "'seen_indices' holds values"),
        ("seen data", "'seen_data' has shape"),
        ("duplicate ids", "repeated id"),
        ("ids length", "'item_ids' has shape"),
        ("model meta", "no metadata"),
    ],
)
def test_corrupted_or_foreign_files_are_model_file_errors(
    rbm_bundle: ModelBundle, tmp_path: Path, damage: str, message: str
) -> None:
    path = rbm_bundle.save(tmp_path / "bad.npz")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    elif damage == "foreign npz":
        np.savez(path, weights=np.ones(3))
    elif damage == "npy":
        with open(path, "wb") as fh:
            np.save(fh, np.ones(3))
    elif damage == "version":
        _rewrite(path, {"__bundle__": _header(format_version=99)})
    elif damage == "bad header":
        _rewrite(path, {"__bundle__": np.frombuffer(b"{not json", dtype=np.uint8)})
    elif damage == "seen out of range":
        indices = rbm_bundle.seen.indices.copy()
        indices[0] = 99
        _rewrite(path, {"seen_indices": indices})
    elif damage == "seen data":
        _rewrite(path, {"seen_data": np.ones(2, np.float32)})
    elif damage == "duplicate ids":
        _rewrite(path, {"user_ids": np.array(["u0"] * 30)})
    elif damage == "ids length":
        _rewrite(path, {"item_ids": np.array(["a", "b"])})
    elif damage == "model meta":
        _rewrite(path, {"model/__meta__": None})
    with pytest.raises(ModelFileError, match=message) as info:
        ModelBundle.load(path)
    assert str(path) in str(info.value)


def test_rbmrec_load_points_to_the_bundle_loader(rbm_bundle: ModelBundle, tmp_path: Path) -> None:
    path = rbm_bundle.save(tmp_path / "b.npz")
    with pytest.raises(ModelFileError, match=r"is a model bundle .*rbmrec\.ModelBundle\.load"):
        rbmrec.load(path)


def test_a_bare_model_file_needs_its_side_files(tmp_path: Path) -> None:
    data = _ratings()
    path = Popularity().fit(data.user_items).save(tmp_path / "bare.npz")
    with pytest.raises(ModelFileError, match=r"bare\.npz\.ids\.json is missing"):
        ModelBundle.load(path)


@pytest.mark.parametrize("model", ["cli_rating", "cli_irbm"])
@pytest.mark.parametrize("user", ["u0", "u7"])
def test_legacy_three_files_load_and_recommend_the_same(model: str, user: str) -> None:
    bundle = ModelBundle.load(LEGACY / f"{model}.npz")
    want = json.loads((LEGACY / f"{model}.{user}.json").read_text())["recommendations"]
    items, scores = bundle.recommend(user, N=5)
    assert items.tolist() == [r["item_id"] for r in want]
    np.testing.assert_allclose(scores, [r["score"] for r in want], atol=1e-5)
    assert bundle.name == "cli_ratings" and bundle.n_users == 25


def test_legacy_bundle_saved_again_is_one_file(tmp_path: Path) -> None:
    legacy = ModelBundle.load(LEGACY / "cli_rating.npz")
    loaded = ModelBundle.load(legacy.save(tmp_path / "new.npz"))
    np.testing.assert_array_equal(loaded.recommend("u7", N=5)[0], legacy.recommend("u7", N=5)[0])


def test_constructor_checks_shapes() -> None:
    data = _ratings()
    model = BiasBaseline().fit(data.user_items)
    with pytest.raises(DataError, match="30 users x 12 items"):
        ModelBundle(model, data.user_ids, IdMap(["a", "b"]))
    with pytest.raises(DataError, match="seen must be"):
        ModelBundle(model, data.user_ids, data.item_ids, seen=sp.csr_matrix((2, 2)))
    with pytest.raises(DataError, match="one title per item"):
        ModelBundle(model, data.user_ids, data.item_ids, titles=["x"])
    bare = ModelBundle(model, data.user_ids, data.item_ids)
    with pytest.raises(DataError, match="exclude_seen=False"):
        bare.recommend("u1")
    assert len(bare.recommend("u1", exclude_seen=False)[0]) == 10


def test_lazy_export_and_persistence_arrays() -> None:
    assert rbmrec.ModelBundle is ModelBundle
    data = _ratings()
    model = BiasBaseline().fit(data.user_items)
    arrays = model_to_arrays(model)
    assert "__meta__" in arrays
    again = model_from_arrays(arrays)
    np.testing.assert_allclose(again.predict([0, 1], [2, 3]), model.predict([0, 1], [2, 3]))
    with pytest.raises(ModelFileError, match="no metadata"):
        model_from_arrays({"w": np.ones(2)}, source="x.npz")


def test_read_item_ratings_header_comments_and_errors() -> None:
    known = {"m1", "m2", "m3"}.__contains__
    text = b"\xef\xbb\xbf# mine\n\nitem,rating\nm1,5\n\"m2\",4\nzz,3\n"
    got = read_item_ratings(io.BytesIO(text), known=known, levels=[1, 2, 3, 4, 5])
    assert isinstance(got, ItemRatings)
    assert got.items == ["m1", "m2"] and got.ratings.tolist() == [5, 4] and got.lines == [4, 5]
    assert got.unknown == ["zz"]
    for bad, message in [
        (b"m1,5\nm1,4\n", "item m1 appears 2 times"),
        (b"m1,7\n", "line 1: rating 7 is not one of the model's rating levels"),
        (b"m1,0\n", "line 1: rating 0 is not one of the model's rating levels"),
        (b"m1\n", "expected 'item,rating'"),
        (b"m1,five\n", "rating 'five' is not a number"),
        (b"caf\xe9,4\n", "not UTF-8"),
    ]:
        with pytest.raises(DataError, match=message):
            read_item_ratings(io.BytesIO(bad), known=known, levels=[1, 2, 3, 4, 5])
