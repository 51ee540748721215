package payloadlog

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestAModeSendsItsKindsOfPayload(t *testing.T) {
	// Feedback goes with the responses, as the legacy executor logged it.
	cases := []struct {
		mode                    string
		request, resp, feedback bool
	}{{"request", true, false, false}, {"response", false, true, true}, {"all", true, true, true}, {"", true, true, true}, {"ALL", true, true, true}}
	for _, tc := range cases {
		if Wants(tc.mode, Request) != tc.request || Wants(tc.mode, Response) != tc.resp || Wants(tc.mode, Feedback) != tc.feedback {
			t.Errorf("mode %q: request %v response %v feedback %v, want %v %v %v", tc.mode, Wants(tc.mode, Request),
				Wants(tc.mode, Response), Wants(tc.mode, Feedback), tc.request, tc.resp, tc.feedback)
		}
	}
}

func TestAFullQueueDropsInsteadOfWaitingAndShutdownEndsAStuckSend(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	l, err := New(Settings{DefaultURL: srv.URL, Workers: 1, Buffer: 2, Timeout: time.Hour}, prometheus.NewRegistry(),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	// One message is with the stuck sender, two wait; every other one is dropped, and Log returns at
	// once for each (were it to wait, this loop would never end: the sender never finishes).
	const n = 50
	for range n {
		l.Log("", Request, "m", "p", []byte("{}"), "application/json")
	}
	dropped := testutil.ToFloat64(l.dropped.WithLabelValues("queue_full"))
	if dropped < n-3 {
		t.Errorf("%v dropped of %d with room for 3", dropped, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	l.Close(ctx) // returns once the stuck send is cancelled: the hour-long timeout does not hold it
	if got := testutil.ToFloat64(l.dropped.WithLabelValues("failed")); got < 1 {
		t.Errorf("%v messages counted failed at shutdown, want the stuck one and those queued", got)
	}
	l.Log("", Request, "m", "p", nil, "") // after Close: ignored, no panic on the closed queue
}
