# The two commands a new user runs (see README): `make demo` and `make test`.
.PHONY: test demo build broker broker-stop bench

build:
	go build -o bin/executor ./cmd/executor
	go build -o bin/testmodel ./cmd/testmodel
	go build -o bin/protofile ./cmd/protofile
	go build -o bin/seldon-keda ./cmd/seldon-keda

test:
	bash test/run-tests.sh

broker:
	bash test/kafka/broker.sh start

broker-stop:
	bash test/kafka/broker.sh stop

# Throughput, latency, memory and CPU figures against the test broker (started if not running).
bench:
	go build -o bin/executor ./cmd/executor
	bash test/kafka/broker.sh status >/dev/null 2>&1 || bash test/kafka/broker.sh start
	go run ./cmd/sidecar-bench

demo:
	bash examples/demo/run.sh
