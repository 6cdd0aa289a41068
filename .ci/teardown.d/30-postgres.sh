# Stop a test PostgreSQL server left running, by the PID the fixture copied to
# $Q2MM_CI_STATE/postgres.pid (never by name); normally the fixture has stopped it already.
# SIGINT is PostgreSQL's fast shutdown; no SIGKILL (it would leave shared memory behind).
pidfile="${Q2MM_CI_STATE:-}/postgres.pid"
[ -n "${Q2MM_CI_STATE:-}" ] && [ -s "$pidfile" ] || exit 0
pid="$(head -n1 "$pidfile")"
grep -q postgres "/proc/$pid/comm" 2>/dev/null || exit 0
. "$(dirname "$0")/../lib/stop-pid.sh"
stop_pid postgres "$pidfile" INT
exit 0
