package executor

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seldon-kafka/sidecar/executor/graph"
)

func TestKafkaErrorsAreLoggedOnceThenRemindedWithACount(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	down := ckafka.NewError(ckafka.ErrAllBrokersDown, "1/1 brokers are down", false)
	var l errorLog
	start := time.Now()
	// 40 events a second for a minute, from both clients, as a lost broker gives.
	for i := range 2400 {
		now := start.Add(time.Duration(i) * 25 * time.Millisecond)
		l.log(log, "consumer", down, now)
		l.log(log, "producer", down, now)
	}
	warns := strings.Count(buf.String(), "level=WARN")
	// Per client: the first event, and a reminder at 30 s (the minute's end at 59.975 s is not yet 60).
	if warns != 4 {
		t.Errorf("%d warnings for a minute of a lost broker, want 4:\n%s", warns, grepLevel(buf.String(), "WARN"))
	}
	if !strings.Contains(buf.String(), "times_since_last_logged=1200") {
		t.Errorf("the reminder does not count the events since the first warning:\n%s", grepLevel(buf.String(), "WARN"))
	}
	// Once the broker is back, the next loss is news again.
	buf.Reset()
	l.reset()
	l.log(log, "consumer", down, start.Add(2*time.Minute))
	if strings.Count(buf.String(), "level=WARN") != 1 {
		t.Errorf("after reset the error is not logged as a warning:\n%s", buf.String())
	}
}

func grepLevel(log, level string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "level="+level) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestGoProfilesAreServedOnlyWhenAskedFor(t *testing.T) {
	for _, on := range []bool{false, true} {
		cfg := Config{Transport: "grpc", MetricsPath: "/metrics", Pprof: on}
		e := &Executor{cfg: cfg, p: &pipeline{m: newMetrics(&graph.Graph{}), gate: newGate()}}
		srv := httptest.NewServer(e.httpHandler(nil))
		resp, err := http.Get(srv.URL + "/debug/pprof/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.Close()
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[on]; resp.StatusCode != want {
			t.Errorf("SIDECAR_PPROF=%v: /debug/pprof/cmdline answered %d, want %d", on, resp.StatusCode, want)
		}
	}
}
