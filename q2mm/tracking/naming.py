"""Run names that say what differs between runs.

A sweep's child is named after its system and the values of the swept keys
(``sn2 fc_fraction=0.1``), the sweep's parent after the experiment and the swept keys with
their values (``q2mm sweep fc_fraction=0.1,0.2``), a single run after its system, start and
optimizer (``sn2 published lbfgsb``). A swept key is any command-line override in sweep
syntax (``a=1,2``, ``range()``, ``choice()``, ``glob()``) or any ``hydra.sweeper.params`` entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser

NAME_CHARS = 120  # long enough for a few swept values, short enough for the runs table


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _value(override: str) -> str:
    return override.split("=", 1)[1] if "=" in override else ""


def swept_overrides(task_overrides: Sequence[str], sweeper_params: Mapping[str, str] | None = None) -> list[str]:
    """The overrides of a multirun that make its jobs differ, as ``key=values`` strings."""
    parsed = OverridesParser.create().parse_overrides(list(task_overrides))
    swept = [o.input_line for o in parsed if o.is_sweep_override() and o.input_line is not None]
    seen = {_key(line) for line in swept}
    swept += [f"{key}={value}" for key, value in (sweeper_params or {}).items() if key not in seen]
    return swept


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """Each dotted key by its last component, or by the whole key where that is ambiguous."""
    last = [key.replace("/", ".").rsplit(".", 1)[-1] for key in keys]
    return {key: (short if last.count(short) == 1 else key) for key, short in zip(keys, last)}


def job_label(job_overrides: Sequence[str], swept_keys: Sequence[str], skip: Sequence[str] = ("system",)) -> str:
    """``short=value`` of each swept key in one job's overrides (keys in ``skip`` left out)."""
    values = {_key(o): _value(o) for o in job_overrides}
    keys = [key for key in swept_keys if key in values and key not in skip]
    shorts = short_keys(keys)
    return " ".join(f"{shorts[key]}={values[key]}" for key in keys)


def single_name(system: str, start: str, optimizer: str) -> str:
    """A run outside a sweep: system, start and optimizer."""
    return f"{system} {start} {optimizer}"


def job_name(
    system: str, job_overrides: Sequence[str], swept: Sequence[str], job_num: int | None, base: str | None = None
) -> str:
    """A sweep's child: its system (or ``base``) and its swept values; the job number when
    the swept values cannot be told (no swept key among the job's overrides)."""
    keys = [_key(s) for s in swept]
    label = job_label(job_overrides, keys)
    head = base or system
    told = any(_key(o) in keys for o in job_overrides)
    if told:
        return _cut(f"{head} {label}".rstrip())
    return f"{head} #{job_num}" if job_num is not None else head


def sweep_name(experiment: str, swept: Sequence[str], base: str | None = None) -> str:
    """A sweep's parent: the experiment (or ``base``) and its swept keys with their values."""
    if base:
        return base
    keys = [_key(s) for s in swept]
    shorts = short_keys(keys)
    parts = " ".join(f"{shorts[key]}={_value(s)}" for key, s in zip(keys, swept))
    return _cut(f"{experiment} sweep {parts}".rstrip())


def _cut(name: str) -> str:
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 3] + "..."
