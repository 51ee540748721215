# The two commands a new user runs (see README): `make demo` and `make test`.
.PHONY: test demo build broker broker-stop bench faults soak

# The executor reports its version (--version, the start-up log): the git description of the tree.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

build:
	go build -ldflags "-X main.version=$(VERSION)" -o bin/executor ./cmd/executor
	go build -o bin/testmodel ./cmd/testmodel
	go build -o bin/protofile ./cmd/protofile
	go build -o bin/seldon-kafka ./cmd/seldon-kafka
	go build -o bin/seldon-keda ./cmd/seldon-keda

test:
	bash test/run-tests.sh

broker:
	bash test/kafka/broker.sh start

broker-stop:
	bash test/kafka/broker.sh stop

# Throughput, latency, memory and CPU figures against the test broker (started if not running), with the
# passthrough and model-direct baselines: README "Figures". BENCH_FLAGS=-short for the quick form.
BENCH_FLAGS ?=
bench:
	go build -ldflags "-X main.version=$(VERSION)" -o bin/executor ./cmd/executor
	go build -o bin/testmodel ./cmd/testmodel
	bash test/kafka/broker.sh status >/dev/null 2>&1 || bash test/kafka/broker.sh start
	go run ./cmd/sidecar-bench $(BENCH_FLAGS)

demo:
	bash examples/demo/run.sh

# The fault battery, long form (README "Faults and soak"): the executor binary as processes, the test broker
# (started if not running) stopped and started again on its data, the test model as a process. The test
# command runs the short form.
faults:
	bash test/kafka/broker.sh status >/dev/null 2>&1 || bash test/kafka/broker.sh start
	go test -count=1 -v -timeout 3h -run '^TestFaults$$' ./test/faults -args -faults=long

# The soak: a stream at half the maximum throughput through periodic faults, for SOAK (30m by default).
SOAK ?= 30m
soak:
	bash test/kafka/broker.sh status >/dev/null 2>&1 || bash test/kafka/broker.sh start
	go test -count=1 -v -timeout 0 -run '^TestSoak$$' ./test/faults -args -soak=$(SOAK)
