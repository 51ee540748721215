#!/usr/bin/env bash
# The local demo (make demo): a real Kafka broker, a real model — an iris classifier fitted by
# scikit-learn (examples/demo/iris) — and the sidecar in front of it twice, once calling the model over
# REST and once over gRPC. Flowers go in as Kafka records, the model's verdicts come out, printed as
# measurements and probabilities; then the same model is asked synchronously through the sidecar.
#
# Kafka, the model and the sidecars listen on loopback, on free ports (DEMO_HTTP_PORT fixes the REST
# sidecar's HTTP port). Everything the demo starts is stopped when it ends, fails or is interrupted
# (Ctrl-C). The answers are checked: the demo fails if a flower is classified wrongly.
#
# Environment: DEMO_HTTP_PORT, KAFKA_STATE_DIR (default .kafka-demo in the repository).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
export KAFKA_STATE_DIR="${KAFKA_STATE_DIR:-$root/.kafka-demo}"
# A busy laptop may take more than the broker script's minute to start Kafka; the progress line shows it.
export KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-180}"
state=$KAFKA_STATE_DIR
mkdir -p "$state"

# ---------------------------------------------------------------------------------------------------
# Cleanup: every process this script started, by its id, and the broker; on exit, on error, on Ctrl-C.
pids=()
cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [[ -n "${broker_started:-}" ]]; then
		bash test/kafka/broker.sh stop >/dev/null 2>&1 || true
	fi
	((rc == 130)) && echo "demo: interrupted; everything it started is stopped" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
	echo "demo: $*" >&2
	exit 1
}

# started PID: remembers a process to stop, and writes the list where a test can check it.
started() {
	pids+=("$1")
	printf '%s\n' "${pids[@]}" >"$state/demo.pids"
}

# progress WHAT CMD...: runs CMD, showing its latest line of output and the seconds it has taken on one
# line that updates in place (a line every 10 s when the output is not a terminal). While Maven fetches
# Kafka, the line says how much has been downloaded so far.
progress() {
	local what=$1 log="$state/$1.log"
	shift
	local m2="${HOME:-/root}/.m2/repository" m2_before m2_now line extra last_print=-10 start=$SECONDS
	m2_before=$(du -sm "$m2" 2>/dev/null | cut -f1 || echo 0)
	"$@" >"$log" 2>&1 &
	local pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		line=$(tail -n 1 "$log" 2>/dev/null | cut -c1-90)
		extra=
		if [[ "$line" == *fetching* ]]; then
			m2_now=$(du -sm "$m2" 2>/dev/null | cut -f1 || echo 0)
			extra=" — $((m2_now - ${m2_before:-0})) MB downloaded"
		fi
		if [[ -t 1 ]]; then
			printf '\r\033[K  %s [%ds] %s%s' "$what" $((SECONDS - start)) "$line" "$extra"
		elif ((SECONDS - last_print >= 10)); then
			printf '  %s [%ds] %s%s\n' "$what" $((SECONDS - start)) "$line" "$extra"
			last_print=$SECONDS
		fi
		sleep 0.5
	done
	local rc=0
	wait "$pid" || rc=$?
	[[ -t 1 ]] && printf '\r\033[K'
	if ((rc != 0)); then
		cat "$log" >&2
		return "$rc"
	fi
	printf '  %s [%ds] %s\n' "$what" $((SECONDS - start)) "$(tail -n 1 "$log")"
}

# free_port: a TCP port free on loopback now.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# port_busy PORT: true when something listens on 127.0.0.1:PORT; says what when it can.
port_busy() {
	python3 -c 'import socket, sys; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null && return 1
	return 0
}

busy_hint() {
	local port=$1 who=
	if command -v ss >/dev/null 2>&1; then
		who=$(ss -ltnpH "sport = :$port" 2>/dev/null | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -n 1 | sed 's/users:(("\([^"]*\)",pid=\([0-9]*\)/\1, pid \2/')
	fi
	echo "demo: port $port is busy${who:+ (held by $who)}." >&2
	echo "      Stop what holds it, or run the demo on another port: DEMO_HTTP_PORT=$((port + 1)) make demo" >&2
	echo "      (without DEMO_HTTP_PORT the demo picks free ports itself)." >&2
	exit 1
}

# wait_listening OUT PID: the "listening http=… grpc=…" line a model prints once it listens.
wait_listening() {
	local out=$1 pid=$2 line i
	for ((i = 0; i < 100; i++)); do
		read -r line <"$out" || true
		if [[ "${line:-}" =~ ^listening\ http=127\.0\.0\.1:([0-9]+)\ grpc=127\.0\.0\.1:([0-9]+) ]]; then
			echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------------------------------------------------
http_port=${DEMO_HTTP_PORT:-}
if [[ -n "$http_port" ]]; then
	[[ "$http_port" =~ ^[0-9]+$ ]] && ((http_port > 0 && http_port < 65536)) || die "DEMO_HTTP_PORT=$http_port is not a port"
	port_busy "$http_port" && busy_hint "$http_port"
fi

echo "== building the sidecar, the model and the Kafka client"
go build -o bin/executor ./cmd/executor
go build -o bin/iris ./examples/demo/iris
go build -o bin/kafkaclient ./examples/kafkaclient

echo "== starting Kafka (the first run fetches Apache Kafka 3.8.1 from Maven Central, about 120 MB)"
broker_started=1
progress kafka bash test/kafka/broker.sh start
bootstrap=$(cat "$state/bootstrap")
topics=(iris-rest-requests iris-rest-answers iris-rest-errors iris-grpc-requests iris-grpc-answers iris-grpc-errors)
bin/kafkaclient -bootstrap "$bootstrap" -create -in "${topics[0]}" -out "${topics[1]}" -errors "${topics[2]}" >/dev/null
bin/kafkaclient -bootstrap "$bootstrap" -create -in "${topics[3]}" -out "${topics[4]}" -errors "${topics[5]}" >/dev/null
echo "  topics ${topics[*]}"

echo "== starting the model"
: >"$state/iris.out"
bin/iris --host=127.0.0.1 --http_port=0 --grpc_port=0 >"$state/iris.out" 2>"$state/iris.log" &
started $!
ports=$(wait_listening "$state/iris.out" "${pids[-1]}") || {
	cat "$state/iris.log" >&2
	die "the model did not start; its log is above"
}
read -r model_http model_grpc <<<"$ports"
echo "  iris classifier on 127.0.0.1:$model_http (REST) and 127.0.0.1:$model_grpc (gRPC): $(sed -n 's/.*about="\([^"]*\)".*/\1/p' "$state/iris.log")"

# The sidecars read the predictor from a copy of examples/demo/sdep.yaml whose endpoint is the model's.
sdep="$state/sdep.yaml"
sed -e "s/^\( *httpPort:\) 9000\$/\1 $model_http/" -e "s/^\( *grpcPort:\) 9500\$/\1 $model_grpc/" examples/demo/sdep.yaml >"$sdep"
grep -q "httpPort: $model_http\$" "$sdep" && grep -q "grpcPort: $model_grpc\$" "$sdep" ||
	die "examples/demo/sdep.yaml no longer has the endpoint's httpPort: 9000 and grpcPort: 9500 to replace"

# start_sidecar TRANSPORT HTTP_PORT GRPC_PORT: one sidecar on the TRANSPORT topics.
start_sidecar() {
	local transport=$1 port=$2 grpc=$3
	KAFKA_BROKER="$bootstrap" KAFKA_INPUT_TOPIC="iris-$transport-requests" KAFKA_OUTPUT_TOPIC="iris-$transport-answers" \
		KAFKA_ERROR_TOPIC="iris-$transport-errors" \
		bin/executor --file="$sdep" --sdep=iris --namespace=demo --predictor=default --protocol=seldon \
		--transport="$transport" --http_port="$port" --grpc_port="$grpc" 2>"$state/executor-$transport.log" &
	started $!
}

# wait_ready TRANSPORT PORT: until the sidecar's /ready answers 200.
wait_ready() {
	local transport=$1 port=$2 pid=${pids[-1]} i
	for ((i = 0; i < 150; i++)); do
		curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			if grep -q 'address already in use' "$state/executor-$transport.log"; then
				busy_hint "$port"
			fi
			cat "$state/executor-$transport.log" >&2
			die "the $transport sidecar exited at start; its log is above"
		fi
		sleep 0.2
	done
	curl -sS "http://127.0.0.1:$port/ready" >&2 || true
	die "the $transport sidecar is not ready after 30 s (its log: $state/executor-$transport.log)"
}

echo "== starting the sidecars"
rest_port=${http_port:-$(free_port)}
grpc_http_port=$(free_port)
grpc_api_port=$(free_port)
start_sidecar rest "$rest_port" 0
wait_ready rest "$rest_port"
echo "  --transport=rest: /ready, /metrics and the synchronous API on http://127.0.0.1:$rest_port"
start_sidecar grpc "$grpc_http_port" "$grpc_api_port"
wait_ready grpc "$grpc_http_port"
echo "  --transport=grpc: /ready and /metrics on http://127.0.0.1:$grpc_http_port, the synchronous gRPC API on 127.0.0.1:$grpc_api_port"

# Three flowers of Fisher's data, one of each species, and a record that is no request at all.
requests="$state/requests.txt"
cat >"$requests" <<'EOF'
flower-1 {"data":{"names":["sepal_length","sepal_width","petal_length","petal_width"],"ndarray":[[5.1,3.5,1.4,0.2]]}}
flower-2 {"data":{"names":["sepal_length","sepal_width","petal_length","petal_width"],"ndarray":[[6.4,3.2,4.5,1.5]]}}
flower-3 {"data":{"names":["sepal_length","sepal_width","petal_length","petal_width"],"ndarray":[[6.3,3.3,6.0,2.5]]}}
two-rows {"data":{"names":["sepal_length","sepal_width","petal_length","petal_width"],"tensor":{"shape":[2,4],"values":[5.0,3.6,1.4,0.2,5.9,3.0,5.1,1.8]}}}
not-json this is not a request
EOF

# check OUTPUT: the species the model must find for each flower, and the error record.
check() {
	local out=$1 want
	for want in "flower-1 *setosa (" "flower-2 *versicolor (" "flower-3 *virginica (" \
		"two-rows *setosa (.*) | virginica (" "not-json *error record (invalid_request)"; do
		grep -q -- "^← $want" <<<"$out" || die "no answer matching '$want'"
	done
}

for transport in rest grpc; do
	echo
	echo "== flowers into iris-$transport-requests, verdicts out of iris-$transport-answers (the sidecar calls the model over ${transport^^})"
	flag=
	[[ $transport == grpc ]] && flag=-grpc
	out=$(bin/kafkaclient -bootstrap "$bootstrap" -in "iris-$transport-requests" -out "iris-$transport-answers" \
		-errors "iris-$transport-errors" -puid demo -pretty $flag <"$requests")
	echo "$out"
	check "$out"
done

echo
echo "== the same model, asked synchronously through the sidecar"
body='{"data":{"names":["sepal_length","sepal_width","petal_length","petal_width"],"ndarray":[[5.7,2.8,4.1,1.3]]}}'
echo "\$ curl -s http://127.0.0.1:$rest_port/api/v1.0/predictions -H 'Content-Type: application/json' -d '$body'"
curl -fsS "http://127.0.0.1:$rest_port/api/v1.0/predictions" -H 'Content-Type: application/json' -d "$body"
echo

echo
echo "== sidecar metrics (REST)"
curl -fsS "http://127.0.0.1:$rest_port/metrics" | grep -E '^seldon_kafka_(records_consumed|records_produced|record_errors)' || true
echo
echo "All answers checked. Logs: $state/executor-rest.log, $state/executor-grpc.log, $state/iris.log"
echo "Stopping what the demo started."
