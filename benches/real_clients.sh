#!/usr/bin/env bash
# Real clients against the example servers: redis-benchmark against examples/resp.rs and wrk
# against examples/http.rs, on omni with each I/O driver and on tokio (the twins
# benches/resp_tokio.rs and benches/http_tokio.rs, which share the examples' protocol code), on 1
# worker (current-thread runtimes) and on 2 workers. Prints one table: requests per second per
# server and the ratios omni / tokio (above 1.00 omni served more).
#
#   bash benches/real_clients.sh
#
# Environment:
#   REQUESTS  redis-benchmark -n, requests per test (default 200000)
#   DURATION  wrk -d, length of each HTTP run (default 10s)
#   WORKERS   worker counts to run (default "1 2")
#   SERVERS   servers to run (default "omni-mio omni-io_uring tokio"); a left-out one shows "-"
#
# Each server is started on a port of its own choosing (--addr 127.0.0.1:0; the port is read
# from its start line), checked with one real request, measured, and stopped. The script stops
# with an error, and prints no table, if a tool is missing, a build fails, a server does not
# start or answer, dies during a run, or a client reports errors.
#
# The clients run on the same machine as the server: on a small machine they take CPU from it,
# alike for every server.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

REQUESTS=${REQUESTS:-200000}
DURATION=${DURATION:-10s}
WORKERS=${WORKERS:-"1 2"}
SERVERS=${SERVERS:-"omni-mio omni-io_uring tokio"}
ALL_SERVERS=(omni-mio omni-io_uring tokio)
REDIS_TESTS=(PING_INLINE PING_MBULK SET GET)

die() {
    echo "real_clients: error: $*" >&2
    exit 1
}

note() {
    echo "real_clients: $*" >&2
}

for s in $SERVERS; do
    [[ " ${ALL_SERVERS[*]} " == *" $s "* ]] || die "unknown server '$s' in SERVERS (known: ${ALL_SERVERS[*]})"
done
for w in $WORKERS; do
    [[ $w =~ ^[1-9][0-9]*$ ]] || die "WORKERS must be positive integers, got '$w'"
done

# --- tools ----------------------------------------------------------------------------------------

if ! command -v redis-benchmark >/dev/null || ! command -v redis-cli >/dev/null ||
    ! command -v wrk >/dev/null; then
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    note "installing redis-tools and wrk"
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y redis-tools wrk
fi
command -v redis-benchmark >/dev/null || die "redis-benchmark not found after installing redis-tools"
command -v wrk >/dev/null || die "wrk not found after installing it"

# --- build ----------------------------------------------------------------------------------------

# BIN[name] = path of the built executable, from cargo's JSON messages (bench executables carry
# a hash in their names).
declare -A BIN
build() {
    local json line path name
    json=$(cargo build --release "$@" --message-format=json-render-diagnostics) ||
        die "cargo build --release $* failed"
    while IFS= read -r line; do
        path=${line#\"executable\":\"}
        path=${path%\"}
        name=$(basename "$path")
        [[ $name =~ ^(.*)-[0-9a-f]{16}$ ]] && name=${BASH_REMATCH[1]}
        BIN[$name]=$path
    done < <(grep -o '"executable":"[^"]*"' <<<"$json")
}
wants_omni=false
wants_tokio=false
for s in $SERVERS; do
    case $s in
    omni-*) wants_omni=true ;;
    tokio) wants_tokio=true ;;
    esac
done
if $wants_omni; then
    note "building examples resp and http (release)"
    build --example resp --example http
fi
if $wants_tokio; then
    note "building the tokio twins resp_tokio and http_tokio (release)"
    build --bench resp_tokio --bench http_tokio
fi

# server_cmd SERVER KIND: the command line of SERVER (omni-mio, ...) for KIND (resp or http).
server_cmd() {
    local server=$1 kind=$2 bin
    case $server in
    omni-*) bin=${BIN[$kind]:-} ;;
    tokio) bin=${BIN[${kind}_tokio]:-} ;;
    esac
    [[ -n $bin && -x $bin ]] || die "no executable built for $server $kind"
    case $server in
    omni-*) echo "$bin --driver ${server#omni-}" ;;
    tokio) echo "$bin" ;;
    esac
}

# --- servers --------------------------------------------------------------------------------------

SERVER_PID=
SERVER_PORT=
SERVER_LOG=$(mktemp)
trap 'if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; fi; rm -f "$SERVER_LOG"' EXIT

# start_server CMD WORKERS: starts it on a free port; sets SERVER_PID and SERVER_PORT.
start_server() {
    local cmd=$1 workers=$2 i
    # Empty the log here: the background job's own redirection truncates it only once it runs,
    # and until then the previous server's start line would still be there to read.
    : >"$SERVER_LOG"
    # shellcheck disable=SC2086 # the command is words on purpose
    $cmd --addr 127.0.0.1:0 --workers "$workers" >"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    SERVER_PORT=
    for ((i = 0; i < 100; i++)); do
        SERVER_PORT=$(grep -oE 'listening on 127\.0\.0\.1:[0-9]+' "$SERVER_LOG" | head -1 | sed 's/.*://') || true
        [[ -n $SERVER_PORT ]] && break
        kill -0 "$SERVER_PID" 2>/dev/null ||
            die "'$cmd --workers $workers' exited before listening:"$'\n'"$(cat "$SERVER_LOG")"
        sleep 0.1
    done
    [[ -n $SERVER_PORT ]] || die "'$cmd --workers $workers' printed no 'listening on' line in 10 s"
    local probe
    for ((i = 0; i < 50; i++)); do
        if probe=$( (exec 3<>"/dev/tcp/127.0.0.1/$SERVER_PORT") 2>&1); then
            return 0
        fi
        sleep 0.1
    done
    die "'$cmd --workers $workers' does not accept connections on port $SERVER_PORT ($probe); its output:"$'\n'"$(cat "$SERVER_LOG")"
}

# stop_server: fails if the server died during the run.
stop_server() {
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server died during the run:"$'\n'"$(cat "$SERVER_LOG")"
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# --- clients --------------------------------------------------------------------------------------

# RESULT["w$workers $row $server"] = requests per second
declare -A RESULT

measure_resp() {
    local server=$1 w=$2 out test rps reply
    reply=$(redis-cli -p "$SERVER_PORT" SET real_clients ok && redis-cli -p "$SERVER_PORT" GET real_clients) ||
        die "$server: redis-cli could not talk to the server"
    [[ $reply == $'OK\nok' ]] || die "$server: SET then GET answered '$reply'"
    out=$(redis-benchmark -h 127.0.0.1 -p "$SERVER_PORT" -t ping,set,get -P 16 -c 50 -n "$REQUESTS" -q --csv 2>&1) ||
        die "$server: redis-benchmark failed:"$'\n'"$out"
    for test in "${REDIS_TESTS[@]}"; do
        rps=$(grep "^\"$test\"," <<<"$out" | cut -d, -f2 | tr -d '"') || true
        [[ $rps =~ ^[0-9.]+$ ]] || die "$server: no $test result from redis-benchmark:"$'\n'"$out"
        RESULT["w$w redis $test $server"]=$rps
    done
}

measure_http() {
    local server=$1 w=$2 out rps reply
    reply=$(exec 3<>"/dev/tcp/127.0.0.1/$SERVER_PORT" &&
        printf 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3 && timeout 5 cat <&3) ||
        die "$server: could not send one HTTP request"
    [[ $reply == *$'\r\n\r\nhello' ]] || die "$server: one request got '$reply'"
    out=$(wrk -t2 -c50 -d"$DURATION" "http://127.0.0.1:$SERVER_PORT/" 2>&1) ||
        die "$server: wrk failed:"$'\n'"$out"
    if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
        die "$server: wrk saw errors:"$'\n'"$out"
    fi
    rps=$(grep -oE 'Requests/sec:[[:space:]]+[0-9.]+' <<<"$out" | grep -oE '[0-9.]+$') || true
    [[ $rps =~ ^[0-9.]+$ ]] || die "$server: no Requests/sec from wrk:"$'\n'"$out"
    RESULT["w$w http GET / $server"]=$rps
}

for w in $WORKERS; do
    for kind in resp http; do
        for server in $SERVERS; do
            note "$kind on $server, $w worker(s)"
            cmd=$(server_cmd "$server" "$kind")
            start_server "$cmd" "$w"
            "measure_$kind" "$server" "$w"
            stop_server
        done
    done
done

# --- table ----------------------------------------------------------------------------------------

ratio() {
    if [[ -n $1 && -n $2 ]]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; else echo -; fi
}
rate() {
    if [[ -n $1 ]]; then awk -v a="$1" 'BEGIN { printf "%.0f", a }'; else echo -; fi
}

fmt="%-28s | %13s | %13s | %13s | %9s | %14s\n"
echo
echo "Requests per second (redis-benchmark -P 16 -c 50 -n $REQUESTS; wrk -t2 -c50 -d$DURATION), higher is better."
echo "Ratios are omni / tokio: above 1.00 omni served more."
echo
# shellcheck disable=SC2059 # the format is ours
printf "$fmt" workload omni-mio omni-io_uring tokio "mio/tokio" "io_uring/tokio"
printf "%s\n" "-----------------------------|---------------|---------------|---------------|-----------|----------------"
for w in $WORKERS; do
    for row in "redis PING_INLINE" "redis PING_MBULK" "redis SET" "redis GET" "http GET /"; do
        m=${RESULT["w$w $row omni-mio"]:-}
        u=${RESULT["w$w $row omni-io_uring"]:-}
        t=${RESULT["w$w $row tokio"]:-}
        # shellcheck disable=SC2059
        printf "$fmt" "$row, ${w}w" "$(rate "$m")" "$(rate "$u")" "$(rate "$t")" "$(ratio "$m" "$t")" "$(ratio "$u" "$t")"
    done
done
echo
echo "Nw: N workers; 1w is a current-thread runtime (omni Builder::new_current_thread, tokio current_thread)."
