package main

import (
	"strings"
	"testing"
	"time"
)

func TestHelpPrintsUsageToStdoutAndExits0(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		var stdout, stderr strings.Builder
		if _, code := parseArgs([]string{arg}, &stdout, &stderr); code != 0 {
			t.Errorf("sidecar-bench %s: code %d, want 0", arg, code)
		}
		if !strings.Contains(stdout.String(), "usage: sidecar-bench") || !strings.Contains(stdout.String(), "-model-delay") {
			t.Errorf("sidecar-bench %s: stdout is not the usage:\n%s", arg, stdout.String())
		}
		if stderr.Len() != 0 {
			t.Errorf("sidecar-bench %s wrote to stderr: %s", arg, stderr.String())
		}
	}
}

func TestBadCommandLineExits2WithOneLineNamingIt(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--recrods=10"}, "-recrods"},
		{"bad value", []string{"--model-delay=slow"}, "-model-delay"},
		{"positional argument", []string{"bin/executor"}, `"bin/executor"`},
		{"zero rate", []string{"--rate=0"}, "-rate"},
		{"zero rounds", []string{"-exactly-once", "-rounds=0"}, "-rounds"},
		{"env without a value", []string{"-env", "KAFKA_COMMIT_INTERVAL"}, "NAME=VALUE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			if _, code := parseArgs(tc.args, &stdout, &stderr); code != 2 {
				t.Errorf("code %d, want 2", code)
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "sidecar-bench: ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr = %q, want one line naming %s", stderr.String(), tc.want)
			}
		})
	}
}

func TestFlagsAreRead(t *testing.T) {
	o, code := parseArgs([]string{"-records=100", "-model-delay=5ms", "-bootstrap", "h:1"}, nil, nil)
	if code != -1 || o.records != 100 || o.delay != 5*time.Millisecond || o.bootstrap != "h:1" || o.binary != "bin/executor" {
		t.Errorf("parseArgs = %+v, %d", o, code)
	}
	o, code = parseArgs([]string{"-exactly-once", "-rounds=3", "-env", "A=1", "-env", "B=x=y"}, nil, nil)
	if code != -1 || !o.exactlyOnce || o.rounds != 3 || len(o.env) != 2 || o.env[1] != "B=x=y" {
		t.Errorf("parseArgs = %+v, %d", o, code)
	}
}
