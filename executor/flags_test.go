package executor

import (
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
				GracefulTimeout: 25 * time.Second, PrometheusPath: "/prometheus"},
			wantIgnored: []string{"--log_work_buffer_size 10000", "--log_write_timeout_ms 2000", "--full_health_checks=false"},
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
				GracefulTimeout: 25 * time.Second, PrometheusPath: "/prometheus"},
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
				LogLevel: "INFO", GracefulTimeout: 25 * time.Second, PrometheusPath: "/metrics"},
		},
		{
			name: "unknown flags, with and without values, between known ones",
			args: []string{"--tracing", "--sdep", "x", "--request_logger_default_endpoint", "http://broker",
				"-debug=true", "--namespace=y", "--enable_payload_logging"},
			want: Flags{ServerType: "kafka", Sdep: "x", Namespace: "y", Protocol: "seldon", Transport: "rest",
				HTTPPort: 8000, GRPCPort: 5001, LogLevel: "INFO", GracefulTimeout: 25 * time.Second,
				PrometheusPath: "/metrics"},
			wantIgnored: []string{"--tracing", "--request_logger_default_endpoint http://broker", "-debug=true", "--enable_payload_logging"},
		},
		{
			name: "a value with = in it",
			args: []string{"--sdep=a=b", "--prometheus_path", "/x=y"},
			want: Flags{ServerType: "kafka", Sdep: "a=b", Protocol: "seldon", Transport: "rest", HTTPPort: 8000,
				GRPCPort: 5001, LogLevel: "INFO", GracefulTimeout: 25 * time.Second, PrometheusPath: "/x=y"},
		},
		{
			name: "arguments after -- are not read",
			args: []string{"--sdep=x", "--", "--namespace=y", "stray"},
			want: Flags{ServerType: "kafka", Sdep: "x", Protocol: "seldon", Transport: "rest", HTTPPort: 8000,
				GRPCPort: 5001, LogLevel: "INFO", GracefulTimeout: 25 * time.Second, PrometheusPath: "/metrics"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ignored, err := ParseFlags(tc.args)
			if err != nil {
				t.Fatalf("ParseFlags(%q): %v", tc.args, err)
			}
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
		{"bad duration", []string{"--graceful_timeout=25"}, "graceful_timeout"},
		{"known flag without its value", []string{"--sdep"}, "sdep"},
		{"positional argument", []string{"--sdep=x", "kafka"}, `"kafka"`},
		{"lone dash", []string{"-"}, `"-"`},
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

func TestParseFlagsUsageListsTheFlags(t *testing.T) {
	var b strings.Builder
	Usage(&b)
	for _, name := range []string{"-sdep", "-predictor", "-protocol", "-file", "-graceful_timeout", "-prometheus_path"} {
		if !strings.Contains(b.String(), name) {
			t.Errorf("usage does not mention %s:\n%s", name, b.String())
		}
	}
}
