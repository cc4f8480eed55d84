"""Command line: ``python -m cratelib <command>`` (also installed as ``cratelib``)."""
from __future__ import annotations

import argparse
import sys


def _info(args: argparse.Namespace) -> int:
    from cratelib.info import format_table, info_table

    print(format_table(info_table(args.pattern)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cratelib", description="White-box transformers (CRATE): models, training, evaluations.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="parameter count of every registered model, beside the paper's Table 3")
    p.add_argument("--pattern", default="*", help="shell-style filter on model names, e.g. 'crate_*_patch8'")
    p.set_defaults(func=_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
