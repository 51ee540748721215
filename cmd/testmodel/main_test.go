package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/seldon-kafka/sidecar/internal/cli"
)

var listeningLine = regexp.MustCompile(`^listening http=(\S+:\d+) grpc=(\S+:\d+|off)\n$`)

// start runs the command in-process and returns the addresses of its listening line; the run ends, and
// must end cleanly, when the test does.
func start(t *testing.T, args ...string) (httpAddr, grpcAddr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, w := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, w, io.Discard); w.Close() }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("run did not return after its context ended")
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("read the listening line: %v (got %q)", err, line)
	}
	go io.Copy(io.Discard, stdout) // nothing more is expected, but never block the command
	m := listeningLine.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("first line %q is not %s", line, listeningLine)
	}
	// The command listens on every interface; the loopback reaches it.
	local := func(addr string) string {
		return strings.Replace(strings.Replace(addr, "[::]", "127.0.0.1", 1), "0.0.0.0", "127.0.0.1", 1)
	}
	return local(m[1]), local(m[2])
}

func TestRunAnnouncesItsPortsAndServesItsRole(t *testing.T) {
	httpAddr, grpcAddr := start(t, "--http_port=0", "--grpc_port=0", "--role=output_transformer", "--model_name=m", "--image=img")
	tests := []struct{ name, path, body, want string }{
		{"tensorflow predict applies the role", "/v1/models/m:predict", `{"instances":[[1,2]]}`, `{"predictions":[[10,20]]}`},
		{"seldon predict reports the image", "/predict", `{"data":{"ndarray":[[1,2]]}}`,
			`{"data":{"names":["sum","product"],"ndarray":[[3,2]]},"meta":{"requestPath":{"m":"img"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post("http://"+httpAddr+tt.path, "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(body) != tt.want {
				t.Errorf("POST %s = %d %s\nwant 200 %s", tt.path, resp.StatusCode, body, tt.want)
			}
		})
	}
	cc, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if h, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health at the announced address = %v, %v", h, err)
	}
}

func TestRunAnnouncesGRPCOffWhenNotServingIt(t *testing.T) {
	if _, grpcAddr := start(t, "--http_port=0", "--grpc_port=-1"); grpcAddr != "off" {
		t.Errorf("grpc = %q, want off", grpcAddr)
	}
}

func TestHelpPrintsUsageAndSucceeds(t *testing.T) {
	var stderr strings.Builder
	err := run(context.Background(), []string{"--help"}, io.Discard, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run(--help) = %v, want flag.ErrHelp (exit 0)", err)
	}
	for _, want := range []string{"Usage: testmodel", "-role", "-image", "-slow_delay", "-call_cost", "listening http="} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("usage does not mention %q:\n%s", want, stderr.String())
		}
	}
}

func TestBadFlagsAreUsageErrors(t *testing.T) {
	tests := []struct{ name, arg string }{
		{"unknown role", "--role=router"},
		{"unknown flag", "--no_such_flag"},
		{"port not a number", "--http_port=x"},
		{"zero slow delay", "--slow_delay=0"},
		{"negative delay", "--delay=-1ms"},
		{"negative call cost", "--call_cost=-5ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout strings.Builder
			err := run(context.Background(), []string{"--http_port=0", "--grpc_port=-1", tt.arg}, &stdout, io.Discard)
			var usage cli.UsageError
			if !errors.As(err, &usage) {
				t.Errorf("run(%s) = %v, want a usage error (exit 2)", tt.arg, err)
			}
			if stdout.Len() != 0 {
				t.Errorf("printed %q to stdout before refusing its flags", stdout.String())
			}
		})
	}
}

func TestSIGUSR1HangsInferCallsAndSIGUSR2ReleasesThem(t *testing.T) {
	httpAddr, _ := start(t, "--http_port=0", "--grpc_port=-1")
	// infer reports whether a call is answered 200 within a second: a hung one is not.
	infer := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "POST", "http://"+httpAddr+"/predict", strings.NewReader(`{"data":{"ndarray":[[1]]}}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	// eventually waits for the signal to be handled: its delivery is asynchronous.
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20s", what)
			}
		}
	}
	if !infer() {
		t.Fatal("the model does not answer before any signal")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	eventually("SIGUSR1 makes infer calls hang", func() bool { return !infer() })
	resp, err := http.Get("http://" + httpAddr + "/health/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("readiness while hanging = %d, want 200", resp.StatusCode)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	eventually("SIGUSR2 releases them", infer)
}
