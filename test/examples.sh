#!/usr/bin/env bash
# The examples a newcomer runs first, as CI runs them (test/run-tests.sh): the demo, which checks its own
# answers; the demo interrupted as Ctrl-C interrupts it, which must leave nothing running; and, when
# Python 3 is there, MLServer behind the sidecar, whose answers must equal scikit-learn's.
# SKIP_MLSERVER=1 leaves MLServer out.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
demo_state="$root/.kafka-demo"

echo "== make demo"
bash examples/demo/run.sh

echo "== make demo, interrupted once the sidecars run (as Ctrl-C does, to the whole process group)"
log=$(mktemp)
# A command this script puts in the background starts with SIGINT ignored (bash does that without job
# control), and a shell cannot trap what it started ignoring: SIGINT is set back to its default first, as
# a terminal's foreground job has it, and the demo gets a process group of its own to signal.
setsid python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' \
	bash examples/demo/run.sh >"$log" 2>&1 &
demo=$!
for _ in $(seq 1 600); do
	grep -q -- '--transport=grpc:' "$log" && break
	kill -0 "$demo" 2>/dev/null || break
	sleep 0.5
done
grep -q -- '--transport=grpc:' "$log" || {
	cat "$log" >&2
	echo "examples: the demo did not get its sidecars running" >&2
	exit 1
}
kill -INT -- "-$demo"
rc=0
wait "$demo" || rc=$?
left=()
while read -r pid; do
	kill -0 "$pid" 2>/dev/null && left+=("$pid")
done <"$demo_state/demo.pids"
if KAFKA_STATE_DIR="$demo_state" bash test/kafka/broker.sh status >/dev/null 2>&1; then
	left+=("the demo's broker")
fi
if ((rc != 130)) || ((${#left[@]} > 0)) || ! grep -q 'interrupted; everything it started is stopped' "$log"; then
	cat "$log" >&2
	echo "examples: the interrupted demo exited $rc (want 130) and left running: ${left[*]:-nothing}" >&2
	KAFKA_STATE_DIR="$demo_state" bash test/kafka/broker.sh stop >/dev/null 2>&1 || true
	exit 1
fi
rm -f "$log"
echo "interrupted: exit 130, nothing left running"

if [[ "${SKIP_MLSERVER:-}" == 1 ]]; then
	echo "== examples/mlserver: skipped (SKIP_MLSERVER=1)"
elif command -v python3 >/dev/null 2>&1; then
	echo "== examples/mlserver"
	bash examples/mlserver/run.sh
else
	echo "== examples/mlserver: skipped (no python3)"
fi
