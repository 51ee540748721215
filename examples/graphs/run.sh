#!/usr/bin/env bash
# Runs one Seldon inference graph behind the Kafka executor, on loopback: a real Kafka broker, one
# seldon-core-microservice (Seldon's Python wrapper) per graph node, the executor walking the graph for
# every record, a few requests in and their answers out. Everything it starts is stopped at the end.
#
#   examples/graphs/run.sh [SHAPE] [--transport=rest|grpc] [--errors]
#
#   SHAPE  transformer (default)  transformer -> model
#          ab-router              router -> [model-a, model-b]
#          ensemble               combiner -> [model-a, model-b, model-c]
#          output-transformer     output-transformer -> model
#          nested                 transformer -> router -> [model-a, combiner -> [model-b, model-c]]
#          random-abtest          the executor's RANDOM_ABTEST (ratioA 0.7) -> [model-a, model-b]
#   --transport=grpc  the nodes are called over gRPC and the records are protobuf SeldonMessages
#   --errors          one more record that a node refuses (a negative feature: the model raises
#                     SeldonMicroserviceException, HTTP 400) and, for the shapes with a combiner, one
#                     the combiner fails on (an answer of 1000 or more: ValueError, HTTP 500); over
#                     gRPC both are status UNKNOWN
#
# Environment: PYTHON (the interpreter for the venv; default python3.11, else python3),
# GRAPH_VENV (default ~/.cache/seldon-kafka-sidecar/graph-venv), KAFKA_STATE_DIR (the broker's state;
# default .cache/graphs/kafka in the repository), SELDON_ENABLE_ROUTING_INJECTION (default true here,
# so that the answers show the routes taken in meta.routing), MODEL_MAX_ATTEMPTS (default 3 here).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

usage() {
	sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-0}"
}

shape=transformer
transport=rest
errors=false
while (($#)); do
	case "$1" in
	transformer | ab-router | ensemble | output-transformer | nested | random-abtest) shape=$1 ;;
	--transport=*) transport=${1#--transport=} ;;
	--transport)
		shift
		transport=${1:-}
		;;
	--errors) errors=true ;;
	-h | --help) usage 0 ;;
	*)
		echo "run.sh: unknown argument '$1'" >&2
		usage 2 >&2
		;;
	esac
	shift
done
case "$transport" in
rest | grpc) ;;
*)
	echo "run.sh: --transport is rest or grpc, not '$transport'" >&2
	exit 2
	;;
esac

work="$root/.cache/graphs" # /.cache/ is git-ignored
logs="$work/logs"
mkdir -p "$logs"
export KAFKA_STATE_DIR="${KAFKA_STATE_DIR:-$work/kafka}"
venv="${GRAPH_VENV:-${HOME:-$root}/.cache/seldon-kafka-sidecar/graph-venv}"
components="$root/examples/graphs/components"

# ---------------------------------------------------------------------------------------------------
# Cleanup: every process this script started, by its id; the broker only if this script started it.
# Each node runs in a session of its own (setsid), so that its gunicorn and gRPC workers stop with it.
node_pids=()
executor_pid=
started_broker=false
cleanup() {
	local rc=$? pid i
	trap - EXIT INT TERM
	if [[ -n "$executor_pid" ]]; then
		kill -TERM "$executor_pid" 2>/dev/null || true
		wait "$executor_pid" 2>/dev/null || true
	fi
	for pid in "${node_pids[@]}"; do
		kill -TERM -- "-$pid" 2>/dev/null || true
	done
	for pid in "${node_pids[@]}"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 -- "-$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL -- "-$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if $started_broker; then
		bash test/kafka/broker.sh stop >/dev/null 2>&1 || true
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------------
echo "== Python: seldon-core's wrapper in $venv"
python=${PYTHON:-}
if [[ -z "$python" ]]; then
	if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
fi
want=$(sha256sum "$components/requirements.txt" | cut -d' ' -f1)
if [[ ! -x "$venv/bin/seldon-core-microservice" || "$(cat "$venv/.requirements" 2>/dev/null)" != "$want" ]]; then
	echo "installing $components/requirements.txt (once)"
	if [[ -e "$venv" && ! -f "$venv/pyvenv.cfg" ]]; then
		echo "run.sh: $venv exists and is not a virtualenv; not touching it (set GRAPH_VENV)" >&2
		exit 1
	fi
	rm -rf "$venv"
	"$python" -m venv "$venv"
	if ! "$venv/bin/pip" install -q -r "$components/requirements.txt" >"$logs/pip.log" 2>&1; then
		cat "$logs/pip.log" >&2
		echo "run.sh: pip install failed" >&2
		exit 1
	fi
	echo "$want" >"$venv/.requirements"
fi
"$venv/bin/python" -c 'import seldon_core, numpy; print("seldon-core", seldon_core.__version__, "numpy", numpy.__version__)'

echo "== building"
go build -o bin/executor ./cmd/executor
go build -o bin/kafkaclient ./examples/kafkaclient

echo "== Kafka"
if bootstrap=$(bash test/kafka/broker.sh status 2>/dev/null); then
	echo "using the broker already running at $bootstrap"
else
	started_broker=true # before start: a signal during it must still stop it
	bash test/kafka/broker.sh start
	bootstrap=$(cat "$KAFKA_STATE_DIR/bootstrap")
fi
in="graph-$shape-$transport-requests"
out="graph-$shape-$transport-answers"
errs="graph-$shape-$transport-errors"
bin/kafkaclient -bootstrap "$bootstrap" -in "$in" -out "$out" -errors "$errs" -create

# ---------------------------------------------------------------------------------------------------
# The graph's nodes: name, Python class, --service-type, image (what PREDICTIVE_UNIT_IMAGE says, as the
# operator sets it: it shows in meta.requestPath), and the graph parameters (PREDICTIVE_UNIT_PARAMETERS).
declare -A class type image params
node() {
	class[$1]=$2
	type[$1]=$3
	image[$1]=$4
	params[$1]=$5
}
p() { # p NAME VALUE ... : a parameters list of FLOATs
	local out="" sep=""
	while (($#)); do
		out+="$sep{\"name\":\"$1\",\"type\":\"FLOAT\",\"value\":\"$2\"}"
		sep=,
		shift 2
	done
	printf '[%s]' "$out"
}
node transformer Transformer TRANSFORMER myregistry/graph-transformer:1.0 "$(p scale 2)"
node router Router ROUTER myregistry/graph-router:1.0 "$(p threshold 10)"
node combiner Combiner COMBINER myregistry/graph-combiner:1.0 "$(p fail_above 1000)"
# The wrapper's --service-type has no OUTPUT_TRANSFORMER; it serves every method whatever the type.
node output-transformer OutputTransformer TRANSFORMER myregistry/graph-output-transformer:1.0 "$(p centre 5)"
node model Model MODEL myregistry/graph-model:1.0 "$(p weight 1 bias 0)"
node model-a Model MODEL myregistry/graph-model:1.0 "$(p weight 1 bias 0)"

case "$shape" in
transformer) nodes=(transformer model) ;;
ab-router)
	node model-b Model MODEL myregistry/graph-model:1.0 "$(p weight 1 bias 100)"
	nodes=(router model-a model-b)
	;;
random-abtest)
	node model-b Model MODEL myregistry/graph-model:1.0 "$(p weight 1 bias 100)"
	nodes=(model-a model-b)
	;;
ensemble)
	node model-b Model MODEL myregistry/graph-model:1.0 "$(p weight 2 bias 0)"
	node model-c Model MODEL myregistry/graph-model:1.0 "$(p weight 3 bias 0)"
	nodes=(combiner model-a model-b model-c)
	;;
output-transformer) nodes=(output-transformer model) ;;
nested)
	node model-b Model MODEL myregistry/graph-model:1.0 "$(p weight 2 bias 0)"
	node model-c Model MODEL myregistry/graph-model:1.0 "$(p weight 3 bias 0)"
	nodes=(transformer router model-a combiner model-b model-c)
	;;
esac

# Free ports: HTTP, gRPC and metrics for every node, then the executor's HTTP and gRPC. All sockets are
# held open together, so the ports differ from each other.
mapfile -t ports < <(python3 - $((${#nodes[@]} * 3 + 2)) <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
EOF
)
declare -A http grpc metrics
i=0
for n in "${nodes[@]}"; do
	http[$n]=${ports[i]}
	grpc[$n]=${ports[i + 1]}
	metrics[$n]=${ports[i + 2]}
	i=$((i + 3))
done
executor_http=${ports[i]}
executor_grpc=${ports[i + 1]}

echo "== starting the graph's nodes (seldon-core-microservice, logs in $logs)"
for n in "${nodes[@]}"; do
	printf '%-19s %-17s --service-type %-11s HTTP %s gRPC %s\n' "$n" "${class[$n]}" "${type[$n]}" "${http[$n]}" "${grpc[$n]}"
	(
		cd "$components"
		exec env PREDICTIVE_UNIT_ID="$n" PREDICTIVE_UNIT_IMAGE="${image[$n]}" PREDICTOR_ID=default PYTHONDONTWRITEBYTECODE=1 \
			SELDON_DEPLOYMENT_ID="graph-$shape" \
			setsid "$venv/bin/seldon-core-microservice" "${class[$n]}" --service-type "${type[$n]}" \
			--http-port "${http[$n]}" --grpc-port "${grpc[$n]}" --metrics-port "${metrics[$n]}" \
			--parameters "${params[$n]}"
	) >"$logs/$n.log" 2>&1 &
	node_pids+=($!)
done
for j in "${!nodes[@]}"; do
	n=${nodes[j]}
	for ((k = 0; k < 300; k++)); do
		if curl -fsS "127.0.0.1:${http[$n]}/health/ping" >/dev/null 2>&1; then break; fi
		if ! kill -0 "${node_pids[j]}" 2>/dev/null; then break; fi
		sleep 0.2
	done
	if ! curl -fsS "127.0.0.1:${http[$n]}/health/ping" >/dev/null 2>&1; then
		echo "run.sh: node $n did not answer /health/ping; its log:" >&2
		tail -n 30 "$logs/$n.log" >&2
		exit 1
	fi
done
echo "all ${#nodes[@]} nodes answer /health/ping"

# ---------------------------------------------------------------------------------------------------
# The PredictorSpec, as the operator would pass it in ENGINE_PREDICTOR: every node with its endpoint.
ep() { printf '"endpoint":{"service_host":"127.0.0.1","httpPort":%s,"grpcPort":%s}' "${http[$1]}" "${grpc[$1]}"; }
unit() { # unit NAME TYPE [CHILDREN_JSON]
	printf '{"name":"%s","type":"%s",%s,"parameters":%s' "$1" "$2" "$(ep "$1")" "${params[$1]}"
	if [[ -n "${3:-}" ]]; then printf ',"children":[%s]' "$3"; fi
	printf '}'
}
case "$shape" in
transformer) graph=$(unit transformer TRANSFORMER "$(unit model MODEL)") ;;
ab-router) graph=$(unit router ROUTER "$(unit model-a MODEL),$(unit model-b MODEL)") ;;
random-abtest)
	graph=$(printf '{"name":"random-ab-test","implementation":"RANDOM_ABTEST","parameters":[{"name":"ratioA","type":"FLOAT","value":"0.7"}],"children":[%s,%s]}' \
		"$(unit model-a MODEL)" "$(unit model-b MODEL)")
	;;
ensemble) graph=$(unit combiner COMBINER "$(unit model-a MODEL),$(unit model-b MODEL),$(unit model-c MODEL)") ;;
output-transformer) graph=$(unit output-transformer OUTPUT_TRANSFORMER "$(unit model MODEL)") ;;
nested)
	graph=$(unit transformer TRANSFORMER "$(unit router ROUTER "$(unit model-a MODEL),$(unit combiner COMBINER \
		"$(unit model-b MODEL),$(unit model-c MODEL)")")")
	;;
esac
spec="$work/predictor-$shape.json"
printf '{"name":"default","graph":%s}\n' "$graph" | python3 -m json.tool >"$spec"
echo "== the graph (the PredictorSpec is $spec)"
python3 - "$spec" <<'PY'
import json, sys
def show(u, lead="", branch=""):
    kind = u.get("type") or u.get("implementation", "")
    ep = u.get("endpoint")
    where = "HTTP %s:%s  gRPC %s:%s" % (ep["service_host"], ep["httpPort"], ep["service_host"], ep["grpcPort"]) if ep else "(no container: the executor routes)"
    params = " ".join("%s=%s" % (p["name"], p["value"]) for p in u.get("parameters", []))
    print("%s%s%s %s  %s  %s" % (lead, branch, u["name"], kind, where, params))
    kids = u.get("children", [])
    for i, c in enumerate(kids):
        last = i == len(kids) - 1
        show(c, lead + ("" if not branch else ("   " if branch == "└─ " else "│  ")), "└─ " if last else "├─ ")
show(json.load(open(sys.argv[1]))["graph"])
PY

echo "== starting the executor (--transport=$transport, HTTP $executor_http)"
ENGINE_PREDICTOR=$(base64 <"$spec" | tr -d '\n') \
	KAFKA_BROKER="$bootstrap" KAFKA_INPUT_TOPIC="$in" KAFKA_OUTPUT_TOPIC="$out" KAFKA_ERROR_TOPIC="$errs" \
	SELDON_ENABLE_ROUTING_INJECTION="${SELDON_ENABLE_ROUTING_INJECTION:-true}" \
	MODEL_MAX_ATTEMPTS="${MODEL_MAX_ATTEMPTS:-3}" \
	bin/executor --sdep="graph-$shape" --namespace=demo --predictor=default --protocol=seldon \
	--transport="$transport" --http_port="$executor_http" --grpc_port="$executor_grpc" \
	2>"$logs/executor.log" &
executor_pid=$!
for ((k = 0; k < 150; k++)); do
	if curl -fsS "127.0.0.1:$executor_http/ready" >/dev/null 2>&1; then break; fi
	if ! kill -0 "$executor_pid" 2>/dev/null; then break; fi
	sleep 0.2
done
if ! ready=$(curl -fsS "127.0.0.1:$executor_http/ready" 2>/dev/null); then
	echo "run.sh: the executor is not ready; its log:" >&2
	tail -n 30 "$logs/executor.log" >&2
	exit 1
fi
echo "GET /ready (one node a line):"
python3 -c '
import json, sys
body = json.load(sys.stdin)
nodes = body.pop("nodes", [])
print("{")
for k, v in body.items():
    print("  %s: %s," % (json.dumps(k), json.dumps(v)))
print("  \"nodes\": [")
for i, n in enumerate(nodes):
    print("    %s%s" % (json.dumps(n), "," if i < len(nodes) - 1 else ""))
print("  ]")
print("}")
' <<<"$ready"

# ---------------------------------------------------------------------------------------------------
# The requests: one per line, a key and a JSON SeldonMessage.
case "$shape" in
transformer | output-transformer)
	requests='small {"data":{"names":["f0","f1"],"ndarray":[[1,2]]}}
half {"data":{"names":["f0","f1"],"ndarray":[[0.5,0.5]]}}
two-rows {"data":{"names":["f0","f1"],"ndarray":[[1,1],[2,3]]}}
tensor {"data":{"tensor":{"shape":[1,3],"values":[1,2,3]}}}
big {"data":{"names":["f0","f1"],"ndarray":[[10,20]]}}'
	;;
ab-router | random-abtest)
	requests='low-1 {"data":{"names":["f0","f1"],"ndarray":[[1,2]]}}
high-1 {"data":{"names":["f0","f1"],"ndarray":[[12,2]]}}
low-2 {"data":{"names":["f0","f1"],"ndarray":[[9.5,0]]}}
high-2 {"data":{"names":["f0","f1"],"ndarray":[[10,0]]}}
tensor {"data":{"tensor":{"shape":[1,2],"values":[3,4]}}}'
	;;
ensemble)
	requests='small {"data":{"names":["f0","f1"],"ndarray":[[1,2]]}}
half {"data":{"names":["f0","f1"],"ndarray":[[0.5,0.5]]}}
two-rows {"data":{"names":["f0","f1"],"ndarray":[[1,1],[2,3]]}}
tensor {"data":{"tensor":{"shape":[1,3],"values":[1,2,3]}}}
big {"data":{"names":["f0","f1"],"ndarray":[[10,20]]}}'
	;;
nested)
	requests='low-1 {"data":{"names":["f0","f1"],"ndarray":[[1,2]]}}
high-1 {"data":{"names":["f0","f1"],"ndarray":[[6,2]]}}
low-2 {"data":{"names":["f0","f1"],"ndarray":[[4.5,0]]}}
high-2 {"data":{"names":["f0","f1"],"ndarray":[[5,0]]}}
tensor {"data":{"tensor":{"shape":[1,2],"values":[3,4]}}}'
	;;
esac
if $errors; then
	requests+='
negative {"data":{"names":["f0","f1"],"ndarray":[[-1,2]]}}'
	case "$shape" in
	ensemble) requests+='
poison {"data":{"names":["f0","f1"],"ndarray":[[1000,0]]}}' ;;
	nested) requests+='
poison {"data":{"names":["f0","f1"],"ndarray":[[500,0]]}}' ;;
	esac
fi

echo
echo "== requests in ($in), answers out ($out; error records on $errs)"
grpc_flag=()
if [[ "$transport" == grpc ]]; then grpc_flag=(-grpc); fi
bin/kafkaclient -bootstrap "$bootstrap" -in "$in" -out "$out" -errors "$errs" -puid "$shape" "${grpc_flag[@]}" <<<"$requests"

echo
echo "== the executor's metrics"
curl -fsS "127.0.0.1:$executor_http/metrics" | grep -E '^seldon_kafka_(records_(consumed|produced)_total|record_errors_total|model_call_retries_total|node_errors_total|node_call_duration_seconds_count)' || true
echo "(logs: $logs)"
