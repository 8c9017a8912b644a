"""Numba kernels of rbmrec: plain arrays and scalars in, arrays out.

Modules (imported on demand so ``import rbmrec.engine`` compiles nothing; it only starts
Numba's threading layer, see below):

- :mod:`rbmrec.engine.bernoulli`: binary visible units, and the kernels shared with dense
  Gaussian units (``family`` argument): hidden probabilities, free energy, Gibbs sampling,
  visible means and CD-k / PCD-k gradient statistics over CSR rows.
- :mod:`rbmrec.engine.gaussian`: Gaussian visible units with per-unit ``sigma``, dense
  (missing = 0) and masked (only stored entries are visible units) layouts.
- :mod:`rbmrec.engine.softmax`: K-way softmax visible groups (rating models): CD-k statistics
  of a mini-batch, and every softmax kernel the models call. Its phases:

  - :mod:`rbmrec.engine.softmax_grouping`: counting sort of a batch's entries by visible
    group, and the groups' split into parallel tasks;
  - :mod:`rbmrec.engine.softmax_logits`: one group's level logits, softmax and level draw
    (inlined helpers);
  - :mod:`rbmrec.engine.softmax_chains`: the item-major Gibbs chains (hidden passes, visible
    step);
  - :mod:`rbmrec.engine.softmax_weight_update`: weight statistics and the fused momentum
    step;
  - :mod:`rbmrec.engine.softmax_inference`: row-by-row kernels of a trained model (hidden
    units, free energy, sampling, level distributions and level scores for ranking);
  - :mod:`rbmrec.engine.softmax_batches`: consecutive mini-batches of training in one call.
- :mod:`rbmrec.engine.sparse_binary`: RBMs over a sparse binary user-item matrix (every item
  a visible unit; Bernoulli or replicated-softmax visibles): sparse positive phase, dense
  BLAS negative phase.
- :mod:`rbmrec.engine.conditional`: the conditional RBM's hidden offset ``r D`` and fused
  ``D`` update for a binary pattern (rated / known pairs).
- :mod:`rbmrec.engine.topn`: top-N selection with per-row and global exclusions (every
  recommender's ``recommend``): ids sorted by descending score, ties by lower id.
- :mod:`rbmrec.engine.update`: the trainer's momentum / weight-decay step of a parameter, in
  one pass.
- :mod:`rbmrec.engine.exact`: exact enumeration of tiny models (log Z, p(v), expectations,
  the exact log-likelihood gradient), in plain NumPy: the reference the kernels are tested
  against.
- :mod:`rbmrec.engine._random`, :mod:`rbmrec.engine._math`: per-row random streams and
  stable scalar helpers.
"""

import numba as _numba

# Start Numba's threading layer before any kernel is loaded from the on-disk cache. A cached
# kernel whose parallel loops are in the functions it calls (softmax_cd -> _accumulate), and
# that was compiled while those callees came from the cache, does not start the threading
# layer when it is loaded, and then calls a scheduler that was never registered: a
# segmentation fault (numba GitHub reports 4807 and 8578). Three processes on a fresh cache
# were enough: a factored RatingRBM fit, then a softmax RBM fit twice (the second crashed).
# tests/engine/test_engine_cache.py replays that sequence.
_numba.get_num_threads()
