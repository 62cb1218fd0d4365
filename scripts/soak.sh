#!/usr/bin/env bash
# Soak test: a 3-node raftix cluster under 64 clients of mixed reads and writes for a long time,
# with a kill -9 of a random node every minute; samples each node's RSS, open file descriptors
# and data-dir size and the cluster's throughput every few seconds, fails if RSS or fds grow
# without bound or a data dir exceeds its compaction bound, and writes docs/soak.md with the
# curves as a picture (docs/soak.svg).
#
#   scripts/soak.sh                    # 10 minutes (the default)
#   SOAK_SECS=3600 scripts/soak.sh     # 1 hour
#   SOAK_SECS=120 SOAK_KILL_EVERY=30 scripts/soak.sh   # a quick look
#
# Environment (defaults):
#   SOAK_SECS         how long the load runs (600)
#   SOAK_KILL_EVERY   seconds between kill -9s of a random node, restarted at once (60)
#   SOAK_SAMPLE       seconds between samples (5)
#   SOAK_WRITERS      writing clients (32); SOAK_READERS linearizable readers (32)
#   SOAK_VALUE_BYTES  size of each written value (1024)
#   SOAK_KEYS         distinct keys (10000)
#   SOAK_OUT          docs/soak.md (the picture goes next to it: NAME.svg)
#   SOAK_KEEP         1: keep the work directory (node logs, samples) after a success
#   CARGO_TARGET_DIR  where the release binary is built
#
# Nodes run with --snapshot-entries 20000 --snapshot-keep 5000 (the defaults), so the log is
# compacted every 20 000 entries; the compaction bound checked is SOAK_DIR_BOUND_MB (512) per
# data dir. Growth is judged after a warm-up (the first quarter of the run): the maximum RSS of
# the last quarter may exceed that of the second quarter by at most 50 % + 32 MiB, open fds by
# at most 32. Not run in CI (it is long); see docs/soak.md for the last report.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
echo "soak: building the release binary"
cargo build --release --quiet
exec python3 "$ROOT/scripts/soak_run.py" "$CARGO_TARGET_DIR/release/raftix"
