"""Ray Tune around one study: the searcher, the trainable, and the callback that stores.

Ray decides where and when trials run; the Optuna searcher decides what they try; the
``StoreCallback`` (driver process only) writes each finished trial and refreshes the front.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from autopeft.controller.ray_env import init_ray, ray_environment

ray_environment()  # before ray is imported: this module is imported only to run a search

from ray import tune  # noqa: E402
from ray.tune import Callback  # noqa: E402
from ray.tune.search import ConcurrencyLimiter  # noqa: E402

from autopeft.controller.resume import optuna_study_name  # noqa: E402
from autopeft.controller.searcher import (  # noqa: E402
    CONFIRMS_ATTR,
    GPU_KEY,
    NUMBER_KEY,
    PRIVATE_KEYS,
    SEED_ATTR,
    StudySearcher,
    link_extra,
    make_sampler,
    open_study,
)
from autopeft.controller.stopping import store_writes  # noqa: E402
from autopeft.controller.trainable import trainable  # noqa: E402
from autopeft.runner.trial import MAX_TRACEBACK  # noqa: E402
from autopeft.status import TrialStatus, trial_row  # noqa: E402


def _short_params(params: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        return "+".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)

    return " ".join(f"{k}={fmt(v)}" for k, v in params.items()) or "-"


def _fmt_count(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n:,}"


def progress_line(done: int, total: int, number: int, row: dict[str, Any], primary: str) -> str:
    metric = row.get("primary_metric")
    metric_s = f"{primary}={metric:.4f}" if metric is not None else f"{primary}=-"
    peak = row.get("peak_memory_bytes")
    peak_s = f"{peak / 2**20:.0f}MiB" if peak else "-"
    secs = (row.get("train_seconds") or 0) + (row.get("eval_seconds") or 0)
    line = (f"[{done}/{total}] trial {number} {row.get('method', '?')} "
            f"{_short_params(row.get('params') or {})} lr={row.get('learning_rate', 0):.1e} | "
            f"{metric_s} trainable={_fmt_count(row.get('trainable_params'))} peak={peak_s} "
            f"{secs:.0f}s {row.get('status')}")
    if row.get("status") != TrialStatus.COMPLETED and row.get("reason"):
        line += f" ({row['reason'][:160]})"
    elif row.get("unparseable_predictions"):
        line += (f" ({row['unparseable_predictions']}/{row.get('eval_examples')} dev "
                 "predictions unparseable)")
    return line


class StoreCallback(Callback):
    """Stores every finished trial from the driver; the only writer to the database."""

    def __init__(self, store_url: str, name: str, total: int, primary: str, space: Any,
                 say: Callable[[str], None], scheduler: str = "fifo",
                 keep_front_only: bool = False) -> None:
        self.store_url, self.name, self.total, self.primary = store_url, name, total, primary
        self.space = space
        self.scheduler = scheduler
        self.keep_front_only = keep_front_only
        self.say = say
        self.started: dict[str, datetime] = {}
        self.stored: set[str] = set()
        self.done = 0
        self._store: Any = None
        self.on_stored: Callable[[int, dict[str, Any]], None] | None = None  # live progress

    def __getstate__(self) -> dict:
        # Tune pickles its run config (callbacks included) into the experiment folder: the
        # live Store (engine, locks) cannot be pickled, and the URL's password must not land
        # on disk; the driver's own instance is never restored from that copy.
        from autopeft.store.url import redact

        return {**self.__dict__, "_store": None, "store_url": redact(self.store_url),
                "on_stored": None}

    @property
    def db(self) -> Any:
        if self._store is None:
            from autopeft.store import Store

            self._store = Store(self.store_url)
        return self._store

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.started[trial.trial_id] = datetime.now(timezone.utc)

    def store(self, trial: Any, row: dict[str, Any]) -> None:
        from autopeft.front import front_trials

        if trial.trial_id in self.stored or NUMBER_KEY not in trial.config:
            return
        number = int(trial.config[NUMBER_KEY])
        fields = trial_row(row)
        fields["method"] = fields["method"] or trial.config.get("method")
        link = link_extra(trial.config)
        fields["extra"].update(ray_trial_id=trial.trial_id, **link)
        self.db.add_trial(self.name, number=number, started_at=self.started.get(trial.trial_id),
                          finished_at=datetime.now(timezone.utc), **fields)
        self.stored.add(trial.trial_id)
        self.done += 1
        line = progress_line(self.done, self.total, number, row, self.primary)
        if link:
            line += f" (repeat of trial {link['confirms']}, seed {link['seed']})"
        self.say(line)
        if self.on_stored is not None:
            self.on_stored(number, row)
        if row.get("status") == TrialStatus.COMPLETED:
            front = {t.number for t in front_trials(self.db, self.name)}
            self.db.set_pareto(self.name, front)
            if self.keep_front_only:
                self._drop_adapters(front)

    def _drop_adapters(self, front: set[int]) -> None:
        """--save-adapters front: delete what trials that left the front had saved (only
        inside this study's artifacts folder, whatever the rows say)."""
        from autopeft.artifacts import prune

        root = (self.db.require_study(self.name).settings or {}).get("artifacts_dir")
        if not root:
            return
        paths = [t.extra["adapter_path"]
                 for t in self.db.trials(self.name, status=TrialStatus.COMPLETED)
                 if t.number not in front and (t.extra or {}).get("adapter_path")]
        for path in prune(root, paths):
            self.say(f"warning: not deleting '{path}': it is outside the study's artifacts "
                     f"folder {root}")

    @store_writes()
    def record_infeasible(self, number: int, config: dict, plan: Any) -> None:
        """Store a configuration the planner refused (never trained)."""
        pred = plan.prediction or {}
        row = {**self._decoded(config), "status": TrialStatus.INFEASIBLE, "reason": plan.reason,
               "peak_memory_bytes": plan.predicted_bytes, "memory_kind": "predicted",
               "trainable_params": (pred.get("details") or {}).get("trainable_params"),
               "total_params": (pred.get("details") or {}).get("total_params")}
        self._store_unlaunched(number, row, {"prediction": pred, **link_extra(config)})

    @store_writes()
    def record_plan_error(self, number: int, config: dict, exc: BaseException) -> None:
        """Store a configuration whose memory planning raised (never trained)."""
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        row = {**self._decoded(config), "status": TrialStatus.FAILED,
               "reason": f"memory prediction failed: {type(exc).__name__}: {first}"}
        self._store_unlaunched(number, row, link_extra(config))

    def _store_unlaunched(self, number: int, row: dict[str, Any], extra: dict) -> None:
        fields = trial_row(row)
        fields["extra"] = extra
        now = datetime.now(timezone.utc)
        self.db.add_trial(self.name, number=number, started_at=now, finished_at=now, **fields)
        self.say(f"[{row['status']}] trial {number} {row.get('method', '?')} "
                 f"{_short_params(row.get('params') or {})}: {row['reason']}")

    @store_writes()
    def close_unfinished(self, searcher: Any, reason: str) -> None:
        """After ``fit``: trials Tune stopped without reporting (the search's time budget ran
        out) become ``interrupted`` rows, and Optuna is told they failed."""
        stored = {t.number for t in self.db.trials(self.name)}
        for trial_id, ot_trial in searcher.unfinished().items():
            if ot_trial.number not in stored:
                sampled = self._decoded(ot_trial.params) or {
                    "method": ot_trial.params.get("method", "?")}
                fields = trial_row({**sampled, "status": TrialStatus.INTERRUPTED,
                                    "reason": reason})
                attrs = ot_trial.user_attrs
                fields["extra"] = {"ray_trial_id": trial_id}
                if CONFIRMS_ATTR in attrs:
                    fields["extra"].update(confirms=int(attrs[CONFIRMS_ATTR]),
                                           seed=int(attrs[SEED_ATTR]))
                self.db.add_trial(self.name, number=ot_trial.number,
                                  started_at=self.started.get(trial_id),
                                  finished_at=datetime.now(timezone.utc), **fields)
                self.say(f"[interrupted] trial {ot_trial.number} {sampled['method']}: {reason}")
            searcher.on_trial_complete(trial_id, {"status": TrialStatus.INTERRUPTED})

    @store_writes()
    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = dict(trial.last_result or {})
        if result.get("status") == TrialStatus.RUNNING:  # stopped by the scheduler after a report
            result["status"] = TrialStatus.PRUNED
            result["reason"] = (
                f"stopped early by the {self.scheduler} scheduler at step "
                f"{result.get('stopped_at_step')} (epoch {result.get('epochs_completed')}) with "
                f"{self.primary}={result.get('primary_metric')}"
            )
        if "status" not in result:
            result = {**self._decoded(trial.config), "status": TrialStatus.INTERRUPTED,
                      "reason": "stopped before reporting (search time budget reached)"}
        self.store(trial, result)

    def _decoded(self, config: dict) -> dict[str, Any]:
        """Method, params and learning rate of a sampled config ({} if it cannot decode)."""
        from autopeft.space import decode_config

        try:
            cfg = decode_config(self.space, {k: v for k, v in config.items()
                                             if k not in PRIVATE_KEYS})
        except Exception:  # noqa: BLE001 - a row without params beats a lost row
            return {}
        return {"method": cfg.method, "params": cfg.params, "learning_rate": cfg.learning_rate}

    @store_writes()
    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        text = _error_text(trial)
        lines = [ln for ln in text.splitlines() if ln.strip()]
        last = lines[-1][:200] if lines else "no error message"
        self.store(trial, {**self._decoded(trial.config), "status": TrialStatus.FAILED,
                           "reason": f"Ray worker failed: {last}",
                           "traceback": text[-MAX_TRACEBACK:] or None})


def _make_planner(settings: Any, space: Any, data: Any, profile: Any,
                  model_config: Any) -> Callable[[dict], Any] | None:
    """config -> Plan for the study's profile (None: --profile none, no planning)."""
    if profile is None:
        return None
    from autopeft.controller.feasibility import Planner
    from autopeft.space import decode_config

    planner = Planner.for_study(settings, data, profile, model_config)

    def plan(config: dict) -> Any:
        cfg = decode_config(space, {k: v for k, v in config.items() if k not in PRIVATE_KEYS})
        return planner.plan(cfg.method, cfg.params)

    return plan


def trials_use_gpu(cluster: dict[str, float], profile: Any) -> bool:
    """Whether each trial asks Ray for a GPU: the cluster has one, and the study's profile
    is a GPU profile or there is none (``--profile none``: nothing planned, the GPU is used)."""
    return cluster.get("GPU", 0) > 0 and (profile is None or profile.device == "cuda")


def trial_bundle(config: dict, cpus: float, use_gpu: bool) -> dict[str, float]:
    """One trial's Ray resources: its CPUs and, on GPUs, the planner's predicted share of a
    device (so small trials pack onto one), or a whole device when nothing was planned."""
    bundle = {"CPU": cpus}
    if use_gpu:
        bundle["GPU"] = config.get(GPU_KEY) or 1.0
    return bundle


def _error_text(trial: Any) -> str:
    """What Ray wrote about a trial's failure (its error file), or ""."""
    err = getattr(trial, "error_file", None)
    try:
        return open(err).read() if err else ""
    except OSError:
        return ""


def tune_study(*, store: Any, name: str, settings: Any, space: Any, data: Any,
               resources: dict[str, float], model_path: str, num_samples: int,
               artifacts: str, profile: Any, model_config: Any,
               say: Callable[[str], None], cover_methods: bool = False,
               confirm_seeds: int | None = None,
               progress: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Run the study's trials through Ray Tune; every finished trial is stored.

    With ``confirm_seeds`` the front's configurations then run again with that many more
    seeds (:func:`confirm_front`); ``num_samples`` 0 runs only that part. ``progress`` (on
    the driver) receives the live progress messages of the running trials
    (:mod:`autopeft.controller.progress`), a ``search`` message first and a ``stored`` one
    per stored trial; None: trials send none.

    Ctrl-C raises KeyboardInterrupt out of here (Tune's own SIGINT handler, which ends the
    run as if it had finished, is switched off); the caller closes the study and Ray.
    """
    ray = init_ray(settings.ray_address)
    run = _TuneRun(store=store, name=name, settings=settings, space=space, data=data,
                   resources=resources, model_path=model_path, artifacts=artifacts,
                   profile=profile, model_config=model_config, say=say, ray=ray,
                   progress=progress)
    with run.pump or contextlib.nullcontext():
        if num_samples > 0:
            callback = run.callback(num_samples)
            searcher = StudySearcher(
                space, study=run.study, metrics=run.metrics, seed=settings.seed,
                planner=run.planner, on_infeasible=callback.record_infeasible,
                on_plan_error=callback.record_plan_error,
                on_stop=lambda why: say(f"stopping: {why}"),
                # one trial per method first, never more than the trials left (no residue)
                first=[{"method": m} for m in sorted(space.methods)][:num_samples]
                if cover_methods else None,
            )
            budget = settings.budget
            run.fit(searcher, callback, num_samples, time_budget=budget.time_budget,
                    scheduler=settings.scheduler)
            callback.close_unfinished(searcher, "stopped when the search's time budget ran "
                                      "out" if budget.time_budget else "stopped before it "
                                      "reported")
        if confirm_seeds:
            confirm_front(run, confirm_seeds)


class _TuneRun:
    """What every Tune run of one study shares: the Optuna study, the planner and the
    trainable with its resources (a search, then its confirmation, use the same)."""

    def __init__(self, *, store: Any, name: str, settings: Any, space: Any, data: Any,
                 resources: dict[str, float], model_path: str, artifacts: str, profile: Any,
                 model_config: Any, say: Callable[[str], None], ray: Any,
                 progress: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.store, self.name, self.settings, self.space = store, name, settings, space
        self.data, self.resources, self.model_path = data, resources, model_path
        self.artifacts, self.say = artifacts, say
        self.primary = data.spec.primary_metric
        self.metrics = [self.primary, "trainable_params", "peak_memory"]
        self.planner = _make_planner(settings, space, data, profile, model_config)
        self.study = open_study(store.optuna_storage(), optuna_study_name(name),
                                make_sampler(settings.sampler, settings.seed), self.metrics,
                                ["max", "min", "min"])
        self.use_gpu = trials_use_gpu(ray.cluster_resources(), profile)
        self.pump = None
        if progress is not None:
            from autopeft.controller.progress import ProgressPump

            self.pump = ProgressPump(progress)

    def _stored(self, number: int, row: dict[str, Any]) -> None:
        self.pump.drain()  # the trial's own last messages first
        self.pump.deliver({"kind": "stored", "trial": number, "status": str(row.get("status")),
                           "metric": row.get("primary_metric")})

    def callback(self, total: int) -> StoreCallback:
        callback = StoreCallback(self.store.url, self.name, total, self.primary, self.space,
                                 self.say, scheduler=self.settings.scheduler,
                                 keep_front_only=self.settings.save_adapters == "front")
        if self.pump is not None:
            callback.on_stored = self._stored
            self.pump.deliver({"kind": "search", "study": self.name, "total": total,
                               "metric": self.primary})
        return callback

    def fit(self, searcher: Any, callback: StoreCallback, num_samples: int, *,
            time_budget: float | None, scheduler: str) -> None:
        settings = self.settings
        fn = tune.with_parameters(
            # the resolved model path: trials run in Ray workers whose working folder differs
            trainable, settings=settings.without_secrets(), model_path=self.model_path,
            threads=int(self.resources["cpu"]), space=self.space.to_dict(), data=self.data,
            intermediate=scheduler == "asha",
            artifacts=None if settings.save_adapters == "none" else self.artifacts,
            progress=self.pump.inbox if self.pump else None,
        )
        early_stop = None
        if scheduler == "asha":
            from ray.tune.schedulers import ASHAScheduler

            # one report per epoch (or eval_every steps) and a final one: max_t bounds both
            checkpoints = max(2, math.ceil(settings.budget.epochs) + 1)
            early_stop = ASHAScheduler(metric=self.primary, mode="max",
                                       time_attr="training_iteration", max_t=checkpoints,
                                       grace_period=1, reduction_factor=2)
        cpus, use_gpu = self.resources["cpu"], self.use_gpu

        def trial_resources(config: dict) -> Any:
            return tune.PlacementGroupFactory([trial_bundle(config, cpus, use_gpu)])

        tuner = tune.Tuner(
            tune.with_resources(fn, trial_resources),
            tune_config=tune.TuneConfig(
                search_alg=ConcurrencyLimiter(searcher, max_concurrent=settings.concurrency),
                num_samples=num_samples, time_budget_s=time_budget,
                # warm workers: imports and the base model stay loaded
                reuse_actors=True, scheduler=early_stop),
            run_config=tune.RunConfig(
                name=f"{self.name}-{datetime.now():%Y%m%d-%H%M%S}", verbose=0,
                # beside the study's adapters: --artifacts-dir decides where a search writes
                storage_path=str(Path(self.artifacts) / "ray_results"),
                callbacks=[callback],
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            ),
        )
        tuner.fit()


def confirmation_jobs(store: Any, name: str, study: Any, *, base_seed: int,
                      seeds: int) -> list[tuple[int, int, dict]]:
    """``(trial, seed, params)`` still to run so that every point of the front has repeats
    with seeds ``base_seed + 1 ... base_seed + seeds``. A repeat that ended in any stored
    status but ``interrupted`` is done (a failed seed is a result too); a resume runs only
    the seeds that are missing."""
    from autopeft.front import front_trials
    from autopeft.status import TrialStatus, confirms

    done = {(confirms(t.extra), int((t.extra or {}).get("seed", -1)))
            for t in store.trials(name) if confirms(t.extra) is not None
            and TrialStatus(t.status).used_budget}
    params = {t.number: t.params for t in study.get_trials(deepcopy=False)}
    return [(p.number, seed, params[p.number]) for p in front_trials(store, name)
            if p.number in params
            for seed in range(base_seed + 1, base_seed + seeds + 1)
            if (p.number, seed) not in done]


def confirm_front(run: _TuneRun, seeds: int) -> None:
    """Run every front configuration again with ``seeds`` more seeds, through the same
    Optuna study, planner, trainable and store callback as the search's trials. A point
    that enters the front when a confirmed one falls off is confirmed in turn."""
    from autopeft.controller.searcher import RepeatSearcher

    settings, say = run.settings, run.say
    last: list = []
    while True:
        jobs = confirmation_jobs(run.store, run.name, run.study, base_seed=settings.seed,
                                 seeds=seeds)
        if not jobs or jobs == last:  # nothing left, or nothing could be stored: stop
            return
        last = jobs
        points = sorted({j[0] for j in jobs})
        say(f"confirming {len(points)} front configurations ({', '.join(map(str, points))}): "
            f"{len(jobs)} runs with seeds {settings.seed + 1}..{settings.seed + seeds}")
        callback = run.callback(len(jobs))
        searcher = RepeatSearcher(run.space, jobs=jobs, study=run.study, metrics=run.metrics,
                                  seed=settings.seed, planner=run.planner,
                                  on_infeasible=callback.record_infeasible,
                                  on_plan_error=callback.record_plan_error)
        try:
            run.fit(searcher, callback, len(jobs), time_budget=None, scheduler="fifo")
            callback.close_unfinished(searcher, "stopped before it reported")
        finally:
            searcher.requeue_waiting()
