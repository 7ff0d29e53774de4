"""What each ``autopeft`` subcommand does; the parser lives in ``cli/main.py``."""

from __future__ import annotations

import argparse
import os


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
    from autopeft.cli.progress import make_display
    from autopeft.controller.search import run_search
    from autopeft.settings import SearchSettings
    from autopeft.store import Store

    settings = SearchSettings.from_args(args)
    if settings.ray_address:
        _storage_out_of_argv(args.storage)
    display = make_display(settings.progress, every=settings.progress_every)
    if display is None:
        name = run_search(settings, say=_out)
    else:
        with display:
            name = run_search(settings, say=display.say, progress=display.handle)
    _out(_front_text(Store(args.storage, create=False), name, "table"))
    _out(f"study: {name}  (autopeft front --study {name}; autopeft trials --study {name})")
    return 0


def _front_text(store: object, name: str, fmt: str) -> str:
    from autopeft.front import front_trials, study_objectives
    from autopeft.report import front_rows, render, resolution_caption

    study = store.require_study(name)
    front = front_trials(store, name)
    rows = front_rows(front, detailed=fmt != "table", primary=study.primary)
    return render(rows, fmt, title=f"Pareto front of {name}",
                  caption=resolution_caption(front, study_objectives(study)))


def cmd_front(args: argparse.Namespace) -> int:
    from autopeft.store import Store

    _out(_front_text(Store(args.storage, create=False), args.study, args.format))
    return 0


def cmd_confirm(args: argparse.Namespace) -> int:
    from autopeft.controller.search import run_confirm
    from autopeft.store import Store

    run_confirm(args.study, seeds=args.seeds, storage=args.storage,
                ray_address=args.ray_address, say=_out)
    _out(_front_text(Store(args.storage, create=False), args.study, "table"))
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


def cmd_plot(args: argparse.Namespace) -> int:
    import re
    from pathlib import Path

    from autopeft.errors import AutopeftError
    from autopeft.plot import SUFFIXES, study_plot_data, write_plot
    from autopeft.store import Store

    out = Path(args.output or re.sub(r"[^A-Za-z0-9._-]", "_", args.study) + ".png")
    out = out.expanduser()
    # Every check before the database is read or anything is drawn.
    if out.is_dir():
        raise AutopeftError(f"-o {out} is a folder; give a file name such as {out}/front.png")
    if out.suffix.lower() not in SUFFIXES:
        raise AutopeftError(f"-o {out}: unknown format '{out.suffix or '(no suffix)'}'; end "
                            f"the name with {', '.join(SUFFIXES)}")
    folder = out.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise AutopeftError(f"-o {out}: cannot write into '{folder}' (missing or not "
                            "writable); give a path in a writable folder")
    data = study_plot_data(Store(args.storage), args.study, x=args.x)
    try:
        write_plot(data, out)
    except OSError as exc:
        raise AutopeftError(f"-o {out}: cannot write the plot ({exc.strerror or exc})") from None
    drawn = len(data.points) + len(data.strip)
    _out(f"plotted {drawn} trials of {args.study} ({len(data.points)} with a metric, "
         f"{sum(p.on_front for p in data.points)} on the front) to {out}")
    for note in data.notes:
        _out(f"  {note}")
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


def cmd_serve(args: argparse.Namespace) -> int:
    from autopeft.serve.app import serve
    from autopeft.serve.config import ServeConfig, load_token

    serve(ServeConfig(storage=args.storage, host=args.host, port=args.port,
                      token=load_token(args.token_file), read_only=args.read_only,
                      ray_address=args.ray_address, log_dir=args.log_dir), say=_out)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from autopeft.export import export_trial
    from autopeft.store import Store

    out = export_trial(Store(args.storage, create=False), args.study, args.trial, args.output)
    _out(f"exported trial {args.trial} of {args.study} to {out}")
    return 0


from autopeft.cli.planning import cmd_estimate, cmd_profile  # noqa: E402,F401  (dispatch)
