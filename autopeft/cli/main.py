"""``autopeft`` command line: search, front, trials, studies.

Only argparse and light autopeft modules are imported here; each command imports what it
needs when it runs, so ``autopeft --help`` does not load torch, ray or transformers.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from autopeft import __version__
from autopeft.errors import AutopeftError
from autopeft.settings import OneLineParser, SearchSettings


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", metavar="URL", default=None,
                   help="SQLAlchemy URL of the store (default: $AUTOPEFT_STORAGE or an "
                        "embedded SQLite file in the per-user data folder)")


def _add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", choices=("table", "json", "csv"), default="table")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="autopeft", description=(
        "Search PEFT methods, sizes and placements for a task and model; store the Pareto "
        "front of task metric vs trainable parameters vs peak memory."))
    parser.add_argument("--version", action="version", version=f"autopeft {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=OneLineParser)

    s = sub.add_parser("search", help="run a search and store every trial")
    SearchSettings.add_arguments(s)  # one flag per settings field

    sb = sub.add_parser("submit", help="send a whole search to a Ray cluster as a Ray Job")
    sb.add_argument("--address", help="the cluster's job server, e.g. http://HEAD:8265 "
                                      "(default: $RAY_API_SERVER_ADDRESS)")
    sb.add_argument("--working-dir", metavar="DIR", help="local folder shipped with the job")
    sb.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="environment variable for the job (repeatable)")
    sb.add_argument("--wait", action="store_true", help="follow the job until it ends")
    sb.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                    help="with --wait, stop following after this long (the job goes on)")
    sb.add_argument("search_args", nargs=argparse.REMAINDER,
                    help="the arguments of `autopeft search` (after --)")
    _add_common(sb)

    pr = sub.add_parser("profile", help="the hardware detected and the profile a search uses")
    pr.add_argument("--profile", metavar="NAME|FILE", help="show this profile instead")
    pr.add_argument("--list", action="store_true", help="list the shipped profiles")
    _add_format(pr)

    es = sub.add_parser("estimate", help="parameters and predicted training memory of a "
                                         "method on a model, from its config alone")
    es.add_argument("--model", required=True, help="hub id, model folder or config-only folder")
    es.add_argument("--method", required=True)
    es.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="method parameter (repeatable), e.g. r=8 target_modules=q,v")
    es.add_argument("--num-labels", type=_positive_int, default=2,
                    help="classification labels for encoders (2)")
    es.add_argument("--batch-size", type=_positive_int,
                    help="with --seq-len: predict the peak training memory")
    es.add_argument("--seq-len", type=_positive_int)
    es.add_argument("--target-len", type=_positive_int, help="label tokens (seq2seq)")
    es.add_argument("--dtype", choices=("auto", "fp32", "bf16", "fp16"), default="auto")
    es.add_argument("--profile", metavar="NAME|FILE", help="check the prediction against it")
    es.add_argument("--trust-remote-code", action="store_true")
    _add_format(es)

    ex = sub.add_parser("export", help="write a trial's trained adapter in peft format")
    ex.add_argument("--study", required=True)
    ex.add_argument("--trial", type=int, required=True, help="trial number")
    ex.add_argument("--output", required=True, metavar="DIR", help="a new or empty folder")
    _add_common(ex)

    f = sub.add_parser("front", help="the Pareto front of a study")
    f.add_argument("--study", required=True)
    _add_format(f)
    _add_common(f)

    t = sub.add_parser("trials", help="every trial of a study")
    t.add_argument("--study", required=True)
    t.add_argument("--status", help="only trials with this status")
    t.add_argument("--trial", type=int, metavar="N",
                   help="only trial N, every field (a failed trial's traceback included)")
    _add_format(t)
    _add_common(t)

    st = sub.add_parser("studies", help="all studies in the store")
    _add_format(st)
    _add_common(st)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import warnings

    # peft calls an API transformers 5 deprecated, on every model it wraps: not actionable
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
    from autopeft.cli import commands

    try:
        return getattr(commands, f"cmd_{args.command}")(args) or 0
    except AutopeftError as exc:
        print(f"autopeft {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"autopeft {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `autopeft trials ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
