package executor

// LoadConfig reads the process environment, so these tests use t.Setenv and cannot run in parallel.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"google.golang.org/grpc/codes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/protocols"
)

// unset marks a variable to remove from the environment.
const unset = "<unset>"

// setEnv sets (or, for unset, removes) a variable for the rest of the test.
func setEnv(t *testing.T, name, value string) {
	t.Helper()
	if value != unset {
		t.Setenv(name, value) // restores the old value at the end of the test
		return
	}
	t.Setenv(name, "")
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}

// minimalEnv clears every variable the sidecar could read and sets the least a valid configuration
// needs. Variables added to the sidecar later keep their defaults, so the tables below stay valid.
func minimalEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "KAFKA_") || strings.HasPrefix(name, "MODEL_") || strings.HasPrefix(name, "ENGINE_") || strings.HasPrefix(name, "SCHEMA_REGISTRY_") {
			setEnv(t, name, unset)
		}
	}
	setEnv(t, "KAFKA_BROKER", "kafka:9092")
	setEnv(t, "KAFKA_INPUT_TOPIC", "requests")
	setEnv(t, "KAFKA_OUTPUT_TOPIC", "answers")
	setEnv(t, "ENGINE_PREDICTOR", b64(t, onePredictor("default", nil)))
}

// minimalArgs are the operator's identifying flags.
func minimalArgs() []string {
	return []string{"--sdep=iris", "--namespace=models", "--predictor=default"}
}

// onePredictor is a PredictorSpec as the operator encodes it: a single MODEL node.
func onePredictor(name string, endpoint map[string]any) map[string]any {
	graph := map[string]any{"name": "classifier", "type": "MODEL", "implementation": "UNKNOWN_IMPLEMENTATION", "children": []any{}}
	if endpoint != nil {
		graph["endpoint"] = endpoint
	}
	p := map[string]any{
		"name":  name,
		"graph": graph,
		"componentSpecs": []any{map[string]any{
			"metadata": map[string]any{"creationTimestamp": nil},
			"spec":     map[string]any{"containers": []any{map[string]any{"name": "classifier", "image": "seldonio/mock_classifier:1.15.0", "resources": map[string]any{}}}},
		}},
		"replicas":    0,
		"labels":      map[string]any{"version": name},
		"svcOrchSpec": map[string]any{"env": []any{map[string]any{"name": "KAFKA_BROKER", "value": "kafka:9092"}}},
	}
	if name == "" {
		delete(p, "name")
	}
	return p
}

func b64(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// withGraph returns the predictor with its graph changed by f.
func withGraph(name string, f func(g map[string]any)) map[string]any {
	p := onePredictor(name, nil)
	f(p["graph"].(map[string]any))
	return p
}

// load runs LoadConfig on the minimal environment changed by env and the minimal arguments followed by
// args (a later flag wins).
func load(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	minimalEnv(t)
	for k, v := range env {
		setEnv(t, k, v)
	}
	return LoadConfig(append(minimalArgs(), args...))
}

func TestLoadConfigMinimal(t *testing.T) {
	c, err := load(t, nil)
	if err != nil {
		t.Fatalf("LoadConfig with the minimal environment: %v", err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"Brokers", c.Brokers, "kafka:9092"},
		{"InputTopic", c.InputTopic, "requests"},
		{"OutputTopic", c.OutputTopic, "answers"},
		{"ErrorTopic (defaults to the output topic)", c.ErrorTopic, "answers"},
		{"GroupID (<predictor>.<sdep>.<namespace>)", c.GroupID, "default.iris.models"},
		{"Deployment", c.Deployment, "iris"},
		{"Namespace", c.Namespace, "models"},
		{"Predictor.Name", c.Predictor.Name, "default"},
		{"Protocol", c.Protocol, protocols.Seldon},
		{"Transport", c.Transport, "rest"},
		{"the graph's one node", rootEndpoint(c), endpoint{Name: "classifier", Host: "localhost", HTTPPort: 9000, GRPCPort: 9500}},
		{"Workers", c.Workers, 32},
		{"CommitInterval", c.CommitInterval, time.Second},
		{"AutoOffsetReset", c.AutoOffsetReset, "earliest"},
		{"ModelTimeout", c.ModelTimeout, 30 * time.Second},
		{"MaxAttempts", c.MaxAttempts, 10},
		{"BackoffMin", c.BackoffMin, 100 * time.Millisecond},
		{"BackoffMax", c.BackoffMax, 5 * time.Second},
		{"BatchSize (1: batching off)", c.BatchSize, 1},
		{"BatchWait", c.BatchWait, 2 * time.Millisecond},
		{"HTTPPort", c.HTTPPort, 8000},
		{"MetricsPath", c.MetricsPath, "/metrics"},
		{"ShutdownGrace (inside the operator's 20 s pod grace period)", c.ShutdownGrace, 15 * time.Second},
		{"LogLevel", c.LogLevel, slog.LevelInfo},
		{"PredictorSource", c.PredictorSource, "ENGINE_PREDICTOR"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.what, ch.got, ch.want)
		}
	}
}

// TestLoadConfigNamesTheBadSetting: every refused configuration is a *ConfigError naming the variable
// or flag to fix.
func TestLoadConfigNamesTheBadSetting(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantName string
		wantMsg  string // in the message, when set
	}{
		{name: "KAFKA_BROKER missing", env: map[string]string{"KAFKA_BROKER": unset}, wantName: "KAFKA_BROKER"},
		{name: "KAFKA_BROKER empty", env: map[string]string{"KAFKA_BROKER": ""}, wantName: "KAFKA_BROKER"},
		{name: "KAFKA_BROKER blank", env: map[string]string{"KAFKA_BROKER": "  "}, wantName: "KAFKA_BROKER"},
		{name: "KAFKA_INPUT_TOPIC missing", env: map[string]string{"KAFKA_INPUT_TOPIC": unset}, wantName: "KAFKA_INPUT_TOPIC"},
		{name: "KAFKA_INPUT_TOPIC empty", env: map[string]string{"KAFKA_INPUT_TOPIC": ""}, wantName: "KAFKA_INPUT_TOPIC"},
		{name: "KAFKA_OUTPUT_TOPIC missing", env: map[string]string{"KAFKA_OUTPUT_TOPIC": unset}, wantName: "KAFKA_OUTPUT_TOPIC"},
		{name: "KAFKA_OUTPUT_TOPIC empty", env: map[string]string{"KAFKA_OUTPUT_TOPIC": ""}, wantName: "KAFKA_OUTPUT_TOPIC"},

		{name: "KAFKA_WORKERS zero", env: map[string]string{"KAFKA_WORKERS": "0"}, wantName: "KAFKA_WORKERS"},
		{name: "KAFKA_WORKERS negative", env: map[string]string{"KAFKA_WORKERS": "-4"}, wantName: "KAFKA_WORKERS"},
		{name: "KAFKA_WORKERS too many", env: map[string]string{"KAFKA_WORKERS": "10001"}, wantName: "KAFKA_WORKERS"},
		{name: "KAFKA_WORKERS not a number", env: map[string]string{"KAFKA_WORKERS": "abc"}, wantName: "KAFKA_WORKERS", wantMsg: "not a whole number"},
		{name: "KAFKA_WORKERS empty", env: map[string]string{"KAFKA_WORKERS": ""}, wantName: "KAFKA_WORKERS"},
		{name: "KAFKA_MAX_INFLIGHT_BYTES too small", env: map[string]string{"KAFKA_MAX_INFLIGHT_BYTES": "100"}, wantName: "KAFKA_MAX_INFLIGHT_BYTES", wantMsg: "at least"},
		{name: "KAFKA_MAX_INFLIGHT_BYTES not a number", env: map[string]string{"KAFKA_MAX_INFLIGHT_BYTES": "1GB"}, wantName: "KAFKA_MAX_INFLIGHT_BYTES"},
		{name: "KAFKA_AUTO_COMMIT not a bool", env: map[string]string{"KAFKA_AUTO_COMMIT": "maybe"}, wantName: "KAFKA_AUTO_COMMIT", wantMsg: "not true or false"},
		{name: "KAFKA_AUTO_OFFSET_RESET unknown", env: map[string]string{"KAFKA_AUTO_OFFSET_RESET": "none"}, wantName: "KAFKA_AUTO_OFFSET_RESET"},
		{name: "MODEL_MAX_ATTEMPTS zero", env: map[string]string{"MODEL_MAX_ATTEMPTS": "0"}, wantName: "MODEL_MAX_ATTEMPTS"},

		{name: "KAFKA_COMMIT_INTERVAL not a duration", env: map[string]string{"KAFKA_COMMIT_INTERVAL": "5"}, wantName: "KAFKA_COMMIT_INTERVAL"},
		{name: "KAFKA_COMMIT_INTERVAL zero", env: map[string]string{"KAFKA_COMMIT_INTERVAL": "0s"}, wantName: "KAFKA_COMMIT_INTERVAL"},
		{name: "MODEL_TIMEOUT not a duration", env: map[string]string{"MODEL_TIMEOUT": "abc"}, wantName: "MODEL_TIMEOUT", wantMsg: "not a duration"},
		{name: "MODEL_TIMEOUT zero", env: map[string]string{"MODEL_TIMEOUT": "0s"}, wantName: "MODEL_TIMEOUT"},
		{name: "MODEL_BACKOFF_MIN not a duration", env: map[string]string{"MODEL_BACKOFF_MIN": "fast"}, wantName: "MODEL_BACKOFF_MIN"},
		{name: "MODEL_BACKOFF_MIN zero", env: map[string]string{"MODEL_BACKOFF_MIN": "0s"}, wantName: "MODEL_BACKOFF_MIN"},
		{name: "MODEL_BACKOFF_MAX not a duration", env: map[string]string{"MODEL_BACKOFF_MAX": "1 minute"}, wantName: "MODEL_BACKOFF_MAX"},
		{name: "MODEL_BACKOFF_MAX below MODEL_BACKOFF_MIN", env: map[string]string{"MODEL_BACKOFF_MIN": "2s", "MODEL_BACKOFF_MAX": "1s"}, wantName: "MODEL_BACKOFF_MAX"},
		{name: "MODEL_BATCH_SIZE zero", env: map[string]string{"MODEL_BATCH_SIZE": "0"}, wantName: "MODEL_BATCH_SIZE"},
		{name: "MODEL_BATCH_SIZE not a number", env: map[string]string{"MODEL_BATCH_SIZE": "lots"}, wantName: "MODEL_BATCH_SIZE", wantMsg: "not a whole number"},
		{name: "MODEL_BATCH_SIZE above KAFKA_WORKERS", env: map[string]string{"MODEL_BATCH_SIZE": "64", "KAFKA_WORKERS": "32"}, wantName: "MODEL_BATCH_SIZE", wantMsg: "could never fill"},
		{name: "MODEL_BATCH_WAIT zero", env: map[string]string{"MODEL_BATCH_WAIT": "0s"}, wantName: "MODEL_BATCH_WAIT"},
		{name: "MODEL_BATCH_WAIT not a duration", env: map[string]string{"MODEL_BATCH_WAIT": "2"}, wantName: "MODEL_BATCH_WAIT", wantMsg: "not a duration"},
		{name: "MODEL_BATCH_WAIT as long as MODEL_TIMEOUT", env: map[string]string{"MODEL_BATCH_WAIT": "5s", "MODEL_TIMEOUT": "5s"}, wantName: "MODEL_BATCH_WAIT"},
		{name: "MODEL_BATCH_SIZE with a graph of two nodes", env: map[string]string{"MODEL_BATCH_SIZE": "8", "ENGINE_PREDICTOR": b64(t, withGraph("default", func(g map[string]any) {
			g["type"] = "TRANSFORMER"
			g["children"] = []any{map[string]any{"name": "second", "type": "MODEL", "endpoint": map[string]any{"service_host": "localhost", "httpPort": 9001}}}
		}))}, wantName: "MODEL_BATCH_SIZE", wantMsg: "graph of one model"},
		{name: "--graceful_timeout zero", args: []string{"--graceful_timeout=0s"}, wantName: "--graceful_timeout"},

		{name: "input topic is the output topic", env: map[string]string{"KAFKA_OUTPUT_TOPIC": "requests"}, wantName: "KAFKA_OUTPUT_TOPIC"},
		{name: "input topic is the error topic", env: map[string]string{"KAFKA_ERROR_TOPIC": "requests"}, wantName: "KAFKA_ERROR_TOPIC"},
		{name: "space in a topic", env: map[string]string{"KAFKA_INPUT_TOPIC": "my requests"}, wantName: "KAFKA_INPUT_TOPIC"},
		{name: "slash in a topic", env: map[string]string{"KAFKA_OUTPUT_TOPIC": "a/b"}, wantName: "KAFKA_OUTPUT_TOPIC"},
		{name: "non-ASCII letter in a topic", env: map[string]string{"KAFKA_OUTPUT_TOPIC": "réponses"}, wantName: "KAFKA_OUTPUT_TOPIC"},
		{name: "dot topic", env: map[string]string{"KAFKA_INPUT_TOPIC": "."}, wantName: "KAFKA_INPUT_TOPIC"},
		{name: "dot-dot topic", env: map[string]string{"KAFKA_INPUT_TOPIC": ".."}, wantName: "KAFKA_INPUT_TOPIC"},
		{name: "topic of 250 characters", env: map[string]string{"KAFKA_INPUT_TOPIC": strings.Repeat("t", 250)}, wantName: "KAFKA_INPUT_TOPIC"},
		{name: "invalid error topic", env: map[string]string{"KAFKA_ERROR_TOPIC": "errors!"}, wantName: "KAFKA_ERROR_TOPIC"},

		{name: "unknown topic naming", env: map[string]string{"KAFKA_TOPIC_NAMING": "core3"}, wantName: "KAFKA_TOPIC_NAMING"},
		{name: "a topic prefix with the legacy naming", env: map[string]string{"KAFKA_TOPIC_PREFIX": "tenant"}, wantName: "KAFKA_TOPIC_PREFIX", wantMsg: "core2"},
		{name: "a topic prefix that is no topic name", env: map[string]string{"KAFKA_TOPIC_NAMING": "core2", "KAFKA_TOPIC_PREFIX": "a/b"}, wantName: "KAFKA_TOPIC_PREFIX"},
		{name: "core2 naming without --namespace", env: map[string]string{"KAFKA_TOPIC_NAMING": "core2", "KAFKA_INPUT_TOPIC": unset, "KAFKA_GROUP_ID": "g"}, args: []string{"--namespace="}, wantName: "--namespace"},
		{name: "a group prefix with a space", env: map[string]string{"KAFKA_CONSUMER_GROUP_ID_PREFIX": "a b"}, wantName: "KAFKA_CONSUMER_GROUP_ID_PREFIX"},

		{name: "unknown protocol", args: []string{"--protocol=graphql"}, wantName: "--protocol"},
		{name: "unknown transport", args: []string{"--transport=carrier-pigeon"}, wantName: "--transport"},
		{name: "server type not kafka", args: []string{"--server_type=rpc"}, wantName: "--server_type"},
		{name: "unknown log level", args: []string{"--log_level=LOUD"}, wantName: "--log_level"},
		{name: "metrics path not a path", args: []string{"--prometheus_path=metrics"}, wantName: "--prometheus_path"},
		{name: "metrics path on /ready", args: []string{"--prometheus_path=/ready"}, wantName: "--prometheus_path"},
		{name: "metrics path among the Go profiles", env: map[string]string{"SIDECAR_PPROF": "on"}, args: []string{"--prometheus_path=/debug/pprof/metrics"}, wantName: "--prometheus_path"},
		{name: "SIDECAR_PPROF neither on nor off", env: map[string]string{"SIDECAR_PPROF": "sometimes"}, wantName: "SIDECAR_PPROF"},
		{name: "http port out of range", args: []string{"--http_port=70000"}, wantName: "--http_port"},
		{name: "a flag that does not parse", args: []string{"--http_port=eighty"}, wantName: "arguments"},

		{name: "ENGINE_PREDICTOR and --file both missing", env: map[string]string{"ENGINE_PREDICTOR": unset}, wantName: "ENGINE_PREDICTOR"},
		{name: "ENGINE_PREDICTOR not base64", env: map[string]string{"ENGINE_PREDICTOR": "{not base64}"}, wantName: "ENGINE_PREDICTOR", wantMsg: "base64"},
		{name: "ENGINE_PREDICTOR not JSON", env: map[string]string{"ENGINE_PREDICTOR": base64.StdEncoding.EncodeToString([]byte("name: default"))}, wantName: "ENGINE_PREDICTOR", wantMsg: "JSON"},
		{name: "predictor named differently from --predictor", args: []string{"--predictor=canary"}, wantName: "--predictor", wantMsg: "default"},
		{name: "no predictor name anywhere", env: map[string]string{"ENGINE_PREDICTOR": b64(t, onePredictor("", nil))}, args: []string{"--predictor="}, wantName: "--predictor"},
		{name: "graph node without an endpoint", env: map[string]string{"ENGINE_PREDICTOR": b64(t, withGraph("default", func(g map[string]any) {
			g["children"] = []any{map[string]any{"name": "second", "type": "MODEL"}}
		}))}, wantName: "ENGINE_PREDICTOR", wantMsg: `graph node "second": no endpoint`},
		{name: "graph root is a router without children", env: map[string]string{"ENGINE_PREDICTOR": b64(t, withGraph("default", func(g map[string]any) {
			g["type"] = "ROUTER"
		}))}, wantName: "ENGINE_PREDICTOR", wantMsg: `graph node "classifier": a router needs children`},
		{name: "graph without a node", env: map[string]string{"ENGINE_PREDICTOR": b64(t, map[string]any{"name": "default"})}, wantName: "ENGINE_PREDICTOR"},
		{name: "model port out of range", env: map[string]string{"ENGINE_PREDICTOR": b64(t, onePredictor("default", map[string]any{"httpPort": 70000}))}, wantName: "ENGINE_PREDICTOR"},

		{name: "no --sdep for the default group", args: []string{"--sdep="}, wantName: "--sdep"},
		{name: "no --namespace for the default group", args: []string{"--namespace="}, wantName: "--namespace"},

		{name: "KAFKA_CLOUDEVENTS not a switch", env: map[string]string{"KAFKA_CLOUDEVENTS": "binary"}, wantName: "KAFKA_CLOUDEVENTS"},
		{name: "KAFKA_CLOUDEVENTS without --sdep to name the events", env: map[string]string{"KAFKA_CLOUDEVENTS": "true", "KAFKA_GROUP_ID": "g"},
			args: []string{"--sdep="}, wantName: "--sdep", wantMsg: "seldon.<sdep>.<namespace>"},
		{name: "an OTLP endpoint that is no URL", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, wantName: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "a node's logger with nowhere to send", env: map[string]string{"ENGINE_PREDICTOR": b64(t, withGraph("default", func(g map[string]any) {
			g["logger"] = map[string]any{"mode": "all"}
		}))}, wantName: "ENGINE_PREDICTOR", wantMsg: "REQUEST_LOGGER_DEFAULT_ENDPOINT"},
		{name: "a node's logger url that is no URL", env: map[string]string{"ENGINE_PREDICTOR": b64(t, withGraph("default", func(g map[string]any) {
			g["logger"] = map[string]any{"url": "logger:8080"}
		}))}, wantName: "ENGINE_PREDICTOR", wantMsg: `graph node "classifier": logger url`},
		{name: "no payload logger worker", env: map[string]string{"REQUEST_LOGGER_DEFAULT_ENDPOINT": "http://l", "ENGINE_PREDICTOR": b64(t, withGraph("default", func(g map[string]any) {
			g["logger"] = map[string]any{"mode": "request"}
		}))}, args: []string{"--logger_workers=0"}, wantName: "--logger_workers"},
		{name: "a legacy sampler parameter that is no number", env: map[string]string{"JAEGER_SAMPLER_TYPE": "probabilistic", "JAEGER_SAMPLER_PARAM": "half"},
			wantName: "JAEGER_SAMPLER_PARAM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.env, tc.args...)
			if err == nil {
				t.Fatalf("LoadConfig succeeded, want an error naming %s", tc.wantName)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("LoadConfig error %v (%T) is not a *ConfigError", err, err)
			}
			if ce.Name != tc.wantName {
				t.Errorf("error names %q, want %q (error: %v)", ce.Name, tc.wantName, err)
			}
			if tc.wantMsg != "" && !strings.Contains(ce.Msg, tc.wantMsg) {
				t.Errorf("message %q does not say %q", ce.Msg, tc.wantMsg)
			}
		})
	}
}

func TestLoadConfigAcceptsValidSettings(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(t *testing.T, c Config)
	}{
		{"kfserving is the v2 protocol", nil, []string{"--protocol=kfserving"}, func(t *testing.T, c Config) {
			if c.Protocol != protocols.V2 {
				t.Errorf("Protocol = %q, want v2", c.Protocol)
			}
		}},
		{"tensorflow protocol", nil, []string{"--protocol", "tensorflow"}, func(t *testing.T, c Config) {
			if c.Protocol != protocols.Tensorflow {
				t.Errorf("Protocol = %q, want tensorflow", c.Protocol)
			}
		}},
		{"KAFKA_GROUP_ID overrides the default group", map[string]string{"KAFKA_GROUP_ID": "my-group"}, nil, func(t *testing.T, c Config) {
			if c.GroupID != "my-group" {
				t.Errorf("GroupID = %q, want my-group", c.GroupID)
			}
		}},
		{"KAFKA_GROUP_ID makes --sdep and --namespace optional", map[string]string{"KAFKA_GROUP_ID": "g"}, []string{"--sdep=", "--namespace="}, func(t *testing.T, c Config) {
			if c.GroupID != "g" {
				t.Errorf("GroupID = %q, want g", c.GroupID)
			}
		}},
		{"a blank KAFKA_GROUP_ID never makes an empty group", map[string]string{"KAFKA_GROUP_ID": "  "}, nil, func(t *testing.T, c Config) {
			if strings.TrimSpace(c.GroupID) == "" {
				t.Errorf("GroupID = %q: a blank KAFKA_GROUP_ID must fall back to the default group or be refused", c.GroupID)
			}
		}},
		{"the predictor's name comes from --predictor when the spec has none", map[string]string{"ENGINE_PREDICTOR": b64(t, onePredictor("", nil))}, nil, func(t *testing.T, c Config) {
			if c.Predictor.Name != "default" || c.GroupID != "default.iris.models" {
				t.Errorf("Predictor.Name = %q, GroupID = %q, want default, default.iris.models", c.Predictor.Name, c.GroupID)
			}
		}},
		{"core2 naming with prefixes: Core 2's topics for the SeldonDeployment, the prefixed group", map[string]string{
			"KAFKA_TOPIC_NAMING": "core2", "KAFKA_TOPIC_PREFIX": "tenant-a", "KAFKA_CONSUMER_GROUP_ID_PREFIX": "tenant-a",
			"KAFKA_INPUT_TOPIC": unset, "KAFKA_OUTPUT_TOPIC": unset,
		}, nil, func(t *testing.T, c Config) {
			got := []string{c.InputTopic, c.OutputTopic, c.ErrorTopic, c.GroupID, c.TopicNaming}
			want := []string{"tenant-a.models.model.iris.inputs", "tenant-a.models.model.iris.outputs", "tenant-a.models.errors.errors", "tenant-a-default.iris.models", "core2"}
			if !slices.Equal(got, want) {
				t.Errorf("input, output, errors, group, naming = %q, want %q", got, want)
			}
			for _, o := range c.Overrides {
				if o.From == "KAFKA_CONSUMER_GROUP_ID_PREFIX" {
					t.Errorf("override %+v: KAFKA_CONSUMER_GROUP_ID_PREFIX is a setting, not the librdkafka property group.id.prefix", o)
				}
			}
		}},
		{"core2 naming keeps the topics that are set", map[string]string{"KAFKA_TOPIC_NAMING": "core2"}, nil, func(t *testing.T, c Config) {
			if c.InputTopic != "requests" || c.OutputTopic != "answers" || c.ErrorTopic != "seldon.models.errors.errors" {
				t.Errorf("input %q output %q errors %q", c.InputTopic, c.OutputTopic, c.ErrorTopic)
			}
		}},
		{"error topic of its own", map[string]string{"KAFKA_ERROR_TOPIC": "failures"}, nil, func(t *testing.T, c Config) {
			if c.ErrorTopic != "failures" {
				t.Errorf("ErrorTopic = %q, want failures", c.ErrorTopic)
			}
		}},
		{"topic of every allowed character", map[string]string{"KAFKA_INPUT_TOPIC": "Orders.v1_in-2", "KAFKA_OUTPUT_TOPIC": strings.Repeat("o", 249)}, nil, func(t *testing.T, c Config) {
			if c.InputTopic != "Orders.v1_in-2" {
				t.Errorf("InputTopic = %q", c.InputTopic)
			}
		}},
		{"the legacy KAFKA_AUTO_COMMIT=false is accepted", map[string]string{"KAFKA_AUTO_COMMIT": "false"}, nil, func(t *testing.T, c Config) {
			if c.CommitInterval <= 0 {
				t.Errorf("CommitInterval = %v, want positive: delivered offsets are committed on the interval", c.CommitInterval)
			}
		}},
		{"legacy flags and KAFKA_FULL_GRAPH are reported as ignored", map[string]string{"KAFKA_FULL_GRAPH": "true"}, []string{"--full_health_checks=false", "--shutdown_delay", "5s"}, func(t *testing.T, c Config) {
			want := []string{"--full_health_checks=false", "--shutdown_delay 5s", "KAFKA_FULL_GRAPH (the graph is walked by calling each node's container directly; see the README)"}
			if !slices.Equal(c.IgnoredFlags, want) {
				t.Errorf("IgnoredFlags = %q, want %q", c.IgnoredFlags, want)
			}
		}},
		{"batching on for a graph of one model", map[string]string{"MODEL_BATCH_SIZE": "32", "MODEL_BATCH_WAIT": "5ms"}, nil, func(t *testing.T, c Config) {
			if c.BatchSize != 32 || c.BatchWait != 5*time.Millisecond {
				t.Errorf("BatchSize %d, BatchWait %v; want 32, 5ms", c.BatchSize, c.BatchWait)
			}
		}},
		{"settings are trimmed and case-folded", map[string]string{"KAFKA_BROKER": " kafka:9092 ", "KAFKA_AUTO_OFFSET_RESET": "Latest"}, []string{"--transport=REST", "--log_level=debug"}, func(t *testing.T, c Config) {
			if c.Brokers != "kafka:9092" || c.AutoOffsetReset != "latest" || c.Transport != "rest" || c.LogLevel != slog.LevelDebug {
				t.Errorf("Brokers %q, AutoOffsetReset %q, Transport %q, LogLevel %v", c.Brokers, c.AutoOffsetReset, c.Transport, c.LogLevel)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.env, tc.args...)
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			tc.check(t, c)
		})
	}
}

func TestLoadConfigModelEndpointFromTheGraph(t *testing.T) {
	tests := []struct {
		name     string
		endpoint map[string]any
		want     endpoint
		wantBase string
	}{
		{"no endpoint: the operator's defaults", nil,
			endpoint{Name: "classifier", Host: "localhost", HTTPPort: 9000, GRPCPort: 9500}, "http://localhost:9000"},
		{"empty endpoint", map[string]any{},
			endpoint{Name: "classifier", Host: "localhost", HTTPPort: 9000, GRPCPort: 9500}, "http://localhost:9000"},
		{"as the operator fills it in", map[string]any{"service_host": "localhost", "service_port": 9002, "type": "REST", "httpPort": 9001, "grpcPort": 9501},
			endpoint{Name: "classifier", Host: "localhost", HTTPPort: 9001, GRPCPort: 9501}, "http://localhost:9001"},
		{"service host and http port", map[string]any{"service_host": "10.1.2.3", "httpPort": 7000},
			endpoint{Name: "classifier", Host: "10.1.2.3", HTTPPort: 7000, GRPCPort: 9500}, "http://10.1.2.3:7000"},
		{"IPv6 service host", map[string]any{"service_host": "::1", "httpPort": 7000},
			endpoint{Name: "classifier", Host: "::1", HTTPPort: 7000, GRPCPort: 9500}, "http://[::1]:7000"},
		{"REST service port only", map[string]any{"service_port": 9100, "type": "REST"},
			endpoint{Name: "classifier", Host: "localhost", HTTPPort: 9100, GRPCPort: 9500}, "http://localhost:9100"},
		{"untyped service port is REST", map[string]any{"service_port": 9100},
			endpoint{Name: "classifier", Host: "localhost", HTTPPort: 9100, GRPCPort: 9500}, "http://localhost:9100"},
		{"GRPC service port only", map[string]any{"service_port": 9200, "type": "GRPC"},
			endpoint{Name: "classifier", Host: "localhost", HTTPPort: 9000, GRPCPort: 9200}, "http://localhost:9000"},
		{"grpc type in lower case", map[string]any{"service_port": 9200, "type": "grpc"},
			endpoint{Name: "classifier", Host: "localhost", HTTPPort: 9000, GRPCPort: 9200}, "http://localhost:9000"},
		{"httpPort wins over service_port", map[string]any{"service_port": 9100, "httpPort": 9001, "type": "REST"},
			endpoint{Name: "classifier", Host: "localhost", HTTPPort: 9001, GRPCPort: 9500}, "http://localhost:9001"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, map[string]string{"ENGINE_PREDICTOR": b64(t, onePredictor("default", tc.endpoint))})
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if got := rootEndpoint(c); got != tc.want {
				t.Errorf("root node = %+v, want %+v", got, tc.want)
			}
			if got := "http://" + c.Graph.Root.Address("rest"); got != tc.wantBase {
				t.Errorf("REST base = %q, want %q", got, tc.wantBase)
			}
		})
	}
}

const sdepYAML = `# the manifest a user applies, with a namespace before it
apiVersion: v1
kind: Namespace
metadata:
  name: models
---
apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata:
  name: iris
  namespace: models
spec:
  protocol: v2
  serverType: kafka
  predictors:
  - name: default
    graph:
      name: classifier
      type: MODEL
      endpoint:
        type: REST
        service_port: 9001
    componentSpecs:
    - spec:
        containers:
        - name: classifier
          image: seldonio/mock_classifier:1.15.0
  - name: canary
    graph:
      name: classifier-v2
      implementation: SKLEARN_SERVER
      modelUri: gs://seldon-models/sklearn/iris
`

const predictorJSON = `{"name": "default", "graph": {"name": "tf-model", "type": "MODEL", "endpoint": {"service_host": "127.0.0.1", "httpPort": 8501}}}`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfigReadsThePredictorFromFile(t *testing.T) {
	manifest := writeFile(t, "sdep.yaml", sdepYAML)
	bare := writeFile(t, "predictor.json", predictorJSON)

	tests := []struct {
		name      string
		args      []string
		wantGraph string
		wantPort  int
	}{
		{"the predictor named by --predictor", []string{"--file=" + manifest}, "classifier", 9001},
		// The operator numbers containers across the predictors: classifier (of default) has 9000.
		{"another predictor of the same manifest", []string{"--file", manifest, "--predictor=canary"}, "classifier-v2", 9001},
		{"a bare PredictorSpec JSON", []string{"--file=" + bare}, "tf-model", 8501},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// ENGINE_PREDICTOR, set by the minimal environment, is not used when --file is given.
			c, err := load(t, nil, tc.args...)
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if got := rootEndpoint(c); got.Name != tc.wantGraph || got.HTTPPort != tc.wantPort {
				t.Errorf("root node = %+v, want graph %s on port %d", got, tc.wantGraph, tc.wantPort)
			}
			if !strings.HasPrefix(c.PredictorSource, "--file") {
				t.Errorf("PredictorSource = %q, want the file", c.PredictorSource)
			}
		})
	}

	t.Run("a predictor the manifest does not have", func(t *testing.T) {
		_, err := load(t, nil, "--file="+manifest, "--predictor=blue")
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Fatalf("LoadConfig = %v, want a *ConfigError", err)
		}
		if ce.Name != "--file" {
			t.Errorf("error names %q, want --file", ce.Name)
		}
		for _, want := range []string{`"blue"`, "default", "canary"} {
			if !strings.Contains(ce.Msg, want) {
				t.Errorf("message %q does not mention %s", ce.Msg, want)
			}
		}
	})

	t.Run("a file that does not exist", func(t *testing.T) {
		_, err := load(t, nil, "--file="+filepath.Join(t.TempDir(), "nope.yaml"))
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Name != "--file" {
			t.Fatalf("LoadConfig = %v, want a *ConfigError naming --file", err)
		}
	})
}

// endpoint is where a graph node is called.
type endpoint struct {
	Name     string
	Host     string
	HTTPPort int
	GRPCPort int
}

func rootEndpoint(c Config) endpoint {
	n := c.Graph.Root
	return endpoint{Name: n.Name, Host: n.Host, HTTPPort: n.HTTPPort, GRPCPort: n.GRPCPort}
}

func TestRoutingInjectionReadsAsPeopleWriteASwitch(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  bool
	}{{"", false}, {"true", true}, {"TRUE", true}, {"1", true}, {"yes", true}, {"on", true}, {"false", false}, {"no", false}, {"0", false}} {
		t.Run(tc.value, func(t *testing.T) {
			c, err := load(t, map[string]string{"SELDON_ENABLE_ROUTING_INJECTION": tc.value})
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if c.RoutingInjection != tc.want {
				t.Errorf("RoutingInjection = %v, want %v", c.RoutingInjection, tc.want)
			}
		})
	}
	_, err := load(t, map[string]string{"SELDON_ENABLE_ROUTING_INJECTION": "maybe"})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Name != "SELDON_ENABLE_ROUTING_INJECTION" {
		t.Fatalf("LoadConfig = %v, want a ConfigError naming SELDON_ENABLE_ROUTING_INJECTION", err)
	}
}

func TestRetryStatusesAndCodesAreReadAndChecked(t *testing.T) {
	c, err := load(t, nil)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if !slices.Equal(c.RetryStatuses, []int{408, 429, 502, 503, 504}) ||
		!slices.Equal(c.RetryCodes, []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted}) {
		t.Errorf("defaults: statuses %v, codes %v", c.RetryStatuses, c.RetryCodes)
	}
	c, err = load(t, map[string]string{"MODEL_RETRY_STATUSES": " 500, 503 ", "MODEL_RETRY_CODES": "INTERNAL,unknown, Unavailable"})
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if !slices.Equal(c.RetryStatuses, []int{500, 503}) || !slices.Equal(c.RetryCodes, []codes.Code{codes.Internal, codes.Unknown, codes.Unavailable}) {
		t.Errorf("statuses %v, codes %v", c.RetryStatuses, c.RetryCodes)
	}
	c, err = load(t, map[string]string{"MODEL_RETRY_STATUSES": "", "MODEL_RETRY_CODES": ""})
	if err != nil || len(c.RetryStatuses) != 0 || c.RetryStatuses == nil || len(c.RetryCodes) != 0 {
		t.Errorf("empty lists: %v, statuses %#v, codes %#v; want none retried", err, c.RetryStatuses, c.RetryCodes)
	}
	for _, tc := range []struct{ name, value string }{
		{"MODEL_RETRY_STATUSES", "503,abc"}, {"MODEL_RETRY_STATUSES", "200"}, {"MODEL_RETRY_STATUSES", "600"},
		{"MODEL_RETRY_CODES", "Unavailable,Flaky"}, {"MODEL_RETRY_CODES", "OK"},
	} {
		_, err := load(t, map[string]string{tc.name: tc.value})
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Name != tc.name {
			t.Errorf("%s=%q: LoadConfig = %v, want a ConfigError naming %s", tc.name, tc.value, err, tc.name)
		}
	}
}

// TestExampleManifestsLoad: the SeldonDeployments of the examples are ones the sidecar starts with, as
// the operator would start it for their first predictor.
func TestExampleManifestsLoad(t *testing.T) {
	for _, tc := range []struct {
		file, sdep, protocol, transport string
		node                            string
	}{
		{"../examples/demo/sdep.yaml", "iris", "seldon", "rest", "classifier"},
		{"../examples/mlserver/sdep.yaml", "iris", "v2", "rest", "iris"},
		{"../examples/mlserver/sdep.yaml", "iris-grpc", "v2", "grpc", "iris"},
	} {
		t.Run(tc.file+" "+tc.sdep, func(t *testing.T) {
			c, err := load(t, nil, "--file="+tc.file, "--sdep="+tc.sdep, "--predictor=default", "--protocol="+tc.protocol, "--transport="+tc.transport)
			if err != nil {
				t.Fatal(err)
			}
			if c.Graph.Root.Name != tc.node {
				t.Errorf("the graph's root is %q, want %q", c.Graph.Root.Name, tc.node)
			}
		})
	}
}
