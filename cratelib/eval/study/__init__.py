"""The emergence study: does supervised training make [CLS] attention segment?

Fixed in code before the study's models were measured, so that no choice below was made while
looking at their numbers.

**Models.** The catalogue :mod:`cratelib.models.catalogue`: CRATE, ViT-CLS, ViT-GAP and the
ablations, each with its pre-named primary layer (CRATE's penultimate, the paper's choice, Fig. 14;
the ViT's last); Part 3's CRATE-α, ToST and CRATE-MAE are measured at their penultimate layer, as
CRATE, and each is compared with CRATE. CRATE-MAE is trained by masked autoencoding
(``configs/study-mae.yaml``); its map is its encoder's [CLS] attention, a token that every patch
attends to in the encoder and the decoder and that the reconstruction loss therefore trains (the
measurement runs the encoder on all patches, unmasked).

**Images.** Two fresh sets of the study's own data (generator version 4, never used in training):
a *selection* set (the val split of seed :data:`cratelib.data.synthetic.HELD_OUT_SEED`) on which
every choice is made, and a *measurement* set (the test split of the same seed) on which every
number is reported (:func:`cratelib.eval.study.protocol.probe_sets`).

**Primary measure.** Per image, the ROC AUC of a head's CLS attention map (eqs. 10-11, on the
patch grid of the model's own resolution) against the main object, with two definitions of an
object patch (:data:`cratelib.eval.scoring.RULES`): at least half of its pixels are object
(``half``), or any of them (``any``). No threshold on the map. Per layer, *one* head is chosen -
the one with the highest mean AUC on the selection set - and scored on the measurement set (never a
best head per image); the mean over all heads is reported beside it. Every layer is measured.

**The map of a family without [CLS] attention.** A ToST model's TSSA layers form no
token-to-token attention; its map is the membership Pi of each patch in each head (the per-head
weight with which the patch enters the head's statistic, :func:`cratelib.eval.attention.layer_map`),
scored by the same per-image AUC and head choice. Fixed here before any ToST run is measured.

**Secondary measures.** Every other measure of :data:`cratelib.eval.scoring.MEASURES` (the share of
attention on the main object and on the distractors; the IoU of DINO's 60 %-mass set for the best
head of each image), how well the first principal component of the patch features separates object
from background (App. B.2), MaskCut's class-agnostic AP50 (Alg. 4, no CRF).

**Baselines on the same images and metric.** Pixel cues (:mod:`cratelib.eval.cues`), random maps
through the same head choice, and each architecture at initialisation (the epoch-0 snapshots).

**Statistics and the decision rule.** Paired per-image differences with standard errors; across
seeds, mean and spread. :func:`cratelib.eval.study.verdicts.verdict` states the rule: a difference
between two models is real only if it has the same sign in every seed, exceeds two standard
deviations across seeds, and both models beat the best pixel baseline.

Modules: :mod:`~cratelib.eval.study.protocol` (images, scoring a checkpoint, the whole study),
:mod:`~cratelib.eval.study.record` (the measurement cache), :mod:`~cratelib.eval.study.verdicts`
(summaries across seeds, the rule and its sentences).
"""
