# SLURM for the tests marked `slurm`: install Debian's slurm-wlm and munge when we are root and
# apt works. The tests' session fixture (tests/services/slurm.py) starts a single-node cluster
# on 127.0.0.1 in $Q2MM_CI_STATE/slurm and stops it by PID file; .ci/teardown.d/20-slurm.sh
# stops whatever a crashed session left. Sourced by .ci/run: never fails CI, only says why.
q2mm_ci_install_slurm() {
    if command -v sbatch >/dev/null && command -v slurmctld >/dev/null && command -v munged >/dev/null; then
        echo "ci: slurm-wlm and munge already installed"; return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "ci: not root: SLURM not installed, the slurm tests will skip"; return 0
    fi
    if ! command -v apt-get >/dev/null; then
        echo "ci: no apt-get: SLURM not installed, the slurm tests will skip"; return 0
    fi
    if DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q slurm-wlm munge >"$Q2MM_CI_STATE/apt-slurm.log" 2>&1 \
        || { timeout 300 apt-get update -q >>"$Q2MM_CI_STATE/apt-slurm.log" 2>&1 \
             && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q slurm-wlm munge >>"$Q2MM_CI_STATE/apt-slurm.log" 2>&1; }; then
        echo "ci: installed slurm-wlm and munge"
    else
        echo "ci: apt-get install slurm-wlm munge failed (see $Q2MM_CI_STATE/apt-slurm.log): the slurm tests will skip"
    fi
}
q2mm_ci_install_slurm
