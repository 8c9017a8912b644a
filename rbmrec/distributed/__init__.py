"""Data-parallel training and batch scoring of rbmrec models on a Dask cluster.

Needs the ``dask`` extra (``pip install 'rbmrec[dask]'``). The public surface:

- :func:`fit`: train a RatingRBM or an ImplicitRBM on ratings held by the cluster (a Dask
  DataFrame, a pandas or polars frame, or parquet files); returns a
  :class:`~rbmrec.bundle.ModelBundle`, the fitted model with its raw-id maps and training
  ratings.
- :func:`predict`: ratings of raw (user, item) pairs, as a Dask DataFrame.
- :func:`recommend`: top-N lists of every user of a ratings frame, as a Dask DataFrame.

Running it on a real cluster: docs/distributed.md.
"""

from rbmrec.distributed._fit import fit
from rbmrec.distributed._score import predict, recommend

__all__ = ["fit", "predict", "recommend"]
