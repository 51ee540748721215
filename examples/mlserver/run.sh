#!/usr/bin/env bash
# MLServer (from PyPI) serving a scikit-learn iris model behind the Kafka sidecar, on the test broker,
# over REST and over gRPC: every iris flower goes through Kafka, and the answers are checked to equal
# what the same model gives in scikit-learn itself. Everything it starts is stopped at the end (or on
# Ctrl-C); the broker only if this script started it.
#
#   examples/mlserver/run.sh
#
# Environment: PYTHON (the interpreter for the venv; default python3.11, else python3), MLSERVER_VENV
# (default ~/.cache/seldon-kafka-sidecar/mlserver-venv, made on first use from requirements.txt),
# KAFKA_TEST_BOOTSTRAP (a broker to use instead of the test broker).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
here="$root/examples/mlserver"
work="$root/.cache/mlserver" # git-ignored
rm -rf "$work"
mkdir -p "$work"
venv="${MLSERVER_VENV:-${HOME:-$root}/.cache/seldon-kafka-sidecar/mlserver-venv}"

pids=()
started_broker=false
cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	if $started_broker; then bash test/kafka/broker.sh stop >/dev/null 2>&1 || true; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
	echo "mlserver example: $*" >&2
	exit 1
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------------------------------------------
echo "== Python: MLServer in $venv"
python=${PYTHON:-}
if [[ -z "$python" ]]; then
	if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
fi
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
if [[ ! -x "$venv/bin/mlserver" || "$(cat "$venv/.requirements" 2>/dev/null)" != "$want" ]]; then
	echo "installing examples/mlserver/requirements.txt (once; a few minutes)"
	if [[ -e "$venv" && ! -f "$venv/pyvenv.cfg" ]]; then
		die "$venv exists and is not a virtualenv; not touching it (set MLSERVER_VENV)"
	fi
	rm -rf "$venv"
	"$python" -m venv "$venv"
	if ! "$venv/bin/pip" install -q -r "$here/requirements.txt" >"$work/pip.log" 2>&1; then
		cat "$work/pip.log" >&2
		die "pip install failed"
	fi
	echo "$want" >"$venv/.requirements"
fi
"$venv/bin/python" -c 'import mlserver, sklearn; print("MLServer", mlserver.__version__, "scikit-learn", sklearn.__version__)'

echo "== building the sidecar"
go build -o bin/executor ./cmd/executor
go build -o bin/kafkaclient ./examples/kafkaclient

echo "== Kafka"
if [[ -n "${KAFKA_TEST_BOOTSTRAP:-}" ]]; then
	bootstrap=$KAFKA_TEST_BOOTSTRAP
elif bash test/kafka/broker.sh status >/dev/null 2>&1; then
	bootstrap=$(cat .kafka/bootstrap)
else
	started_broker=true
	bash test/kafka/broker.sh start
	bootstrap=$(cat .kafka/bootstrap)
fi
suffix=$(date +%s)-$$
for t in rest grpc; do
	bin/kafkaclient -bootstrap "$bootstrap" -create -in "mlserver-$t-requests-$suffix" -out "mlserver-$t-answers-$suffix" \
		-errors "mlserver-$t-errors-$suffix" >/dev/null
done
echo "broker $bootstrap, topics mlserver-{rest,grpc}-{requests,answers,errors}-$suffix"

echo "== training the model and starting MLServer"
cp "$here"/model/*.json "$work/"
"$venv/bin/python" "$here/iris_kafka.py" train "$work"
http_port=$(free_port)
grpc_port=$(free_port)
metrics_port=$(free_port)
(cd "$work" && MLSERVER_HOST=127.0.0.1 MLSERVER_HTTP_PORT=$http_port MLSERVER_GRPC_PORT=$grpc_port \
	MLSERVER_METRICS_PORT=$metrics_port exec "$venv/bin/mlserver" start .) >"$work/mlserver.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do
	curl -fsS "http://127.0.0.1:$http_port/v2/models/iris/ready" >/dev/null 2>&1 && break
	kill -0 "${pids[-1]}" 2>/dev/null || break
	sleep 0.2
done
curl -fsS "http://127.0.0.1:$http_port/v2/models/iris/ready" >/dev/null 2>&1 || {
	tail -n 40 "$work/mlserver.log" >&2
	die "MLServer did not get the model ready (its log is above)"
}
echo "MLServer serves iris on 127.0.0.1:$http_port (REST) and 127.0.0.1:$grpc_port (gRPC)"

# The predictor the operator would pass for examples/mlserver/sdep.yaml, pointing at the local MLServer.
cat >"$work/predictor.json" <<EOF
{"name": "default", "graph": {"name": "iris", "type": "MODEL",
  "endpoint": {"service_host": "127.0.0.1", "httpPort": $http_port, "grpcPort": $grpc_port}},
 "componentSpecs": [{"spec": {"containers": [{"name": "iris"}]}}]}
EOF

for transport in rest grpc; do
	echo "== the sidecar with --protocol=v2 --transport=$transport"
	KAFKA_BROKER="$bootstrap" KAFKA_INPUT_TOPIC="mlserver-$transport-requests-$suffix" \
		KAFKA_OUTPUT_TOPIC="mlserver-$transport-answers-$suffix" KAFKA_ERROR_TOPIC="mlserver-$transport-errors-$suffix" \
		bin/executor --file="$work/predictor.json" --sdep=iris --namespace=mlserver --predictor=default \
		--protocol=v2 --transport="$transport" --http_port=0 --grpc_port=0 --log_level=WARN \
		2>"$work/executor-$transport.log" &
	pids+=($!)
	"$venv/bin/python" "$here/iris_kafka.py" check "$bootstrap" "$transport" "mlserver-$transport-requests-$suffix" \
		"mlserver-$transport-answers-$suffix" "$work" || {
		echo "the sidecar's log:" >&2
		tail -n 20 "$work/executor-$transport.log" >&2
		die "$transport: the answers are not scikit-learn's"
	}
done
echo "== MLServer behind the sidecar answers as scikit-learn does, over REST and gRPC"
