package main

import (
	"bufio"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// child is a process the bench runs and measures from outside: the sidecar, the passthrough loop or the
// model. Its CPU time and memory come from /proc, as top would see them.
type child struct {
	name   string
	cmd    *exec.Cmd
	proc   procfs.Proc
	stderr *tail
	exited chan struct{} // closed when the process has exited
	err    error         // why it exited; read after exited is closed
}

// startChild starts cmd, its stderr kept (the last lines) for the error message if it fails.
func startChild(name string, cmd *exec.Cmd) (*child, error) {
	c := &child{name: name, cmd: cmd, stderr: &tail{}, exited: make(chan struct{})}
	cmd.Stderr = c.stderr
	// A child that outlives the bench (the bench killed, not interrupted) dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the %s: %w", name, err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	proc, err := procfs.NewProc(cmd.Process.Pid)
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("reading /proc of the %s: %w", name, err)
	}
	c.proc = proc
	return c, nil
}

// failed is the error of a child that exited while it was measured, with the end of its stderr.
func (c *child) failed() error {
	return fmt.Errorf("the %s exited (%v); its last output:\n%s", c.name, c.err, c.stderr.String())
}

// cpu is the process's CPU time so far, user and system: the run time of its threads
// (/proc/<pid>/task/*/schedstat), in nanoseconds. utime+stime of /proc/<pid>/stat are the same time in
// 10 ms ticks, too coarse for a span of a second; they are the fallback.
func (c *child) cpu() time.Duration {
	if threads, err := procfs.AllThreads(c.cmd.Process.Pid); err == nil {
		var ns uint64
		for _, t := range threads {
			if s, err := t.Schedstat(); err == nil {
				ns += s.RunningNanoseconds
			}
		}
		if ns > 0 {
			return time.Duration(ns)
		}
	}
	s, err := c.proc.Stat()
	if err != nil {
		return 0
	}
	return time.Duration(s.CPUTime() * float64(time.Second))
}

// memory is the process's resident set now and its peak so far (VmRSS, VmHWM), in MiB.
func (c *child) memory() (rss, peak float64) {
	s, err := c.proc.NewStatus()
	if err != nil {
		return 0, 0
	}
	return float64(s.VmRSS) / (1 << 20), float64(s.VmHWM) / (1 << 20)
}

// stop kills the process and waits for it. The figures are read before: a clean shutdown is not what
// is measured, and SIGKILL keeps the bench quick.
func (c *child) stop() {
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// rssSample is the resident set of a process at a time of a run.
type rssSample struct {
	Seconds  float64 `json:"seconds"` // since the first answer
	MiB      float64 `json:"mib"`
	Answered int64   `json:"answered"` // records answered by then
}

// cpuSample is a process's CPU time at a time.
type cpuSample struct {
	at  time.Time
	cpu time.Duration
}

// watched is what a watch saw of a process: its CPU time every cpuEvery, its resident set every
// rssEvery once it has answered.
type watched struct {
	cpu []cpuSample
	rss []rssSample
}

// watch samples c until the returned stop is called. progress says when the first answer came (zero
// before) and how many have come.
func watch(c *child, cpuEvery, rssEvery time.Duration, progress func() (first time.Time, answered int64)) (stop func() watched) {
	var (
		w     watched
		done  = make(chan struct{})
		ended = make(chan struct{})
	)
	go func() {
		defer close(ended)
		t := time.NewTicker(cpuEvery)
		defer t.Stop()
		var lastRSS time.Time
		for {
			w.cpu = append(w.cpu, cpuSample{time.Now(), c.cpu()})
			if first, answered := progress(); !first.IsZero() && time.Since(lastRSS) >= rssEvery {
				lastRSS = time.Now()
				rss, _ := c.memory()
				w.rss = append(w.rss, rssSample{Seconds: time.Since(first).Seconds(), MiB: rss, Answered: answered})
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() watched {
		close(done)
		<-ended
		return w
	}
}

// cpuAt is the process's CPU time at t, interpolated between the samples around it.
func (w watched) cpuAt(t time.Time) time.Duration {
	s := w.cpu
	if len(s) == 0 {
		return 0
	}
	i, _ := slices.BinarySearchFunc(s, t, func(x cpuSample, t time.Time) int { return x.at.Compare(t) })
	switch {
	case i == 0:
		return s[0].cpu
	case i == len(s):
		return s[len(s)-1].cpu
	}
	a, b := s[i-1], s[i]
	f := float64(t.Sub(a.at)) / float64(b.at.Sub(a.at))
	return a.cpu + time.Duration(f*float64(b.cpu-a.cpu))
}

// model is a test model process (cmd/testmodel) on loopback.
type model struct {
	*child
	httpPort, grpcPort string
}

// startModel runs the test model with a latency per call (each call waits on its own) and a cost per
// call (calls queue for one compute slot), and reads the ports it listens on from its first line.
func startModel(binary, name string, delay, callCost time.Duration) (*model, error) {
	cmd := exec.Command(binary, "--host=127.0.0.1", "--http_port=0", "--grpc_port=0", "--model_name="+name,
		"--delay="+delay.String(), "--call_cost="+callCost.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c, err := startChild("test model", cmd)
	if err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("the test model printed no listening line (%v): %s", err, c.stderr.String())
	}
	m := &model{child: c}
	for _, f := range strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "listening ")) {
		k, addr, _ := strings.Cut(f, "=")
		_, port, _ := strings.Cut(addr, ":")
		switch k {
		case "http":
			m.httpPort = port
		case "grpc":
			m.grpcPort = port
		}
	}
	if m.httpPort == "" || m.grpcPort == "" {
		c.stop()
		return nil, fmt.Errorf("the test model's first line %q does not name both ports", line)
	}
	return m, nil
}

// tail keeps the last tailSize bytes written to it.
type tail struct {
	mu sync.Mutex
	b  []byte
}

const tailSize = 4096

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > tailSize {
		t.b = append(t.b[:0], t.b[len(t.b)-tailSize:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// errExited is returned by a wait that the measured process ended.
var errExited = errors.New("process exited")
