# PostgreSQL for the tests marked `postgres`: install Debian's postgresql when we are root and
# apt works (the psycopg driver comes with the test extra). The tests start a throw-away
# cluster on 127.0.0.1 and stop it by PID; .ci/teardown.d/30-postgres.sh stops whatever a
# crashed session left. Sourced by .ci/run: never fails CI, only says why.
q2mm_ci_install_postgres() {
    if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
        echo "ci: postgresql already installed"; return 0
    fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "ci: not root or no apt-get: PostgreSQL not installed, the postgres tests will skip"; return 0
    fi
    if DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q postgresql >"$Q2MM_CI_STATE/apt-postgres.log" 2>&1 \
        || { timeout 300 apt-get update -q >>"$Q2MM_CI_STATE/apt-postgres.log" 2>&1 \
             && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q postgresql >>"$Q2MM_CI_STATE/apt-postgres.log" 2>&1; }; then
        echo "ci: installed postgresql"
    else
        echo "ci: apt-get install postgresql failed (see $Q2MM_CI_STATE/apt-postgres.log): the postgres tests will skip"
    fi
}
q2mm_ci_install_postgres
