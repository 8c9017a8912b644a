"""IdMap and Ratings: construction, id translation, duplicates, transforms."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from rbmrec.data import IdMap, Ratings, UnknownIdError
from rbmrec.errors import DataError


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user": ["bob", "alice", "bob", "carol", "alice"],
            "item": [30, 10, 10, 20, 30],
            "stars": [4.0, 5.0, 2.0, 1.0, 3.5],
            "ts": [5, 1, 2, 3, 4],
        }
    )


# --------------------------------------------------------------------------- IdMap


def test_idmap_round_trip_ints():
    m = IdMap([10, 20, 30], name="item")
    assert len(m) == 3
    assert m.to_index(20) == 1
    assert isinstance(m.to_index(20), int)
    idx = m.to_index([30, 10])
    assert idx.dtype == np.int32 and idx.tolist() == [2, 0]
    assert m.to_raw(2) == 30
    assert m.to_raw([0, 1]).tolist() == [10, 20]
    assert 20 in m and 99 not in m


def test_idmap_unsorted_and_strings():
    m = IdMap(["z", "a", "m"], name="user")
    assert m.to_index(["a", "z", "m"]).tolist() == [1, 0, 2]
    assert m.to_raw([0, 1, 2]).tolist() == ["z", "a", "m"]


def test_idmap_unknown_policy():
    m = IdMap([1, 2, 3], name="user")
    with pytest.raises(UnknownIdError, match=r"unknown user id.*99"):
        m.to_index(99)
    with pytest.raises(KeyError):
        m.to_index([1, 99])
    assert m.to_index(99, unknown="minus_one") == -1
    assert m.to_index([3, 99, 1], unknown="minus_one").tolist() == [2, -1, 0]
    # A string looked up in an int map is unknown, not a crash.
    assert m.to_index(["x"], unknown="minus_one").tolist() == [-1]
    with pytest.raises(ValueError, match="unknown must be"):
        m.to_index(1, unknown="ignore")


def test_idmap_rejects_repeats_and_bad_indices():
    with pytest.raises(DataError, match="repeated id: 2"):
        IdMap([1, 2, 2])
    m = IdMap([5, 6])
    with pytest.raises(IndexError, match="index 2 out of range"):
        m.to_raw(2)
    with pytest.raises(IndexError):
        m.to_raw(-1)


def test_idmap_equality():
    assert IdMap([1, 2]) == IdMap(np.array([1, 2], dtype=np.int32))
    assert IdMap([1, 2]) != IdMap([1, 3])
    assert IdMap(["1"]) != IdMap([1])


# --------------------------------------------------------------------------- Ratings


def test_from_frame_builds_csr_with_int32_indices():
    r = Ratings.from_frame(_frame(), user="user", item="item", rating="stars", timestamp="ts")
    m = r.user_items
    assert isinstance(m, sp.csr_matrix)
    assert m.dtype == np.float32
    assert m.indices.dtype == np.int32 and m.indptr.dtype == np.int32
    assert (r.n_users, r.n_items, r.n_ratings) == (3, 3, 5)
    assert r.user_ids.raw.tolist() == ["alice", "bob", "carol"]
    assert r.item_ids.raw.tolist() == [10, 20, 30]
    bob, i30 = r.user_ids.to_index("bob"), r.item_ids.to_index(30)
    assert m[bob, i30] == 4.0
    assert r.timestamps[bob, i30] == 5
    assert r.values.tolist() == [1.0, 2.0, 3.5, 4.0, 5.0]
    assert m.has_sorted_indices


def test_to_frame_round_trip():
    r = Ratings.from_frame(_frame(), user="user", item="item", rating="stars", timestamp="ts")
    df = r.to_frame()
    assert df.columns == ["user_id", "item_id", "rating", "timestamp"]
    back = Ratings.from_frame(df, timestamp="timestamp")
    assert (back.user_items != r.user_items).nnz == 0
    assert back.user_ids == r.user_ids and back.item_ids == r.item_ids
    idx = r.to_frame(raw_ids=False)
    assert idx["user_id"].max() == r.n_users - 1


def test_duplicates_policies():
    df = pl.DataFrame({"user_id": [1, 1, 2, 1], "item_id": [5, 6, 5, 5], "rating": [1, 2, 3, 4]})
    msg = r"row 3: duplicate rating of item 5 by user 1 \(first at row 0\)"
    with pytest.raises(DataError, match=msg):
        Ratings.from_frame(df)
    last = Ratings.from_frame(df, duplicates="last")
    assert last.n_ratings == 3 and last.user_items[0, 0] == 4.0
    mean = Ratings.from_frame(df, duplicates="mean")
    assert mean.user_items[0, 0] == 2.5
    with pytest.raises(ValueError, match="duplicates must be"):
        Ratings.from_frame(df, duplicates="first")


def test_duplicates_keep_last_timestamp():
    df = pl.DataFrame({"user_id": [1, 1], "item_id": [5, 5], "rating": [1, 3], "ts": [100, 50]})
    r = Ratings.from_frame(df, timestamp="ts", duplicates="mean")
    assert r.user_items[0, 0] == 2.0 and r.timestamps[0, 0] == 50


@pytest.mark.parametrize(
    ("rating", "match"),
    [
        (float("nan"), "row 1: rating nan is not a finite number"),
        (float("inf"), "not a finite number"),
    ],
)
def test_bad_rating_values(rating, match):
    df = pl.DataFrame({"user_id": [1, 2], "item_id": [1, 1], "rating": [3.0, rating]})
    with pytest.raises(DataError, match=match):
        Ratings.from_frame(df)


def test_bad_frames():
    with pytest.raises(DataError, match="negative user id -3"):
        Ratings.from_frame(pl.DataFrame({"user_id": [-3], "item_id": [1], "rating": [1.0]}))
    with pytest.raises(DataError, match="row 1: missing value in column 'item_id'"):
        Ratings.from_frame(
            pl.DataFrame({"user_id": [1, 2], "item_id": [1, None], "rating": [1.0, 2.0]})
        )
    with pytest.raises(DataError, match="must be numeric"):
        Ratings.from_frame(pl.DataFrame({"user_id": [1], "item_id": [1], "rating": ["good"]}))
    with pytest.raises(DataError, match=r"column\(s\) \['score'\] not in the frame"):
        Ratings.from_frame(pl.DataFrame({"user_id": [1], "item_id": [1]}), rating="score")


def test_constructor_keeps_stored_zero_and_rejects_nan():
    r = Ratings(sp.csr_matrix((np.array([0.0]), (np.array([0]), np.array([0]))), shape=(1, 1)))
    assert r.n_ratings == 1 and r.user_items.data.tolist() == [0.0]
    assert r.values.tolist() == [0.0]
    with pytest.raises(DataError, match="finite"):
        Ratings(sp.csr_matrix(np.array([[np.nan]])))
    with pytest.raises(DataError, match="user id map has 3 ids for 2 users"):
        Ratings(sp.csr_matrix(np.ones((2, 2))), user_ids=[1, 2, 3])


def test_binarize_keeps_shape_and_ids():
    r = Ratings.from_frame(_frame(), user="user", item="item", rating="stars", timestamp="ts")
    b = r.binarize(3.5)
    assert b.shape == r.shape
    assert b.user_ids == r.user_ids and b.item_ids == r.item_ids
    assert b.n_ratings == 3
    assert set(b.user_items.data.tolist()) == {1.0}
    assert b.values.tolist() == [1.0]
    assert b.timestamps is not None and b.timestamps.nnz == 3
    # Entries kept are exactly those rated >= threshold.
    dense_r, dense_b = r.user_items.toarray(), b.user_items.toarray()
    assert np.array_equal(dense_b == 1, dense_r >= 3.5)
    # The original is untouched.
    assert r.n_ratings == 5


def test_describe():
    r = Ratings.from_frame(_frame(), user="user", item="item", rating="stars")
    d = r.describe()
    assert (d.n_users, d.n_items, d.n_ratings) == (3, 3, 5)
    assert d.density == pytest.approx(5 / 9)
    assert d.histogram == {1.0: 1, 2.0: 1, 3.5: 1, 4.0: 1, 5.0: 1}
    assert d["n_ratings"] == 5
    assert d.ratings_per_user["max"] == 2
    assert "5 ratings" in str(d)
    assert d.as_dict()["histogram"][5.0] == 1


def test_item_titles_and_metadata_alignment():
    items = pl.DataFrame({"item_id": [30, 99, 10], "title": ["Thirty", "Unrated", "Ten"]})
    r = Ratings.from_frame(_frame(), user="user", item="item", rating="stars", items=items)
    assert r.items["item_id"].to_list() == [10, 20, 30]
    assert r.item_titles([0, 1, 2]) == ["Ten", "20", "Thirty"]
    plain = Ratings.from_frame(_frame(), user="user", item="item", rating="stars")
    assert plain.item_titles([2]) == ["30"]


def test_from_frame_accepts_datetimes_and_pandas_like_dicts():
    import datetime as dt

    df = pl.DataFrame(
        {
            "user_id": [1, 2],
            "item_id": [1, 1],
            "rating": [1, 2],
            "when": [dt.datetime(1970, 1, 1, 0, 0, 10), dt.datetime(2000, 1, 1)],
        }
    )
    r = Ratings.from_frame(df, timestamp="when")
    assert r.timestamps.data.tolist() == [10, 946684800]
    r2 = Ratings.from_frame({"user_id": [1], "item_id": [2], "rating": [3]})
    assert r2.n_ratings == 1


def test_string_and_large_int_ids():
    big = [10**12, 5, 10**12]
    r = Ratings.from_arrays(big, ["a", "b", "b"], [1, 2, 3])
    assert r.user_ids.raw.tolist() == [5, 10**12]
    assert r.item_ids.raw.tolist() == ["a", "b"]
    assert r.user_items.toarray().tolist() == [[0, 2], [1, 3]]


# --------------------------------------------------------------------------- repeated pairs, limits


def test_sparse_input_with_a_repeated_pair_is_rejected():
    from rbmrec.data import random_split

    coo = sp.coo_matrix(([4.0, 5.0, 3.0], ([0, 0, 1], [0, 0, 1])), shape=(2, 2))
    csr = sp.csr_matrix(
        (np.array([4.0, 5.0, 3.0]), np.array([0, 0, 1]), np.array([0, 2, 3])), shape=(2, 2)
    )
    for m in (coo, csr, sp.coo_array(coo)):
        # scipy would sum 4 + 5 into one rating of 9.
        with pytest.raises(DataError, match=r"\(user 0, item 0\) 2 times"):
            Ratings(m)
        with pytest.raises(DataError, match=r"\(user 0, item 0\) 2 times"):
            random_split(m, 0.5)
    # Distinct pairs in any order are fine, and the input is not modified.
    ok = sp.coo_matrix(([4.0, 5.0, 3.0], ([1, 0, 1], [1, 0, 0])), shape=(2, 2))
    assert Ratings(ok).user_items.toarray().tolist() == [[5, 0], [3, 4]]
    assert ok.nnz == 3


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e39])
def test_sparse_and_dense_input_with_a_non_finite_rating_is_rejected(bad):
    from rbmrec.data import random_split

    dense = np.array([[1.0, 2.0, 3.0], [4.0, bad, 5.0]])
    for m in (sp.csr_matrix(dense), sp.coo_matrix(dense), dense):
        with pytest.raises(DataError, match=r"finite numbers: user 1, item 1"):
            random_split(m, 0.5)
        with pytest.raises(DataError, match="finite"):
            Ratings(m)


def test_from_arrays_rejects_nat_nan_and_fractional_timestamps():
    nat = np.array(["2020-01-01", "NaT", "2020-01-03"], dtype="datetime64[s]")
    with pytest.raises(DataError, match=r"row 1: missing timestamp \(NaT\)"):
        Ratings.from_arrays([1, 1, 1], [1, 2, 3], [4, 5, 3], timestamp=nat)
    with pytest.raises(DataError, match=r"row 1: timestamp nan is not a whole number"):
        Ratings.from_arrays([1, 2], [1, 2], [4, 5], timestamp=[1.7e9, np.nan])
    with pytest.raises(DataError, match=r"row 0: timestamp 1.5 is not a whole number"):
        Ratings.from_arrays([1, 2], [1, 2], [4, 5], timestamp=[1.5, 2.9])
    with pytest.raises(DataError, match=r"row 1: missing timestamp \(None\)"):
        Ratings.from_arrays([1, 2], [1, 2], [4, 5], timestamp=[1, None])
    # Whole-number floats are seconds, in from_arrays and from_frame alike.
    r = Ratings.from_arrays([1, 2], [1, 2], [4, 5], timestamp=[1.7e9, 2.0])
    assert r.timestamps.data.tolist() == [1_700_000_000, 2]
    df = pl.DataFrame({"user_id": [1, 2], "item_id": [1, 2], "rating": [4, 5], "t": [1.7e9, 2.0]})
    assert Ratings.from_frame(df, timestamp="t").timestamps.data.tolist() == [1_700_000_000, 2]
    df = df.with_columns(t=pl.Series([1.7e9, float("nan")]))
    with pytest.raises(DataError, match=r"row 1: timestamp nan"):
        Ratings.from_frame(df, timestamp="t")
    with pytest.raises(DataError, match=r"timestamps entry 0: timestamp nan"):
        Ratings(sp.csr_matrix(np.eye(2) * 3), timestamps=np.array([[np.nan, 0], [0, 2.0]]))


def test_missing_ids_are_rejected():
    with pytest.raises(DataError, match=r"row 1: missing user id \(None\)"):
        Ratings.from_arrays([1, None], [1, 2], [4, 5])
    with pytest.raises(DataError, match=r"row 0: missing item id \(None\)"):
        Ratings.from_arrays(["a", "b"], [None, "x"], [4, 5])
    with pytest.raises(DataError, match=r"row 1: missing user id \(nan\)"):
        Ratings.from_arrays(np.array(["a", np.nan], dtype=object), [1, 2], [4, 5])
    with pytest.raises(DataError, match=r"position 1: missing item id"):
        IdMap([1, None], name="item")


def test_uint64_ids_beyond_int64_are_rejected(tmp_path):
    from rbmrec.data import load_table

    big = np.array([2**63 + 5, 1], dtype=np.uint64)
    with pytest.raises(DataError, match=r"row 0: user id 9223372036854775813 is too large"):
        Ratings.from_arrays(big, [1, 2], [4, 5])
    df = pl.DataFrame(
        {"user_id": pl.Series(big, dtype=pl.UInt64), "item_id": [3, 4], "rating": [5.0, 4.0]}
    )
    with pytest.raises(DataError, match=r"row 0: id column 'user_id' holds 9223372036854775813"):
        Ratings.from_frame(df)
    df.write_parquet(tmp_path / "r.parquet")
    with pytest.raises(DataError, match="too large for int64"):
        load_table(tmp_path / "r.parquet")
    # Small unsigned ids still work.
    r = Ratings.from_arrays(np.array([7, 1], dtype=np.uint64), [1, 2], [4, 5])
    assert r.user_ids.raw.tolist() == [1, 7]


def test_idmap_hash_agrees_with_equality():
    a, b = IdMap(np.array(["a", "b"], dtype="U1")), IdMap(np.array(["a", "b"], dtype="U5"))
    assert a == b and hash(a) == hash(b)
    assert len({a, b}) == 1


def test_from_arrays_with_no_ratings():
    r = Ratings.from_arrays([], [], [])
    assert r.shape == (0, 0) and r.n_ratings == 0
    assert r.user_ids.dtype == np.int64


def test_timestamps_in_an_object_array_are_converted():
    """Python ints (or datetime64 values) in an object array, e.g. from pandas, are fine."""
    r = Ratings.from_arrays([1, 2], [1, 1], [5.0, 3.0], timestamp=np.array([100, 200], object))
    assert sorted(r.timestamps.data.tolist()) == [100, 200]
    with pytest.raises(DataError, match="timestamps must be integers"):
        Ratings.from_arrays([1, 2], [1, 1], [5.0, 3.0], timestamp=np.array(["a", "b"], object))


# --------------------------------------------------------------------------- stored dtype


@pytest.mark.parametrize("tiny", [1e-50, 1e-46])
def test_rating_that_rounds_to_zero_in_float32_is_a_stored_zero(tiny):
    r = Ratings.from_arrays([1, 2], [1, 1], [4.0, tiny])
    assert r.n_ratings == 2 and r.user_items.data.tolist() == [4.0, 0.0]


def test_zero_and_negative_ratings_are_explicit_entries():
    r = Ratings.from_arrays([1, 1, 2, 3], [5, 6, 5, 7], [0.0, -3.25, 2.0, 0.0])
    assert r.n_ratings == 4 and r.user_items.nnz == 4
    assert r.user_items.toarray().tolist() == [[0.0, -3.25, 0.0], [2.0, 0.0, 0.0], [0, 0, 0]]
    assert np.diff(r.user_items.indptr).tolist() == [2, 1, 1]
    assert r.values.tolist() == [-3.25, 0.0, 2.0]
    assert r.describe().histogram == {-3.25: 1, 0.0: 2, 2.0: 1}


def test_mean_of_duplicates_averaging_to_zero_is_a_stored_zero():
    r = Ratings.from_arrays([1, 1, 2], [1, 1, 1], [2.0, -2.0, 1.0], duplicates="mean")
    assert r.n_ratings == 2 and r.user_items.data.tolist() == [0.0, 1.0]


def test_mean_of_large_duplicates_does_not_overflow():
    big = 3e38
    r = Ratings.from_arrays([1, 1], [1, 1], [big, big], duplicates="mean")
    assert np.isfinite(r.user_items.data).all()
    assert r.user_items.data[0] == np.float32(big)


def test_rating_beyond_float32_names_its_source_line():
    where = lambda k: f"ratings.csv, line {k + 2}"  # noqa: E731
    with pytest.raises(DataError, match=r"ratings.csv, line 3: rating 1e\+39 is beyond"):
        Ratings.from_arrays([1, 2], [1, 1], [4.0, 1e39], where=where)


def test_repeated_timestamp_entries_are_refused_not_summed():
    ts = sp.coo_matrix(([5, 7], ([0, 0], [0, 0])), shape=(1, 1))
    with pytest.raises(DataError, match=r"sparse timestamps matrix stores \(user 0, item 0\) 2"):
        Ratings(sp.csr_matrix([[4.0]]), timestamps=ts)


@pytest.mark.parametrize("ids", [[b"a"], np.array([b"a", b"b"]), ["a", b"b"]])
def test_bytes_ids_are_refused(ids):
    with pytest.raises(TypeError, match="bytes"):
        IdMap(ids)


def test_complex_ratings_are_refused():
    with pytest.raises(TypeError, match="complex"):
        Ratings(np.array([[1 + 1j, 0]]))
    with pytest.raises(TypeError, match="complex"):
        Ratings(sp.csr_matrix(np.array([[1 + 1j, 0]])))


# ------------------------------------------------------------------ from_arrays input checks


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (([1, 2], [1], [3, 4]), {}, "users, items and ratings differ in length: 2, 1, 2"),
        (([1, 2], [1, 2], ["a", "b"]), {}, "ratings must be numeric, got dtype <U1"),
        (([1.0, 2.0], [1, 2], [3, 4]), {}, "user ids must be integers or strings, got floats"),
        (([1, 2], [1.5, 2.0], [3, 4]), {}, "item ids must be integers or strings, got floats"),
        (([1, 2], [1, -2], [3, 4]), {}, "row 1: negative item id -2"),
        (([1, 2], [1, 2], [3, 4]), {"timestamp": [1]}, "timestamps has 1 values for 2 ratings"),
    ],
)
def test_from_arrays_names_the_bad_input(args, kwargs, message):
    with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
        Ratings.from_arrays(*args, **kwargs)


def test_from_arrays_object_ids_beyond_int64_are_refused():
    with pytest.raises(DataError, match=rf"^user ids must fit in int64 \(found {2**70}\); pass"):
        Ratings.from_arrays(np.array([2**70, 1], dtype=object), [1, 2], [3, 4])


def test_from_arrays_last_keeps_the_last_rating_and_timestamp_of_unsorted_pairs():
    r = Ratings.from_arrays(
        [2, 1, 1, 2, 1], [1, 1, 1, 1, 3], [3, 4, 5, 1, 2], timestamp=[5, 6, 7, 8, 9],
        duplicates="last",
    )  # fmt: skip
    assert r.user_items.toarray().tolist() == [[5, 2], [1, 0]]
    assert r.timestamps.toarray().tolist() == [[7, 9], [8, 0]]
