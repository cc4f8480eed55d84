"""Plotting and small measurement helpers for the book's chapters.

* :mod:`cratelib.figures.style` - the style, outlines and one-thread context all of them share;
* :mod:`cratelib.figures.theory` - the theory chapters 2-5 (coding rate, MSSA, ISTA, architecture);
* one module per chapter of part 2: :mod:`~cratelib.figures.training` (6),
  :mod:`~cratelib.figures.attention` (7), :mod:`~cratelib.figures.pca_maps` (8),
  :mod:`~cratelib.figures.segmentation` (9), :mod:`~cratelib.figures.maskcut` (10),
  :mod:`~cratelib.figures.ablations` (11), :mod:`~cratelib.figures.studies` (12),
  :mod:`~cratelib.figures.transfer` (13).

The modules import matplotlib lazily inside the plotting functions' module, not in ``cratelib``
itself, so ``import cratelib`` stays free of plotting dependencies.
"""
