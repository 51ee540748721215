package main

import (
	"strings"
	"testing"
)

func TestHelpPrintsUsageToStdoutAndExits0(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		var stdout, stderr strings.Builder
		if code := command([]string{arg}, strings.NewReader(""), &stdout, &stderr); code != 0 {
			t.Errorf("protofile %s: exit %d, want 0; stderr:\n%s", arg, code, stderr.String())
		}
		for _, want := range []string{"usage: protofile", "-topic", "-proto-name", "-X"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("protofile %s: the usage does not mention %q:\n%s", arg, want, stdout.String())
			}
		}
		if stderr.Len() != 0 {
			t.Errorf("protofile %s wrote to stderr: %s", arg, stderr.String())
		}
	}
}

func TestBadCommandLineExits2WithOneLineNamingIt(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--topic=t", "--protcol=v2"}, "-protcol"},
		{"bad value", []string{"--topic=t", "--timeout=soon"}, "-timeout"},
		{"bad property", []string{"--topic=t", "-X", "novalue"}, "-X"},
		{"flag without its value", []string{"--topic"}, "-topic"},
		{"no topic", nil, "--topic is required"},
		{"two files", []string{"--topic=t", "a", "b"}, "one file at most"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := command(tc.args, strings.NewReader(""), &stdout, &stderr)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr:\n%s", code, stderr.String())
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "protofile: ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr = %q, want one line naming %s", stderr.String(), tc.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
}
