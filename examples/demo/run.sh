#!/usr/bin/env bash
# The local demo (make demo): a real Kafka broker, the test model, the sidecar, a few requests and
# their answers. Everything runs on loopback and stops at the end.
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

echo "== building"
go build -o bin/executor ./cmd/executor
go build -o bin/testmodel ./cmd/testmodel
go build -o bin/kafkaclient ./examples/kafkaclient

echo "== starting Kafka"
bash test/kafka/broker.sh start
bootstrap=$(cat "$KAFKA_STATE_DIR/bootstrap")
bin/kafkaclient -bootstrap "$bootstrap" -in iris-requests -out iris-answers -errors iris-errors -create

echo "== starting the model (port 9011) and the sidecar"
bin/testmodel --http_port=9011 --model_name=classifier 2>"$KAFKA_STATE_DIR/model.log" &
pids+=($!)
KAFKA_BROKER="$bootstrap" KAFKA_INPUT_TOPIC=iris-requests KAFKA_OUTPUT_TOPIC=iris-answers \
KAFKA_ERROR_TOPIC=iris-errors \
	bin/executor --file=examples/demo/sdep.yaml --sdep=iris --namespace=demo --predictor=default \
	--protocol=seldon --transport=rest --http_port=18000 2>"$KAFKA_STATE_DIR/executor.log" &
pids+=($!)
for _ in $(seq 1 100); do
	if curl -fsS localhost:18000/ready >/dev/null 2>&1; then break; fi
	sleep 0.2
done
curl -fsS localhost:18000/ready || { echo "sidecar not ready; its log:"; cat "$KAFKA_STATE_DIR/executor.log"; exit 1; }
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
curl -fsS localhost:18000/metrics | grep -E '^seldon_kafka_(records|record_errors)' || true
echo "(logs: $KAFKA_STATE_DIR/executor.log, $KAFKA_STATE_DIR/model.log)"
