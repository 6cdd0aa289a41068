"""q2mm.jaxconfig's XLA CPU flags: added for the jaxlib releases known to have them, never over
the user's own XLA_FLAGS, and accepted by the installed XLA (an unknown flag aborts a process)."""

import os
import subprocess
import sys

import q2mm.jaxconfig as jaxconfig

SNIPPET = (
    "import os, jax.numpy as jnp, q2mm.jaxconfig as c; "
    "print(float(jnp.sum(jnp.arange(3.0) ** 2))); print(os.environ.get('XLA_FLAGS', ''))"
)


def _run(env_flags: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if env_flags is not None:
        env["XLA_FLAGS"] = env_flags
    out = subprocess.run([sys.executable, "-c", SNIPPET], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()


def test_flags_added_only_where_checked_and_accepted_by_the_installed_xla():
    """Inside the checked jaxlib range the flags are set (and this XLA runs with them); outside
    it q2mm leaves XLA_FLAGS alone, so a newer jaxlib without the flag cannot abort a run."""
    low, high = jaxconfig.XLA_FLAGS_JAXLIB
    checked = low <= jaxconfig._jaxlib_version() < high
    value, flags = _run(None)
    assert value == "5.0"
    assert [flag in flags.split() for flag in jaxconfig.XLA_CPU_FLAGS] == [checked] * len(jaxconfig.XLA_CPU_FLAGS)


def test_user_setting_wins():
    value, flags = _run("--xla_cpu_use_fusion_emitters=true")
    assert value == "5.0"
    assert flags == "--xla_cpu_use_fusion_emitters=true"
