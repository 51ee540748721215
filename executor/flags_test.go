package executor

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFlagsAcceptsTheOperatorsArguments(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		want        Flags
		wantIgnored []string
	}{
		{
			// seldon-core operator/controllers/seldondeployment_engine.go, createExecutorContainer: names and
			// values as separate arguments, and the legacy executor's request-logger and health flags.
			name: "current operator",
			args: []string{
				"--sdep", "iris", "--namespace", "models", "--predictor", "default",
				"--http_port", "8000", "--grpc_port", "5001", "--protocol", "seldon",
				"--prometheus_path", "/prometheus", "--server_type", "kafka",
				"--log_work_buffer_size", "10000", "--log_write_timeout_ms", "2000",
				"--full_health_checks=false",
			},
			want: Flags{ServerType: "kafka", Sdep: "iris", Namespace: "models", Predictor: "default",
				Protocol: "seldon", Transport: "rest", HTTPPort: 8000, GRPCPort: 5001, LogLevel: "INFO",
				GracefulTimeout: DefaultGracefulTimeout, PrometheusPath: "/prometheus",
				LogWorkBufferSize: 10000, LogWriteTimeoutMs: 2000},
			wantIgnored: []string{"--full_health_checks=false"},
		},
		{
			name: "name=value form",
			args: []string{
				"--sdep=x", "--namespace=y", "--predictor=p", "--http_port=8000", "--grpc_port=5001",
				"--protocol=tensorflow", "--transport=rest", "--server_type=kafka", "--log_level=INFO",
				"--prometheus_path=/prometheus", "--full_health_checks=false",
			},
			want: Flags{ServerType: "kafka", Sdep: "x", Namespace: "y", Predictor: "p", Protocol: "tensorflow",
				Transport: "rest", HTTPPort: 8000, GRPCPort: 5001, LogLevel: "INFO",
				GracefulTimeout: DefaultGracefulTimeout, PrometheusPath: "/prometheus"},
			wantIgnored: []string{"--full_health_checks=false"},
		},
		{
			name: "single dash, separate values",
			args: []string{"-sdep", "x", "-namespace", "y", "-http_port", "9000", "-graceful_timeout", "3s", "-file", "/etc/sdep.yaml"},
			want: Flags{ServerType: "kafka", Sdep: "x", Namespace: "y", Protocol: "seldon", Transport: "rest",
				HTTPPort: 9000, GRPCPort: 5001, File: "/etc/sdep.yaml", LogLevel: "INFO",
				GracefulTimeout: 3 * time.Second, PrometheusPath: "/metrics"},
		},
		{
			name: "defaults",
			args: nil,
			want: Flags{ServerType: "kafka", Protocol: "seldon", Transport: "rest", HTTPPort: 8000, GRPCPort: 5001,
				LogLevel: "INFO", GracefulTimeout: DefaultGracefulTimeout, PrometheusPath: "/metrics"},
		},
		{
			name: "legacy flags, used and not, with and without values, between known ones",
			args: []string{"--debug", "--sdep", "x", "--log_kafka_broker", "kafka:9092", "-logger_workers=5",
				"--namespace=y", "--full_health_checks", "--log_write_timeout_ms", "-1", "--shutdown_delay", "5s",
				"--kafka_full_graph=true", "--kafka_workers", "4", "--kafka_auto_commit=false", "--hostname", "pod-1",
				"--config", "/kube", "--log_kafka_topic", "t", "--log_work_buffer_size=10",
				"--rabbitmq_full_graph=false", "--rabbitmq_broker=amqp://x", "--rabbitmq_input_queue", "i",
				"--rabbitmq_output_queue", "o"},
			want: Flags{ServerType: "kafka", Sdep: "x", Namespace: "y", Protocol: "seldon", Transport: "rest",
				HTTPPort: 8000, GRPCPort: 5001, LogLevel: "INFO", GracefulTimeout: DefaultGracefulTimeout,
				PrometheusPath: "/metrics", LogKafkaBroker: "kafka:9092", LoggerWorkers: 5, LogWriteTimeoutMs: -1,
				LogKafkaTopic: "t", LogWorkBufferSize: 10},
			wantIgnored: []string{"--debug",
				"--full_health_checks", "--shutdown_delay 5s",
				"--kafka_full_graph=true", "--kafka_workers 4", "--kafka_auto_commit=false", "--hostname pod-1",
				"--config /kube",
				"--rabbitmq_full_graph=false", "--rabbitmq_broker=amqp://x", "--rabbitmq_input_queue i",
				"--rabbitmq_output_queue o"},
		},
		{
			// The legacy's --graceful_timeout is a duration; a whole number of seconds is taken too.
			name: "graceful_timeout in whole seconds",
			args: []string{"--graceful_timeout", "20"},
			want: Flags{ServerType: "kafka", Protocol: "seldon", Transport: "rest", HTTPPort: 8000, GRPCPort: 5001,
				LogLevel: "INFO", GracefulTimeout: 20 * time.Second, PrometheusPath: "/metrics"},
		},
		{
			name: "graceful_timeout as a duration",
			args: []string{"--graceful_timeout=1m30s"},
			want: Flags{ServerType: "kafka", Protocol: "seldon", Transport: "rest", HTTPPort: 8000, GRPCPort: 5001,
				LogLevel: "INFO", GracefulTimeout: 90 * time.Second, PrometheusPath: "/metrics"},
		},
		{
			name: "version",
			args: []string{"--version"},
			want: Flags{ServerType: "kafka", Protocol: "seldon", Transport: "rest", HTTPPort: 8000, GRPCPort: 5001,
				LogLevel: "INFO", GracefulTimeout: DefaultGracefulTimeout, PrometheusPath: "/metrics", Version: true},
		},
		{
			name: "a value with = in it",
			args: []string{"--sdep=a=b", "--prometheus_path", "/x=y"},
			want: Flags{ServerType: "kafka", Sdep: "a=b", Protocol: "seldon", Transport: "rest", HTTPPort: 8000,
				GRPCPort: 5001, LogLevel: "INFO", GracefulTimeout: DefaultGracefulTimeout, PrometheusPath: "/x=y"},
		},
		{
			name: "arguments after -- are not read",
			args: []string{"--sdep=x", "--", "--namespace=y", "stray"},
			want: Flags{ServerType: "kafka", Sdep: "x", Protocol: "seldon", Transport: "rest", HTTPPort: 8000,
				GRPCPort: 5001, LogLevel: "INFO", GracefulTimeout: DefaultGracefulTimeout, PrometheusPath: "/metrics"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ignored, err := ParseFlags(tc.args)
			if err != nil {
				t.Fatalf("ParseFlags(%q): %v", tc.args, err)
			}
			// The payload logger's flags have the legacy executor's defaults where a case gives none.
			tc.want.LoggerWorkers = cmp.Or(tc.want.LoggerWorkers, DefaultLoggerWorkers)
			tc.want.LogWorkBufferSize = cmp.Or(tc.want.LogWorkBufferSize, DefaultLogWorkBufferSize)
			tc.want.LogWriteTimeoutMs = cmp.Or(tc.want.LogWriteTimeoutMs, DefaultLogWriteTimeoutMs)
			if got != tc.want {
				t.Errorf("ParseFlags(%q)\n got %+v\nwant %+v", tc.args, got, tc.want)
			}
			if !slices.Equal(ignored, tc.wantIgnored) {
				t.Errorf("ignored = %q, want %q", ignored, tc.wantIgnored)
			}
		})
	}
}

func TestParseFlagsRejectsBadArguments(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in the error
	}{
		{"bad int", []string{"--http_port=eighty"}, "http_port"},
		{"bad int, separate value", []string{"--grpc_port", "x"}, "grpc_port"},
		{"bad duration", []string{"--graceful_timeout=soon"}, "graceful_timeout"},
		{"known flag without its value", []string{"--sdep"}, "sdep"},
		{"positional argument", []string{"--sdep=x", "kafka"}, `"kafka"`},
		{"lone dash", []string{"-"}, `"-"`},
		{"three dashes", []string{"---sdep=x"}, "---sdep"},
		// A typo is not a legacy flag: refused, and the flag meant is suggested.
		{"typo", []string{"--sdep=x", "--protcol=v2"}, "unknown flag --protcol (did you mean --protocol?)"},
		{"typo, separate value", []string{"--predictor", "p", "--namspace", "models"}, "unknown flag --namspace (did you mean --namespace?)"},
		{"single dash typo", []string{"-htp_port=9000"}, "unknown flag --htp_port (did you mean --http_port?)"},
		{"not a flag of any executor", []string{"--tracing"}, "unknown flag --tracing"},
		{"not a legacy flag", []string{"--enable_payload_logging"}, "unknown flag --enable_payload_logging"},
		// Legacy flags not used are still checked as the legacy checked them.
		{"legacy int not a number", []string{"--log_work_buffer_size=lots"}, "log_work_buffer_size"},
		{"legacy bool not a bool", []string{"--full_health_checks=maybe"}, "full_health_checks"},
		{"legacy duration not a duration", []string{"--shutdown_delay=5"}, "shutdown_delay"},
		// Legacy flags that would name other topics than those served are refused, pointing at the variable.
		{"legacy kafka_broker", []string{"--kafka_broker=kafka:9092"}, "--kafka_broker: this executor reads KAFKA_BROKER from the environment"},
		{"legacy kafka_input_topic", []string{"--kafka_input_topic", "in"}, "KAFKA_INPUT_TOPIC"},
		{"legacy kafka_output_topic", []string{"--kafka_output_topic=out"}, "KAFKA_OUTPUT_TOPIC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := ParseFlags(tc.args)
			if err == nil {
				t.Fatalf("ParseFlags(%q) succeeded", tc.args)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseFlags(%q) = %v, want it to mention %s", tc.args, err, tc.want)
			}
		})
	}
}

func TestParseFlagsHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"-help"}, {"--help"}, {"--sdep=x", "--help"}, {"--protcol=v2", "-h"}} {
		if _, _, err := ParseFlags(args); !errors.Is(err, flag.ErrHelp) && !strings.Contains(fmt.Sprint(err), "protcol") {
			t.Errorf("ParseFlags(%q) = %v, want flag.ErrHelp", args, err)
		}
	}
	// A value that looks like -h is a value.
	if f, _, err := ParseFlags([]string{"--sdep", "-h"}); err != nil || f.Sdep != "-h" {
		t.Errorf("ParseFlags(--sdep -h) = %+v, %v; want sdep -h", f, err)
	}
}

// TestParseFlagsKnowsTheLegacyFlags checks that every flag of the legacy executor (seldon-core v1.18,
// executor/main.go) is either read or ignored, never refused as unknown, but for the three that name
// the stream (refused with a pointer to their variable).
func TestParseFlagsKnowsTheLegacyFlags(t *testing.T) {
	legacy := map[string]string{
		"server_type": "kafka", "config": "/k", "sdep": "s", "namespace": "n", "predictor": "p",
		"http_port": "8080", "grpc_port": "5000", "graceful_timeout": "15s", "shutdown_delay": "0s",
		"protocol": "seldon", "transport": "rest", "file": "", "hostname": "h", "logger_workers": "10",
		"log_work_buffer_size": "10000", "log_write_timeout_ms": "2000", "prometheus_path": "/metrics",
		"kafka_full_graph": "false", "kafka_workers": "4", "kafka_auto_commit": "true",
		"log_kafka_broker": "", "log_kafka_topic": "", "rabbitmq_full_graph": "false", "rabbitmq_broker": "",
		"rabbitmq_input_queue": "", "rabbitmq_output_queue": "", "full_health_checks": "false",
		"debug": "false", "log_level": "INFO",
	}
	for name, v := range legacy {
		if _, _, err := ParseFlags([]string{"--" + name + "=" + v}); err != nil {
			t.Errorf("legacy flag --%s=%s: %v", name, v, err)
		}
	}
	for name := range legacyRefused {
		if _, _, err := ParseFlags([]string{"--" + name + "=x"}); err == nil || strings.Contains(err.Error(), "unknown") {
			t.Errorf("--%s: %v, want it refused with its variable named", name, err)
		}
	}
}

func TestParseFlagsUsageListsTheFlags(t *testing.T) {
	var b strings.Builder
	Usage(&b)
	for _, name := range []string{"-sdep", "-predictor", "-protocol", "-file", "-graceful_timeout", "-prometheus_path",
		"-version", "-log_work_buffer_size", "--full_health_checks", "Any other flag is refused"} {
		if !strings.Contains(b.String(), name) {
			t.Errorf("usage does not mention %s:\n%s", name, b.String())
		}
	}
}
