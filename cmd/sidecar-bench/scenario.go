package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const (
	modeBacklog = "backlog"
	modePaced   = "paced"
	modeMemory  = "memory"

	modelName = "classifier"
	// costDivisor shrinks the backlog of a scenario whose model has a cost per call: unbatched, it serves
	// 1/cost records a second.
	costDivisor = 20
	// idle is how long a run waits for the next answer before it gives up.
	idle = time.Minute
)

// scenario is one measured configuration.
type scenario struct {
	Protocol  string // seldon, tensorflow, v2
	Transport string // rest, grpc
	Size      string // size1K, sizeCIFAR10
	Delay     time.Duration
	CallCost  time.Duration
	Mode      string
	Records   int // the backlog (backlog and memory modes)
}

// config names what the sidecar is given, without the mode: a paced scenario is paced at a fraction of
// the backlog rate of the same config.
func (s scenario) config() string {
	model := fmt.Sprintf("%gms", ms(s.Delay))
	if s.CallCost > 0 {
		model = "cost " + s.CallCost.String() + "/call"
	}
	return fmt.Sprintf("%s %s %s %s", s.Protocol, s.Transport, s.Size, model)
}

func (s scenario) name() string { return s.config() }

// scenarios of the long form and the short one, in the order they run: a paced scenario after the
// backlog one of its config.
func scenarios(o options) []scenario {
	b := func(protocol, transport, size string, delay, cost time.Duration) scenario {
		n := o.records
		if size == sizeCIFAR10 {
			n = o.cifarRecords
		}
		if cost > 0 {
			n = max(2, n/costDivisor)
		}
		return scenario{Protocol: protocol, Transport: transport, Size: size, Delay: delay, CallCost: cost, Mode: modeBacklog, Records: n}
	}
	paced := func(s scenario) scenario { s.Mode, s.Records = modePaced, 0; return s }
	memory := scenario{Protocol: "seldon", Transport: "rest", Size: size1K, Delay: o.memoryDelay, Mode: modeMemory, Records: o.memoryRecords}
	const ms5 = 5 * time.Millisecond

	seldonREST := b("seldon", "rest", size1K, 0, 0)
	tfGRPC := b("tensorflow", "grpc", size1K, 0, 0)
	if o.short {
		return []scenario{seldonREST, tfGRPC, paced(seldonREST), memory}
	}
	seldonREST5 := b("seldon", "rest", size1K, ms5, 0)
	return []scenario{
		seldonREST, seldonREST5, b("seldon", "grpc", size1K, 0, 0),
		b("tensorflow", "rest", size1K, 0, 0), tfGRPC, b("tensorflow", "grpc", size1K, ms5, 0),
		b("v2", "rest", size1K, 0, 0), b("v2", "grpc", size1K, 0, 0),
		b("tensorflow", "rest", sizeCIFAR10, 0, 0), b("tensorflow", "grpc", sizeCIFAR10, 0, 0),
		b("seldon", "rest", size1K, 0, ms5),
		paced(seldonREST), paced(seldonREST5), paced(tfGRPC),
		memory,
	}
}

// selected are the scenarios -only picks.
func selected(o options) []scenario {
	var out []scenario
	for _, s := range scenarios(o) {
		if o.only.MatchString(s.name() + " " + s.Mode) {
			out = append(out, s)
		}
	}
	return out
}

// bench runs scenarios.
type bench struct {
	o      options
	self   string // this binary, which runs the passthrough loop
	stdout io.Writer
	// backlogRates are the sidecar's backlog records/s by config, which paced scenarios run at a
	// fraction of.
	backlogRates map[string]float64
}

// measure is what one run of the sidecar or of the passthrough loop measured.
type measure struct {
	Answered     int     `json:"answered"`
	ErrorRecords int     `json:"error_records"`
	FirstError   string  `json:"first_error,omitempty"`
	Seconds      float64 `json:"seconds"` // first answer to last
	// RecordsPerSec is answers a second from the first answer to the last: the start (joining the
	// group, the first fetch) is not in it.
	RecordsPerSec float64 `json:"records_per_sec"`
	// End to end, paced runs only: from the record's production to its answer read.
	P50Ms float64 `json:"p50_ms,omitempty"`
	P99Ms float64 `json:"p99_ms,omitempty"`
	MaxMs float64 `json:"max_ms,omitempty"`
	// CPUMicros is the process's CPU time (user+system) per answer, over the same span.
	CPUMicros  float64     `json:"cpu_us_per_record"`
	PeakRSSMiB float64     `json:"peak_rss_mib"`
	RSS        []rssSample `json:"rss,omitempty"`
	// ModelCPUMicros is the model process's CPU per answer over the span (sidecar runs).
	ModelCPUMicros float64 `json:"model_cpu_us_per_record,omitempty"`
}

// result is one scenario's figures.
type result struct {
	Scenario     string  `json:"scenario"`
	Mode         string  `json:"mode"`
	Protocol     string  `json:"protocol"`
	Transport    string  `json:"transport"`
	Size         string  `json:"size"`
	BodyBytes    int     `json:"body_bytes"`
	ModelDelayMs float64 `json:"model_delay_ms"`
	CallCostMs   float64 `json:"model_call_cost_ms"`
	Records      int     `json:"records"`
	RatePerSec   float64 `json:"paced_rate_per_sec,omitempty"`
	// IdealPerSec is what the model allows, unbatched, when it is slow: KAFKA_WORKERS calls each
	// taking the model's latency, or one call at a time each costing the model's cost per call.
	IdealPerSec float64       `json:"ideal_records_per_sec,omitempty"`
	Sidecar     measure       `json:"sidecar"`
	Passthrough *measure      `json:"passthrough,omitempty"`
	ModelDirect *directResult `json:"model_direct,omitempty"`
	// Ratios are sidecar / baseline: records/s against passthrough, model-direct and the smaller of
	// the two, CPU per record and peak RSS against passthrough.
	Ratios map[string]float64 `json:"ratios,omitempty"`
}

func (b *bench) run(s scenario) (*result, error) {
	pl, err := newPayload(s.Protocol, s.Transport, s.Size)
	if err != nil {
		return nil, err
	}
	r := &result{Scenario: s.name(), Mode: s.Mode, Protocol: s.Protocol, Transport: s.Transport, Size: s.Size,
		BodyBytes: len(pl.values[0]), ModelDelayMs: ms(s.Delay), CallCostMs: ms(s.CallCost), Records: s.Records}

	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	// A backlog is read by both processes, each in its group; paced records are sent to each process's
	// own input topic, so that one does not find the other's.
	in, out, ptIn, ptOut := "bench-in-"+suffix, "bench-out-"+suffix, "bench-in-"+suffix, "bench-pt-out-"+suffix
	topics := []string{in, out, ptOut}
	if s.Mode == modePaced {
		ptIn = "bench-pt-in-" + suffix
		topics = append(topics, ptIn)
	}
	drop, err := createTopics(b.o.bootstrap, b.o.partitions, topics...)
	if err != nil {
		return nil, err
	}
	defer drop()
	mdl, err := startModel(b.o.testmodel, modelName, s.Delay, s.CallCost)
	if err != nil {
		return nil, err
	}
	defer mdl.stop()
	sidecar := func() (*child, error) { return b.startSidecar(s, mdl, in, out, "bench-sidecar-"+suffix) }
	pt := func() (*child, error) { return b.startPassthrough(ptIn, ptOut, "bench-pt-"+suffix) }

	switch s.Mode {
	case modeBacklog, modeMemory:
		// The whole backlog is written before the sidecar starts: the figure is the sidecar's rate, not
		// the producer's.
		ld, err := newLoad(b.o.bootstrap, in, pl, "r", 0, 5)
		if err != nil {
			return nil, err
		}
		err = ld.backlog(s.Records)
		ld.close()
		if err != nil {
			return nil, err
		}
		var window time.Duration
		if s.Mode == modeMemory {
			window = time.Duration(b.o.memorySeconds) * time.Second
		}
		m, err := drain(sidecar, mdl, b.o.bootstrap, out, b.o.partitions, s.Records, window)
		if err != nil {
			return nil, fmt.Errorf("sidecar: %w", err)
		}
		r.Sidecar = *m
		if r.Passthrough, err = drain(pt, nil, b.o.bootstrap, ptOut, b.o.partitions, s.Records, window); err != nil {
			return nil, fmt.Errorf("passthrough: %w", err)
		}
		if s.Mode == modeBacklog {
			b.backlogRates[s.config()] = m.RecordsPerSec
			if r.ModelDirect, err = modelDirect(mdl, s.Protocol, s.Transport, modelName, pl, s.Records, b.o.workers); err != nil {
				return nil, err
			}
		}
	case modePaced:
		rate := float64(b.o.rate)
		if rate == 0 {
			backlog, ok := b.backlogRates[s.config()]
			if !ok {
				return nil, fmt.Errorf("no backlog rate to pace at: run the backlog scenario %q too, or give -rate", s.config())
			}
			rate = b.o.pacedFraction * backlog
		}
		n := max(2, int(rate*float64(b.o.pacedSeconds)))
		r.RatePerSec, r.Records = rate, n
		m, err := b.paced(sidecar, mdl, pl, in, out, rate, n, "s")
		if err != nil {
			return nil, fmt.Errorf("sidecar: %w", err)
		}
		r.Sidecar = *m
		if r.Passthrough, err = b.paced(pt, nil, pl, ptIn, ptOut, rate, n, "p"); err != nil {
			return nil, fmt.Errorf("passthrough: %w", err)
		}
	}
	switch {
	case s.CallCost > 0:
		r.IdealPerSec = float64(time.Second) / float64(s.CallCost)
	case s.Delay > 0:
		r.IdealPerSec = float64(b.o.workers) * float64(time.Second) / float64(s.Delay)
	}
	r.Ratios = ratios(r)
	return r, nil
}

func ratios(r *result) map[string]float64 {
	out := map[string]float64{}
	div := func(name string, a, b float64) {
		if a > 0 && b > 0 {
			out[name] = a / b
		}
	}
	if p := r.Passthrough; p != nil {
		div("records_per_sec/passthrough", r.Sidecar.RecordsPerSec, p.RecordsPerSec)
		div("cpu_per_record/passthrough", r.Sidecar.CPUMicros, p.CPUMicros)
		div("peak_rss/passthrough", r.Sidecar.PeakRSSMiB, p.PeakRSSMiB)
		div("p99/passthrough", r.Sidecar.P99Ms, p.P99Ms)
	}
	if r.Mode == modeBacklog {
		div("records_per_sec/ideal", r.Sidecar.RecordsPerSec, r.IdealPerSec)
	}
	if d := r.ModelDirect; d != nil {
		div("records_per_sec/model_direct", r.Sidecar.RecordsPerSec, d.RecordsPerSec)
		if p := r.Passthrough; p != nil {
			div("records_per_sec/min_baseline", r.Sidecar.RecordsPerSec, min(p.RecordsPerSec, d.RecordsPerSec))
		}
	}
	return out
}

func (b *bench) startSidecar(s scenario, mdl *model, in, out, group string) (*child, error) {
	cmd := exec.Command(b.o.executor, "--sdep=bench", "--namespace=bench", "--predictor=default",
		"--protocol="+s.Protocol, "--transport="+s.Transport, "--http_port=0", "--grpc_port=0", "--log_level=WARN")
	cmd.Env = append(os.Environ(), "KAFKA_BROKER="+b.o.bootstrap, "KAFKA_INPUT_TOPIC="+in, "KAFKA_OUTPUT_TOPIC="+out,
		"KAFKA_GROUP_ID="+group, "KAFKA_WORKERS="+strconv.Itoa(b.o.workers),
		"ENGINE_PREDICTOR="+predictor(s.Transport, mdl))
	cmd.Env = append(cmd.Env, b.o.sidecarEnv...)
	return startChild("sidecar", cmd)
}

func (b *bench) startPassthrough(in, out, group string) (*child, error) {
	cmd := exec.Command(b.self, passthroughCommand, "-bootstrap", b.o.bootstrap, "-in", in, "-out", out, "-group", group)
	return startChild("passthrough loop", cmd)
}

// predictor is the ENGINE_PREDICTOR of a one-model graph on the test model.
func predictor(transport string, mdl *model) string {
	httpPort, _ := strconv.Atoi(mdl.httpPort)
	grpcPort, _ := strconv.Atoi(mdl.grpcPort)
	typ := "REST"
	if transport == "grpc" {
		typ = "GRPC"
	}
	b, _ := json.Marshal(map[string]any{"name": "default", "graph": map[string]any{"name": modelName, "type": "MODEL",
		"endpoint": map[string]any{"service_host": "127.0.0.1", "httpPort": httpPort, "grpcPort": grpcPort, "type": typ}}})
	return base64.StdEncoding.EncodeToString(b)
}

// drain starts a process on a backlog and reads its answers until n are read or, when window > 0, for
// window after the first. mdl, when not nil, is the model, whose CPU is read over the same span.
//
// The span is the process's own: from the first answer it produced to the last, by the answers'
// timestamps, which the reader's lag does not shift. The CPU over that span comes from samples taken
// every cpuEvery, interpolated.
func drain(start func() (*child, error), mdl *model, bootstrap, out string, partitions, n int, window time.Duration) (*measure, error) {
	rd, err := newReader(bootstrap, out, partitions)
	if err != nil {
		return nil, err
	}
	defer rd.close()
	c, err := start()
	if err != nil {
		return nil, err
	}
	defer c.stop()

	var (
		m                          measure
		firstSeen, firstTS, lastTS time.Time
		firstAt                    atomic.Pointer[time.Time]
		answered                   atomic.Int64
	)
	stopWatch := watch(c, cpuEvery, rssInterval(window), func() (time.Time, int64) {
		if t := firstAt.Load(); t != nil {
			return *t, answered.Load()
		}
		return time.Time{}, 0
	})
	stopModel := func() watched { return watched{} }
	if mdl != nil {
		stopModel = watch(mdl.child, cpuEvery, 0, func() (time.Time, int64) { return time.Time{}, 0 })
	}
	err = rd.read(idle, c.exited, func(a answer) bool {
		if m.Answered == 0 {
			firstSeen, firstTS, lastTS = a.seen, a.produced, a.produced
			firstAt.Store(&firstSeen)
		}
		if a.produced.Before(firstTS) {
			firstTS = a.produced
		}
		if a.produced.After(lastTS) {
			lastTS = a.produced
		}
		m.Answered++
		answered.Store(int64(m.Answered))
		m.count(a)
		return m.Answered < n && (window == 0 || a.seen.Sub(firstSeen) < window)
	})
	// The last answer's CPU sample may be up to cpuEvery after it.
	time.Sleep(2 * cpuEvery)
	_, m.PeakRSSMiB = c.memory()
	w, mw := stopWatch(), stopModel()
	if err == errExited {
		return nil, c.failed()
	}
	if err != nil {
		return nil, fmt.Errorf("after %d of %d answers: %w; the %s's last output:\n%s", m.Answered, n, err, c.name, c.stderr.String())
	}
	m.span(firstTS, lastTS, m.Answered-1, w.cpuAt(lastTS)-w.cpuAt(firstTS), mw.cpuAt(lastTS)-mw.cpuAt(firstTS))
	if window > 0 {
		m.RSS = w.rss
	}
	return &m, nil
}

// cpuEvery is how often a measured process's CPU time is read.
const cpuEvery = 20 * time.Millisecond

// rssInterval samples the resident set about 20 times over a window, and 4 times a second otherwise.
func rssInterval(window time.Duration) time.Duration {
	if window > 0 {
		return max(window/20, 100*time.Millisecond)
	}
	return 250 * time.Millisecond
}

// count notes an error record.
func (m *measure) count(a answer) {
	if a.error != "" {
		m.ErrorRecords++
		if m.FirstError == "" {
			m.FirstError = a.error
		}
	}
}

// span fills in the rates of the records answered from from to to (n of them after from), with the
// CPU the process and the model spent meanwhile.
func (m *measure) span(from, to time.Time, n int, cpu, modelCPU time.Duration) {
	m.Seconds = to.Sub(from).Seconds()
	if n > 0 && m.Seconds > 0 {
		m.RecordsPerSec = float64(n) / m.Seconds
		m.CPUMicros = micros(cpu) / float64(n)
		m.ModelCPUMicros = micros(modelCPU) / float64(n)
	}
}

// paced starts a process, warms it up with a record per worker (joining the group, the first fetch,
// the model connections), then produces n records at rate a second and reads their answers: the
// latency of each is from the time it was handed to the producer to the time its answer is read.
func (b *bench) paced(start func() (*child, error), mdl *model, pl payload, in, out string, rate float64, n int, prefix string) (*measure, error) {
	rd, err := newReader(b.o.bootstrap, out, b.o.partitions)
	if err != nil {
		return nil, err
	}
	defer rd.close()
	warm := b.o.workers
	ld, err := newLoad(b.o.bootstrap, in, pl, prefix, warm+n, 0)
	if err != nil {
		return nil, err
	}
	defer ld.close()
	c, err := start()
	if err != nil {
		return nil, err
	}
	defer c.stop()

	for i := range warm {
		if err := ld.send(i); err != nil {
			return nil, err
		}
	}
	seen := 0
	if err := rd.read(idle, c.exited, func(answer) bool { seen++; return seen < warm }); err != nil {
		if err == errExited {
			return nil, c.failed()
		}
		return nil, fmt.Errorf("warming up: %w; the %s's last output:\n%s", err, c.name, c.stderr.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var sendErr error
	cpu0 := c.cpu()
	var modelCPU0 time.Duration
	if mdl != nil {
		modelCPU0 = mdl.cpu()
	}
	startAt := time.Now()
	wg.Go(func() { sendErr = ld.paced(ctx, warm, n, rate) })

	var (
		m    measure
		lat  = make([]time.Duration, 0, n)
		last time.Time
	)
	err = rd.read(idle, c.exited, func(a answer) bool {
		i, ok := index(a.key, prefix)
		if !ok || i < warm {
			return true // a warm-up answer read twice, after a retry
		}
		last = a.seen
		m.Answered++
		m.count(a)
		lat = append(lat, a.seen.Sub(time.Unix(0, ld.sent[i].Load())))
		return m.Answered < n
	})
	cancel()
	wg.Wait()
	cpu := c.cpu() - cpu0
	var modelCPU time.Duration
	if mdl != nil {
		modelCPU = mdl.cpu() - modelCPU0
	}
	_, m.PeakRSSMiB = c.memory()
	if err == errExited {
		return nil, c.failed()
	}
	if err != nil {
		return nil, fmt.Errorf("after %d of %d answers: %w; the %s's last output:\n%s", m.Answered, n, err, c.name, c.stderr.String())
	}
	if sendErr != nil {
		return nil, sendErr
	}
	// The span is from the first record sent: at a fixed rate, the answers come at the sending rate.
	m.span(startAt, last, m.Answered, cpu, modelCPU)
	slices.Sort(lat)
	m.P50Ms, m.P99Ms, m.MaxMs = ms(percentile(lat, 0.5)), ms(percentile(lat, 0.99)), ms(lat[len(lat)-1])
	return &m, nil
}
