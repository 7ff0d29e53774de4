"""What each ``autopeft`` subcommand does; the parser lives in ``cli/main.py``."""

from __future__ import annotations

import argparse


def _out(text: str) -> None:
    print(text, flush=True)


def _storage_out_of_argv(storage: str | None) -> None:
    """Run this search again without its storage URL on the command line, when that URL
    carries a password and the search joins a Ray cluster.

    Ray lists every driver that joins a cluster with its process command line
    (``ray job list``, the dashboard), readable by anyone who can use the cluster. The
    process replaces itself (``os.execv``) with the same command minus ``--storage URL``,
    the URL moving to ``$AUTOPEFT_STORAGE``, an environment Ray does not show.
    """
    import os
    import sys

    from autopeft.paths import ENV_STORAGE
    from autopeft.store.url import password_of

    secret = password_of(storage) if storage else None
    argv = list(getattr(sys, "orig_argv", []))
    if not secret or not any(secret in a for a in argv):
        return
    keep: list[str] = []
    for i, arg in enumerate(argv):
        if arg == storage and i and argv[i - 1].startswith("--"):
            keep.pop()  # the flag before it (--storage, or an abbreviation argparse took)
        elif not (arg.startswith("--") and arg.endswith("=" + storage)):  # --storage=URL
            keep.append(arg)
    if any(secret in a for a in keep):  # written some other way: leave it as it is
        return
    os.environ[ENV_STORAGE] = storage
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, *keep[1:]])


def cmd_search(args: argparse.Namespace) -> int:
    from autopeft.controller.search import run_search
    from autopeft.front import front_trials
    from autopeft.report import render, trial_rows
    from autopeft.settings import SearchSettings
    from autopeft.store import Store

    settings = SearchSettings.from_args(args)
    if settings.ray_address:
        _storage_out_of_argv(args.storage)
    name = run_search(settings, say=_out)
    store = Store(args.storage, create=False)
    front = front_trials(store, name)
    rows = trial_rows(front, detailed=False, primary=store.require_study(name).primary)
    _out(render(rows, "table", title=f"Pareto front of {name}"))
    _out(f"study: {name}  (autopeft front --study {name}; autopeft trials --study {name})")
    return 0


def cmd_front(args: argparse.Namespace) -> int:
    from autopeft.front import front_trials
    from autopeft.report import render, trial_rows
    from autopeft.store import Store

    store = Store(args.storage, create=False)
    study = store.require_study(args.study)
    rows = trial_rows(front_trials(store, args.study), detailed=args.format != "table",
                      primary=study.primary)
    _out(render(rows, args.format, title=f"Pareto front of {args.study}"))
    return 0


def cmd_trials(args: argparse.Namespace) -> int:
    from autopeft.report import render, render_trial, trial_rows
    from autopeft.store import Store

    store = Store(args.storage, create=False)
    study = store.require_study(args.study)
    if args.trial is not None:
        from autopeft.errors import AutopeftError

        found = [t for t in store.trials(args.study) if t.number == args.trial]
        if not found:
            raise AutopeftError(f"study '{args.study}' has no trial {args.trial}; `autopeft "
                                f"trials --study {args.study}` lists them")
        rows = trial_rows(found, detailed=True, primary=study.primary)
        title = f"Trial {args.trial} of {args.study}"
        _out(render_trial(rows[0], title=title) if args.format == "table"
             else render(rows, args.format))
        return 0
    rows = trial_rows(store.trials(args.study, status=args.status),
                      detailed=args.format != "table", primary=study.primary)
    _out(render(rows, args.format, title=f"Trials of {args.study}"))
    return 0


def cmd_studies(args: argparse.Namespace) -> int:
    from autopeft.report import render, study_rows
    from autopeft.store import Store

    store = Store(args.storage, create=False)
    _out(render(study_rows(store.list_studies()), args.format, title="Studies"))
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from autopeft.controller.submit import submit_search
    from autopeft.errors import AutopeftError

    argv = list(args.search_args)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise AutopeftError(f"--env takes KEY=VALUE, got '{item}'")
        env[key] = value
    from autopeft.settings import SearchSettings

    submit_search(argv, address=args.address, storage=args.storage,
                  working_dir=args.working_dir, wait=args.wait, env=env,
                  timeout=args.timeout, say=_out, validate=SearchSettings.from_argv)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from autopeft.export import export_trial
    from autopeft.store import Store

    out = export_trial(Store(args.storage, create=False), args.study, args.trial, args.output)
    _out(f"exported trial {args.trial} of {args.study} to {out}")
    return 0


from autopeft.cli.planning import cmd_estimate, cmd_profile  # noqa: E402,F401  (dispatch)
