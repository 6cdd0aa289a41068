# Stop the test cluster's daemons by the PID files in $Q2MM_CI_STATE/slurm (never by name);
# normally the pytest fixture has already stopped them and this finds nothing.
dir="${Q2MM_CI_STATE:-}/slurm"
[ -n "${Q2MM_CI_STATE:-}" ] && [ -d "$dir" ] || exit 0
for name in slurmd slurmctld munged; do
    pidfile="$dir/$name.pid"
    [ -s "$pidfile" ] || continue
    pid="$(head -n1 "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        echo "ci: stopping $name ($pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
done
exit 0
