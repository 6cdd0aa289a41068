"""The glue of one runner job: config -> training set -> fit -> outputs -> MLflow.

Everything the runner knows about the layers below (systems, engine, objective,
optimizer) is in this module, so wiring them is a local change.
"""

from __future__ import annotations

import csv
import gc
import logging
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from q2mm.config import check_config, optimizer_options  # noqa: F401  (optimizer_options: part of this seam)
from q2mm.errors import Q2MMError, exit_with_message
from q2mm.optimize.scope import parameter_file_path
from q2mm.paths import data_root
from q2mm.tracking.callback import JOB_TAG, SWEPT_TAG, MlflowSweepCallback, SweepHandoff
from q2mm.tracking.description import RunFacts, closing_line, run_description
from q2mm.tracking.naming import job_label, job_name, single_name
from q2mm.tracking.plots import Parity, Structure
from q2mm.tracking.progress import IterationProgress
from q2mm.tracking.provenance import fingerprint, git_state, software_tags
from q2mm.tracking.record import (
    RunRecord,
    assessment_metrics,
    fit_params,
    flatten_config,
    metrics_from_summary,
    score_curve,
)
from q2mm.tracking.resume import ResumePoint, find_resume, logged_params, refuse_earlier_run, reopen_run
from q2mm.tracking.store import ensure_experiment, resolve_uri, run_page_url, ui_command
from q2mm.tracking.tracker import TrackedRun

log = logging.getLogger(__name__)


@dataclass
class JobContext:
    """Where a job writes and how it reports: its output directory and its sweep, if any."""

    output_dir: Path
    sweep_dir: Path | None = None  # set in a multirun
    job_num: int | None = None
    resume: ResumePoint | None = None  # the killed fit this job continues
    checkpoint_extra: dict[str, Any] = field(default_factory=dict)  # kept in the checkpoint (the MLflow run)
    overrides: tuple[str, ...] = ()  # this job's command-line overrides (a sweep job's values among them)

    @property
    def multirun(self) -> bool:
        return self.sweep_dir is not None

    def handoff(self) -> SweepHandoff | None:
        """What the sweep's parent left for its jobs (None outside a multirun)."""
        return SweepHandoff.read(self.sweep_dir) if self.sweep_dir is not None else None

    @classmethod
    def from_hydra(cls) -> JobContext:
        """The context of the running Hydra job."""
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        overrides = tuple(hc.overrides.task)
        if hc.mode == RunMode.MULTIRUN:
            return cls(Path(hc.runtime.output_dir), Path(hc.sweep.dir).resolve(), int(hc.job.num), overrides=overrides)
        return cls(Path(hc.runtime.output_dir), overrides=overrides)


@dataclass
class JobOutcome:
    """What a finished fit left behind."""

    summary: dict[str, Any]
    n_molecules: int
    input_files: list[Path]
    artifacts: list[tuple[Path, str | None]]
    fld_path: Path | None = None  # the written force field


# ---------------------------------------------------------------- system and fit


def system_spec(system: DictConfig) -> Any:
    """The q2mm.systems.SystemSpec described by a ``system`` config group (errors name its file)."""
    from q2mm.systems import spec_from_config

    return spec_from_config(system, system_source(system))


def system_source(system: DictConfig) -> str:
    """The YAML file of the job's system: ``system/<choice>.yaml`` first found on Hydra's search
    path (``--config-dir`` included), else in conf/system; the command line may override its keys."""
    from q2mm.systems import SYSTEM_CONFIG_DIR

    name, dirs = str(system.get("name", "")), [SYSTEM_CONFIG_DIR]
    try:
        from hydra.core.hydra_config import HydraConfig

        runtime = HydraConfig.get().runtime
        name = str(runtime.choices.get("system", name))
        dirs = [Path(s.path) / "system" for s in runtime.config_sources if s.schema == "file"] + dirs
    except ValueError:  # not inside a Hydra job (the compose API, tests)
        pass
    found = next((d / f"{name}.yaml" for d in dirs if (d / f"{name}.yaml").is_file()), None)
    return f"system {name!r} ({found})" if found else f"system {name!r}"


def validation_split(training_set: Any, cfg: DictConfig) -> Any:
    """The structures fitted and held out under ``validation`` (q2mm.evaluation.assess.Split);
    the system's selectivity groups are checked against its structures here, before any fit
    (a bad group fails; a pair whose energies do not compare is logged and reported without MM3*)."""
    from q2mm.evaluation.assess import split_training_set
    from q2mm.evaluation.selectivity import check_groups

    spec = getattr(training_set, "spec", None)
    if spec is not None and spec.selectivity is not None:
        for note in check_groups(spec.selectivity, training_set.molecules):
            log.warning("%s", note)
    val = cfg.validation
    return split_training_set(training_set, [str(s) for s in val.holdout], val.folds, val.fold)


def evaluation_pairs(evaluation: Any) -> dict[str, Parity]:
    """kind -> Parity (QM reference, MM calculated, structure index, R2, RMSD) of one reference
    evaluation, the scored entries only (entries of weight 0, such as rigid-body and
    reaction-coordinate modes, are left out, as they are from R2 and RMSD)."""
    pairs = {}
    for kind, res in evaluation.by_kind.items():
        ref, calc = np.asarray(res.ref, float), np.asarray(res.calc, float)
        weight = getattr(res, "weight", None)
        keep = np.ones(ref.shape, bool) if weight is None else np.asarray(weight) != 0
        structure = getattr(res, "structure", None)
        pairs[kind] = Parity(
            ref[keep],
            calc[keep],
            None if structure is None else np.asarray(structure)[keep],
            getattr(res, "r2", None),
            getattr(res, "rmsd", None),
        )
    return pairs


def past_last_fold(cfg: DictConfig) -> bool:
    """True for a cross-validation job whose ``validation.fold`` is past the system's last fold
    (the preset sweeps a fixed range of folds); any problem is left to the job to report."""
    from q2mm.evaluation.select import n_folds
    from q2mm.systems import load_system

    if cfg.validation.fold is None:
        return False
    try:
        spec = system_spec(cfg.system)
        training_set = load_system(spec, None if spec.embedded else data_root(cfg.data_root))
        last = n_folds(len(training_set.molecules), cfg.validation.folds) - 1
    except Exception:
        return False
    if cfg.validation.fold > last:
        log.info("validation.fold=%d: %s has folds 0..%d; nothing to do", cfg.validation.fold, cfg.system.name, last)
        return True
    return False


def fit_system(cfg: DictConfig, ctx: JobContext, progress: IterationProgress) -> JobOutcome:
    """Load the system, fit it, write the .fld, the JSON summary and the parity plots."""
    from q2mm.compose import problem_from_config  # the engine and JAX load with the first problem
    from q2mm.optimize import fit
    from q2mm.optimize.checkpoint import FitCheckpoint, fit_identity
    from q2mm.systems import load_system

    spec = system_spec(cfg.system)
    root = data_root(cfg.data_root)
    with progress.phase(f"loading {spec.name}"):
        training_set = load_system(spec, None if spec.embedded else root)
    split = validation_split(training_set, cfg)
    with progress.phase(
        f"building the MM3* model of {len(split.training.molecules)} structures and compiling its JAX loss"
    ):
        problem = problem_from_config(split.training, cfg)
    options = optimizer_options(cfg)
    checkpoint = FitCheckpoint(
        ctx.output_dir,
        fit_identity(problem.refs, problem.start_values, options.as_dict(), problem.ranges),
        extra=ctx.checkpoint_extra,
        resume=ctx.resume.state if ctx.resume else None,
    )

    def on_iteration(info: Any) -> None:
        checkpoint(info)  # every iteration: a killed fit resumes from here
        if not checkpoint.journal.replaying:
            progress(info.iteration, info.score)

    progress.start_fit(
        f"fitting {len(problem.refs)} parameters with {cfg.optimizer.method}; the first evaluation "
        "compiles the reference objective (compilations are cached for later runs of this system)"
    )
    result = fit(problem, options, callback=on_iteration, journal=checkpoint.journal)
    progress.finish_fit()
    fld_path = result.write_fld(ctx.output_dir)
    result = result.best_written(fld_path, problem.objective, problem.loss)  # what is logged is what was written
    assessment = assess_fit(split, problem, result, spec.selectivity)
    json_path = result.write_summary(fld_path, extra=assessment)
    artifacts: list[tuple[Path, str | None]] = [(fld_path, None), (json_path, None)]
    artifacts += assessment_artifacts(ctx.output_dir, assessment)
    if cfg.tracking.plots:
        from q2mm.tracking.plots import parity_plots

        structures = [Structure(m.title, bool(m.properties.get("transition_state"))) for m in split.training.molecules]
        pngs = parity_plots(
            evaluation_pairs(result.initial),
            evaluation_pairs(result.final),
            ctx.output_dir / "plots",
            structures,
            heading=plot_heading(cfg, ctx),
        )
        artifacts += [(png, None) for png in pngs]  # top level: MLflow's compare page shows those side by side
    artifacts += identifiability_artifacts(result, ctx.output_dir, bool(cfg.tracking.plots))
    artifacts += [(path, "inputs") for path in scope_files(cfg)]
    summary = result.summary() | assessment
    return JobOutcome(summary, len(split.training.molecules), input_files(training_set, root, cfg), artifacts, fld_path)


def job_fitter(cfg: DictConfig) -> Fitter:
    """The science of a job: fit the system, or with ``optimizer=none`` score the force field at
    the start without fitting (:func:`q2mm.evaluate.evaluate_system`, what ``q2mm.evaluate`` runs)."""
    if cfg.optimizer.method == "none":
        from q2mm.evaluate import evaluate_system

        return evaluate_system
    return fit_system


def identifiability_artifacts(result: Any, outdir: Path, plots: bool) -> list[tuple[Path, str | None]]:
    """The identifiability table (CSV) and, with plots, its plot; nothing without a Jacobian."""
    from q2mm.optimize.identifiability import UNDETERMINED_WIDTHS, Identifiability

    ident = result.identifiability
    if not isinstance(ident, Identifiability):
        return []
    table = outdir / "identifiability.csv"
    rows = ident.rows(result.p_final)
    with open(table, "x", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out: list[tuple[Path, str | None]] = [(table, None)]
    if plots:
        from q2mm.tracking.plots import identifiability_plot

        (outdir / "plots").mkdir(parents=True, exist_ok=True)
        png = identifiability_plot(
            ident.singular_values,
            ident.relative_error,
            ident.names,
            UNDETERMINED_WIDTHS,
            outdir / "plots" / "identifiability.png",
        )
        out.append((png, "plots"))
    return out


def assess_fit(split: Any, problem: Any, result: Any, selectivity: Any) -> dict[str, Any]:
    """Contributions, held-out scores (start and fitted force field as written) and selectivity."""
    from q2mm.evaluation.assess import fit_assessment, forcefield_at

    start_ff, final_ff = forcefield_at(problem, result.p_initial), forcefield_at(problem, result.p_final)
    return fit_assessment(split, problem.objective, result.initial, result.final, start_ff, final_ff, selectivity)


def assessment_artifacts(output_dir: Path, assessment: dict[str, Any]) -> list[tuple[Path, str | None]]:
    """The assessment's CSV tables, logged under ``tables/``."""
    from q2mm.evaluation.assess import write_tables

    return [(path, "tables") for path in write_tables(output_dir / "tables", assessment)]


def input_files(training_set: Any, root: Path | None, cfg: DictConfig) -> list[Path]:
    """The files a fit read: the system directory, every force field used and the scope's
    parameter file (``scope=file``)."""
    from q2mm.systems import system_directory

    directory = system_directory(training_set.spec, root)
    files = [training_set.forcefield_path, *training_set.alternative_forcefields.values(), *scope_files(cfg)]
    return ([directory] if directory is not None else []) + [Path(f) for f in files]


def scope_files(cfg: DictConfig) -> list[Path]:
    """The parameter file of ``scope=file`` (logged with the run under ``inputs/``), else none."""
    return [parameter_file_path(cfg.scope.path)] if cfg.scope.name == "file" else []


# ---------------------------------------------------------------- tracking


def open_run(cfg: DictConfig, ctx: JobContext, start_time_s: float | None = None) -> TrackedRun | None:
    """This job's MLflow run: a child of the sweep's parent in a multirun, else a top-level run."""
    if not cfg.tracking.enabled:
        return None
    handoff = ctx.handoff()
    if handoff is not None:
        client = MlflowClient(handoff.tracking_uri)
        experiment_id, parent = handoff.experiment_id, handoff.parent_run_id
    else:
        uri = resolve_uri(cfg.tracking.uri)
        client = MlflowClient(uri)
        experiment_id, parent = ensure_experiment(client, cfg.tracking.experiment, uri), None
    tags = {"output_dir": str(ctx.output_dir.resolve())}  # from the start: resume=<run id> finds the checkpoint
    if ctx.multirun:
        tags |= {"hydra_job_num": str(ctx.job_num), JOB_TAG: str(ctx.job_num), SWEPT_TAG: swept_label(ctx, handoff)}
    if os.environ.get("SLURM_JOB_ID"):
        tags["slurm_job_id"] = _slurm_job_id()
    return TrackedRun.start(
        client,
        experiment_id,
        run_name=run_name(cfg, ctx, handoff),
        parent_run_id=parent,
        tags=tags,
        start_time_s=start_time_s,
    )


def _slurm_job_id() -> str:
    """This SLURM job as squeue names it (``ARRAY_TASK`` for an array task)."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ["SLURM_JOB_ID"]


def run_name(cfg: DictConfig, ctx: JobContext, handoff: SweepHandoff | None = None) -> str:
    """What tells this run apart: a sweep job's system and swept values, else system, start, optimizer."""
    if ctx.multirun:
        swept = handoff.swept if handoff is not None else ()
        return job_name(cfg.system.name, ctx.overrides, swept, ctx.job_num, cfg.tracking.run_name)
    if cfg.tracking.run_name:
        return str(cfg.tracking.run_name)
    if cfg.optimizer.method == "none":
        return f"{cfg.system.name} evaluate {Path(cfg.system.forcefield).name} ({cfg.start.name})"
    return single_name(cfg.system.name, cfg.start.name, cfg.optimizer.method)


def swept_label(ctx: JobContext, handoff: SweepHandoff | None) -> str:
    """This sweep job's swept values (``system=ch3f fc_fraction=0.1``); its overrides when unknown."""
    if handoff is None or not handoff.swept:
        return " ".join(o for o in ctx.overrides if not o.lstrip("+~").startswith(("tracking.", "hydra", "data_root")))
    return job_label(ctx.overrides, [s.split("=", 1)[0].lstrip("+~") for s in handoff.swept], skip=())


def tracked_name(cfg: DictConfig, ctx: JobContext) -> str:
    """The run name of this job, as its progress lines and plots are labelled."""
    return run_name(cfg, ctx, ctx.handoff())


def plot_heading(cfg: DictConfig, ctx: JobContext) -> str:
    """The system and the run's name, for the title of a plot."""
    name = tracked_name(cfg, ctx)
    return name if name.split(" ", 1)[0] == cfg.system.name else f"{cfg.system.name}: {name}"


def hydra_artifacts(output_dir: Path) -> list[tuple[Path, str | None]]:
    """Hydra's config.yaml, hydra.yaml and overrides.yaml of this job; none where Hydra wrote
    none for it (``hydra.output_subdir`` null: ``callback.KeepEarlierRunCallback`` switches it
    off for a run refused in an earlier run's directory, whose .hydra/ is that run's)."""
    if not _hydra_wrote_config():
        return []
    hydra_dir = output_dir / ".hydra"
    files = sorted(hydra_dir.glob("*.yaml")) if hydra_dir.is_dir() else []
    return [(path, "hydra") for path in files]


def _hydra_wrote_config() -> bool:
    from hydra.core.hydra_config import HydraConfig

    try:
        return HydraConfig.get().output_subdir is not None
    except ValueError:  # not inside a Hydra job (the compose API, tests): what the directory holds
        return True


def job_record(cfg: DictConfig, ctx: JobContext, outcome: JobOutcome, skip_params: dict | None = None) -> RunRecord:
    """Params, metrics, curve, tags and artifacts of a finished job (``skip_params``: already on a resumed run)."""
    steps, scores = score_curve(outcome.summary)
    params = flatten_config(cfg) | fit_params(outcome.summary, outcome.n_molecules)
    handoff = ctx.handoff()
    fld = outcome.fld_path
    preview = f"{fld.name}.txt" if fld is not None else ""  # MLflow previews known text extensions only
    facts = RunFacts(
        run_name(cfg, ctx, handoff),
        cfg.system.name,
        cfg.scope.name,
        cfg.start.name,
        cfg.optimizer.method,
        swept_label(ctx, handoff) if ctx.multirun else "",
        str(fld.resolve()) if fld is not None else "",
        preview,
    )
    return RunRecord(
        params={k: v for k, v in params.items() if k not in (skip_params or {})},
        metrics=metrics_from_summary(outcome.summary) | assessment_metrics(outcome.summary),
        curve=scores,
        curve_steps=steps,
        tags={
            **git_state(),
            "data_fingerprint": fingerprint(outcome.input_files),
            **software_tags(),
            "output_dir": str(ctx.output_dir.resolve()),
        },
        artifacts=outcome.artifacts + hydra_artifacts(ctx.output_dir),
        texts={preview: fld.read_text()} if fld is not None else {},
        description=run_description(outcome.summary, facts),
    )


# ---------------------------------------------------------------- the job


Fitter = Callable[[DictConfig, JobContext, IterationProgress], JobOutcome]


def run_job(cfg: DictConfig, ctx: JobContext | None = None, fitter: Fitter | None = None) -> dict[str, Any] | None:
    """Run one job; return the fit summary, or None for a failed job inside a multirun.

    ``fitter`` does the science (default :func:`job_fitter`: the fit, or the evaluation of
    ``optimizer=none``); everything around it (the
    MLflow run, its record, failure handling) is the same for any fitter.

    A failure marks the MLflow run FAILED with the error. A single run then re-raises
    (non-zero exit); a multirun job returns so that the sweep goes on, and the sweep
    callback reports the failures at the end. An interrupt (Ctrl-C, SIGTERM from a
    scheduler) marks the run KILLED and stops.
    """
    started = time.time()
    ctx = ctx or JobContext.from_hydra()
    resume = find_resume(cfg, ctx.output_dir, ctx.multirun)
    if resume is not None:
        ctx = replace(ctx, output_dir=resume.run_dir, resume=resume)
        tracked = reopen_run(resume) if cfg.tracking.enabled else None
    else:
        tracked = open_run(cfg, ctx, started)
    if tracked is not None:
        ctx.checkpoint_extra = {"mlflow_run_id": tracked.run_id, "tracking_uri": tracked.client.tracking_uri}
    progress = IterationProgress(cfg.progress, label=tracked_name(cfg, ctx) if ctx.multirun else "", started_s=started)
    termination = Termination()
    try:
        with _sigterm_as_exit(termination):
            check_config(cfg)
            if resume is None:
                refuse_earlier_run(ctx.output_dir)
            seed_everything(int(cfg.seed))
            outcome = (fitter or job_fitter(cfg))(cfg, ctx, progress)
            wall = time.time() - started
            if tracked is not None:
                tracked.log_record(
                    job_record(cfg, ctx, outcome, skip_params=logged_params(tracked) if resume else None)
                )
                wall = tracked.finish()
    except Exception as error:
        if termination.signum is not None:  # the signal's SystemExit surfaced as another exception
            _record_failure(cfg, ctx, tracked, termination.described(error), "KILLED")
            raise SystemExit(128 + termination.signum) from error
        _record_failure(cfg, ctx, tracked, error, "FAILED")
        if ctx.multirun:  # a single run's error reaches the user once, from q2mm.run
            log.error("job failed: %s: %s", type(error).__name__, error)
            return None
        raise
    except (KeyboardInterrupt, SystemExit) as error:
        _record_failure(cfg, ctx, tracked, error, "KILLED")
        raise
    report(outcome, wall, tracked, progress)
    return outcome.summary


def seed_everything(seed: int) -> None:
    """Seed Python's and NumPy's global generators (JAX keys are explicit and need no seed)."""
    random.seed(seed)
    np.random.seed(seed)


def _record_failure(
    cfg: DictConfig, ctx: JobContext, tracked: TrackedRun | None, error: BaseException, status: str
) -> None:
    """Params, Hydra files and the error of a run that did not finish; never masks ``error``."""
    if tracked is None:
        return
    try:
        skip = logged_params(tracked) if ctx.resume else {}
        tracked.log_params({k: v for k, v in flatten_config(cfg).items() if k not in skip})
        tracked.log_record(RunRecord(artifacts=hydra_artifacts(ctx.output_dir)))
    except Exception as logging_error:  # the store may be what failed: still try to close the run
        log.error("could not log the failed run's config: %s", logging_error)
    tracked.fail(error, status)


@dataclass
class Termination:
    """The termination signal a job received, if any (set by ``_sigterm_as_exit``)."""

    signum: int | None = None

    def described(self, surfaced: BaseException) -> SystemExit:
        """The signal's SystemExit as the run records it, naming the exception it surfaced as:
        raised inside a library's callback into Python, the SystemExit can reach the job
        wrapped in another exception, and the run was still killed, not failed."""
        assert self.signum is not None
        return SystemExit(
            f"{128 + self.signum} (signal {self.signum}; surfaced as {type(surfaced).__name__}: {surfaced})"
        )


@contextmanager
def _sigterm_as_exit(termination: Termination) -> Iterator[None]:
    """Turn SIGTERM (scheduler time limits, kill) into SystemExit so the run is closed as
    KILLED; ``termination`` records that the signal came."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum: int, frame: Any) -> None:
        termination.signum = signum
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def report(outcome: JobOutcome, wall_s: float, tracked: TrackedRun | None, progress: IterationProgress) -> None:
    """The closing lines through logging (console and run.log): score, R2, times, the optimizer's
    message, the written .fld and the run's page in the MLflow UI."""
    url = ""
    if tracked is not None:
        url = run_page_url(tracked.tracking_uri, tracked.experiment_id, tracked.run_id)
        serve = ui_command(tracked.tracking_uri)
        url += f"  (serve it: {serve})" if serve else ""
    fld = str(outcome.fld_path.resolve()) if outcome.fld_path is not None else ""
    progress.say("done: " + closing_line(outcome.summary, wall_s, fld, url))


def run_or_exit(cfg: DictConfig, ctx: JobContext | None = None) -> dict[str, Any] | None:
    """``run_job`` for an entry point: a user's mistake (a Q2MMError: bad file, config or data)
    ends as one message and a non-zero exit, after the MLflow run is recorded FAILED with it."""
    try:
        return run_job(cfg, ctx)
    except Q2MMError as error:
        exit_with_message(error)


def console_exit(hydra_task: Callable[[], Any]) -> NoReturn:
    """A console script around a Hydra task: run it; exit 1 when a sweep job failed, else 0.

    Before exiting, ``gc.freeze()`` moves every object into the collector's permanent
    generation, so the interpreter's shutdown no longer walks the object graphs of JAX,
    MLflow, Hydra and matplotlib: the last ~0.5-1 s of every run (0.50-0.57 s -> 0.06 s
    from the last atexit handler to the process's end after importing them, three pairs).
    Every atexit handler (logging's flush, MLflow's) still runs."""
    hydra_task()
    gc.freeze()
    sys.exit(1 if MlflowSweepCallback.failed_jobs else 0)
