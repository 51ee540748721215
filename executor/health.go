package executor

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// livenessWindow is how long the poll loop may go without a turn before the process counts as stuck.
// A rebalance waits at most 10 s for records in flight, so a live loop always turns well within it.
const livenessWindow = 60 * time.Second

func (e *Executor) healthHandler() http.Handler {
	p := e.p
	mux := http.NewServeMux()
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
		writeStatus(w, code, map[string]any{"ready": code == http.StatusOK, "model": model, "broker": broker,
			"shutting_down": draining, "in_flight": p.held.Load()})
	})
	mux.Handle("GET "+e.cfg.MetricsPath, promhttp.HandlerFor(p.m.reg, promhttp.HandlerOpts{}))
	return mux
}

func writeStatus(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
