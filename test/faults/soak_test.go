package faults

import (
	"bufio"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/internal/testkit"
)

// sampleMetricsEvery is how often the soak reads a sidecar's /metrics.
const sampleMetricsEvery = 10 * time.Second

// TestSoak runs a stream at half the maximum throughput for -soak, through periodic faults in turn — a
// SIGKILL of one replica, a broker restart, a third replica joining and leaving — and checks that nothing
// is lost and that a replica that lives through it all keeps a flat memory and goroutine count. After a
// warm-up (a tenth of the run, one minute at least) the rest is cut in two halves, each of which holds
// every kind of fault (a fault comes every twelfth of the run, three kinds in turn), so each half holds
// the same catch-ups, whose prefetch and records in flight lift the resident set for a while:
//
//   - the replica's highest resident memory over the second half is at most 25% above its highest over
//     the first: memory that grows from fault to fault, not the high-water mark of one catch-up;
//   - its highest goroutine count over the second half is at most 10 above the highest over the first.
//
// The maximum throughput is measured first, on the same topology (two replicas draining a backlog),
// unless -soak.rate gives the rate.
func TestSoak(t *testing.T) {
	if *soakFlag == 0 {
		t.Skip("the soak runs with -soak=DURATION (make soak: 30m)")
	}
	rate := *soakRateFlag
	if rate == 0 {
		rate = max(1, maxThroughput(t)/2)
	}
	fmt.Printf("soak for %v at %d requests/s, seed %d, stall bounds %v (group) and %v (partition)\n",
		*soakFlag, rate, seed, stallBound, starveBound)
	r := newRun(t, "soak", spec{records: 1 << 30, rate: rate, partitions: 6, modelDelay: 2 * time.Millisecond})
	anchor := r.startSidecar() // lives through every fault; its memory and goroutines are judged
	other := r.startSidecar()
	samples := sampleMetrics(anchor)
	r.feed.start()

	faults := []func(){
		func() { // a SIGKILL of the other replica
			r.fault()
			other.kill()
			other = r.startSidecar()
			r.faultOver("a SIGKILL", commits)
			r.waitRecovered(5 * time.Minute)
		},
		func() { // a broker restart on the same data
			if !ourBroker(t) {
				return
			}
			restartBroker(r, 5*time.Second)
			r.waitRecovered(5 * time.Minute)
		},
		func() { // a third replica joins, then leaves
			third := r.startSidecar()
			r.mon.recovering("a replica added", commits)
			r.waitRecovered(5 * time.Minute)
			time.Sleep(30 * time.Second)
			third.terminate()
			r.mon.recovering("a replica removed", commits)
			r.waitRecovered(5 * time.Minute)
		},
	}
	period := max(*soakFlag/12, time.Minute)
	end := time.Now().Add(*soakFlag)
	count := 0
	for next := time.Now().Add(period); next.Before(end); next = next.Add(period) {
		time.Sleep(time.Until(next))
		faults[count%len(faults)]()
		count++
	}
	time.Sleep(time.Until(end))
	r.feed.stop()
	samples.stop()
	r.finish(expect{}, fmt.Sprintf("%v at %d/s, %d faults", *soakFlag, rate, count))
	judgeFlat(t, samples.list(), *soakFlag)
}

// maxThroughput is the rate, in requests per second, at which two replicas drain a backlog: from the
// first answer to the last commit.
func maxThroughput(t *testing.T) int {
	t.Helper()
	const backlog = 10000
	r := newRun(t, "soak-calibrate", spec{records: backlog, partitions: 6, modelDelay: 2 * time.Millisecond})
	r.startSidecar()
	r.startSidecar()
	r.waitAnswered(1, 3*time.Minute)
	first := time.Now()
	r.waitFor("the backlog committed", 10*time.Minute, func() bool { return r.mon.settled(first) })
	took := time.Since(first)
	rate := int(float64(backlog) / took.Seconds())
	r.finish(expect{}, fmt.Sprintf("max throughput %d/s", rate))
	return rate
}

// restartBroker stops the broker process and starts it again on the same data after down, as the
// battery's broker scenario does: a fault from the stop until it serves again.
func restartBroker(r *run, down time.Duration) {
	r.t.Helper()
	r.fault()
	r.mon.pause(true)
	testkit.CloseAdmin(r.bootstrap) // its reconnection attempts would flood the log
	broker(r.t, "stop")
	time.Sleep(down)
	broker(r.t, "start")
	r.mon.pause(false)
	r.faultOver("a broker restart", regroup)
}

// metricSample is one reading of a sidecar's /metrics.
type metricSample struct {
	at         time.Time
	rss        float64 // bytes
	goroutines float64
}

// sampler reads a sidecar's /metrics every sampleMetricsEvery until stopped.
type sampler struct {
	quit chan struct{}
	done chan struct{}
	mu   sync.Mutex
	got  []metricSample
}

func sampleMetrics(sc *sidecar) *sampler {
	s := &sampler{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(sampleMetricsEvery)
		defer tick.Stop()
		for {
			select {
			case <-s.quit:
				return
			case <-tick.C:
			}
			if m, ok := readMetrics(sc.metricsAddr()); ok {
				s.mu.Lock()
				s.got = append(s.got, m)
				s.mu.Unlock()
			}
		}
	}()
	return s
}

func (s *sampler) stop() {
	close(s.quit)
	<-s.done
}

func (s *sampler) list() []metricSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// readMetrics reads process_resident_memory_bytes and go_goroutines from a sidecar's /metrics.
func readMetrics(addr string) (metricSample, bool) {
	if addr == "" {
		return metricSample{}, false
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return metricSample{}, false
	}
	defer resp.Body.Close()
	m := metricSample{at: time.Now()}
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			m.rss = v
			found++
		case "go_goroutines":
			m.goroutines = v
			found++
		}
	}
	return m, found == 2
}

// judgeFlat applies TestSoak's criterion to the anchor replica's samples and prints the figures.
func judgeFlat(t *testing.T, samples []metricSample, d time.Duration) {
	t.Helper()
	if len(samples) < 10 {
		t.Fatalf("only %d /metrics samples of the replica that lived through the soak", len(samples))
	}
	start := samples[0].at.Add(max(d/10, time.Minute))
	var kept []metricSample
	for _, s := range samples {
		if !s.at.Before(start) {
			kept = append(kept, s)
		}
	}
	if len(kept) < 10 {
		t.Fatalf("only %d /metrics samples after the warm-up", len(kept))
	}
	first, second := kept[:len(kept)/2], kept[len(kept)/2:]
	peak := func(ss []metricSample, of func(metricSample) float64) float64 {
		var m float64
		for _, s := range ss {
			m = max(m, of(s))
		}
		return m
	}
	rss := func(s metricSample) float64 { return s.rss }
	goroutines := func(s metricSample) float64 { return s.goroutines }
	const mib = 1 << 20
	fmt.Printf("soak replica: RSS peak %.1f MiB (first half) → %.1f MiB (second half), %.1f → %.1f MiB at the ends; goroutines at most %.0f → %.0f; %d samples\n",
		peak(first, rss)/mib, peak(second, rss)/mib, kept[0].rss/mib, kept[len(kept)-1].rss/mib,
		peak(first, goroutines), peak(second, goroutines), len(samples))
	if peak(second, rss) > 1.25*peak(first, rss) {
		t.Errorf("resident memory grew: at most %.1f MiB over the first half, %.1f MiB over the second", peak(first, rss)/mib, peak(second, rss)/mib)
	}
	if peak(second, goroutines) > peak(first, goroutines)+10 {
		t.Errorf("goroutines grew: at most %.0f over the first half, %.0f over the second", peak(first, goroutines), peak(second, goroutines))
	}
}
