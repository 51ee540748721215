package testkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testLogEnv, when set, makes helpers forward what they run to the test log, as the executor tests do
// with their sidecar's log.
const testLogEnv = "SIDECAR_TEST_LOG"

const (
	// buildTimeout bounds building cmd/testmodel, the first time a test binary needs it.
	buildTimeout = 5 * time.Minute
	// listenTimeout bounds waiting for a started process's listening line.
	listenTimeout = 30 * time.Second
	// stopTimeout bounds waiting for a process to exit after SIGTERM; the command's own shutdown grace
	// is 10s.
	stopTimeout = 30 * time.Second
	// stderrTail is how much of a process's stderr is kept for error messages.
	stderrTail = 64 << 10
)

// ModelProcess is a cmd/testmodel process started by StartModelProcess: one node of an inference graph
// made of real processes.
type ModelProcess struct {
	// HTTPAddr and GRPCAddr are the loopback host:port of the REST routes and of the gRPC services.
	// GRPCAddr is "" when the process serves no gRPC (--grpc_port=-1).
	HTTPAddr, GRPCAddr string
	// HTTPPort and GRPCPort are the ports (GRPCPort 0 without gRPC).
	HTTPPort, GRPCPort int
	// Cmd is the running command, for a test that wants to signal it itself.
	Cmd *exec.Cmd

	done    chan struct{} // closed when the process has exited and its output is copied
	waitErr error         // Cmd.Wait's result, set before done is closed
}

// StartModelProcess starts cmd/testmodel with --http_port=0 --grpc_port=0 followed by args (later flags
// win, so args may override the ports), and returns once it listens. For example, the transformer node
// "t" of a graph:
//
//	p := testkit.StartModelProcess(t, "--role=transformer", "--model_name=t")
//	http.Post("http://"+p.HTTPAddr+"/transform-input", ...)
//
// The command is built once per test binary. StartModelProcess fails the test, with the process's
// stderr, if the process exits or does not print its listening line within 30s. The process is killed
// when the test ends; its stderr goes to the test log when $SIDECAR_TEST_LOG is set.
func StartModelProcess(t testing.TB, args ...string) *ModelProcess {
	t.Helper()
	bin := modelBinary(t)
	cmd := exec.Command(bin, append([]string{"--http_port=0", "--grpc_port=0"}, args...)...)
	stdout := &firstLine{line: make(chan string, 1)}
	stderr := &processLog{t: t, prefix: fmt.Sprintf("testmodel %s: ", strings.Join(args, " ")), forward: os.Getenv(testLogEnv) != ""}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Wait returns once the process has exited and its output is copied; a grandchild holding the
	// pipes open must not hang the test.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("testkit: start %s: %v", bin, err)
	}
	p := &ModelProcess{Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		// Cleanups run before the test completes, so the last lines could still be logged; nothing may
		// be logged after.
		stderr.close()
	})

	timer := time.NewTimer(listenTimeout)
	defer timer.Stop()
	var line string
	select {
	case line = <-stdout.line:
	case <-p.done:
		t.Fatalf("testkit: testmodel %s exited before listening (%v); stderr:\n%s", strings.Join(args, " "), p.waitErr, stderr.tail())
	case <-timer.C:
		p.Kill()
		t.Fatalf("testkit: testmodel %s printed no listening line within %v; stderr:\n%s", strings.Join(args, " "), listenTimeout, stderr.tail())
	}
	if err := p.parseListening(line); err != nil {
		t.Fatalf("testkit: testmodel %s: %v; stderr:\n%s", strings.Join(args, " "), err, stderr.tail())
	}
	return p
}

// parseListening reads the command's "listening http=<host:port> grpc=<host:port|off>" line.
func (p *ModelProcess) parseListening(line string) error {
	rest, ok := strings.CutPrefix(line, "listening ")
	if !ok {
		return fmt.Errorf("first line %q is not the listening line", line)
	}
	for _, field := range strings.Fields(rest) {
		key, addr, _ := strings.Cut(field, "=")
		if key == "grpc" && addr == "off" {
			continue
		}
		local, port, err := loopback(addr)
		if err != nil {
			return fmt.Errorf("listening line %q: %s: %w", line, key, err)
		}
		switch key {
		case "http":
			p.HTTPAddr, p.HTTPPort = local, port
		case "grpc":
			p.GRPCAddr, p.GRPCPort = local, port
		}
	}
	if p.HTTPAddr == "" {
		return fmt.Errorf("listening line %q has no http address", line)
	}
	return nil
}

// loopback turns the address a listener on every interface reports ("[::]:port") into one a test can
// dial, and returns its port.
func loopback(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, portStr), port, nil
}

// Kill kills the process, if it still runs, and waits for it to exit. It may be called any number of
// times, and from any goroutine.
func (p *ModelProcess) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	// An error means the process has already exited; done follows either way.
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Hang makes the process's infer calls hang without answering, its readiness still answering (cmd/testmodel
// takes SIGUSR1 for it); Release (SIGUSR2) answers them again. The signal is handled asynchronously: calls
// arriving just after Hang returns may still be answered.
func (p *ModelProcess) Hang() error { return p.signal(syscall.SIGUSR1) }

// Release ends a Hang: the held calls, and those after them, are answered.
func (p *ModelProcess) Release() error { return p.signal(syscall.SIGUSR2) }

func (p *ModelProcess) signal(sig syscall.Signal) error {
	if err := p.Cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("testkit: send %v to testmodel: %w", sig, err)
	}
	return nil
}

// Stop asks the process to shut down gracefully with SIGTERM, as Kubernetes does, and waits for it to
// exit; it kills it after 30s. It returns nil if the process exited with status 0, else why not.
func (p *ModelProcess) Stop() error {
	select {
	case <-p.done:
		return p.waitErr
	default:
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("testkit: send SIGTERM to testmodel: %w", err)
	}
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(stopTimeout):
		p.Kill()
		return fmt.Errorf("testkit: testmodel did not exit within %v of SIGTERM", stopTimeout)
	}
}

// modelBuild is cmd/testmodel built for this test binary; building once keeps graphs of many processes
// cheap.
var modelBuild struct {
	once sync.Once
	path string
	err  error
}

func modelBinary(t testing.TB) string {
	t.Helper()
	modelBuild.once.Do(func() { modelBuild.path, modelBuild.err = buildModel() })
	if modelBuild.err != nil {
		t.Fatalf("testkit: %v", modelBuild.err)
	}
	return modelBuild.path
}

// buildModel builds cmd/testmodel into a new temporary directory. The directory outlives the test
// binary: no hook runs when it exits, and processes of parallel tests may still use the binary until
// then.
func buildModel() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("find the module to build cmd/testmodel in: %w", err)
	}
	dir, err := os.MkdirTemp("", "sidecar-testmodel-")
	if err != nil {
		return "", fmt.Errorf("make a directory for cmd/testmodel: %w", err)
	}
	bin := filepath.Join(dir, "testmodel")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/testmodel")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("go build ./cmd/testmodel in %s: %w\n%s", root, err, out)
	}
	return bin, nil
}

// firstLine is a process's stdout: it hands over the first line and discards the rest, so the process
// never blocks on a full pipe.
type firstLine struct {
	mu   sync.Mutex
	buf  []byte
	sent bool
	line chan string
}

func (f *firstLine) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sent {
		return len(b), nil
	}
	f.buf = append(f.buf, b...)
	if i := bytes.IndexByte(f.buf, '\n'); i >= 0 {
		f.line <- string(f.buf[:i])
		f.sent, f.buf = true, nil
	} else if len(f.buf) > stderrTail {
		// Not the listening line, whatever it is; hand it over so the caller reports it.
		f.line <- string(f.buf[:stderrTail])
		f.sent, f.buf = true, nil
	}
	return len(b), nil
}

// processLog is a process's stderr: it keeps the tail for error messages and, when forward is set,
// logs each line to the test until close.
type processLog struct {
	t       testing.TB
	prefix  string
	forward bool

	mu      sync.Mutex
	closed  bool
	partial []byte
	kept    []byte
}

func (l *processLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kept = append(l.kept, b...)
	if over := len(l.kept) - stderrTail; over > 0 {
		l.kept = append(l.kept[:0], l.kept[over:]...)
	}
	if !l.forward || l.closed {
		return len(b), nil
	}
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.t.Log(l.prefix + string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(b), nil
}

// close logs what is left of a last line and stops logging: the test may complete after this.
func (l *processLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.forward && !l.closed && len(l.partial) > 0 {
		l.t.Log(l.prefix + string(l.partial))
	}
	l.closed = true
}

func (l *processLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.kept)
}
