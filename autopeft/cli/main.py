"""``autopeft`` command line: search, front, trials, studies, serve, ...

Only argparse and light autopeft modules are imported here; each command imports what it
needs when it runs, so ``autopeft --help`` does not load torch, ray or transformers.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from autopeft import __version__
from autopeft.errors import AutopeftError, excerpt
from autopeft.settings import OneLineParser, SearchSettings


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {excerpt(text)}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {excerpt(text)}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", metavar="URL", default=None,
                   help="SQLAlchemy URL of the store (default: $AUTOPEFT_STORAGE or an "
                        "embedded SQLite file in the per-user data folder)")


STUDY_HELP = "the study's name (`autopeft studies` lists them)"


def _add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", choices=("table", "json", "csv"), default="table",
                   help="table (for people, fits the terminal) or json / csv (for programs: "
                        "every column, numbers as bytes, counts and fractions)")


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
    es.add_argument("--method", required=True, help="a method name, e.g. lora (README lists "
                                                     "them)")
    es.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="method parameter (repeatable), e.g. r=8 target_modules=q,v")
    es.add_argument("--num-labels", type=_positive_int, default=2,
                    help="classification labels for encoders (2)")
    es.add_argument("--batch-size", type=_positive_int,
                    help="with --seq-len: predict the peak training memory")
    es.add_argument("--seq-len", type=_positive_int, help="tokens per example (with "
                                                          "--batch-size)")
    es.add_argument("--target-len", type=_positive_int, help="label tokens (seq2seq)")
    es.add_argument("--dtype", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                    help="training precision of the prediction (auto: what --profile uses, "
                         "else fp32)")
    es.add_argument("--profile", metavar="NAME|FILE", help="check the prediction against it")
    es.add_argument("--trust-remote-code", action="store_true",
                    help="allow a model's own code from the hub (off unless given)")
    _add_format(es)

    ex = sub.add_parser("export", help="write a trial's trained adapter in peft format")
    ex.add_argument("--study", required=True, help=STUDY_HELP)
    ex.add_argument("--trial", type=int, required=True, help="trial number")
    ex.add_argument("--output", required=True, metavar="DIR", help="a new or empty folder")
    _add_common(ex)

    f = sub.add_parser("front", help="the Pareto front of a study")
    f.add_argument("--study", required=True, help=STUDY_HELP)
    _add_format(f)
    _add_common(f)

    c = sub.add_parser("confirm", help="run each front configuration again with more seeds; "
                                       "the front then ranks the means")
    c.add_argument("--study", required=True, help=STUDY_HELP)
    c.add_argument("--seeds", type=_positive_int, default=4,
                   help="seeds beyond the search's own: --seed+1 ... --seed+K (4: five in all); "
                        "seeds already run are not run again")
    c.add_argument("--ray-address", metavar="ADDRESS",
                   help="join an existing Ray cluster (default: local Ray)")
    _add_common(c)

    t = sub.add_parser("trials", help="every trial of a study")
    t.add_argument("--study", required=True, help=STUDY_HELP)
    t.add_argument("--status", help="only trials with this status")
    t.add_argument("--trial", type=int, metavar="N",
                   help="only trial N, every field (a failed trial's traceback included)")
    _add_format(t)
    _add_common(t)

    sv = sub.add_parser("serve", help="HTTP API and web pages over the store; starts and "
                                      "stops searches")
    sv.add_argument("--host", default="127.0.0.1",
                    help="address to bind (127.0.0.1); another needs a token or --read-only")
    sv.add_argument("--port", type=_positive_int, default=8000, help="port (8000)")
    sv.add_argument("--ray-address", metavar="URL",
                    help="a Ray job server (http://HEAD:8265): searches run there as Ray Jobs "
                         "(default: local processes)")
    sv.add_argument("--token-file", metavar="FILE",
                    help="file holding the API token that starting and stopping searches "
                         "need (default: $AUTOPEFT_API_TOKEN)")
    sv.add_argument("--read-only", action="store_true",
                    help="serve studies only; refuse to start or stop searches")
    sv.add_argument("--log-dir", metavar="DIR",
                    help="where the output of started searches goes (default: "
                         "serve-logs in the per-user data folder)")
    _add_common(sv)
    pl = sub.add_parser("plot", help="draw a study's trials: metric vs trainable parameters "
                                     "or peak memory, with the Pareto front")
    pl.add_argument("--study", required=True, help=STUDY_HELP)
    pl.add_argument("-o", "--output", metavar="FILE",
                    help="front.png, front.svg (matplotlib) or front.html (interactive, "
                         "plotly.js inline; works offline); default: <study>.png")
    pl.add_argument("--x", choices=("trainable_params", "peak_memory"),
                    default="trainable_params",
                    help="x axis: trainable parameters (log scale, the default) or peak "
                         "memory (MiB)")
    _add_common(pl)

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
