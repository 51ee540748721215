package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// livenessWindow is how long the poll loop may go without a turn before the process counts as stuck.
// A rebalance waits at most 10 s for records in flight, so a live loop always turns well within it.
const livenessWindow = 60 * time.Second

// httpHandler serves --http_port: health, metrics and, with --transport=rest, the synchronous API.
func (e *Executor) httpHandler(a *api) http.Handler {
	p := e.p
	mux := http.NewServeMux()
	if e.cfg.Transport != "grpc" {
		a.routes(mux)
	}
	mux.HandleFunc("GET /live", func(w http.ResponseWriter, r *http.Request) {
		last := time.Unix(0, p.lastPoll.Load())
		if p.lastPoll.Load() != 0 && time.Since(last) > livenessWindow {
			writeStatus(w, http.StatusServiceUnavailable, map[string]any{"live": false, "last_poll": last})
			return
		}
		writeStatus(w, http.StatusOK, map[string]any{"live": true})
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		model, broker, draining := p.gate.isOpen(), p.brokerUp.Load(), p.draining.Load()
		code := http.StatusOK
		if !model || !broker || draining {
			code = http.StatusServiceUnavailable
		}
		body := map[string]any{"ready": code == http.StatusOK, "model": model, "broker": broker,
			"shutting_down": draining, "in_flight": p.held.Load()}
		if nodes := p.nodes.Load(); nodes != nil {
			body["nodes"] = *nodes
		}
		writeStatus(w, code, body)
	})
	mux.Handle("GET "+e.cfg.MetricsPath, promhttp.HandlerFor(p.m.reg, promhttp.HandlerOpts{}))
	if e.cfg.Pprof {
		// Registered by hand: importing net/http/pprof registers on http.DefaultServeMux, which is not
		// served here.
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func writeStatus(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

// nodeState is a graph node's readiness as /ready shows it.
type nodeState struct {
	Node    string    `json:"node"`
	Address string    `json:"address"`
	Ready   bool      `json:"ready"`
	Error   string    `json:"error,omitempty"` // why it is not ready: the last check's failure
	Since   time.Time `json:"since"`           // when it became what it is
}

// notReadyReminder is how often a node that stays not ready is logged again: often enough that the
// cause is in any recent window of the log, rarely enough not to flood it.
const notReadyReminder = 30 * time.Second

// watchGraph keeps the gate in step with the readiness of every graph node: the gate is open only when
// all are ready. It checks every second while they are, faster while one is not, and at once after a
// failed call. A node that is not ready is logged with its cause when it fails, again every
// notReadyReminder while it lasts, and when it recovers; /ready shows each node's last state.
func (p *pipeline) watchGraph(ctx context.Context) {
	var prev []nodeState
	lastNote := map[string]time.Time{}
	check := func() {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		statuses := p.graph.Ready(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		states := make([]nodeState, len(statuses))
		all := true
		for i, st := range statuses {
			s := nodeState{Node: st.Node, Address: st.Address, Ready: st.Err == nil, Since: now}
			if st.Err != nil {
				s.Error = st.Err.Error()
				all = false
			}
			if prev != nil && prev[i].Ready == s.Ready {
				s.Since = prev[i].Since
			}
			states[i] = s
			changed := prev == nil || prev[i].Ready != s.Ready
			switch {
			case s.Ready && changed:
				p.m.nodeReady.WithLabelValues(s.Node).Set(1)
				if prev != nil {
					p.log.Info("graph node ready", "node", s.Node, "address", s.Address,
						"was_down_for", now.Sub(prev[i].Since).Round(time.Second).String())
				}
			case !s.Ready && (changed || now.Sub(lastNote[s.Node]) >= notReadyReminder):
				p.m.nodeReady.WithLabelValues(s.Node).Set(0)
				lastNote[s.Node] = now
				msg := "graph node not ready"
				if !changed {
					msg = "graph node still not ready"
				}
				p.log.Warn(msg, "node", s.Node, "address", s.Address, "error", s.Error,
					"not_ready_for", now.Sub(s.Since).Round(time.Second).String())
			}
		}
		prev = states
		p.nodes.Store(&states)
		if p.gate.set(all) {
			if all {
				p.m.ready.WithLabelValues("model").Set(1)
				p.log.Info("graph ready", "nodes", len(states))
			} else {
				p.m.ready.WithLabelValues("model").Set(0)
				p.log.Warn("graph not ready; fetching paused")
			}
		}
	}
	check()
	for {
		every := time.Second
		if !p.gate.isOpen() {
			every = 250 * time.Millisecond
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-p.gate.probe:
			t.Stop()
		case <-t.C:
		}
		check()
	}
}

// errorReminder is how often an error librdkafka keeps reporting is logged again, with a count.
const errorReminder = 30 * time.Second

// errorLog keeps librdkafka's error events readable. While the broker is away both clients report
// "all broker connections are down" many times a second; each kind of error (client and code) is
// logged as a warning when it first happens, at debug level after that, and again as a warning every
// errorReminder with the count since, until reset (the broker is back).
type errorLog struct {
	mu   sync.Mutex
	seen map[errorKind]*errorCount
}

type errorKind struct {
	client string
	code   ckafka.ErrorCode
}

type errorCount struct {
	warned time.Time // when it was last logged as a warning
	since  int       // events since then
}

func (l *errorLog) log(log *slog.Logger, client string, e ckafka.Error, now time.Time) {
	l.mu.Lock()
	if l.seen == nil {
		l.seen = map[errorKind]*errorCount{}
	}
	k := errorKind{client, e.Code()}
	c, ok := l.seen[k]
	if !ok {
		c = &errorCount{warned: now}
		l.seen[k] = c
	}
	c.since++
	warn, repeated := !ok || now.Sub(c.warned) >= errorReminder, c.since
	if warn {
		c.warned, c.since = now, 0
	}
	l.mu.Unlock()
	switch {
	case !ok:
		log.Warn("kafka "+client+" error", "code", e.Code().String(), "error", e.Error())
	case warn:
		log.Warn("kafka "+client+" error, still", "code", e.Code().String(), "error", e.Error(),
			"times_since_last_logged", repeated)
	default:
		log.Debug("kafka "+client+" error", "code", e.Code().String(), "error", e.Error())
	}
}

// reset forgets the errors seen: the next one is news again.
func (l *errorLog) reset() {
	l.mu.Lock()
	clear(l.seen)
	l.mu.Unlock()
}

// kafkaError handles an error event of either client: a fatal one stops the sidecar; "all brokers down"
// marks the broker not ready until watchBroker sees it again; every one is logged through errorLog.
func (p *pipeline) kafkaError(client string, e ckafka.Error) {
	if e.IsFatal() {
		if p.txn != nil && client == "producer" {
			p.txn.stop("producing", e) // says so when it is a fencing
			return
		}
		select {
		case p.fatal <- fmt.Errorf("kafka %s: fatal: %w", client, e):
		default:
		}
		return
	}
	if e.Code() == ckafka.ErrAllBrokersDown {
		p.brokerSeen.Store(false) // what it saw before the broker went is no proof it is back
		if p.brokerUp.Swap(false) {
			p.m.ready.WithLabelValues("broker").Set(0)
		}
	}
	p.kafkaErrors.log(p.log, client, e, time.Now())
}

// Broker watch periods: the check's pace while the broker is up and while it is down, and how often a
// broker still down is logged again with the check's latest error.
const (
	watchUpEvery      = 5 * time.Second
	watchDownEvery    = time.Second
	watchDownLogEvery = 30 * time.Second
)

// watchBroker decides whether the broker is usable: it is when it answers a metadata request for the
// sidecar's topics and each of them exists. A request that gets no answer in time does not count against
// the broker when it took an answer or a commit since the last check (brokerSeen): on the producer's
// connection the request waits behind the produce requests, and through a catch-up after a restart those
// can outlast its timeout for minutes while the broker serves the sidecar well.
func (p *pipeline) watchBroker(ctx context.Context, producer *ckafka.Producer) {
	topics := []string{p.cfg.InputTopic, p.cfg.OutputTopic}
	if p.cfg.ErrorTopic != p.cfg.OutputTopic {
		topics = append(topics, p.cfg.ErrorTopic)
	}
	// metadata says what is wrong, and whether the broker answered at all.
	metadata := func() (problem error, answered bool) {
		if p.metadataHook != nil {
			if err := p.metadataHook(); err != nil {
				return fmt.Errorf("metadata: %w", err), false
			}
		}
		for _, t := range topics {
			md, err := producer.GetMetadata(&t, false, 5000)
			if err != nil {
				return fmt.Errorf("metadata: %w", err), false
			}
			if tm, ok := md.Topics[t]; !ok || tm.Error.Code() != ckafka.ErrNoError {
				return fmt.Errorf("topic %s: %v", t, tm.Error), true
			}
		}
		return nil, true
	}
	var downSince, downLogged time.Time
	check := func() {
		seen := p.brokerSeen.Swap(false)
		problem, answered := metadata()
		up := problem == nil || (!answered && seen)
		now := time.Now()
		switch was := p.brokerUp.Swap(up); {
		case up && !was:
			p.m.ready.WithLabelValues("broker").Set(1)
			p.log.Info("kafka reachable", "brokers", p.cfg.Brokers)
			p.kafkaErrors.reset()
			p.brokerBack.notify()
		case !up && was:
			downSince, downLogged = now, now
			p.m.ready.WithLabelValues("broker").Set(0)
			p.log.Warn("kafka not usable", "brokers", p.cfg.Brokers, "error", problem)
		case !up && downSince.IsZero(): // marked down by an error event, which was logged
			downSince, downLogged = now, now
		case !up && now.Sub(downLogged) >= watchDownLogEvery:
			downLogged = now
			p.log.Warn("kafka still not usable", "brokers", p.cfg.Brokers, "for", now.Sub(downSince).Round(time.Second),
				"error", problem)
		}
		if up {
			downSince = time.Time{}
		}
	}
	for {
		check()
		every := watchUpEvery
		if !p.brokerUp.Load() {
			every = watchDownEvery
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
