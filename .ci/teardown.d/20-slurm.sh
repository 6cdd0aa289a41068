# Stop the test cluster's daemons by the PID files in $Q2MM_CI_STATE/slurm (never by name);
# normally the pytest fixture has already stopped them and this finds nothing.
dir="${Q2MM_CI_STATE:-}/slurm"
[ -n "${Q2MM_CI_STATE:-}" ] && [ -d "$dir" ] || exit 0
. "$(dirname "$0")/../lib/stop-pid.sh"
for name in slurmd slurmctld munged; do
    stop_pid "$name" "$dir/$name.pid" TERM kill
done
exit 0
