#!/usr/bin/env bash
# Profiles the sidecar's CPU per record (README, "Performance"): builds the executor and the test model,
# starts the test broker if none runs, drains a backlog of 1 KB seldon requests through the executor
# binary with a Go CPU profile (SIDECAR_PPROF) and, where perf is installed and allowed, a perf profile
# (librdkafka's threads and the kernel, which Go's profiler does not see), then prints the top of each.
#
#   bash test/profile.sh [profile flags...]     e.g. -transport grpc, -rate 400, -records 50000,
#                                               -env KAFKA_PRODUCER_LINGER_MS=5 (go run ./test/profile -h)
#
# The profiles stay in .profile/ (cpu.pprof, perf.data) for `go tool pprof` and `perf report`.
set -euo pipefail
cd "$(dirname "$0")/.."

make -s build >/dev/null
bash test/kafka/broker.sh status >/dev/null 2>&1 || bash test/kafka/broker.sh start
mkdir -p .profile
perf_args=()
if command -v perf >/dev/null && perf record -o /dev/null -- true >/dev/null 2>&1; then
	perf_args=(-perf .profile/perf.data)
else
	echo "profile.sh: perf not usable here (apt-get install linux-perf; kernel.perf_event_paranoid): Go profile only" >&2
fi
go run ./test/profile -records 40000 -profile-seconds 5 -pprof .profile/cpu.pprof "${perf_args[@]}" "$@"

echo
echo "== Go CPU profile (go tool pprof -top bin/executor .profile/cpu.pprof)"
go tool pprof -top -cum -nodecount=30 bin/executor .profile/cpu.pprof 2>/dev/null | tail -n +6
if [[ ${#perf_args[@]} -gt 0 ]]; then
	echo
	echo "== perf: CPU by thread and library (perf report -i .profile/perf.data)"
	perf report -i .profile/perf.data --no-children --sort comm,dso -g none --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -12
fi
