#!/usr/bin/env bash
# Side-by-side benchmark of raftix and etcd 3.4 on this machine; writes docs/benchmarks.md.
#
#   scripts/bench.sh                       # everything: build, install etcd if missing, run, write the doc
#   BENCH_SECS=5 BENCH_WARMUP=1 scripts/bench.sh   # quicker, noisier
#   BENCH_TARGETS=raftix scripts/bench.sh  # one target only
#
# Environment: BENCH_SECS (measured seconds per run, 10), BENCH_WARMUP (unmeasured seconds before
# each run, 3), BENCH_THREADS (load generator threads, 2), BENCH_TARGETS ("raftix etcd"),
# BENCH_OUT (docs/benchmarks.md), CARGO_TARGET_DIR (where the release binary is built).
#
# A 3-node raftix cluster (`raftix up`) and a 3-node etcd cluster (3 `etcd` processes, default
# fsync) run on 127.0.0.1, one cluster at a time so they never share the CPUs while measured. For
# each: writes at 1, 16 and 64 clients (spread over the nodes), writes at 64 clients all sent to
# the leader, linearizable, lease (raftix only) and stale reads at 64 clients. Every run records
# each node's VmRSS (sampled every second; peak kept), the CPU time the nodes used, each node's
# role and term before and after (leader changes), and the load average of the machine. All
# processes started here are stopped on exit (trap). Not run in CI: slow and noisy.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${BENCH_SECS:-10}
WARMUP=${BENCH_WARMUP:-3}
THREADS=${BENCH_THREADS:-2}
TARGETS=${BENCH_TARGETS:-raftix etcd}
OUT=${BENCH_OUT:-$ROOT/docs/benchmarks.md}
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
SAMPLER=""
POLICY_RC_CREATED=""

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

stop_cluster() {
  if [[ -n $SAMPLER ]]; then
    kill "$SAMPLER" 2>/dev/null || true
    wait "$SAMPLER" 2>/dev/null || true
    SAMPLER=""
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
}

cleanup() {
  local status=$?
  stop_cluster
  [[ -n $POLICY_RC_CREATED ]] && rm -f /usr/sbin/policy-rc.d
  if [[ $status == 0 ]]; then
    rm -rf "$WORK"
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

# ---------------------------------------------------------------- raftix

bench_raftix() {
  local dir=$WORK/raftix
  mkdir -p "$dir"
  log "starting a 3-node raftix cluster (HTTP $RAFTIX_HTTP-$((RAFTIX_HTTP + 2)))"
  "$BIN" up --nodes 3 --base-http-port "$RAFTIX_HTTP" --base-peer-port "$RAFTIX_PEER" \
    --data-dir "$dir/data" >"$dir/up.log" 2>&1 &
  CLUSTER_PIDS+=($!)
  local up=$! endpoints="" i
  for i in 0 1 2; do endpoints+="${endpoints:+,}http://127.0.0.1:$((RAFTIX_HTTP + i))"; done
  local leader=""
  for _ in $(seq 1 200); do
    for i in 0 1 2; do
      if curl -fsS "http://127.0.0.1:$((RAFTIX_HTTP + i))/v1/status" 2>/dev/null | grep -q '"role":"LEADER"'; then
        leader=$i
      fi
    done
    [[ -n $leader ]] && break
    sleep 0.1
  done
  if [[ -z $leader ]]; then
    echo '{"target":"raftix","failed":"no leader elected within 20 s"}' >"$RESULTS/cluster-raftix.json"
    stop_cluster
    return
  fi
  local pid id
  for pid in $(pgrep -P "$up"); do
    id=$(tr '\0' ' ' <"/proc/$pid/cmdline" | sed -n 's/.*--id \([0-9]*\).*/\1/p')
    NODE_NAMES[$pid]="node$id"
    NODE_PIDS+=("$pid")
  done
  sleep 3 # settle: idle memory of an empty, quiet cluster
  local idle from
  idle=$(node_rss_json)
  from=$(stat -c %s "$dir/up.log")
  run_workloads raftix "$endpoints"
  record_cluster raftix "$RESULTS/cluster-raftix.json" "$idle" "$dir/up.log" "$from" 'became (leader|candidate)'
  stop_cluster
}

# ---------------------------------------------------------------- etcd

bench_etcd() {
  local dir=$WORK/etcd
  mkdir -p "$dir"
  if [[ $ETCD_STATUS != ok ]] || ! command -v etcd >/dev/null; then
    jq -n --arg e "${ETCD_STATUS/#ok/etcd not found}" '{target: "etcd", failed: $e}' >"$RESULTS/cluster-etcd.json"
    return
  fi
  log "starting a 3-node etcd cluster (client $ETCD_CLIENT-$((ETCD_CLIENT + 2)))"
  local cluster="" endpoints="" i
  for i in 1 2 3; do cluster+="${cluster:+,}e$i=http://127.0.0.1:$((ETCD_PEER + i - 1))"; done
  for i in 1 2 3; do
    local client=http://127.0.0.1:$((ETCD_CLIENT + i - 1)) peer=http://127.0.0.1:$((ETCD_PEER + i - 1))
    endpoints+="${endpoints:+,}$client"
    etcd --name "e$i" --data-dir "$dir/e$i" \
      --listen-client-urls "$client" --advertise-client-urls "$client" \
      --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token raftix-bench \
      >"$dir/e$i.log" 2>&1 &
    CLUSTER_PIDS+=($!)
    NODE_PIDS+=($!)
    NODE_NAMES[$!]="e$i"
  done
  local ready=0
  for _ in $(seq 1 200); do
    ready=1
    for i in 0 1 2; do
      if ! curl -fsS -X POST "http://127.0.0.1:$((ETCD_CLIENT + i))/v3/maintenance/status" -d '{}' 2>/dev/null |
        jq -e '(.leader // "0") != "0"' >/dev/null 2>&1; then
        ready=0
      fi
    done
    [[ $ready == 1 ]] && break
    sleep 0.1
  done
  if [[ $ready != 1 ]]; then
    echo '{"target":"etcd","failed":"no leader elected within 20 s"}' >"$RESULTS/cluster-etcd.json"
    stop_cluster
    return
  fi
  sleep 3
  local idle sizes=()
  idle=$(node_rss_json)
  for i in 1 2 3; do sizes+=("$(stat -c %s "$dir/e$i.log")"); done
  run_workloads etcd "$endpoints"
  # What each member logged during the runs, one after the other.
  : >"$dir/runs.log"
  for i in 1 2 3; do tail -c +"$((sizes[i - 1] + 1))" "$dir/e$i.log" >>"$dir/runs.log"; done
  record_cluster etcd "$RESULTS/cluster-etcd.json" "$idle" "$dir/runs.log" 0 'elected leader'
  stop_cluster
}

# render_report RESULTS OUT: the markdown document from the JSON results.
render_report() {
  python3 - "$1" "$2" <<'PY'
import json, os, sys

results, out = sys.argv[1], sys.argv[2]

def load(name):
    path = os.path.join(results, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)

meta = load("meta.json") or {}
RUNS = [
    ("write-1", "Writes, 1 client"),
    ("write-16", "Writes, 16 clients"),
    ("write-64", "Writes, 64 clients"),
    ("write-64-leader", "Writes, 64 clients, all to the leader"),
    ("read-linearizable-64", "Linearizable reads, 64 clients"),
    ("read-lease-64", "Lease reads, 64 clients (raftix only)"),
    ("read-stale-64", "Stale (serializable) reads, 64 clients"),
]
TARGETS = ["raftix", "etcd"]
runs = {(t, r): load(f"{t}-{r}.json") for t in TARGETS for r, _ in RUNS}
clusters = {t: load(f"cluster-{t}.json") for t in TARGETS}

def ok(rep):
    return rep is not None and "failed" not in rep

def fmt_num(x, digits=0):
    return f"{x:,.{digits}f}"

def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}"

def cell(rep, f):
    if rep is None:
        return "not run"
    if "failed" in rep:
        return "FAILED"
    return f(rep)

def cores(rep):
    return rep["node_cpu_secs"] / rep["wall_secs"] if rep.get("wall_secs") else None

def cpu_per_op(rep):
    c = cores(rep)
    if c is None or rep["throughput_ops_s"] == 0:
        return None
    return c / rep["throughput_ops_s"] * 1e6

def mib(kib):
    return f"{kib / 1024:.0f}"

lines = []
w = lines.append
w("# Benchmarks: raftix vs etcd 3.4")
w("")
w("Generated by `scripts/bench.sh` (rerun it rather than editing; only the notes between the "
  "`notes` markers are kept across reruns). Both clusters ran "
  "on the same machine over loopback, **one at a time**, with the load generator "
  "(`raftix bench`) on the same machine too, so every figure includes the generator's share "
  "of the CPUs. Read it as a relative comparison on one small box, not as absolute capacity.")
w("")
w("## Machine and settings")
w("")
w(f"- CPUs: {meta.get('nproc', '?')} (`nproc`), {meta.get('cpu', '?')}")
w(f"- Memory: {meta.get('memory', '?')}; kernel {meta.get('kernel', '?')}; data directories on {meta.get('fs', '?')} (fsync on for both)")
w(f"- raftix: `{meta.get('raftix', '?')}` at commit `{meta.get('commit', '?')}`, release build, `raftix up --nodes 3` (default timings)")
w(f"- etcd: `{meta.get('etcd', '?')}` (Debian `etcd-server`), 3 members, default flags (fsync on, snapshot count default)")
w(f"- Each run: {meta.get('warmup', '?')} s warmup (not measured), then {meta.get('secs', '?')} s measured; "
  f"closed loop (each client waits for its answer before the next request), one keep-alive HTTP/1.1 "
  f"connection per client, clients spread round-robin over the 3 nodes unless \"to the leader\"; "
  f"generator on {meta.get('threads', '?')} thread(s); 100-byte values, 1000 keys (preloaded before read runs).")
w(f"- Run from {meta.get('start', '?')} to {meta.get('end', '?')} (UTC).")
w("- raftix is driven through its REST API (`PUT`/`GET /v1/kv/{key}`), etcd through its JSON "
  "gateway (`POST /v3/kv/put`, `/v3/kv/range`): both pay for HTTP/1.1 and JSON/base64, "
  "neither uses its native client (etcd's gRPC would be faster than its gateway).")
w("- Latency is the full round trip seen by the client, in milliseconds; only successful "
  "requests are timed. Ratios are raftix/etcd: above 1 means raftix has more throughput, "
  "or *higher* (worse) latency.")
w("")

failed_clusters = [(t, c["failed"]) for t, c in clusters.items() if c and "failed" in c]
for t, why in failed_clusters:
    w(f"**{t} could not be benchmarked: {why}.** Its columns say `not run`.")
    w("")

w("## Summary")
w("")
w("| Workload | raftix ops/s | etcd ops/s | ops/s ratio | raftix p50 / p99 / p99.9 ms | etcd p50 / p99 / p99.9 ms | errors raftix / etcd |")
w("|---|---:|---:|---:|---:|---:|---:|")
for r, title in RUNS:
    a, b = runs[("raftix", r)], runs[("etcd", r)]
    lat = lambda rep: f"{rep['latency_ms']['p50']:.2f} / {rep['latency_ms']['p99']:.2f} / {rep['latency_ms']['p999']:.2f}"
    ta = a["throughput_ops_s"] if ok(a) else None
    tb = b["throughput_ops_s"] if ok(b) else None
    w(f"| {title} | {cell(a, lambda x: fmt_num(x['throughput_ops_s']))} | "
      f"{cell(b, lambda x: fmt_num(x['throughput_ops_s'])) if r != 'read-lease-64' else 'n/a'} | "
      f"{ratio(ta, tb)} | {cell(a, lat)} | {cell(b, lat) if r != 'read-lease-64' else 'n/a'} | "
      f"{cell(a, lambda x: str(x['errors']))} / {cell(b, lambda x: str(x['errors'])) if r != 'read-lease-64' else 'n/a'} |")
w("")

w("## Per workload")
w("")
for r, title in RUNS:
    a, b = runs[("raftix", r)], runs[("etcd", r)]
    if a is None and b is None:
        continue
    w(f"### {title}")
    w("")
    w("| | raftix | etcd | raftix/etcd |")
    w("|---|---:|---:|---:|")
    def row(label, f, digits=2):
        va = f(a) if ok(a) else None
        vb = f(b) if ok(b) else None
        sa = cell(a, lambda _: "n/a" if va is None else fmt_num(va, digits))
        sb = "n/a" if r == "read-lease-64" else cell(b, lambda _: "n/a" if vb is None else fmt_num(vb, digits))
        w(f"| {label} | {sa} | {sb} | {ratio(va, vb)} |")
    row("throughput (ops/s)", lambda x: x["throughput_ops_s"], 0)
    row("p50 (ms)", lambda x: x["latency_ms"]["p50"])
    row("p99 (ms)", lambda x: x["latency_ms"]["p99"])
    row("p99.9 (ms)", lambda x: x["latency_ms"]["p999"])
    row("max (ms)", lambda x: x["latency_ms"]["max"])
    row("errors", lambda x: x["errors"], 0)
    row("seconds without a success", lambda x: x["stalled_seconds"], 0)
    row("cluster CPU, cores busy", cores)
    row("cluster CPU per op (µs, approx.)", cpu_per_op, 0)
    row("peak RSS, largest node (MiB)", lambda x: max(x["peak_rss_kib"].values() or [0]) / 1024, 0)
    for t, rep in (("raftix", a), ("etcd", b)):
        if rep and "failed" in rep:
            w("")
            w(f"{t} run failed: `{rep['failed'].strip()}`")
    w("")

w("## Memory (VmRSS per node, MiB)")
w("")
w("Idle: 3 s after the cluster elected a leader, store empty. Peak: highest value sampled "
  "once a second during any run. After: once every run finished.")
w("")
w("| Cluster | Node | idle | peak under load | after the runs |")
w("|---|---|---:|---:|---:|")
for t in TARGETS:
    c = clusters.get(t)
    if not c or "failed" in c:
        w(f"| {t} | - | not run | | |")
        continue
    peaks = {}
    for r, _ in RUNS:
        rep = runs.get((t, r))
        if rep and rep.get("peak_rss_kib"):
            for node, kib in rep["peak_rss_kib"].items():
                peaks[node] = max(peaks.get(node, 0), kib)
    for node in sorted(c["idle_rss_kib"]):
        w(f"| {t} | {node} | {mib(c['idle_rss_kib'][node])} | {mib(peaks.get(node, 0))} | "
          f"{mib(c['after_rss_kib'].get(node, 0))} |")
w("")

w("## Behaviour under load")
w("")
w("Leader and term of every node before and after each run, errors by kind, seconds "
  "without a single successful request, and ops completed in each measured second.")
w("")
for t in TARGETS:
    c = clusters.get(t)
    if not c or "failed" in c:
        continue
    w(f"### {t}")
    w("")
    w(f"- Elections logged during the runs: {c['elections_during_runs']}; warning/error log lines: {c['warnings_during_runs']}.")
    if c.get("warning_examples", "").strip():
        w("- Most frequent warning lines (count, line cut at 300 chars):")
        w("")
        w("```")
        w(c["warning_examples"].rstrip())
        w("```")
    w("")
    w("| Run | leader/terms before -> after | errors | stalled s | ops per second | load avg before |")
    w("|---|---|---|---:|---|---|")
    for r, title in RUNS:
        rep = runs.get((t, r))
        if rep is None:
            continue
        if "failed" in rep:
            w(f"| {r} | FAILED: {rep['failed'].strip()[:200]} | | | | {rep.get('load_before', '')} |")
            continue
        def views(vs):
            parts = []
            for v in vs:
                name = v["endpoint"].rsplit(":", 1)[-1]
                if v.get("error"):
                    parts.append(f"{name}:down")
                else:
                    role = "L" if v.get("leader") else "F"
                    parts.append(f"{name}:{role}{v.get('term')}")
            return " ".join(parts)
        before, after = views(rep["nodes_before"]), views(rep["nodes_after"])
        change = before if before == after else f"**{before} -> {after}**"
        errs = ", ".join(f"{n} x {k}" for k, n in rep["error_kinds"].items()) or "none"
        w(f"| {r} | {change} | {errs} | {rep['stalled_seconds']} | {' '.join(str(n) for n in rep['ops_per_second'])} | {rep.get('load_before', '')} |")
    examples = {}
    for r, _ in RUNS:
        rep = runs.get((t, r))
        if ok(rep):
            for k, v in rep["error_examples"].items():
                examples.setdefault(k, (r, v))
    if examples:
        w("")
        w("Error examples:")
        w("")
        for k, (r, v) in examples.items():
            w(f"- `{k}` ({r}): `{v.strip()[:200]}`")
    w("")

w("## Commands")
w("")
w("```sh")
w("scripts/bench.sh   # build, install etcd-server if missing, run everything, write this file")
w("```")
w("")
w("Each run, exactly as executed (endpoints are the 3 nodes of the cluster under test):")
w("")
w("```sh")
for t in TARGETS:
    for r, _ in RUNS:
        rep = runs.get((t, r))
        if rep and rep.get("command"):
            w(rep["command"])
w("```")
w("")
w("Clusters: `raftix up --nodes 3 --base-http-port 18101 --base-peer-port 18201 --data-dir DIR`; "
  "etcd: for i in 1 2 3, `etcd --name e$i --data-dir DIR/e$i --listen-client-urls "
  "http://127.0.0.1:2379$i --advertise-client-urls http://127.0.0.1:2379$i --listen-peer-urls "
  "http://127.0.0.1:2389$i --initial-advertise-peer-urls http://127.0.0.1:2389$i "
  "--initial-cluster e1=http://127.0.0.1:23891,e2=...,e3=... --initial-cluster-state new` "
  "(client ports 23791-23793, peer ports 23891-23893).")
w("")

# Hand-written notes between the markers survive a rerun (they go at the top).
START, END = "<!-- notes -->", "<!-- /notes -->"
notes = f"{START}\n{END}"
if os.path.exists(out):
    with open(out) as f:
        old = f.read()
    if START in old and END in old:
        notes = old[old.index(START):old.index(END) + len(END)]
lines.insert(4, notes)
lines.insert(5, "")
with open(out, "w") as f:
    f.write("\n".join(lines))
PY
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
  --arg secs "$SECS" --arg warmup "$WARMUP" --arg threads "$THREADS" \
  '{start: $start, "end": $finish, nproc: $nproc, memory: $mem, cpu: $cpu, kernel: $kernel, fs: $fs,
    etcd: $etcd, raftix: $raftix, commit: $commit, secs: $secs, warmup: $warmup, threads: $threads}' \
  >"$RESULTS/meta.json"

mkdir -p "$(dirname "$OUT")"
render_report "$RESULTS" "$OUT"
log "wrote $OUT"
