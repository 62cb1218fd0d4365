#!/usr/bin/env bash
# Side-by-side benchmark of raftix and etcd 3.4 on this machine; writes docs/benchmarks.md and
# the latency-vs-throughput plot docs/benchmarks-latency.svg.
#
#   scripts/bench.sh                       # everything: build, install etcd if missing, run, write the doc
#   BENCH_SECS=5 BENCH_WARMUP=1 scripts/bench.sh   # quicker, noisier
#   BENCH_TARGETS=raftix scripts/bench.sh  # one target only
#   BENCH_PHASES=failover scripts/bench.sh # only some phases (workloads, failover, recovery)
#   QUICK=1 scripts/bench.sh               # smoke test of the whole script (minutes, figures meaningless)
#
# Environment (defaults; QUICK=1 changes the defaults marked Q):
#   BENCH_SECS        measured seconds per workload run (10; Q: 2)
#   BENCH_WARMUP      unmeasured seconds before each workload run (3; Q: 1)
#   BENCH_THREADS     load generator threads (2)
#   BENCH_TARGETS     "raftix etcd"
#   BENCH_PHASES      "workloads failover recovery"
#   BENCH_OUT         docs/benchmarks.md (the plot goes next to it: NAME-latency.svg)
#   FAILOVER_RUNS     leader kills per system (5; Q: 1)
#   FAILOVER_CLIENTS  writers during a failover run (16)
#   FAILOVER_SECS     measured seconds of a failover run (10; Q: 5)
#   FAILOVER_KILL_AT  seconds into the measurement at which the leader is killed (3; Q: 2)
#   FAILOVER_TIMEOUT_MS  a failover run's client gives up on a request after this long and
#                     retries on the next node (1000)
#   RECOVERY_ENTRIES  entries written before the recovery measurement (1000000; Q: 20000)
#   RECOVERY_CLIENTS  writers filling the log (128)
#   BENCH_KEEP        1: keep the work directory (logs, JSON results, timelines) after a success
#   CARGO_TARGET_DIR  where the release binary is built
#
# A 3-node raftix cluster (`raftix up`) and a 3-node etcd cluster (3 `etcd` processes, default
# fsync) run on 127.0.0.1, one cluster at a time so they never share the CPUs while measured.
#
# Phase "workloads", for each system: writes at 1, 16, 64 and 256 clients (spread over the
# nodes), writes at 64 clients all sent to the leader, linearizable, lease (raftix only) and
# stale reads at 64 clients. Every run records each node's VmRSS (sampled every second; peak
# kept), the CPU time the nodes used, each node's role and term before and after (leader
# changes), and the load average of the machine. Idle RSS is taken 3 s after the cluster elected
# a leader, before any load.
#
# Phase "failover", same cluster, FAILOVER_RUNS times: FAILOVER_CLIENTS writers spread over the
# nodes (`raftix bench --rotate-on-error --timeline FILE`: a client whose request fails moves on
# to the next node, every request's start, end and outcome is recorded), the leader is found
# (raftix: `/v1/status` role; etcd: `/v3/maintenance/status` leader = member_id) and killed
# with SIGKILL FAILOVER_KILL_AT s into the measurement. Failover time = from the kill to the end
# of the first successful write sent after the kill (from the timeline). The killed node is
# restarted with the same command line and every node must be ready again before the next run.
#
# Phase "recovery", on a fresh cluster with automatic snapshots out of the way (raftix: 3 `raftix
# serve` started here, since `raftix up` does not pass --snapshot-entries through, with
# --snapshot-entries 2*RECOVERY_ENTRIES --snapshot-bytes 0; etcd: --snapshot-count
# 2*RECOVERY_ENTRIES): RECOVERY_ENTRIES writes (`raftix bench --total-ops N`), every node caught
# up, then one follower is stopped (SIGTERM, waited for) and started again with the same command
# line. Measured from the moment it is started: first HTTP answer (raftix `/healthz`, etcd
# `/version`), ready (raftix `/readyz` 200; etcd `/health` true), and caught up (applied index at
# least the leader's commit index before the stop).
#
# All processes started here are stopped on exit (trap). Not run in CI: slow and noisy (about
# 15 minutes with the defaults on 2 cores, most of it filling the 1 M-entry logs; QUICK=1 about 2).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
  Q_SECS=2 Q_WARMUP=1 Q_RUNS=1 Q_FSECS=5 Q_KILL=2 Q_ENTRIES=20000
else
  Q_SECS=10 Q_WARMUP=3 Q_RUNS=5 Q_FSECS=10 Q_KILL=3 Q_ENTRIES=1000000
fi
SECS=${BENCH_SECS:-$Q_SECS}
WARMUP=${BENCH_WARMUP:-$Q_WARMUP}
THREADS=${BENCH_THREADS:-2}
TARGETS=${BENCH_TARGETS:-raftix etcd}
PHASES=${BENCH_PHASES:-workloads failover recovery}
OUT=${BENCH_OUT:-$ROOT/docs/benchmarks.md}
SVG=${OUT%.md}-latency.svg
FAILOVER_RUNS=${FAILOVER_RUNS:-$Q_RUNS}
FAILOVER_CLIENTS=${FAILOVER_CLIENTS:-16}
FAILOVER_SECS=${FAILOVER_SECS:-$Q_FSECS}
FAILOVER_KILL_AT=${FAILOVER_KILL_AT:-$Q_KILL}
FAILOVER_TIMEOUT_MS=${FAILOVER_TIMEOUT_MS:-1000}
FAILOVER_WARMUP=1
RECOVERY_ENTRIES=${RECOVERY_ENTRIES:-$Q_ENTRIES}
RECOVERY_CLIENTS=${RECOVERY_CLIENTS:-128}
RECOVERY_SNAPSHOT=$((RECOVERY_ENTRIES * 2))
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release/raftix

RAFTIX_HTTP=18101 # nodes use 18101..18103
RAFTIX_PEER=18201 # 18201..18203
ETCD_CLIENT=23791 # 23791..23793
ETCD_PEER=23891   # 23891..23893

WORK=$(mktemp -d /tmp/raftix-bench.XXXXXX)
RESULTS=$WORK/results
mkdir -p "$RESULTS"
CLUSTER_PIDS=() # processes we started and must stop
NODE_PIDS=()    # the node processes whose memory and CPU we measure
declare -A PID_OF # node index (0..2) -> its process now
SAMPLER=""
LOADGEN=""
POLICY_RC_CREATED=""

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
has_phase() { [[ " $PHASES " == *" $1 "* ]]; }

# stamp VAR: the wall clock in microseconds since the epoch, into VAR (no fork).
stamp() { printf -v "$1" '%s' "${EPOCHREALTIME//[.,]/}"; }

stop_cluster() {
  if [[ -n $SAMPLER ]]; then
    kill "$SAMPLER" 2>/dev/null || true
    wait "$SAMPLER" 2>/dev/null || true
    SAMPLER=""
  fi
  if [[ -n $LOADGEN ]]; then
    kill "$LOADGEN" 2>/dev/null || true
    wait "$LOADGEN" 2>/dev/null || true
    LOADGEN=""
  fi
  local pid
  for pid in "${CLUSTER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 100); do
    local alive=0
    for pid in "${CLUSTER_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && break
    sleep 0.1
  done
  for pid in "${CLUSTER_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${CLUSTER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  CLUSTER_PIDS=()
  NODE_PIDS=()
  PID_OF=()
}

cleanup() {
  local status=$?
  stop_cluster
  [[ -n $POLICY_RC_CREATED ]] && rm -f /usr/sbin/policy-rc.d
  if [[ $status == 0 && ${BENCH_KEEP:-0} != 1 ]]; then
    rm -rf "$WORK"
  elif [[ $status == 0 ]]; then
    log "logs and results kept in $WORK"
  else
    log "failed (status $status); logs and results kept in $WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- build and install

log "building the release binary in $CARGO_TARGET_DIR"
(cd "$ROOT" && cargo build --release --quiet)

ETCD_STATUS=ok
if [[ $TARGETS == *etcd* ]] && ! command -v etcd >/dev/null; then
  log "installing etcd-server (apt-get)"
  SUDO=""
  [[ $(id -u) != 0 ]] && SUDO=sudo
  # Keep the package from starting etcd as a system service: we start our own members.
  if [[ ! -e /usr/sbin/policy-rc.d ]] && [[ $(id -u) == 0 ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    POLICY_RC_CREATED=1
  fi
  if ! (DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y etcd-server >"$WORK/apt.log" 2>&1 ||
    { $SUDO apt-get update >>"$WORK/apt.log" 2>&1 &&
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y etcd-server >>"$WORK/apt.log" 2>&1; }); then
    ETCD_STATUS="apt-get install -y etcd-server failed: $(tail -n 3 "$WORK/apt.log" | tr '\n' ' ')"
    log "$ETCD_STATUS"
  fi
  if [[ -n $POLICY_RC_CREATED ]]; then
    rm -f /usr/sbin/policy-rc.d
    POLICY_RC_CREATED=""
  fi
  if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then
    $SUDO systemctl disable --now etcd || true
  fi
fi
ETCD_VERSION=$(command -v etcd >/dev/null && etcd --version 2>/dev/null | head -n 1 || echo "not installed")

# ---------------------------------------------------------------- measuring helpers

# rss_kib PID: the process's resident set in KiB (0 when gone).
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# cpu_ticks: user+system clock ticks used so far by all the node processes.
cpu_ticks() {
  local total=0 pid t
  for pid in "${NODE_PIDS[@]}"; do
    t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}

# sample_rss FILE: every second, the peak VmRSS of each node so far, as "pid kib" lines, to FILE.
sample_rss() {
  local file=$1 pid
  declare -A peak
  while true; do
    for pid in "${NODE_PIDS[@]}"; do
      local now
      now=$(rss_kib "$pid")
      [[ ${now:-0} -gt ${peak[$pid]:-0} ]] && peak[$pid]=$now
    done
    : >"$file.tmp"
    for pid in "${NODE_PIDS[@]}"; do echo "$pid ${peak[$pid]:-0}" >>"$file.tmp"; done
    mv "$file.tmp" "$file"
    sleep 1
  done
}

# node_rss_json: {"node": kib, ...} of the nodes now.
node_rss_json() {
  local i=0 pid out="{"
  for pid in "${NODE_PIDS[@]}"; do
    i=$((i + 1))
    [[ $i -gt 1 ]] && out+=","
    out+="\"$(node_name "$pid")\":$(rss_kib "$pid")"
  done
  echo "$out}"
}

declare -A NODE_NAMES
node_name() { echo "${NODE_NAMES[$1]:-pid$1}"; }

# add_node PID NAME INDEX: a node process to measure, node INDEX (0..2) of its cluster.
add_node() {
  NODE_PIDS+=("$1")
  NODE_NAMES[$1]=$2
  PID_OF[$3]=$1
}

# forget_node PID: a node process that is gone (killed or stopped).
forget_node() {
  local pid kept=()
  for pid in "${NODE_PIDS[@]}"; do [[ $pid != "$1" ]] && kept+=("$pid"); done
  NODE_PIDS=("${kept[@]}")
}

# wait_gone PID: until the process has exited (up to 30 s; it may not be our child).
wait_gone() {
  local i
  for i in $(seq 1 300); do
    kill -0 "$1" 2>/dev/null || break
    # A zombie of ours counts as gone once reaped (quietly: no "Killed" job notice).
    { wait "$1"; } 2>/dev/null || true
    sleep 0.1
  done
}

# http_url TARGET INDEX: base URL of node INDEX (0..2).
http_url() {
  case $1 in
    raftix) echo "http://127.0.0.1:$((RAFTIX_HTTP + $2))" ;;
    etcd) echo "http://127.0.0.1:$((ETCD_CLIENT + $2))" ;;
  esac
}

# endpoints_of TARGET: the 3 base URLs, comma-separated.
endpoints_of() {
  local i out=""
  for i in 0 1 2; do out+="${out:+,}$(http_url "$1" "$i")"; done
  echo "$out"
}

# status_json TARGET INDEX: the node's status (raftix /v1/status, etcd /v3/maintenance/status).
status_json() {
  local url
  url=$(http_url "$1" "$2")
  case $1 in
    raftix) curl -fsS -m 1 "$url/v1/status" 2>/dev/null ;;
    etcd) curl -fsS -m 1 -X POST "$url/v3/maintenance/status" -d '{}' 2>/dev/null ;;
  esac
}

# leader_index TARGET [SKIP]: index (0..2) of the node that says it is the leader (not SKIP).
leader_index() {
  local target=$1 skip=${2:-} i
  for i in 0 1 2; do
    [[ $i == "$skip" ]] && continue
    case $target in
      raftix) status_json raftix "$i" | grep -q '"role":"LEADER"' && { echo "$i"; return; } ;;
      etcd) status_json etcd "$i" | jq -e '(.leader // "0") != "0" and .leader == .header.member_id' \
        >/dev/null 2>&1 && { echo "$i"; return; } ;;
    esac
  done
  return 0
}

# node_ready TARGET INDEX: whether the node serves (raftix /readyz 200; etcd /health true).
node_ready() {
  local url
  url=$(http_url "$1" "$2")
  case $1 in
    raftix) curl -fsS -m 1 -o /dev/null "$url/readyz" 2>/dev/null ;;
    etcd) curl -fsS -m 2 "$url/health" 2>/dev/null | jq -e '.health == "true"' >/dev/null 2>&1 ;;
  esac
}

# node_answers TARGET INDEX: whether the node's HTTP server answers at all.
node_answers() {
  local url
  url=$(http_url "$1" "$2")
  case $1 in
    raftix) curl -fsS -m 1 -o /dev/null "$url/healthz" 2>/dev/null ;;
    etcd) curl -fsS -m 1 -o /dev/null "$url/version" 2>/dev/null ;;
  esac
}

# applied_index TARGET INDEX / commit_index TARGET INDEX (etcd: raftAppliedIndex / raftIndex).
applied_index() {
  case $1 in
    raftix) status_json raftix "$2" | jq -r '.applied // empty' 2>/dev/null || true ;;
    etcd) status_json etcd "$2" | jq -r '.raftAppliedIndex // empty' 2>/dev/null || true ;;
  esac
}
commit_index() {
  case $1 in
    raftix) status_json raftix "$2" | jq -r '.commit // empty' 2>/dev/null || true ;;
    etcd) status_json etcd "$2" | jq -r '.raftIndex // empty' 2>/dev/null || true ;;
  esac
}

# all_ready TARGET SECS: until every node is ready (false after SECS).
all_ready() {
  local target=$1 deadline=$((SECONDS + $2)) i ok
  while ((SECONDS < deadline)); do
    ok=1
    for i in 0 1 2; do node_ready "$target" "$i" || { ok=0; break; }; done
    [[ $ok == 1 ]] && return 0
    sleep 0.2
  done
  return 1
}

# run_bench TARGET NAME ENDPOINTS ARGS...: one measured run; its report (plus the machine's
# load, the nodes' CPU time and peak memory) goes to $RESULTS/TARGET-NAME.json.
run_bench() {
  local target=$1 name=$2 endpoints=$3
  shift 3
  local file="$RESULTS/$target-$name.json"
  local args=(bench --target "$target" --endpoints "$endpoints" --duration-secs "$SECS"
    --warmup-secs "$WARMUP" --threads "$THREADS" --json "$@")
  echo "$BIN ${args[*]}" >"$RESULTS/$target-$name.cmd"
  log "$target $name: raftix ${args[*]}"
  local load_before ticks_before ticks_after clk
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  ticks_before=$(cpu_ticks)
  sample_rss "$WORK/peak.txt" &
  SAMPLER=$!
  local started=$SECONDS ok=1
  if ! "$BIN" "${args[@]}" >"$WORK/out.json" 2>"$WORK/err.txt"; then ok=0; fi
  local elapsed=$((SECONDS - started))
  kill "$SAMPLER" 2>/dev/null || true
  wait "$SAMPLER" 2>/dev/null || true
  SAMPLER=""
  ticks_after=$(cpu_ticks)
  clk=$(getconf CLK_TCK)
  local peak="{}"
  if [[ -f $WORK/peak.txt ]]; then
    peak=$(while read -r pid kib; do printf '"%s":%s\n' "$(node_name "$pid")" "$kib"; done <"$WORK/peak.txt" |
      paste -sd, - | sed 's/^/{/; s/$/}/')
    rm -f "$WORK/peak.txt"
  fi
  # CPU over the whole run (preload and warmup included) and the wall time it took.
  local extra
  extra=$(jq -n --arg load "$load_before" --argjson ticks "$((ticks_after - ticks_before))" \
    --argjson clk "$clk" --argjson wall "$elapsed" --argjson peak "$peak" \
    --arg cmd "raftix ${args[*]}" \
    '{load_before: $load, node_cpu_secs: ($ticks / $clk), wall_secs: $wall, peak_rss_kib: $peak, command: $cmd}')
  if [[ $ok == 1 ]] && jq -e . "$WORK/out.json" >/dev/null 2>&1; then
    jq --argjson extra "$extra" '. + $extra' "$WORK/out.json" >"$file"
    log "$target $name: $(jq -r '"\(.throughput_ops_s | floor) ops/s, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, \(.errors) errors"' "$file")"
  else
    jq -n --arg error "$(tr '\n' ' ' <"$WORK/err.txt")" --arg target "$target" --arg name "$name" \
      --argjson extra "$extra" '{failed: $error, target: $target, run: $name} + $extra' >"$file"
    log "$target $name FAILED: $(cat "$WORK/err.txt")"
  fi
}

# run_workloads TARGET ENDPOINTS: every run against the cluster that is up.
run_workloads() {
  local target=$1 endpoints=$2
  run_bench "$target" write-1 "$endpoints" --workload write --clients 1
  run_bench "$target" write-16 "$endpoints" --workload write --clients 16
  run_bench "$target" write-64 "$endpoints" --workload write --clients 64
  run_bench "$target" write-256 "$endpoints" --workload write --clients 256
  run_bench "$target" write-64-leader "$endpoints" --workload write --clients 64 --leader-only
  run_bench "$target" read-linearizable-64 "$endpoints" --workload read-linearizable --clients 64
  if [[ $target == raftix ]]; then
    run_bench "$target" read-lease-64 "$endpoints" --workload read-lease --clients 64
  fi
  run_bench "$target" read-stale-64 "$endpoints" --workload read-stale --clients 64
}

# record_cluster TARGET FILE IDLE LOG FROM PATTERN: idle and final memory, elections and warnings
# logged since byte FROM of LOG, to FILE.
record_cluster() {
  local target=$1 file=$2 idle=$3 logfile=$4 from=$5 pattern=$6
  local elections warnings
  elections=$(tail -c +"$((from + 1))" "$logfile" | grep -Eci "$pattern" || true)
  warnings=$(tail -c +"$((from + 1))" "$logfile" | grep -Ec ' WARN | ERROR | W \| | E \| |"level":"(warn|error)"' || true)
  local examples
  examples=$(tail -c +"$((from + 1))" "$logfile" | grep -E ' WARN | ERROR | W \| | E \| |"level":"(warn|error)"' |
    cut -c1-300 | sort | uniq -c | sort -rn | head -n 8 || true)
  jq -n --arg target "$target" --argjson idle "$idle" --argjson after "$(node_rss_json)" \
    --argjson elections "$elections" --argjson warnings "$warnings" --arg examples "$examples" \
    '{target: $target, idle_rss_kib: $idle, after_rss_kib: $after, elections_during_runs: $elections,
      warnings_during_runs: $warnings, warning_examples: $examples}' >"$file"
}

# ---------------------------------------------------------------- failover

# analyze_timeline FILE KILL_US: failover figures from a `raftix bench --timeline` file, as JSON.
analyze_timeline() {
  python3 - "$1" "$2" <<'PY'
import csv, json, sys

path, kill = sys.argv[1], int(sys.argv[2])
first_sent_after = first_any_after = last_ok_before = last_end = None
errors_until_recovered = 0
requests = 0
gap = (0, None)  # longest time between two successive successes, and where it starts
prev_ok = None
with open(path) as f:
    for row in csv.DictReader(f):
        requests += 1
        start, end = int(row["start_unix_us"]), int(row["end_unix_us"])
        last_end = end
        ok = row["outcome"] == "ok"
        if ok:
            if prev_ok is not None and end - prev_ok > gap[0]:
                gap = (end - prev_ok, prev_ok)
            prev_ok = end
        if end <= kill:
            if ok:
                last_ok_before = end
            continue
        if ok and first_any_after is None:
            first_any_after = end
        if ok and start >= kill and first_sent_after is None:
            first_sent_after = end
        if not ok and first_sent_after is None:
            errors_until_recovered += 1

ms = lambda t: None if t is None else round((t - kill) / 1000, 3)
print(json.dumps({
    "requests": requests,
    "failover_ms": ms(first_sent_after),
    "first_ok_any_ms": ms(first_any_after),
    "last_ok_before_kill_ms": ms(last_ok_before),
    "errors_until_recovered": errors_until_recovered,
    "longest_gap_ms": round(gap[0] / 1000, 3),
    "longest_gap_start_ms": ms(gap[1]),
    "last_completion_after_kill_ms": ms(last_end),
}))
PY
}

# failover_run TARGET N ENDPOINTS RESTART_FN: one leader kill under a write load, to
# $RESULTS/TARGET-failover-N.json. RESTART_FN INDEX starts the killed node again.
failover_run() {
  local target=$1 n=$2 endpoints=$3 restart=$4
  local name=failover-$n timeline=$RESULTS/$target-failover-$n.csv
  local file=$RESULTS/$target-$name.json
  local args=(bench --target "$target" --endpoints "$endpoints" --workload write
    --clients "$FAILOVER_CLIENTS" --threads "$THREADS" --duration-secs "$FAILOVER_SECS"
    --warmup-secs "$FAILOVER_WARMUP" --timeout-ms "$FAILOVER_TIMEOUT_MS" --rotate-on-error
    --timeline "$timeline" --json)
  echo "$BIN ${args[*]}" >"$RESULTS/$target-$name.cmd"
  if ! all_ready "$target" 60; then
    jq -n --arg t "$target" '{target: $t, failed: "the cluster was not ready before the run"}' >"$file"
    log "$target $name: cluster not ready, skipped"
    return
  fi
  # The leader is found on the quiet cluster, before the load: asking a loaded node can take
  # long enough to push the kill towards the end of the run. The load generator's own view of
  # the nodes when it starts (nodes_before) confirms it (killed_was_leader).
  local leader victim kill_us elected_us="" new=""
  leader=$(leader_index "$target")
  if [[ -z $leader ]]; then
    jq -n --arg t "$target" '{target: $t, failed: "no leader found to kill"}' >"$file"
    log "$target $name: no leader to kill"
    return
  fi
  victim=${PID_OF[$leader]}
  log "$target $name: raftix ${args[*]}"
  "$BIN" "${args[@]}" >"$WORK/failover.json" 2>"$WORK/failover.err" &
  LOADGEN=$!
  sleep $((FAILOVER_WARMUP + FAILOVER_KILL_AT))
  stamp kill_us
  kill -KILL "$victim"
  # Reap it at once if it is our child (etcd, restarted raftix nodes), without a job notice.
  { wait "$victim"; } 2>/dev/null || true
  forget_node "$victim"
  # When a surviving node first says it leads (polled back to back; each poll takes a few ms).
  while kill -0 "$LOADGEN" 2>/dev/null; do
    new=$(leader_index "$target" "$leader")
    if [[ -n $new ]]; then
      stamp elected_us
      break
    fi
  done
  local ok=1 end_us
  wait "$LOADGEN" || ok=0
  stamp end_us
  LOADGEN=""
  wait_gone "$victim"
  local figures='{}'
  [[ -s $timeline ]] && figures=$(analyze_timeline "$timeline" "$kill_us")
  local elected_ms=null
  [[ -n $elected_us ]] && elected_ms=$(awk -v a="$elected_us" -v b="$kill_us" 'BEGIN {printf "%.3f", (a - b) / 1000}')
  # Restart the killed node with its command line; time until the whole cluster is ready.
  local restarted_us ready_us ready_ms=null
  stamp restarted_us
  "$restart" "$leader"
  if all_ready "$target" 120; then
    stamp ready_us
    ready_ms=$(awk -v a="$ready_us" -v b="$restarted_us" 'BEGIN {printf "%.3f", (a - b) / 1000}')
  fi
  local report='{}'
  if [[ $ok == 1 ]] && jq -e . "$WORK/failover.json" >/dev/null 2>&1; then
    report=$(cat "$WORK/failover.json")
  else
    report=$(jq -n --arg e "$(tr '\n' ' ' <"$WORK/failover.err")" '{failed: $e}')
  fi
  jq -n --argjson figures "$figures" --argjson report "$report" --arg target "$target" \
    --argjson run "$n" --arg killed "$(http_url "$target" "$leader")" --arg new "${new:+$(http_url "$target" "$new")}" \
    --argjson kill_us "$kill_us" --argjson elected_ms "$elected_ms" --argjson ready_ms "$ready_ms" \
    --argjson end_ms "$(awk -v a="$end_us" -v b="$kill_us" 'BEGIN {printf "%.3f", (a - b) / 1000}')" \
    --arg cmd "raftix ${args[*]}" \
    '{target: $target, run: $run, killed: $killed, new_leader: $new, kill_unix_us: $kill_us,
      leader_seen_ms: $elected_ms, restart_to_all_ready_ms: $ready_ms, command: $cmd,
      killed_was_leader: ([$report.nodes_before[]? | select(.endpoint == $killed) | .leader] | first),
      bench: ($report | del(.nodes_before, .nodes_after))} + $figures
      + {run_end_after_kill_ms: $end_ms}' >"$file"
  log "$target $name: killed $(http_url "$target" "$leader"); $(jq -r '"writes succeeded again after \(.failover_ms) ms (first success of any request \(.first_ok_any_ms) ms; new leader seen \(.leader_seen_ms) ms; longest gap \(.longest_gap_ms) ms)"' "$file")"
  sleep 1
}

# run_failovers TARGET RESTART_FN
run_failovers() {
  local target=$1 restart=$2 n endpoints
  endpoints=$(endpoints_of "$target")
  for n in $(seq 1 "$FAILOVER_RUNS"); do failover_run "$target" "$n" "$endpoints" "$restart"; done
}

# ---------------------------------------------------------------- recovery

# recovery_measure TARGET RESTART_FN DIR: fill the log, stop a follower, start it again (with
# RESTART_FN INDEX) and time it, to $RESULTS/TARGET-recovery.json. DIR holds the data directories.
recovery_measure() {
  local target=$1 restart=$2 dir=$3
  local file=$RESULTS/$target-recovery.json endpoints
  endpoints=$(endpoints_of "$target")
  local args=(bench --target "$target" --endpoints "$endpoints" --workload write
    --clients "$RECOVERY_CLIENTS" --threads "$THREADS" --total-ops "$RECOVERY_ENTRIES"
    --keys "$RECOVERY_ENTRIES" --duration-secs 3600 --warmup-secs 0 --json)
  log "$target recovery: writing $RECOVERY_ENTRIES entries: raftix ${args[*]}"
  local fill
  if ! fill=$("$BIN" "${args[@]}" 2>"$WORK/fill.err") || ! jq -e . <<<"$fill" >/dev/null 2>&1; then
    jq -n --arg t "$target" --arg e "$(tr '\n' ' ' <"$WORK/fill.err")" '{target: $t, failed: ("filling the log: " + $e)}' >"$file"
    log "$target recovery: filling the log failed: $(cat "$WORK/fill.err")"
    return
  fi
  log "$target recovery: $(jq -r '"\(.ops) entries in \(.duration_secs | floor) s (\(.throughput_ops_s | floor) ops/s), \(.errors) errors"' <<<"$fill")"
  if ! all_ready "$target" 600; then
    jq -n --arg t "$target" '{target: $t, failed: "nodes not caught up after filling the log"}' >"$file"
    return
  fi
  local leader follower i
  leader=$(leader_index "$target")
  if [[ -z $leader ]]; then
    jq -n --arg t "$target" '{target: $t, failed: "no leader after filling the log"}' >"$file"
    return
  fi
  for i in 0 1 2; do [[ $i != "$leader" ]] && { follower=$i; break; }; done
  local leader_commit log_info
  leader_commit=$(commit_index "$target" "$leader")
  case $target in
    raftix)
      log_info=$(curl -fsS -m 5 "$(http_url raftix "$follower")/v1/log?from=1&limit=1" |
        jq -c '{first_index, last_index}') || log_info='{}'
      ;;
    etcd)
      # WAL files are preallocated (64 MiB each): their count says little below 64 MiB of entries.
      log_info=$(jq -nc --argjson wal "$(find "$dir/e$((follower + 1))/member/wal" -name '*.wal' | wc -l)" \
        --argjson snaps "$(find "$dir/e$((follower + 1))/member/snap" -name '*.snap' | wc -l)" \
        --arg index "$(commit_index etcd "$follower")" \
        '{wal_files: $wal, snapshot_files: $snaps, raft_index: ($index | tonumber? // null)}') || log_info='{}'
      ;;
  esac
  local data_bytes rss_before pid
  pid=${PID_OF[$follower]}
  data_bytes=$(du -sb "$(node_dir "$target" "$dir" "$follower")" | cut -f1)
  rss_before=$(rss_kib "$pid")
  log "$target recovery: stopping follower $(http_url "$target" "$follower") (log: $log_info, $data_bytes bytes on disk)"
  local t0 t1
  stamp t0
  kill -TERM "$pid"
  wait_gone "$pid"
  forget_node "$pid"
  stamp t1
  local stop_ms
  stop_ms=$(awk -v a="$t1" -v b="$t0" 'BEGIN {printf "%.3f", (a - b) / 1000}')
  sleep 1
  local started answers="" ready="" caught="" now applied
  stamp started
  "$restart" "$follower"
  local deadline=$((SECONDS + 900))
  while ((SECONDS < deadline)) && [[ -z $ready || -z $caught ]]; do
    if [[ -z $answers ]] && node_answers "$target" "$follower"; then stamp answers; fi
    if [[ -n $answers ]]; then
      if [[ -z $ready ]] && node_ready "$target" "$follower"; then stamp ready; fi
      if [[ -z $caught ]]; then
        applied=$(applied_index "$target" "$follower")
        if [[ -n $applied && $applied -ge $leader_commit ]]; then stamp caught; fi
      fi
    else
      sleep 0.01
    fi
  done
  local ms='def ms(t): if t == "" then null else ((t | tonumber) - ($started | tonumber)) / 1000 end;'
  jq -n --arg target "$target" --arg node "$(http_url "$target" "$follower")" \
    --argjson fill "$(jq 'del(.nodes_before, .nodes_after)' <<<"$fill")" --arg fill_cmd "raftix ${args[*]}" \
    --argjson log "$log_info" --argjson data_bytes "$data_bytes" --argjson leader_commit "${leader_commit:-null}" \
    --argjson stop_ms "$stop_ms" --arg started "$started" --arg answers "$answers" --arg ready "$ready" \
    --arg caught "$caught" --argjson rss_before "$rss_before" --argjson rss_after "$(rss_kib "${PID_OF[$follower]}")" \
    --arg restart_cmd "$(cat "$WORK/restart-cmd.txt" 2>/dev/null)" \
    "$ms"' {target: $target, entries: ($fill.ops), node: $node, fill: $fill, fill_command: $fill_cmd,
      log: $log, data_bytes: $data_bytes, leader_commit: $leader_commit, stop_ms: $stop_ms,
      http_ms: ms($answers), ready_ms: ms($ready), caught_up_ms: ms($caught),
      rss_before_stop_kib: $rss_before, rss_after_ready_kib: $rss_after, restart_command: $restart_cmd}' >"$file"
  log "$target recovery: $(jq -r '"restarted \(.node): HTTP after \(.http_ms) ms, ready after \(.ready_ms) ms, caught up after \(.caught_up_ms) ms"' "$file")"
}

# node_dir TARGET DIR INDEX: the data directory of node INDEX of a recovery cluster.
node_dir() {
  case $1 in
    raftix) echo "$2/node$(($3 + 1))" ;;
    etcd) echo "$2/e$(($3 + 1))" ;;
  esac
}

# ---------------------------------------------------------------- raftix

RAFTIX_DIR=""

# raftix_restart INDEX: starts node INDEX again with the command line it had (saved by
# save_raftix_cmdline), as a child of this script.
raftix_restart() {
  local i=$1 id=$(($1 + 1)) args
  mapfile -d '' -t args <"$RAFTIX_DIR/node$id.cmdline"
  echo "raftix ${args[*]:1}" >"$WORK/restart-cmd.txt"
  "$BIN" "${args[@]:1}" >>"$RAFTIX_DIR/node$id.restarted.log" 2>&1 &
  CLUSTER_PIDS+=($!)
  add_node $! "node$id" "$i"
}

# raftix_wait_leader: until a node says it leads (false after 20 s).
raftix_wait_leader() {
  local i
  for _ in $(seq 1 200); do
    for i in 0 1 2; do
      curl -fsS "$(http_url raftix "$i")/v1/status" 2>/dev/null | grep -q '"role":"LEADER"' && return 0
    done
    sleep 0.1
  done
  return 1
}

bench_raftix() {
  local dir=$WORK/raftix
  RAFTIX_DIR=$dir
  mkdir -p "$dir"
  log "starting a 3-node raftix cluster (HTTP $RAFTIX_HTTP-$((RAFTIX_HTTP + 2)))"
  # --no-restart: the failover runs kill nodes and restart them themselves.
  "$BIN" up --nodes 3 --no-restart --base-http-port "$RAFTIX_HTTP" --base-peer-port "$RAFTIX_PEER" \
    --data-dir "$dir/data" >"$dir/up.log" 2>&1 &
  CLUSTER_PIDS+=($!)
  local up=$! endpoints
  endpoints=$(endpoints_of raftix)
  if ! raftix_wait_leader; then
    echo '{"target":"raftix","failed":"no leader elected within 20 s"}' >"$RESULTS/cluster-raftix.json"
    stop_cluster
    return
  fi
  local pid id
  for pid in $(pgrep -P "$up"); do
    id=$(tr '\0' ' ' <"/proc/$pid/cmdline" | sed -n 's/.*--id \([0-9]*\).*/\1/p')
    cp "/proc/$pid/cmdline" "$dir/node$id.cmdline"
    add_node "$pid" "node$id" "$((id - 1))"
  done
  sleep 3 # settle: idle memory of an empty, quiet cluster
  local idle from
  idle=$(node_rss_json)
  from=$(stat -c %s "$dir/up.log")
  if has_phase workloads; then run_workloads raftix "$endpoints"; fi
  record_cluster raftix "$RESULTS/cluster-raftix.json" "$idle" "$dir/up.log" "$from" 'became (leader|candidate)'
  if has_phase failover; then run_failovers raftix raftix_restart; fi
  stop_cluster
  if has_phase recovery; then recovery_raftix; fi
}

# recovery_raftix: a fresh cluster of 3 `raftix serve` (as `raftix up` starts them, plus the
# snapshot thresholds), the log filled, a follower restarted.
recovery_raftix() {
  local dir=$WORK/raftix-recovery i cluster=""
  RAFTIX_DIR=$dir
  mkdir -p "$dir"
  for i in 1 2 3; do cluster+="${cluster:+,}$i=127.0.0.1:$((RAFTIX_PEER + i - 1))"; done
  log "starting a 3-node raftix cluster for the recovery run (--snapshot-entries $RECOVERY_SNAPSHOT --snapshot-bytes 0)"
  for i in 1 2 3; do
    mkdir -p "$dir/node$i"
    printf '%s\0' raftix serve --id "$i" --data-dir "$dir/node$i" \
      --listen-peer "127.0.0.1:$((RAFTIX_PEER + i - 1))" --listen-http "127.0.0.1:$((RAFTIX_HTTP + i - 1))" \
      --cluster "$cluster" --cluster-name raftix \
      --snapshot-entries "$RECOVERY_SNAPSHOT" --snapshot-bytes 0 >"$dir/node$i.cmdline"
    raftix_restart "$((i - 1))"
  done
  if ! raftix_wait_leader; then
    echo '{"target":"raftix","failed":"no leader elected within 20 s"}' >"$RESULTS/raftix-recovery.json"
    stop_cluster
    return
  fi
  recovery_measure raftix raftix_restart "$dir"
  stop_cluster
}

# ---------------------------------------------------------------- etcd

ETCD_DIR=""
ETCD_EXTRA=()

# etcd_start INDEX: starts member INDEX (0..2) of the cluster in $ETCD_DIR, with $ETCD_EXTRA.
etcd_start() {
  local i=$(($1 + 1)) cluster="" j
  for j in 1 2 3; do cluster+="${cluster:+,}e$j=http://127.0.0.1:$((ETCD_PEER + j - 1))"; done
  local client=http://127.0.0.1:$((ETCD_CLIENT + i - 1)) peer=http://127.0.0.1:$((ETCD_PEER + i - 1))
  local args=(--name "e$i" --data-dir "$ETCD_DIR/e$i"
    --listen-client-urls "$client" --advertise-client-urls "$client"
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer"
    --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token raftix-bench
    "${ETCD_EXTRA[@]}")
  echo "etcd ${args[*]}" >"$WORK/restart-cmd.txt"
  etcd "${args[@]}" >>"$ETCD_DIR/e$i.log" 2>&1 &
  CLUSTER_PIDS+=($!)
  add_node $! "e$i" "$1"
}

# etcd_up: the 3 members of the cluster in $ETCD_DIR; false if no leader within 20 s.
etcd_up() {
  local i
  for i in 0 1 2; do etcd_start "$i"; done
  local ready=0
  for _ in $(seq 1 200); do
    ready=1
    for i in 0 1 2; do
      if ! status_json etcd "$i" | jq -e '(.leader // "0") != "0"' >/dev/null 2>&1; then
        ready=0
      fi
    done
    [[ $ready == 1 ]] && return 0
    sleep 0.1
  done
  return 1
}

bench_etcd() {
  local dir=$WORK/etcd
  mkdir -p "$dir"
  if [[ $ETCD_STATUS != ok ]] || ! command -v etcd >/dev/null; then
    jq -n --arg e "${ETCD_STATUS/#ok/etcd not found}" '{target: "etcd", failed: $e}' >"$RESULTS/cluster-etcd.json"
    return
  fi
  log "starting a 3-node etcd cluster (client $ETCD_CLIENT-$((ETCD_CLIENT + 2)))"
  ETCD_DIR=$dir
  ETCD_EXTRA=()
  local endpoints i
  endpoints=$(endpoints_of etcd)
  if ! etcd_up; then
    echo '{"target":"etcd","failed":"no leader elected within 20 s"}' >"$RESULTS/cluster-etcd.json"
    stop_cluster
    return
  fi
  sleep 3
  local idle sizes=()
  idle=$(node_rss_json)
  for i in 1 2 3; do sizes+=("$(stat -c %s "$dir/e$i.log")"); done
  if has_phase workloads; then run_workloads etcd "$endpoints"; fi
  # What each member logged during the runs, one after the other.
  : >"$dir/runs.log"
  for i in 1 2 3; do tail -c +"$((sizes[i - 1] + 1))" "$dir/e$i.log" >>"$dir/runs.log"; done
  record_cluster etcd "$RESULTS/cluster-etcd.json" "$idle" "$dir/runs.log" 0 'elected leader'
  if has_phase failover; then run_failovers etcd etcd_start; fi
  stop_cluster
  if has_phase recovery; then
    ETCD_DIR=$WORK/etcd-recovery
    ETCD_EXTRA=(--snapshot-count "$RECOVERY_SNAPSHOT")
    mkdir -p "$ETCD_DIR"
    log "starting a 3-node etcd cluster for the recovery run (--snapshot-count $RECOVERY_SNAPSHOT)"
    if etcd_up; then
      recovery_measure etcd etcd_start "$ETCD_DIR"
    else
      echo '{"target":"etcd","failed":"no leader elected within 20 s"}' >"$RESULTS/etcd-recovery.json"
    fi
    stop_cluster
  fi
}

# ---------------------------------------------------------------- run and write the doc

START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for target in $TARGETS; do
  case $target in
    raftix) bench_raftix ;;
    etcd) bench_etcd ;;
    *) log "unknown target $target" ;;
  esac
done

jq -n --arg start "$START" --arg finish "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --arg nproc "$(nproc)" --arg mem "$(free -g | awk '/^Mem:/ {print $2 " GiB"}')" \
  --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
  --arg kernel "$(uname -r)" --arg fs "$(df -T "$WORK" | awk 'NR==2 {print $2}')" \
  --arg etcd "$ETCD_VERSION" --arg raftix "$("$BIN" --version)" \
  --arg commit "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg secs "$SECS" --arg warmup "$WARMUP" --arg threads "$THREADS" --arg quick "$QUICK" \
  --arg phases "$PHASES" --arg failover_runs "$FAILOVER_RUNS" --arg failover_clients "$FAILOVER_CLIENTS" \
  --arg failover_secs "$FAILOVER_SECS" --arg failover_kill_at "$FAILOVER_KILL_AT" \
  --arg failover_warmup "$FAILOVER_WARMUP" --arg failover_timeout_ms "$FAILOVER_TIMEOUT_MS" \
  --arg recovery_entries "$RECOVERY_ENTRIES" \
  --arg recovery_clients "$RECOVERY_CLIENTS" --arg recovery_snapshot "$RECOVERY_SNAPSHOT" \
  '{start: $start, "end": $finish, nproc: $nproc, memory: $mem, cpu: $cpu, kernel: $kernel, fs: $fs,
    etcd: $etcd, raftix: $raftix, commit: $commit, secs: $secs, warmup: $warmup, threads: $threads,
    quick: ($quick == "1"), phases: $phases, failover_runs: $failover_runs,
    failover_clients: $failover_clients, failover_secs: $failover_secs,
    failover_kill_at: $failover_kill_at, failover_warmup: $failover_warmup,
    failover_timeout_ms: $failover_timeout_ms,
    recovery_entries: $recovery_entries, recovery_clients: $recovery_clients,
    recovery_snapshot: $recovery_snapshot}' \
  >"$RESULTS/meta.json"

mkdir -p "$(dirname "$OUT")"
python3 "$ROOT/scripts/bench_report.py" "$RESULTS" "$OUT" "$SVG"
log "wrote $OUT and $SVG"
