#!/usr/bin/env bash
# Load benchmark of POST /api/v1/enforce: tame (policy, sessions, durable
# audit log on SQLite or PostgreSQL) beside the floor (examples/floor.rs: a bare axum
# handler that parses the same JSON and answers a fixed decision), in the same
# run on the same machine. Absolute numbers vary with the machine; the ratios
# tame/floor are what to compare.
#
# Two scenarios per server, each after a short warm-up:
#   many  a new random session id per request (every decision opens a session)
#   hot   every request in one session (decisions in it are serialized)
#
# The runs come in rounds: in each, both servers for "many", then both for
# "hot" (floor first in odd rounds, tame first in even ones), tame on a
# database of its own for that round. A single
# run of either server moves by a fifth or more from one run to the next on a
# shared machine, so each ratio is taken within a round and the verdict is
# the median over the rounds.
#
# The servers run on core 0 and wrk on core 1 (taskset), over loopback only;
# tame on a fresh SQLite file in a temp dir (or a fresh PostgreSQL database),
# in open mode with its rate limit raised. PostgreSQL is not pinned: its CPU
# time shows as "other". Results: a table on stdout (req/s, p50, p99, the server's CPU time
# per request, and CPU used by anything else meanwhile, which should be near 0)
# and JSON in bench/results/<timestamp>.json. Installs wrk and jq with apt
# when they are missing.
#
# Settings (environment):
#   BENCH_ROUNDS       rounds of the four runs           (default 3)
#   BENCH_DURATION     seconds per measured run          (default 10)
#   BENCH_WARMUP       seconds of warm-up before each    (default 2)
#   BENCH_CONNECTIONS  wrk connections                   (default 64)
#   BENCH_THREADS      wrk threads                       (default 1)
#   BENCH_SERVER_CPU   core for the servers              (default 0)
#   BENCH_CLIENT_CPU   core for wrk                      (default 1)
#   BENCH_TAME_PORT / BENCH_FLOOR_PORT  loopback ports   (default 18000 / 18001)
#   BENCH_KEEP=1       keep the temp dir (database, logs, wrk output)
#   BENCH_BACKEND      sqlite or postgres                (default sqlite)
#   BENCH_POSTGRES_URL a PostgreSQL server to make a fresh database on, for
#                      BENCH_BACKEND=postgres    (default postgres://postgres@127.0.0.1:5432/test)
#
# Usage: bench/load.sh
#        BENCH_ROUNDS=5 bench/load.sh
#        BENCH_BACKEND=postgres bench/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${BENCH_ROUNDS:-3}"
duration="${BENCH_DURATION:-10}"
warmup="${BENCH_WARMUP:-2}"
connections="${BENCH_CONNECTIONS:-64}"
threads="${BENCH_THREADS:-1}"
server_cpu="${BENCH_SERVER_CPU:-0}"
client_cpu="${BENCH_CLIENT_CPU:-1}"
tame_port="${BENCH_TAME_PORT:-18000}"
floor_port="${BENCH_FLOOR_PORT:-18001}"
backend="${BENCH_BACKEND:-sqlite}"
pg_server="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
case "$backend" in
  sqlite | postgres) ;;
  *) echo "BENCH_BACKEND=$backend: use sqlite or postgres" >&2; exit 2 ;;
esac
for setting in rounds duration warmup connections threads; do
  if ! [[ "${!setting}" =~ ^[1-9][0-9]*$ ]]; then
    echo "BENCH_${setting^^}=${!setting}: give a whole number of at least 1" >&2
    exit 2
  fi
done

need() {
  command -v "$1" >/dev/null && return
  echo "installing $2 (apt)" >&2
  apt-get install -y -qq "$2" >/dev/null || {
    apt-get update -qq && apt-get install -y -qq "$2" >/dev/null
  }
}
need wrk wrk
need jq jq
need taskset util-linux
need curl curl

cargo build --release --bin tame --example floor

for port in "$floor_port" "$tame_port"; do
  if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
    echo "something already listens on 127.0.0.1:$port; set BENCH_TAME_PORT / BENCH_FLOOR_PORT" >&2
    exit 1
  fi
done

tmp="$(mktemp -d)"
pids=()
pg_dbs=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ "${BENCH_KEEP:-}" != 1 ]]; then
    for db in "${pg_dbs[@]}"; do
      psql "$pg_server" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
  fi
  if [[ "${BENCH_KEEP:-}" == 1 ]]; then
    echo "kept $tmp${pg_dbs[*]:+ and the databases ${pg_dbs[*]}}" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_healthy() {
  local name="$1" pid="$2" port="$3" log="$4"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "$name did not start (or answer /health on 127.0.0.1:$port within 10 s); its log:" >&2
  cat "$log" >&2
  exit 1
}

taskset -c "$server_cpu" target/release/examples/floor "127.0.0.1:$floor_port" \
  >"$tmp/floor.log" 2>&1 &
floor_pid=$!
pids+=("$floor_pid")
wait_healthy floor "$floor_pid" "$floor_port" "$tmp/floor.log"

[[ "$backend" == postgres ]] && need psql postgresql-client
# start_tame ROUND: tame on a database of its own (a fresh SQLite file, or a
# fresh PostgreSQL database); open mode (loopback, no keys) with its
# per-address rate limit raised out of the way; the default policy. Sets
# tame_pid and tame_log.
start_tame() {
  local round="$1" database_url
  database_url="sqlite://$tmp/tame-$round.db"
  if [[ "$backend" == postgres ]]; then
    local db pg_base
    db="tame_bench_$(date +%s)_$$_$round"
    psql "$pg_server" -qc "CREATE DATABASE $db"
    pg_dbs+=("$db")
    # Same server and parameters (sslmode=…), the new database.
    pg_base="${pg_server%%\?*}"
    database_url="${pg_base%/*}/$db${pg_server#"$pg_base"}"
    echo "round $round: tame on $database_url" >&2
  fi
  tame_log="$tmp/tame-$round.log"
  TAME_BIND="127.0.0.1:$tame_port" \
    TAME_DATABASE_URL="$database_url" \
    TAME_POLICY_PATH=policies/default.yaml \
    TAME_LIMITS__OPEN__PER_SECOND=1000000000 \
    TAME_LIMITS__OPEN__BURST=1000000000 \
    TAME_LOG_FORMAT=json \
    taskset -c "$server_cpu" target/release/tame serve >"$tame_log" 2>&1 &
  tame_pid=$!
  pids+=("$tame_pid")
  wait_healthy tame "$tame_pid" "$tame_port" "$tame_log"
}

tick="$(getconf CLK_TCK)"
# Busy CPU seconds: of the whole machine (all cores), and of one process.
machine_busy() { awk -v t="$tick" '/^cpu / { print ($2 + $3 + $4 + $7 + $8 + $9) / t }' /proc/stat; }
process_cpu() { awk -v t="$tick" '{ print ($14 + $15) / t }' "/proc/$1/stat"; }
# CPU seconds of this shell's finished children (user + system), from `times`
# (into a file: in a $(...) subshell it would count that subshell's children).
children_cpu() {
  times >"$tmp/times"
  awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } print s }' "$tmp/times"
}

# run NAME PID PORT SCENARIO SECONDS -> one JSON object: wrk's numbers (the
# RESULT line of bench/enforce.lua) plus where the CPU went during the run.
# other_cpu_s is CPU used by anything but the server and wrk (other programs,
# and kernel threads such as the ext4 journal writing the server's fsyncs):
# when it is large, the machine was not quiet and the numbers are suspect.
run() {
  local name="$1" pid="$2" port="$3" scenario="$4" seconds="$5" out m0 s0 c0 m1 s1 c1
  out="$tmp/wrk-$round-$name-$scenario-$seconds.txt"
  children_cpu >"$tmp/c0"
  m0="$(machine_busy)" s0="$(process_cpu "$pid")"
  taskset -c "$client_cpu" wrk --latency -t "$threads" -c "$connections" -d "${seconds}s" \
    -s bench/enforce.lua "http://127.0.0.1:$port/api/v1/enforce" -- "$scenario" >"$out" 2>&1 || {
    echo "wrk failed against $name ($scenario):" >&2
    cat "$out" >&2
    exit 1
  }
  m1="$(machine_busy)" s1="$(process_cpu "$pid")"
  children_cpu >"$tmp/c1"
  c0="$(cat "$tmp/c0")" c1="$(cat "$tmp/c1")"
  sed -n 's/^RESULT //p' "$out" | jq -c \
    --argjson machine "$(jq -n "$m1 - $m0")" --argjson server "$(jq -n "$s1 - $s0")" \
    --argjson client "$(jq -n "$c1 - $c0")" \
    '. + {cpu_s: {server: $server, client: $client, other: ($machine - $server - $client)}}'
}

results="[]"
decisions=0
for round in $(seq 1 "$rounds"); do
  start_tame "$round"
  # Which server runs first alternates from round to round, so that what
  # one leaves behind (the disk still writing tame's log) does not always
  # fall on the same one.
  order="floor tame"
  (( round % 2 == 0 )) && order="tame floor"
  for scenario in many hot; do
    for target in $order; do
      port="$floor_port" pid="$floor_pid"
      [[ "$target" == tame ]] && port="$tame_port" pid="$tame_pid"
      echo "round $round of $rounds: $target, $scenario: ${warmup} s warm-up, ${duration} s measured" >&2
      run "$target" "$pid" "$port" "$scenario" "$warmup" >/dev/null
      line="$(run "$target" "$pid" "$port" "$scenario" "$duration")"
      results="$(jq -c --arg t "$target" --arg s "$scenario" --argjson round "$round" --argjson r "$line" \
        '. + [$r + {round: $round, target: $t, scenario: $s,
                 rps: ($r.requests / ($r.duration_us / 1e6)),
                 server_cpu_us_per_request: ($r.cpu_s.server / $r.requests * 1e6),
                 other_cpu_percent: ($r.cpu_s.other / ($r.duration_us / 1e6) * 100)}]' <<<"$results")"
    done
  done
  # Every answered decision must be in the audit log: a check that the
  # numbers are those of durable decisions, not of errors.
  recorded="$(curl -fsS "http://127.0.0.1:$tame_port/api/v1/status" | jq '.counts.decisions')"
  answered="$(jq --argjson r "$round" '[.[] | select(.round == $r and .target == "tame") | .requests - .errors.status] | add' <<<"$results")"
  if ((recorded < answered)); then
    echo "round $round: tame answered $answered decisions in the measured runs but its audit log holds $recorded" >&2
    exit 1
  fi
  decisions=$((decisions + recorded))
  kill "$tame_pid"
  if ! wait "$tame_pid"; then
    echo "tame did not stop cleanly after round $round; its log:" >&2
    cat "$tame_log" >&2
    exit 1
  fi
  pids=("$floor_pid")
done

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p bench/results
report="bench/results/$stamp.json"
jq -n --argjson runs "$results" --arg stamp "$stamp" \
  --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" --arg backend "$backend" \
  --arg dirty "$(git status --porcelain 2>/dev/null | head -c1)" \
  --arg cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" \
  --arg wrk "$(wrk -v 2>&1 | head -1)" \
  --argjson cores "$(nproc)" --argjson rounds "$rounds" --argjson duration "$duration" \
  --argjson warmup "$warmup" --argjson connections "$connections" --argjson threads "$threads" \
  --argjson server_cpu "$server_cpu" --argjson client_cpu "$client_cpu" \
  --argjson decisions "$decisions" '
  def pick($r; $t; $s): $runs[] | select(.round == $r and .target == $t and .scenario == $s);
  def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  # tame over floor (or, for CPU, floor over tame) in each round.
  def per_round($s): [range(1; $rounds + 1) as $r | {
      round: $r,
      rps: (pick($r; "tame"; $s).rps / pick($r; "floor"; $s).rps),
      p50: (pick($r; "tame"; $s).latency_us.p50 / pick($r; "floor"; $s).latency_us.p50),
      p99: (pick($r; "tame"; $s).latency_us.p99 / pick($r; "floor"; $s).latency_us.p99),
      cpu_per_request: (pick($r; "floor"; $s).server_cpu_us_per_request
                        / pick($r; "tame"; $s).server_cpu_us_per_request)}];
  {
    timestamp: $stamp, commit: $commit, dirty: ($dirty != ""), backend: $backend,
    machine: {cpu: $cpu, cores: $cores}, wrk: $wrk,
    settings: {rounds: $rounds, duration_s: $duration, warmup_s: $warmup, connections: $connections,
               threads: $threads, server_cpu: $server_cpu, client_cpu: $client_cpu},
    runs: $runs,
    ratios: (["many", "hot"] | map(per_round(.) as $p | {key: ., value: {
      rps: ($p | map(.rps) | median),
      rps_min: ($p | map(.rps) | min),
      rps_max: ($p | map(.rps) | max),
      p50: ($p | map(.p50) | median),
      p99: ($p | map(.p99) | median),
      cpu_per_request: ($p | map(.cpu_per_request) | median),
      rounds: $p
    }}) | from_entries),
    targets: {many: 0.25, hot: 0.10},
    tame_decisions_recorded: $decisions
  }' >"$report"

echo
echo "backend: $backend"
printf '%-5s %-8s %-5s %9s %8s %8s %8s %8s %8s\n' round scenario server req/s "p50 ms" "p99 ms" failed "cpu/req" "other"
jq -r '.runs[] | [.round, .scenario, .target, (.rps | round), (.latency_us.p50 / 1000), (.latency_us.p99 / 1000),
  (.errors | .status + .connect + .read + .write + .timeout), .server_cpu_us_per_request, .other_cpu_percent]
  | @tsv' "$report" |
  while IFS=$'\t' read -r r s t rps p50 p99 failed cpu other; do
    printf '%-5s %-8s %-5s %9d %8.2f %8.2f %8d %6.0fus %7.0f%%\n' "$r" "$s" "$t" "$rps" "$p50" "$p99" "$failed" "$cpu" "$other"
  done
echo
echo "tame/floor, the median over $rounds round(s) (req/s: also the lowest and highest round):"
printf '%-10s %8s %14s %8s %8s %8s   %s\n' scenario req/s lowest-highest p50 p99 "1/cpu" "target for req/s"
jq -r '.targets as $t | .ratios | to_entries[] | [.key, (.value.rps * 100), (.value.rps_min * 100),
  (.value.rps_max * 100), .value.p50, .value.p99, (.value.cpu_per_request * 100), ($t[.key] * 100),
  (if .value.rps >= $t[.key] then "met" else "MISSED" end)]
  | @tsv' "$report" |
  while IFS=$'\t' read -r s rps lo hi p50 p99 cpu target verdict; do
    printf '%-10s %7.1f%% %6.1f-%5.1f%% %7.1fx %7.1fx %7.1f%%   >= %.0f%%: %s\n' "$s" "$rps" "$lo" "$hi" "$p50" "$p99" "$cpu" "$target" "$verdict"
  done
echo
echo "cpu/req: the server's CPU time per answered request (1/cpu: the floor's over tame's,"
echo "a ratio that noise from other programs disturbs less than req/s does); other: CPU used"
echo "meanwhile by anything but the server and wrk, in % of one core (kernel threads writing"
echo "the server's fsyncs count here; on PostgreSQL, so does the database's own work)."
jq -r '"audit log: \(.tame_decisions_recorded) decisions recorded; tame answered \([.runs[] | select(.target == "tame") | .requests] | add) in the measured runs, plus the warm-ups"' "$report"
if jq -e '[.runs[] | .errors | .status + .connect + .read + .write + .timeout] | add > 0' "$report" >/dev/null; then
  echo "WARNING: some requests failed (non-2xx or socket errors); the rates above count them" >&2
fi
if [[ "$backend" == sqlite ]] && jq -e '[.runs[] | .other_cpu_percent] | max > 25' "$report" >/dev/null; then
  echo "WARNING: something else used the CPU during a run (other > 25%); rerun on a quiet machine" >&2
fi
echo "results: $report"
