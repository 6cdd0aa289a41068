# Sourced by .ci/run: Debian's chromium and chromium-driver for the MLflow UI browser test
# (tests/runner/test_browser.py). Never fails CI: where they cannot be installed (not root,
# no apt, no network) it says why and the test skips with that reason.
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    echo "ci: chromium and chromedriver present"
elif [ "$(id -u)" != "0" ]; then
    echo "ci: not root: chromium/chromium-driver not installed; the browser test will skip"
elif ! command -v apt-get >/dev/null 2>&1; then
    echo "ci: no apt-get: chromium/chromium-driver not installed; the browser test will skip"
else
    echo "ci: installing chromium and chromium-driver (Debian packages)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } \
        >"${Q2MM_CI_STATE:-/tmp}/apt-chromium.log" 2>&1; then
        echo "ci: installing chromium failed (see ${Q2MM_CI_STATE:-/tmp}/apt-chromium.log); the browser test will skip"
        tail -5 "${Q2MM_CI_STATE:-/tmp}/apt-chromium.log" || true
    fi
fi
