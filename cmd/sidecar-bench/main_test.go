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
		if !strings.Contains(stdout.String(), "usage: sidecar-bench") || !strings.Contains(stdout.String(), "-short") {
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
		{"bad value", []string{"--memory-delay=slow"}, "-memory-delay"},
		{"positional argument", []string{"bin/executor"}, `"bin/executor"`},
		{"negative rate", []string{"--rate=-1"}, "-rate"},
		{"one record", []string{"--records=1"}, "-records"},
		{"fraction above one", []string{"--paced-fraction=1.5"}, "-paced-fraction"},
		{"bad regular expression", []string{"--only=("}, "-only"},
		{"environment without a value", []string{"--sidecar-env=MODEL_BATCH_SIZE"}, "-sidecar-env"},
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

func TestFormsFillInTheSizesNotGiven(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want [5]int
	}{
		{"long form", nil, sizes(longForm)},
		{"short form", []string{"-short"}, sizes(shortForm)},
		{"short form, records given", []string{"-short", "-records=500"},
			[5]int{500, shortForm.cifarRecords, shortForm.pacedSeconds, shortForm.memoryRecords, shortForm.memorySeconds}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, code := parseArgs(tc.args, nil, nil)
			if code != -1 {
				t.Fatalf("code %d, want -1", code)
			}
			if got := sizes(o); got != tc.want {
				t.Errorf("records, cifar-records, paced-seconds, memory-records, memory-seconds = %v, want %v", got, tc.want)
			}
		})
	}
}

func sizes(o options) [5]int {
	return [5]int{o.records, o.cifarRecords, o.pacedSeconds, o.memoryRecords, o.memorySeconds}
}

func TestFlagsAreRead(t *testing.T) {
	o, code := parseArgs([]string{"-records=100", "-memory-delay=5ms", "-bootstrap", "h:1", "-sidecar-env", "A=1", "-sidecar-env=B=x=y"}, nil, nil)
	if code != -1 || o.records != 100 || o.memoryDelay != 5*time.Millisecond || o.bootstrap != "h:1" || o.executor != "bin/executor" ||
		strings.Join(o.sidecarEnv, " ") != "A=1 B=x=y" {
		t.Errorf("parseArgs = %+v, %d", o, code)
	}
}

func TestOnlyPicksScenariosByNameAndMode(t *testing.T) {
	tests := []struct {
		only string
		want []string
	}{
		{"", []string{"seldon rest 1k 0ms backlog", "tensorflow grpc 1k 0ms backlog", "seldon rest 1k 0ms paced", "seldon rest 1k 20ms memory"}},
		{"grpc", []string{"tensorflow grpc 1k 0ms backlog"}},
		{"paced|memory", []string{"seldon rest 1k 0ms paced", "seldon rest 1k 20ms memory"}},
	}
	for _, tc := range tests {
		t.Run(tc.only, func(t *testing.T) {
			o, code := parseArgs([]string{"-short", "-only", tc.only}, nil, nil)
			if code != -1 {
				t.Fatalf("code %d", code)
			}
			var got []string
			for _, s := range selected(o) {
				got = append(got, s.name()+" "+s.Mode)
			}
			if strings.Join(got, "; ") != strings.Join(tc.want, "; ") {
				t.Errorf("selected = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestEveryLongFormScenarioHasItsRequests(t *testing.T) {
	o, _ := parseArgs(nil, nil, nil)
	for _, s := range scenarios(o) {
		pl, err := newPayload(s.Protocol, s.Transport, s.Size)
		if err != nil {
			t.Errorf("%s: %v", s.name(), err)
			continue
		}
		if len(pl.values) != variants || (s.Transport == "grpc") != (pl.protoName != "") {
			t.Errorf("%s: %d values, proto-name %q", s.name(), len(pl.values), pl.protoName)
		}
	}
}
