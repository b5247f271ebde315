# Sourced by the scripts that start a local test server (examples/*_server.rs print
# `listening on URL` on stdout once they accept connections).
#
# listening_url OUT PID: waits up to 10 s for the server PID to print its URL into the file OUT
# and prints the URL; prints nothing if the server exited or never said.
listening_url() {
    local out=$1 pid=$2
    for _ in $(seq 1 100); do
        grep -q '^listening on ' "$out" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    sed -n 's/^listening on //p' "$out"
}
