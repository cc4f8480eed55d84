"""Plotting and small measurement helpers for the book's chapters.

* :mod:`cratelib.figures.theory` - the theory chapters (coding rate, MSSA, ISTA, the architecture).

The modules import matplotlib lazily inside the plotting functions' module, not in ``cratelib``
itself, so ``import cratelib`` stays free of plotting dependencies.
"""
