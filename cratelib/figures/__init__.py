"""Figures and tables of the book's chapters: drawing only, in one style.

Every function here draws arrays and tables that :mod:`cratelib.eval` (or :mod:`cratelib.train`)
returns; none measures anything, and none imports :mod:`cratelib.train`. Layers and heads are
numbered from 1.

* :mod:`cratelib.figures.style` - the style, outlines and mask overlays all of them share;
* :mod:`cratelib.figures.curves` - curves over layers, epochs or noise, and layer x epoch maps;
* :mod:`cratelib.figures.tables` - the one Markdown table formatter;
* :mod:`cratelib.figures.theory` - the theory chapters 2-5 (coding rate, MSSA, ISTA, architecture);
* one module per chapter of part 2: :mod:`~cratelib.figures.training` (6),
  :mod:`~cratelib.figures.attention` (7, 11, 12), :mod:`~cratelib.figures.pca_maps` (8),
  :mod:`~cratelib.figures.segmentation` (9), :mod:`~cratelib.figures.maskcut` (10),
  :mod:`~cratelib.figures.heads` (12), :mod:`~cratelib.figures.transfer` (13); the study's
  panels and maps, :mod:`~cratelib.figures.emergence` (6.9-12);
* part 3: :mod:`~cratelib.figures.scaling` (15), :mod:`~cratelib.figures.mae` (16).

The modules import matplotlib; ``import cratelib`` itself does not.
"""
