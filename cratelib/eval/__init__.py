"""The paper's unsupervised evaluations (Appendix B) for CRATE and ViT models: every measurement.

Import the module you need (``from cratelib.eval import pca``); this package re-exports nothing, so
that every name here is a module. Each evaluation runs at the model's own resolution unless told
otherwise (:func:`cratelib.eval.extract.model_img_size`, for cratelib models and timm ViTs), and the
chapters, the command line (:mod:`cratelib.cli_evaluate`) and the tests call the same drivers:

* maps and features of any set of layers: :mod:`~cratelib.eval.extract` (``layer_maps``,
  ``layer_features``, an optional feature cache :mod:`~cratelib.eval.cache`);
* B.1 CLS attention maps (eqs. 10-11): :mod:`~cratelib.eval.attention`; scored against known objects
  by **one scorer**, :mod:`~cratelib.eval.scoring` (``score_maps`` -> ``Scores``), from the
  primitive measures of :mod:`~cratelib.eval.localisation`;
* B.2 PCA of patch features (eq. 12): :mod:`~cratelib.eval.pca`;
* B.3 coarse segmentation and mIoU (eqs. 13-14): :mod:`~cratelib.eval.segmentation`,
  :mod:`~cratelib.eval.threshold`, :mod:`~cratelib.eval.metrics`;
* B.4 MaskCut (Algorithm 4) and COCO AP: :mod:`~cratelib.eval.maskcut`, :mod:`~cratelib.eval.ncut`,
  :mod:`~cratelib.eval.crf`, :mod:`~cratelib.eval.coco_eval`, :mod:`~cratelib.eval.maskcut_eval`;
* noise (Figs. 11-12): :mod:`~cratelib.eval.noise`; predictions and linear probes:
  :mod:`~cratelib.eval.classify`;
* what learned nothing: :mod:`~cratelib.eval.baselines` (random and brightness maps),
  :mod:`~cratelib.eval.cues` (pixel cues and the data audit); statistics: :mod:`~cratelib.eval.stats`;
* images and ground truth: :mod:`~cratelib.eval.sources`; the paper's numbers:
  :mod:`~cratelib.eval.reference`;
* the emergence study (protocol, cached measurements, verdicts, tables): :mod:`cratelib.eval.study`.

Figures of all of it are :mod:`cratelib.figures`, which draws what these return and measures nothing.

Recipe: add a measure
---------------------
1. Write ``fn(maps, targets)`` in :mod:`cratelib.eval.scoring` (or beside it): ``maps`` is
   ``(L, J, K, h, w)``, ``targets`` a :class:`~cratelib.eval.scoring.Targets`; return ``(L, J, K)``
   (one value per head) or ``(L, J)`` (per image), or ``None`` when the targets lack what it needs.
2. Register it: ``MEASURES["my_measure"] = Measure(fn)`` (``own_head=True`` if it should choose
   its own head on the selection images).
Every ``score_maps`` call now returns it in ``Scores.values``, ``summary_row`` reports it, the
study's cache stores it and its per-image values feed the paired statistics. To make it a column of
the study's table, add its name to :data:`cratelib.eval.study.protocol.COLUMNS` (and bump
:data:`~cratelib.eval.study.protocol.PROTOCOL_VERSION`, which re-measures the shipped runs).

Recipe: add a model family to the study
---------------------------------------
1. Register the architecture as a family of :mod:`cratelib.models.registry` (it needs the
   ``forward_features`` API; :func:`cratelib.trace.trace` must record its map).
2. Add one :class:`~cratelib.models.catalogue.StudyEntry` to
   :data:`cratelib.models.catalogue.CATALOGUE` (family, label, colour, Table 2 row, group, primary
   layer, training preset, and the comparisons ``(A, B)`` it adds to the study).
3. ``python -m cratelib train-study --only <name> --seed 0`` trains it with the study's recipe, and
   ``python -m cratelib study`` measures it beside the others, by the same protocol and rule.

``tests/test_recipes.py`` follows both recipes with a toy measure and a toy family.
"""
