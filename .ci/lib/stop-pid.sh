# stop_pid NAME PIDFILE SIGNAL [KILL]: send SIGNAL to the PID on PIDFILE's first line (never a
# process found by name), wait up to 20 s for it to exit, then SIGKILL it when KILL=kill.
stop_pid() {
    local name="$1" pidfile="$2" signal="$3" kill_after="${4:-}" pid
    [ -s "$pidfile" ] || return 0
    pid="$(head -n1 "$pidfile")"
    kill -0 "$pid" 2>/dev/null || return 0
    echo "ci: stopping $name ($pid)"
    kill "-$signal" "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    [ "$kill_after" = kill ] && kill -KILL "$pid" 2>/dev/null
    return 0
}
