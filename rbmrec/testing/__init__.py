"""Reference implementations for tests and benchmarks (plain NumPy, like numpy.testing).

:mod:`rbmrec.testing.dense_reference`: the dense softmax RBM and its CD-1 step, against which
the sparse engine is checked and timed.
"""
