#!/usr/bin/env bash
# The local demo (make demo): a real Kafka broker, the test model, the sidecar, a few requests and
# their answers. Kafka and the model listen on loopback only; the sidecar's HTTP port (/live, /ready,
# /metrics) listens on every interface, as in a pod (the executor has no flag to bind one address).
# The ports are picked free at each run. Everything stops at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
export KAFKA_STATE_DIR="$root/.kafka-demo"
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	bash test/kafka/broker.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

die() {
	echo "demo: $*" >&2
	exit 1
}

echo "== building"
go build -o bin/executor ./cmd/executor
go build -o bin/testmodel ./cmd/testmodel
go build -o bin/kafkaclient ./examples/kafkaclient

echo "== starting Kafka"
bash test/kafka/broker.sh start
bootstrap=$(cat "$KAFKA_STATE_DIR/bootstrap")
bin/kafkaclient -bootstrap "$bootstrap" -in iris-requests -out iris-answers -errors iris-errors -create

# The model takes a free port of its own (--http_port=0) and says which on its first line of output;
# it serves REST only (--grpc_port=-1).
model_out="$KAFKA_STATE_DIR/model.out"
: >"$model_out"
bin/testmodel --host=127.0.0.1 --http_port=0 --grpc_port=-1 --model_name=classifier \
	>"$model_out" 2>"$KAFKA_STATE_DIR/model.log" &
model_pid=$!
pids+=("$model_pid")
model_addr=
for _ in $(seq 1 100); do
	read -r listening <"$model_out" || true
	if [[ "${listening:-}" =~ ^listening\ http=(127\.0\.0\.1:[0-9]+)\  ]]; then
		model_addr=${BASH_REMATCH[1]}
		break
	fi
	kill -0 "$model_pid" 2>/dev/null || break
	sleep 0.1
done
if [[ -z "$model_addr" ]]; then
	echo "demo: the model did not start; its log:" >&2
	cat "$KAFKA_STATE_DIR/model.log" >&2
	exit 1
fi
model_port=${model_addr##*:}

# The sidecar reads the predictor from a copy of examples/demo/sdep.yaml whose model endpoint is the
# model's port.
sdep="$KAFKA_STATE_DIR/sdep.yaml"
sed "s/^\( *httpPort:\) 9011\$/\1 $model_port/" examples/demo/sdep.yaml >"$sdep"
grep -q "httpPort: $model_port\$" "$sdep" || die "examples/demo/sdep.yaml no longer has the model's httpPort: 9011 to replace"

# A free port for the sidecar's HTTP server.
sidecar_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

echo "== starting the model (127.0.0.1:$model_port) and the sidecar (HTTP port $sidecar_port)"
KAFKA_BROKER="$bootstrap" KAFKA_INPUT_TOPIC=iris-requests KAFKA_OUTPUT_TOPIC=iris-answers \
KAFKA_ERROR_TOPIC=iris-errors \
	bin/executor --file="$sdep" --sdep=iris --namespace=demo --predictor=default \
	--protocol=seldon --transport=rest --http_port="$sidecar_port" 2>"$KAFKA_STATE_DIR/executor.log" &
sidecar_pid=$!
pids+=("$sidecar_pid")
sidecar="http://127.0.0.1:$sidecar_port"
for _ in $(seq 1 100); do
	if curl -fsS "$sidecar/ready" >/dev/null 2>&1; then break; fi
	kill -0 "$sidecar_pid" 2>/dev/null || break
	sleep 0.2
done
if ! kill -0 "$sidecar_pid" 2>/dev/null; then
	# Its log names the cause, a busy --http_port included ("bind: address already in use").
	echo "demo: the sidecar exited at start (port $sidecar_port); its log:" >&2
	cat "$KAFKA_STATE_DIR/executor.log" >&2
	exit 1
fi
if ! ready=$(curl -fsS "$sidecar/ready" 2>&1); then
	echo "demo: the sidecar is not ready after 20s ($sidecar/ready: $ready); its log:" >&2
	cat "$KAFKA_STATE_DIR/executor.log" >&2
	exit 1
fi
echo "$ready"
echo

echo "== requests in, answers out"
# Three flowers for the model, and one record that is not a request at all, to show an error record.
bin/kafkaclient -bootstrap "$bootstrap" -in iris-requests -out iris-answers -errors iris-errors -puid demo <<'EOF'
flower-1 {"data":{"names":["sepal_length","sepal_width"],"ndarray":[[5.1,3.5]]}}
flower-2 {"data":{"names":["sepal_length","sepal_width"],"ndarray":[[6.2,2.9],[7.7,3.0]]}}
flower-3 {"data":{"tensor":{"shape":[1,2],"values":[4.9,3.1]}}}
not-json this is not JSON
EOF

echo
echo "== sidecar metrics"
curl -fsS "$sidecar/metrics" | grep -E '^seldon_kafka_(records|record_errors)' || true
echo "(logs: $KAFKA_STATE_DIR/executor.log, $KAFKA_STATE_DIR/model.log)"
