"""Synthetic ratings with planted structure, from a few hundred to Netflix scale.

The generative model, in units of ``h`` = half the rating range (2 on a 1..5 scale) around
the scale's centre ``c``:

- every user ``u`` belongs to one of ``n_groups`` taste groups ``g(u)``, every item ``i``
  to one group ``g(i)`` (uniformly at random);
- the noiseless rating is ``c + h * (affinity * s + b_u + b_i)`` with ``s = +1`` when
  ``g(u) == g(i)`` and ``-1`` otherwise, user and item biases ``b ~ N(0, bias^2)``,
  clipped to the scale: items of the user's own group are liked, others disliked;
- the observed rating adds ``h * noise * N(0, 1)`` and is rounded to the nearest level
  (or clipped, for a continuous ``scale``);
- which items a user rates: user activity and item popularity follow power laws
  (Zipf-Mandelbrot weights ``(rank + 1 + n / 100) ** -exponent`` over a random ranking of
  the ``n`` users or items; the shift keeps the head from being a handful of extreme users
  or items), and items of the user's own group are ``exposure`` times more likely to be
  seen, so the observed pattern itself also carries the groups (useful for
  implicit-feedback models).

Generation runs over chunks of users and writes straight into the final CSR arrays, so
100M ratings (Netflix: 480,189 users x 17,770 items) need about 1 GB beyond the result's
own 800 MB.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from rbmrec.data.ratings import Ratings, make_csr
from rbmrec.errors import DataError

log = logging.getLogger(__name__)

_EPOCH_2000 = 946_684_800
_TEN_YEARS = 10 * 365 * 86_400

#: The :func:`make_ratings` arguments that affect the data, all kept in the result's ``info``.
MAKE_RATINGS_ARGS: tuple[str, ...] = (
    "n_users", "n_items", "density", "n_groups", "levels", "scale", "noise", "affinity",
    "bias", "popularity", "activity", "exposure", "min_per_user", "timestamps", "titles",
    "seed", "chunk_ratings",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class PlantedTruth:
    """The structure a synthetic data set was drawn from, for oracle tests.

    Attributes
    ----------
    user_group : ndarray of int32, shape (n_users,)
    item_group : ndarray of int32, shape (n_items,)
    user_bias, item_bias : ndarray of float32
        In units of half the rating range.
    affinity : float
        Half the gap, in units of half the range, between liked and disliked items.
    center, half_range : float
        Middle of the scale and half its width.
    levels : ndarray of float32 or None
        Rating levels (None for a continuous scale).
    low, high : float
        The scale's bounds.
    n_groups : int
    """

    user_group: np.ndarray
    item_group: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    affinity: float
    center: float
    half_range: float
    levels: np.ndarray | None
    low: float
    high: float
    n_groups: int

    def preference(self, users: Any, items: Any) -> np.ndarray:
        """Latent preference ``affinity * s + b_u + b_i`` (no noise), broadcasting arrays."""
        u = np.asarray(users)
        i = np.asarray(items)
        sign = np.where(self.user_group[u] == self.item_group[i], 1.0, -1.0)
        return self.affinity * sign + self.user_bias[u] + self.item_bias[i]

    def expected(self, users: Any, items: Any) -> np.ndarray:
        """Noiseless rating ``c + h * preference`` clipped to the scale (before rounding)."""
        value = self.center + self.half_range * self.preference(users, items)
        return np.clip(value, self.low, self.high)

    def expected_matrix(self) -> np.ndarray:
        """``expected`` for every (user, item), shape (n_users, n_items); small data only."""
        n_u, n_i = self.user_group.size, self.item_group.size
        if n_u * n_i > 50_000_000:
            raise ValueError(f"{n_u} x {n_i} is too large for a dense matrix; use expected()")
        return self.expected(np.arange(n_u)[:, None], np.arange(n_i)[None, :])

    def liked(self, users: Any, items: Any) -> np.ndarray:
        """True where the item belongs to the user's group."""
        return self.user_group[np.asarray(users)] == self.item_group[np.asarray(items)]

    def group_items(self, group: int) -> np.ndarray:
        """Indices of the items in ``group`` (int32)."""
        return np.flatnonzero(self.item_group == group).astype(np.int32)


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Power-law weights over a random ranking of ``n`` things, shape (n,), finite, max > 0.

    Zipf-Mandelbrot ``(rank + 1 + q) ** -exponent`` with ``q = n / 100``: the shift keeps
    the head from being a handful of extreme users/items while the tail stays a power law.
    """
    return _power_weights(_zipf_base(n, rng), exponent)


def _zipf_base(n: int, rng: np.random.Generator) -> np.ndarray:
    """``rank + 1 + n / 100`` over a random ranking of ``n`` things, shape (n,)."""
    return rng.permutation(n) + 1.0 + n / 100


def _power_weights(base: np.ndarray, exponent: float) -> np.ndarray:
    """``base ** -exponent``; when that would underflow (a large exponent), the same weights
    relative to the largest one, computed in log space (the smallest may round to 0)."""
    weights = base ** -float(exponent)
    if _is_normal(weights):
        return weights  # the plain formula is exact: keep it
    log_w = -float(exponent) * np.log(base)
    return np.exp(log_w - log_w.max())


def _is_normal(weights: np.ndarray) -> bool:
    """True when every weight is a finite float64 with full precision (not subnormal)."""
    return bool(
        weights.size == 0
        or (np.all(np.isfinite(weights)) and weights.min() >= np.finfo(np.float64).tiny)
    )


def _allocate_power(
    base: np.ndarray, exponent: float, total: int, low: int, high: int
) -> np.ndarray:
    """:func:`_allocate` with weights ``base ** -exponent`` (shape (n,)), in log space when
    they would underflow, so any finite exponent gives finite counts; int64, shape (n,)."""
    weights = base ** -float(exponent)
    if _is_normal(weights):
        return _allocate(weights, total, low, high)  # exact when no weight underflows
    log_w = -float(exponent) * np.log(base)
    log_w -= log_w.max()
    n = log_w.size
    total = int(min(max(total, n * low), n * high))

    def scaled(t: float) -> np.ndarray:
        with np.errstate(over="ignore", under="ignore"):
            return np.clip(np.exp(log_w + t), low, high)

    # sum(scaled(t)) grows with t from n * low (t -> -inf) to n * high (t = t_hi).
    t_lo, t_hi = -1.0, float(np.log(max(high, 1)) - log_w.min() + 1.0)
    for _ in range(200):
        mid = (t_lo + t_hi) / 2
        if scaled(mid).sum() < total:
            t_lo = mid
        else:
            t_hi = mid
    return _round_counts(scaled(t_hi), total, high)


def _allocate(weights: np.ndarray, total: int, low: int, high: int) -> np.ndarray:
    """Integer counts proportional to ``weights``, each in [low, high], summing to ``total``
    (or as close as the bounds allow).

    Parameters
    ----------
    weights : ndarray of float, shape (n,)
        Positive finite weights (see :func:`_allocate_power` for weights that underflow).
    total : int
    low, high : int
        Bounds of each count.

    Returns
    -------
    ndarray of int64, shape (n,)

    Raises
    ------
    ValueError
        The weights are not positive and finite, or the counts are not finite.
    """
    n = weights.size
    if n and not (np.all(np.isfinite(weights)) and weights.min() > 0):
        raise ValueError("weights must be positive finite numbers")
    total = int(min(max(total, n * low), n * high))
    lo, hi = 0.0, 1.0
    while np.clip(weights * hi, low, high).sum() < total and np.isfinite(hi):
        hi *= 2.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if np.clip(weights * mid, low, high).sum() < total:
            lo = mid
        else:
            hi = mid
    return _round_counts(np.clip(weights * hi, low, high), total, high)


def _round_counts(real: np.ndarray, total: int, high: int) -> np.ndarray:
    """Integer counts from real ones (shape (n,), in [low, high]): floors, then +1 for the
    largest fractional parts until they sum to ``total``; int64, shape (n,)."""
    if not np.all(np.isfinite(real)):
        raise ValueError(
            "the number of ratings per user cannot be computed (non-finite counts); use a "
            "smaller activity exponent"
        )
    counts = np.floor(real).astype(np.int64)
    short = total - int(counts.sum())
    if short > 0:
        room = np.flatnonzero(counts < high)
        frac = (real - counts)[room]
        counts[room[np.argsort(-frac, kind="stable")[:short]]] += 1
    return counts


def _alias_table(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table: O(1) draws from a discrete distribution."""
    n = probs.size
    scaled = probs * n
    alias = np.arange(n, dtype=np.int64)
    small = np.flatnonzero(scaled < 1.0).tolist()
    large = np.flatnonzero(scaled >= 1.0).tolist()
    while small and large:
        s, g = small.pop(), large.pop()
        alias[s] = g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    scaled[small + large] = 1.0
    return scaled, alias


# A row that gains no new item in _STALL_ROUNDS successive rounds, or in _SLOW_ROUNDS rounds
# while the probability mass of the items it still lacks is below 1 / _STALL_ROUNDS (so its
# last item alone would take about _STALL_ROUNDS rounds), switches to exponential keys: its
# missing items are nearly unreachable by drawing with replacement (e.g. items of other taste
# groups with a huge ``exposure``). Rows of ordinary parameters never stall that long (at
# most ~10 rounds with the defaults), so their data is unchanged.
_STALL_ROUNDS = 256
_SLOW_ROUNDS = 16


def _exponential_keys(
    rng: np.random.Generator, probs: np.ndarray, k: int, exclude: np.ndarray | None = None
) -> np.ndarray:
    """``k`` distinct items drawn without replacement with probabilities ``probs`` (shape
    (n_items,)), avoiding ``exclude`` (Efraimidis & Spirakis 2006: the ``k`` smallest keys
    ``E / p`` with ``E`` standard exponential); items of probability 0 come last, in random
    order. Returns int64 item indices, shape (k,)."""
    with np.errstate(divide="ignore"):
        keys = rng.exponential(size=probs.size) / probs
    if exclude is not None and exclude.size:
        keys[exclude] = np.nan  # sorts after inf
    return np.argpartition(keys, k - 1)[:k].astype(np.int64)


def _sample_rows(
    rng: np.random.Generator,
    counts: np.ndarray,
    probs: np.ndarray,
    table: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """For each row ``r``, ``counts[r]`` distinct items drawn without replacement with
    probabilities ``probs`` (successive sampling).

    Returns sorted keys ``row * n_items + item``. Rows draw exactly their shortfall with
    replacement in each round and drop repeats, which is sequential sampling without
    replacement done in batches; rows wanting more than a quarter of the items, and rows that
    stop making progress (see ``_STALL_ROUNDS``), use exponential keys
    (Efraimidis & Spirakis 2006) instead: for a stalled row, over the items it does not have
    yet, which continues the same successive sampling. Always terminates.
    """
    n_items = probs.size
    prob_keep, alias = table
    dense = counts > n_items // 4
    done: list[np.ndarray] = []
    for r in np.flatnonzero(dense):
        top = _exponential_keys(rng, probs, int(counts[r]))
        done.append(r * n_items + top)
    pending = np.flatnonzero(~dense & (counts > 0)).astype(np.int64)
    chosen = np.zeros(0, dtype=np.int64)
    need = counts.astype(np.int64)
    finished = np.zeros(counts.size, dtype=bool)
    have = np.zeros(counts.size, dtype=np.int64)
    stalls = np.zeros(counts.size, dtype=np.int64)
    while pending.size:
        rows = np.repeat(pending, need[pending])
        pick = rng.integers(0, n_items, rows.size)
        items = np.where(rng.random(rows.size) < prob_keep[pick], pick, alias[pick])
        keys = np.concatenate([chosen, rows * n_items + items])
        keys.sort()
        uniq = keys[np.r_[True, keys[1:] != keys[:-1]]]
        urow = uniq // n_items
        before = have[pending]
        have = np.bincount(urow, minlength=counts.size)
        stalls[pending] = np.where(have[pending] > before, 0, stalls[pending] + 1)
        finished[pending] = have[pending] == counts[pending]
        over = finished[urow]
        done.append(uniq[over])
        chosen = uniq[~over]
        pending = pending[~finished[pending]]
        stalled = pending[stalls[pending] >= _SLOW_ROUNDS]
        if stalled.size:
            held_mass = np.bincount(urow, weights=probs[uniq % n_items], minlength=counts.size)
            slow = (stalls[stalled] >= _STALL_ROUNDS) | (
                1.0 - held_mass[stalled] < 1.0 / _STALL_ROUNDS
            )
            stuck = stalled[slow]
        else:
            stuck = stalled
        if stuck.size:
            is_stuck = np.zeros(counts.size, dtype=bool)
            is_stuck[stuck] = True
            mine = is_stuck[chosen // n_items]
            held, chosen = chosen[mine], chosen[~mine]
            held_row = held // n_items
            for r in stuck:
                have_items = held[held_row == r] % n_items
                extra = _exponential_keys(rng, probs, int(counts[r] - have_items.size), have_items)
                done.append(r * n_items + np.concatenate([have_items, extra]))
            finished[stuck] = True
            pending = pending[~is_stuck[pending]]
        need[pending] = counts[pending] - have[pending]
    return np.sort(np.concatenate(done)) if done else np.zeros(0, dtype=np.int64)


def make_ratings(
    n_users: int,
    n_items: int,
    density: float = 0.05,
    n_groups: int = 5,
    levels: int | Sequence[float] | None = None,
    scale: tuple[float, float] | tuple[float, float, float] | None = None,
    noise: float = 0.25,
    affinity: float = 0.75,
    bias: float = 0.15,
    popularity: float = 0.8,
    activity: float = 0.8,
    exposure: float = 4.0,
    min_per_user: int = 1,
    timestamps: bool = False,
    titles: bool = False,
    seed: int = 0,
    chunk_ratings: int = 4_000_000,
    name: str = "synthetic",
    n_levels: int | None = None,
) -> Ratings:
    """Draw a synthetic ratings data set with planted taste groups.

    Parameters
    ----------
    n_users, n_items : int
    density : float in (0, 1], default 0.05
        Target fraction of rated cells; the number of ratings is
        ``round(density * n_users * n_items)`` unless the per-user bounds forbid it.
    n_groups : int, default 5
        Taste groups (users and items are assigned uniformly at random).
    levels : int or sequence of float, optional
        Rating levels: an int ``n`` means ``1..n``; default ``(1, 2, 3, 4, 5)``. Any finite
        values, 0 and negatives included (``range(5)``: a 0..4 scale, 0s stored as ratings).
    scale : (low, high) or (low, high, step), optional
        Instead of levels: continuous ratings in ``[low, high]`` (``low < high``), or the
        levels ``low, low + step, ...`` up to ``high`` (``(-10, 10, 0.01)``: 2001 levels).
    noise : float, default 0.25
        Rating noise standard deviation, in units of half the range.
    affinity : float, default 0.75
        Liked items sit ``affinity`` above the centre, disliked ones below (half-range units:
        on 1..5, liked ~ 4.5 and disliked ~ 1.5 before biases and noise).
    bias : float, default 0.15
        Standard deviation of user and item biases (half-range units).
    popularity, activity : float, default 0.8
        Power-law exponents of item popularity and user activity (0 = uniform).
    exposure : float, default 4.0
        How much more likely a user is to rate an item of their own group (1 = no effect).
    min_per_user : int, default 1
        Every user rates at least this many items.
    timestamps : bool, default False
        Also draw timestamps (uniform over 2000-2009), so temporal splits work.
    titles : bool, default False
        Attach ``items`` metadata with synthetic titles.
    seed : int, default 0
        Same arguments and seed give the same data. Every argument but ``titles`` and
        ``name`` takes part: ``timestamps=True`` draws the timestamps from the stream the
        rating noise comes from (so it also changes the ratings), and ``chunk_ratings``
        changes the draws as described below.
    chunk_ratings : int, default 4,000,000
        Ratings generated per chunk (bounds temporary memory). The random draws are
        consumed chunk by chunk, so a different ``chunk_ratings`` gives different data (with
        the same distribution) for the same seed, unless both values keep every rating in
        one chunk (any ``chunk_ratings`` at least the number of ratings gives the same data).
    name : str, default "synthetic"
    n_levels : int, optional
        Same as ``levels=n_levels`` (levels ``1..n_levels``).

    Returns
    -------
    Ratings
        Users and items indexed ``0 .. n - 1`` (raw ids are the indices); ``truth`` (also
        ``info["truth"]``) is the :class:`PlantedTruth`; ``info`` also holds ``user_group``,
        ``item_group``, ``expected`` (the truth's function), ``synthetic=True`` and every
        argument that affects the data (:data:`MAKE_RATINGS_ARGS`), so
        ``make_ratings(**{k: r.info[k] for k in MAKE_RATINGS_ARGS})`` draws it again:
        ``levels`` is stored resolved (a list of floats, also when given as an int or as
        ``n_levels`` or as a ``scale`` with a step; None with a continuous ``scale``) and
        ``scale`` as a ``(low, high)`` tuple for continuous ratings, None otherwise.

    Raises
    ------
    TypeError
        A numeric argument is not a real number (a string, a bool, None).
    ValueError
        A numeric argument is out of range or not finite, named in the message.
    DataError
        The number of ratings exceeds the int32 index range.
    """
    args = dict(locals())  # every argument by name, for ``info``
    _check_sizes(n_users, n_items, n_groups, density, min_per_user)
    _check_shape(noise, affinity, bias, popularity, activity, exposure)
    _check_positive_int(chunk_ratings, "chunk_ratings")
    lv, low, high = _resolve_levels(levels, n_levels, scale)
    structure, seen, rating = _streams(seed)
    truth = _draw_truth(structure, n_users, n_items, n_groups, bias, affinity, lv, low, high)
    counts = _rating_counts(structure, n_users, n_items, density, activity, min_per_user)
    samplers = _group_samplers(_zipf_weights(n_items, popularity, structure), truth, exposure)
    m, t = _draw_entries(truth, counts, samplers, seen, rating, noise, chunk_ratings, timestamps)
    return _as_ratings(m, t, truth, args)


def _streams(seed: int) -> tuple[np.random.Generator, ...]:
    """Three independent random streams from ``seed``: the planted structure (groups,
    biases, activity and popularity rankings), which items are observed, and the rating
    noise with the timestamps."""
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))


def _check_positive_int(value: Any, label: str) -> None:
    """ValueError naming ``label`` unless ``value`` is an int >= 1 (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{label} must be a positive int, got {value!r}")


def _check_sizes(
    n_users: Any, n_items: Any, n_groups: Any, density: Any, min_per_user: Any
) -> None:
    """The size arguments of :func:`make_ratings`, checked in the order of its signature."""
    for value, label in ((n_users, "n_users"), (n_items, "n_items"), (n_groups, "n_groups")):
        _check_positive_int(value, label)
    if not (0 < _real(density, "density") <= 1):
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    if (
        isinstance(min_per_user, bool)
        or not isinstance(min_per_user, int | np.integer)
        or not (0 <= min_per_user <= n_items)
    ):
        raise ValueError(f"min_per_user must be an int in [0, n_items], got {min_per_user!r}")


def _check_shape(
    noise: Any, affinity: Any, bias: Any, popularity: Any, activity: Any, exposure: Any
) -> None:
    """The distribution arguments of :func:`make_ratings`: finite reals, >= 0 (exposure > 0)."""
    for value, label in (
        (noise, "noise"),
        (affinity, "affinity"),
        (bias, "bias"),
        (popularity, "popularity"),
        (activity, "activity"),
    ):
        # NaN would pass unnoticed into every rating (searchsorted puts NaN on the top level).
        if not (np.isfinite(_real(value, label)) and value >= 0):
            raise ValueError(f"{label} must be a finite number >= 0, got {value!r}")
    if not (np.isfinite(_real(exposure, "exposure")) and exposure > 0):
        raise ValueError(f"exposure must be a finite number > 0, got {exposure!r}")


def _resolve_levels(
    levels: Any, n_levels: int | None, scale: Any
) -> tuple[np.ndarray | None, float, float]:
    """``(levels, low, high)``: the rating levels (float32, sorted; None for a continuous
    ``scale``) and the scale's bounds, from :func:`make_ratings`'s three scale arguments."""
    if n_levels is not None:
        if levels is not None:
            raise ValueError("give levels or n_levels, not both")
        levels = n_levels
    lv = _levels(levels, scale)
    if lv is None:
        return lv, float(scale[0]), float(scale[1])
    return lv, float(lv[0]), float(lv[-1])


def _draw_truth(
    rng: np.random.Generator,
    n_users: int,
    n_items: int,
    n_groups: int,
    bias: float,
    affinity: float,
    lv: np.ndarray | None,
    low: float,
    high: float,
) -> PlantedTruth:
    """The planted structure: groups, then biases of users and items, drawn from ``rng``."""
    return PlantedTruth(
        user_group=rng.integers(0, n_groups, n_users).astype(np.int32),
        item_group=rng.integers(0, n_groups, n_items).astype(np.int32),
        user_bias=(rng.standard_normal(n_users) * bias).astype(np.float32),
        item_bias=(rng.standard_normal(n_items) * bias).astype(np.float32),
        affinity=float(affinity),
        center=(low + high) / 2,
        half_range=max((high - low) / 2, 1e-9),
        levels=lv,
        low=low,
        high=high,
        n_groups=int(n_groups),
    )


def _rating_counts(
    rng: np.random.Generator,
    n_users: int,
    n_items: int,
    density: float,
    activity: float,
    min_per_user: int,
) -> np.ndarray:
    """Ratings per user (int64, shape (n_users,)): power-law activity over a random ranking
    drawn from ``rng``, summing to ``density * n_users * n_items`` where the bounds allow.

    Raises
    ------
    DataError
        The total exceeds the int32 index range of a CSR matrix.
    """
    counts = _allocate_power(
        _zipf_base(n_users, rng),
        activity,
        round(density * n_users * n_items),
        min_per_user,
        n_items,
    )
    total = int(counts.sum())
    if total > np.iinfo(np.int32).max:
        raise DataError(f"{total:,} ratings exceed the int32 index range of the CSR matrix")
    return counts


def _group_samplers(
    pop: np.ndarray, truth: PlantedTruth, exposure: float
) -> list[tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]]:
    """For each taste group, ``(probs, alias table)`` of the items its users see: popularity
    ``pop`` (shape (n_items,)) times ``exposure`` on the group's own items."""
    samplers = []
    for g in range(truth.n_groups):
        w = pop * np.where(truth.item_group == g, exposure, 1.0)
        if not np.isfinite(w.sum()):
            # A huge exposure overflows: the same weights relative to the group's own items.
            w = pop * np.where(truth.item_group == g, 1.0, 1.0 / exposure)
        probs = w / w.sum()
        samplers.append((probs, _alias_table(probs)))
    return samplers


def _draw_entries(
    truth: PlantedTruth,
    counts: np.ndarray,
    samplers: list[tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]],
    seen: np.random.Generator,
    rating: np.random.Generator,
    noise: float,
    chunk_ratings: int,
    timestamps: bool,
) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
    """The ratings matrix and the timestamps matrix (None without ``timestamps``), drawn
    chunk by chunk of users straight into the final CSR arrays.

    Which items each user rates comes from ``seen``, rating noise and timestamps from
    ``rating``; chunks hold about ``chunk_ratings`` ratings, and within a chunk users are
    drawn group by group.
    """
    n_users, n_items = truth.user_group.size, truth.item_group.size
    total = int(counts.sum())
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(total, dtype=np.int32)
    data = np.empty(total, dtype=np.float32)
    ts = np.empty(total, dtype=np.int64) if timestamps else None
    start_user = 0
    while start_user < n_users:
        # Users [start_user, stop_user) hold about chunk_ratings ratings.
        stop_user = int(np.searchsorted(indptr, indptr[start_user] + chunk_ratings, "right"))
        stop_user = min(max(stop_user - 1, start_user + 1), n_users)
        users = np.arange(start_user, stop_user)
        groups = truth.user_group[users]
        for g in np.unique(groups):
            local = users[groups == g]
            keys = _sample_rows(seen, counts[local], *samplers[g])
            rows, items = local[keys // n_items], keys % n_items
            pos = indptr[rows] + _offset_in_row(rows)
            indices[pos] = items
            value = truth.center + truth.half_range * (
                truth.preference(rows, items)
                + noise * rating.standard_normal(rows.size, dtype=np.float32)
            )
            data[pos] = _to_scale(value, truth.levels, truth.low, truth.high)
            if ts is not None:
                ts[pos] = _EPOCH_2000 + rating.integers(0, _TEN_YEARS, rows.size)
        start_user = stop_user
    m = make_csr(data, indices, indptr, (n_users, n_items))
    return m, make_csr(ts, indices, indptr, (n_users, n_items)) if ts is not None else None


def _offset_in_row(rows: np.ndarray) -> np.ndarray:
    """Position of each entry within its row, for entries sorted by row (shape (n,))."""
    first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    return np.arange(rows.size) - np.repeat(first, np.diff(np.r_[first, rows.size]))


def _as_ratings(
    m: sp.csr_matrix, t: sp.csr_matrix | None, truth: PlantedTruth, args: dict[str, Any]
) -> Ratings:
    """:func:`make_ratings`'s result from its drawn matrices and its arguments ``args``."""
    lv = truth.levels
    return Ratings(
        m,
        timestamps=t,
        items=_titles(truth) if args["titles"] else None,
        values=lv if lv is not None else None,
        name=args["name"],
        info=_info(args, truth),
        truth=truth,
        _checked=True,
    )


def _info(args: dict[str, Any], truth: PlantedTruth) -> dict[str, Any]:
    """The ``info`` of :func:`make_ratings`'s result: every argument that affects the data
    (:data:`MAKE_RATINGS_ARGS`, ``levels`` and ``scale`` resolved) and the truth."""
    info = {"synthetic": True, **{k: args[k] for k in MAKE_RATINGS_ARGS}}
    info["levels"] = None if truth.levels is None else truth.levels.tolist()
    info["scale"] = None if truth.levels is not None else (truth.low, truth.high)
    info.update(
        truth=truth,
        user_group=truth.user_group,
        item_group=truth.item_group,
        expected=truth.expected,
    )
    return info


def _real(value: Any, label: str) -> Any:
    """``value`` unchanged if it is a real number; TypeError naming ``label`` otherwise
    (strings, bools and None would fail later with numpy's or Python's own message, or pass
    as 0/1)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        raise TypeError(f"{label} must be a real number, got {type(value).__name__} {value!r}")
    if isinstance(value, complex | np.complexfloating):
        raise TypeError(f"{label} must be a real number, got {value!r}")
    return value


def _levels(levels: Any, scale: Any) -> np.ndarray | None:
    if scale is not None:
        if levels is not None:
            raise ValueError("give levels or scale, not both")
        try:
            bounds = tuple(float(v) for v in scale)
        except (TypeError, ValueError):
            bounds = ()
        if len(bounds) not in (2, 3):
            raise ValueError(f"scale must be (low, high) or (low, high, step), got {scale!r}")
        low, high = bounds[:2]
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise ValueError(f"scale must satisfy low < high (both finite), got {scale!r}")
        if len(bounds) == 2:
            return None
        step = bounds[2]
        if not (np.isfinite(step) and 0 < step <= high - low):
            raise ValueError(f"scale step must be in (0, high - low], got {scale!r}")
        n = int(np.floor((high - low) / step + 1e-9)) + 1
        # Rounded so that a level meant to be 0 (or 0.3) is exactly that, not 1e-15 off.
        return np.unique(np.round(low + step * np.arange(n), 9).astype(np.float32))
    if levels is None:
        levels = 5
    if isinstance(levels, int | np.integer) and not isinstance(levels, bool):
        if levels < 2:
            raise ValueError(f"levels must be >= 2, got {levels!r}")
        return np.arange(1, int(levels) + 1, dtype=np.float32)
    lv = np.unique(np.asarray(levels, dtype=np.float32))
    if lv.size < 2 or not np.all(np.isfinite(lv)):
        raise ValueError(f"levels must hold at least two finite values, got {levels!r}")
    return lv


def _to_scale(value: np.ndarray, lv: np.ndarray | None, low: float, high: float) -> np.ndarray:
    if lv is None:
        return np.clip(value, low, high).astype(np.float32)
    mids = (lv[1:] + lv[:-1]) / 2
    return lv[np.searchsorted(mids, value)]


def _titles(truth: PlantedTruth) -> pl.DataFrame:
    n = truth.item_group.size
    return pl.DataFrame(
        {
            "item_id": np.arange(n, dtype=np.int64),
            "title": [f"Film {i} (taste group {g})" for i, g in enumerate(truth.item_group)],
            "genres": [f"group{g}" for g in truth.item_group],
        }
    )


def demo_ratings() -> Ratings:
    """The embedded default data set of ``make demo`` and of the tests.

    1,000 users x 500 items, ~5% density (25,000 ratings), 5 taste groups, levels 1..5,
    timestamps and synthetic titles, seed 0. Takes a few milliseconds.
    """
    return make_ratings(
        1000, 500, density=0.05, n_groups=5, timestamps=True, titles=True, seed=0, name="demo"
    )
