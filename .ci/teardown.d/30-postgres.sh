# Stop a test PostgreSQL server left running, by the PID the fixture copied to
# $Q2MM_CI_STATE/postgres.pid (never by name); normally the fixture has stopped it already.
pidfile="${Q2MM_CI_STATE:-}/postgres.pid"
[ -n "${Q2MM_CI_STATE:-}" ] && [ -s "$pidfile" ] || exit 0
pid="$(head -n1 "$pidfile")"
if kill -0 "$pid" 2>/dev/null && grep -q postgres "/proc/$pid/comm" 2>/dev/null; then
    echo "ci: stopping postgres ($pid)"
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
fi
exit 0
