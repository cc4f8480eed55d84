"""Command line: ``python -m cratelib <command>`` (also installed as ``cratelib``)."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from cratelib.models.catalogue import CATALOGUE, TABLE2_ORDER, pairs_of


def _info(args: argparse.Namespace) -> int:
    from cratelib.info import info_table, info_text

    print(info_text(info_table(args.pattern)))
    return 0


def _train(args: argparse.Namespace) -> int:
    from cratelib.train import load_config, train
    from cratelib.train.distributed import LaunchError, is_main_process

    config = load_config(args.config, args.set)
    try:
        result = train(config, resume=args.resume)
    except LaunchError as err:
        print(f"cratelib {args.command}: {err}", file=sys.stderr)
        return 2
    final = result.history[-1] if result.history else {}
    held_out = "val_recon" if config.objective == "mae" else "val_acc"  # reconstruction error or accuracy
    if is_main_process():
        print(f"run {result.run_dir}: {len(result.history)} epochs, {result.train_time_s:.0f} s, "
              f"{held_out}={final.get(held_out, float('nan')):.4f}; checkpoint {result.run_dir / 'last.pt'}")
        if getattr(args, "export", None):
            from cratelib.train.zoo import export_run

            command = " ".join(["python -m cratelib", *(shlex.quote(a) for a in args.argv)])
            record = export_run(config, args.export, command=command)
            print(f"exported to {args.export}/{config.name}.pt with its record; held out: {record['held_out']}")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    overrides = [f"init_from={args.init_from}", f"data={args.data}", *args.set]
    if args.data_root:
        overrides.append(f"data_root={args.data_root}")
    args.set = overrides
    return _train(args)


def _train_zoo(args: argparse.Namespace) -> int:
    from cratelib.train.zoo import ZOO_DIR, train_zoo

    train_zoo(args.only or None, out_dir=args.out or ZOO_DIR, runs_dir=args.runs, overrides=args.set)
    return 0


def _data(args: argparse.Namespace) -> int:
    from cratelib.data import SyntheticConfig, export_coco, export_voc, load_or_generate
    from cratelib.data.synthetic_store import cache_path

    fields = {"min_objects": args.min_objects, "max_objects": args.max_objects,
              "clutter": args.clutter, "fill": args.fill,
              "texture_correlation": args.texture_correlation}
    try:
        config = SyntheticConfig(args.num_images, image_size=args.image_size, seed=args.seed,
                                 split=args.split, max_rotation=args.max_rotation,
                                 version=args.version,
                                 **{k: v for k, v in fields.items() if v is not None})
    except ValueError as err:
        print(f"cratelib data: {err}", file=sys.stderr)
        return 2
    data = load_or_generate(config, cache_dir=args.cache_dir)
    if args.action == "audit":
        from cratelib.eval.cues import audit, format_audit

        try:
            result = audit(data, patch=args.patch, rule=args.rule)
        except ValueError as err:
            print(f"cratelib data audit: {err}", file=sys.stderr)
            return 2
        grid = args.image_size // args.patch
        target = {"any": "touch the main object", "half": "lie at least half on the main object"}[args.rule]
        fill = f", {config.fill} fill" if config.version == 4 else ""
        if config.texture_correlation:
            fill += f" (texture correlation {config.texture_correlation:g})"
        print(f"cue audit: {len(data)} images ({args.image_size} px, generator version {config.version}{fill}, "
              f"seed {args.seed}, split {args.split}) on the {grid}x{grid} patch grid; per-image ROC AUC of "
              f"each cue for the patches that {target}")
        print(format_audit(result))
        return 0
    if args.format == "coco":
        where = export_coco(data, args.out, split=f"{args.split}2017")
    elif args.format == "voc":
        where = export_voc(data, args.out, image_set=args.split)
    else:
        where = cache_path(config, args.cache_dir)
    print(f"{len(data)} images ({args.image_size} px, seed {args.seed}, split {args.split}) -> {where}")
    return 0


def _train_study(args: argparse.Namespace) -> int:
    from cratelib.train.study import train_study

    unknown = sorted(set(args.only) - set(CATALOGUE))
    if unknown:
        print(f"cratelib train-study: unknown models {unknown}; known: {', '.join(CATALOGUE)}", file=sys.stderr)
        return 2
    try:
        lines = train_study(args.only or None, args.seed or [0], img_size=args.img_size)
    except ValueError as err:
        print(f"cratelib train-study: {err}", file=sys.stderr)
        return 2
    for line in lines:
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in line.items()))
    return 0


def _study(args: argparse.Namespace) -> int:
    import csv
    import io

    from cratelib.eval.study.protocol import measure_study
    from cratelib.eval.study.tables import study_panels
    from cratelib.eval.study.verdicts import order_lines, order_support, study_verdicts, verdict_lines
    from cratelib.figures.emergence import plot_study_maps, plot_study_panels
    from cratelib.figures.tables import format_table
    from cratelib.io import atomic_write, atomic_write_json, atomic_write_text
    from cratelib.train.study import STAGES, study_checkpoints, study_folders

    out = Path(args.out)
    unknown = sorted(set(args.only) - set(CATALOGUE))
    if unknown:
        print(f"cratelib study: unknown models {unknown}; known: {', '.join(CATALOGUE)}", file=sys.stderr)
        return 2
    try:
        runs, zoo = study_folders(args.img_size)
        default = zoo if any(zoo.glob("*-s*.json")) else runs
        found = study_checkpoints(args.checkpoints or default, args.stage or STAGES,
                                  finished_only=not args.unfinished, models=args.only or None)
        result, sets = measure_study(found, args.images, pca=not args.no_pca,
                                     maskcut_folder=None if args.no_maskcut else out / "coco", cache_dir=args.cache)
    except (FileNotFoundError, ValueError) as err:
        print(f"cratelib study: {err}", file=sys.stderr)
        return 2
    # every comparison of the catalogue between the measured models: the primary pairs, the ablations', Part 3's
    verdicts = study_verdicts(result.rows, result.scores, pairs=pairs_of({c["name"] for c in found}))
    columns = list(dict.fromkeys(k for r in result.rows for k in r))

    text = io.StringIO()
    writer = csv.DictWriter(text, columns)
    writer.writeheader()
    writer.writerows(result.rows)
    atomic_write_text(out / "study.csv", text.getvalue())
    atomic_write_json(out / "study.json", {"runs": [{k: str(v) if k == "path" else v for k, v in c.items()} for c in found],
                                           "images": {"select": len(sets.select), "measure": len(sets.measure)},
                                           "rows": result.rows, "verdicts": verdicts})
    table = format_table(result.primary(), [c for c in columns if c not in ("primary",)], digits=3)
    atomic_write_text(out / "study.md", table + "\n")
    print(table)
    print(verdict_lines(verdicts))
    if set(TABLE2_ORDER) <= {c["name"] for c in found}:  # the ablations measured: Table 2's order, step by step
        print(order_lines(order_support(verdicts, TABLE2_ORDER)))
    for stage in sorted({r["stage"] for r in result.rows if r["stage"] != "baseline"}):
        fig = plot_study_panels(study_panels(result.rows, [("auc_half", stage, stage)]), ylabel="AUC of the chosen head")
        atomic_write(out / f"layers_{stage}.png", lambda f: fig.savefig(f, format="png", dpi=100))
    finals = {f"{n} s{s}": m for (n, s, st), m in result.maps.items() if st == "final"}
    if finals:
        k = next(iter(finals.values())).shape[0]
        for scale, name in (("value", "maps_final.png"), ("percentile", "maps_final_percentile.png")):
            fig = plot_study_maps(list(sets.measure.images[:k]), finals, list(sets.measure.instance_map[:k] == 1),
                                  scale=scale)
            atomic_write(out / name, lambda f: fig.savefig(f, format="png", dpi=100))
    print(f"{len(found)} checkpoints on {len(sets.measure)} images -> {out / 'study.csv'}, study.json, study.md, figures")
    return 0


def _add_train_args(p: argparse.ArgumentParser, default_config: str) -> None:
    p.add_argument("--config", default=default_config,
                   help="preset name (cpu-demo, colab, paper, finetune, zoo-*) or a YAML file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set epochs=3 --set model_args.depth=4 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cratelib", description="White-box transformers (CRATE): models, training, evaluations.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="parameter count of every registered model, beside the paper's Table 3")
    p.add_argument("--pattern", default="*", help="shell-style filter on model names, e.g. 'crate_*_patch8'")
    p.set_defaults(func=_info)

    p = sub.add_parser("train", help="train a model from a config (python -m cratelib train --config cpu-demo)")
    _add_train_args(p, "cpu-demo")
    p.add_argument("--export", type=Path, metavar="DIR",
                   help="then ship the run into DIR: <name>.pt (float16 weights) and <name>.json (its record: "
                        "config, this command, history, held-out accuracy or reconstruction error)")
    p.set_defaults(func=_train)

    p = sub.add_parser("finetune", help="fine-tune a checkpoint on a classification data set (Table 3 recipe)")
    _add_train_args(p, "finetune")
    p.add_argument("--init-from", required=True,
                   help="cratelib checkpoint, or official:<path> for released CRATE weights")
    p.add_argument("--data", required=True, help="cifar10, cifar100, flowers102, pets, imagefolder, synthetic")
    p.add_argument("--data-root", help="folder of the data set")
    p.set_defaults(func=_finetune)

    p = sub.add_parser("data", help="generate the embedded data set, export it (COCO/VOC) or audit its pixel cues")
    p.add_argument("action", nargs="?", default="generate", choices=["generate", "audit"],
                   help="generate (default): write the cache or an export; audit: per-image AUC of "
                        "brightness, saturation, colour distance, edge energy against the object")
    p.add_argument("--num-images", type=int, default=200)
    p.add_argument("--image-size", type=int, default=64, help="pixels, a multiple of 8 in [32, 224]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument("--version", type=int, default=4,
                   help="generator version: 4 (default, no pixel shortcuts) or 3 (the first zoo's, kept for the record)")
    p.add_argument("--min-objects", type=int, help="class objects per image (default: the version's)")
    p.add_argument("--max-objects", type=int, help="up to 5; 3 for the detection experiments")
    p.add_argument("--clutter", type=float, help="version 3: amount of small background clutter")
    p.add_argument("--fill", choices=["flat", "texture"], help="version 4: surface fills (default texture)")
    p.add_argument("--texture-correlation", type=float,
                   help="version 4: probability an object wears its class's texture (default 1 with texture fills)")
    p.add_argument("--max-rotation", type=float, default=15.0)
    p.add_argument("--patch", type=int, default=8, help="audit: patch size of the grid")
    p.add_argument("--rule", default="any", choices=["any", "half"],
                   help="audit: object patches touch the object (any) or are half object (half)")
    p.add_argument("--format", default="npz", choices=["npz", "coco", "voc"],
                   help="npz: only the disk cache; coco: images + instances JSON; voc: VOC2012 layout")
    p.add_argument("--out", type=Path, help="export folder (required for coco and voc)")
    p.add_argument("--cache-dir", type=Path, help="cache folder (default: cratelib's cache)")
    p.set_defaults(func=_data)

    p = sub.add_parser("train-zoo", help="train (resuming) and export the checkpoints shipped in data/checkpoints")
    p.add_argument("--only", action="append", default=[], metavar="NAME", help="only this zoo model (repeatable)")
    p.add_argument("--out", help="where to export (default: the repository's data/checkpoints)")
    p.add_argument("--runs", default="runs/zoo", help="run directories (resumable)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every model")
    p.set_defaults(func=_train_zoo)

    p = sub.add_parser("train-study", help="train (resuming) the emergence study's runs in data/study/runs and "
                       "ship the finished ones to data/checkpoints/study")
    p.add_argument("--only", action="append", default=[], metavar="MODEL",
                   help=f"{', '.join(CATALOGUE)} (repeatable; default: all)")
    p.add_argument("--seed", action="append", type=int, default=[], help="training seed (repeatable; default: 0)")
    p.add_argument("--img-size", type=int, default=64,
                   help="training resolution at patch 8 (default: the recipe's 64 px, an 8x8 grid; 128: a 16x16 grid, "
                        "whose runs go to data/study/runs-128px and ship to data/checkpoints/study-128px)")
    p.set_defaults(func=_train_study)

    p = sub.add_parser("study", help="the emergence study's protocol on its finished runs: one table (CSV/JSON/Markdown) "
                       "and the figures")
    p.add_argument("--checkpoints", default=None,
                   help="the shipped study zoo (<model>-s<seed>.pt with its .json record) or a folder of run "
                        "folders <model>-s<seed>/ (default: the study's shipped zoo at --img-size if it holds any, "
                        "else its run folders)")
    p.add_argument("--img-size", type=int, default=64,
                   help="which study the default --checkpoints are: the recipe's 64 px (data/checkpoints/study, "
                        "data/study/runs) or e.g. 128 px (data/checkpoints/study-128px, data/study/runs-128px)")
    p.add_argument("--out", default="out/study", help="where the table and figures go")
    p.add_argument("--images", type=int, default=256, help="images in the selection and in the measurement set")
    p.add_argument("--stage", action="append",
                   help="checkpoints to measure: final, equal_acc (first epoch at the recipe's validation "
                        "accuracy, 80 %%), init, or epoch<N> (a snapshot: epoch1, epoch2, epoch5, epoch10, epoch20; "
                        "repeatable; default: final, equal_acc and init)")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="reuse each checkpoint's measurement from DIR when it was made with the same weights, images "
                        "and protocol version, and store new ones there (default: measure everything afresh; the book "
                        "reads data/study/measurements, at 128 px data/study/measurements-128px)")
    p.add_argument("--unfinished", action="store_true", help="also measure runs still training (their latest epoch)")
    p.add_argument("--only", action="append", default=[], metavar="MODEL",
                   help="measure only these study models (repeatable; default: every model with a run)")
    p.add_argument("--no-pca", action="store_true", help="skip the principal-component measure")
    p.add_argument("--no-maskcut", action="store_true", help="skip MaskCut's AP50")
    p.set_defaults(func=_study)

    # evaluate {attention,pca,coarse-seg,maskcut}: its parser lives with its (heavy) imports in
    # cratelib.cli_evaluate, loaded only when the command runs, so that `info` and friends start fast.
    # main() hands `evaluate ...` to it before this parser runs; the entry here lists the command.
    sub.add_parser("evaluate", help="App. B evaluations: attention maps, PCA, coarse segmentation, MaskCut "
                   "(python -m cratelib evaluate --help)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["evaluate"]:
        from cratelib.cli_evaluate import main as evaluate_main

        return evaluate_main(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv  # the command line, for records
    if args.command == "data" and args.format != "npz" and args.out is None:
        parser.error(f"data --format {args.format} needs --out FOLDER")
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
