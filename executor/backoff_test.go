package executor

// The model call's waiting: the backoff between retries and the readiness gate.

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

// wantBackoff is the ceiling of the wait after the attempt-th failure: min·2^(attempt-1), capped at max,
// computed without overflow.
func wantBackoff(min, max time.Duration, attempt int) time.Duration {
	d := min
	for i := 1; i < attempt; i++ {
		if d >= max/2+1 {
			return max
		}
		d *= 2
	}
	if d > max {
		return max
	}
	return d
}

func TestBackoffIsJitteredBelowTheCappedExponential(t *testing.T) {
	tests := []struct {
		name     string
		min, max time.Duration
	}{
		{"defaults", 100 * time.Millisecond, 5 * time.Second},
		{"test settings", 20 * time.Millisecond, 500 * time.Millisecond},
		{"min equals max", time.Second, time.Second},
		{"one nanosecond", time.Nanosecond, time.Nanosecond},
		{"max not a power of two of min", 30 * time.Millisecond, 1000 * time.Millisecond},
		{"large min", 10 * time.Second, time.Hour},
		{"max 2^31 times min", time.Millisecond, time.Millisecond << 31},
		// min·2^k wraps around int64 for k < 31 here, to a small positive value.
		{"large odd min", 4*time.Minute + 34879*time.Millisecond, 24 * time.Hour},
		{"huge min", time.Duration(1<<40 + 1<<10), 1000 * time.Hour},
	}
	attempts := []int{1, 2, 3, 4, 5, 10, 20, 25, 26, 27, 28, 29, 30, 31, 32, 33, 62, 63, 64, 65, 100, 1000, math.MaxInt32, math.MaxInt}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := &pipeline{cfg: Config{BackoffMin: tc.min, BackoffMax: tc.max}}
			for _, a := range attempts {
				d := wantBackoff(tc.min, tc.max, a)
				for range 50 {
					got := p.backoff(a)
					if got < d/2 || got > d {
						t.Fatalf("backoff(%d) = %v, want within [%v, %v]", a, got, d/2, d)
					}
					if got > tc.max {
						t.Fatalf("backoff(%d) = %v, above MODEL_BACKOFF_MAX %v", a, got, tc.max)
					}
				}
			}
		})
	}
}

func TestBackoffSpreadsRetries(t *testing.T) {
	p := &pipeline{cfg: Config{BackoffMin: 100 * time.Millisecond, BackoffMax: 5 * time.Second}}
	seen := map[time.Duration]bool{}
	for range 100 {
		seen[p.backoff(3)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("100 waits took %d distinct values: retries are not jittered", len(seen))
	}
}

func TestGateWaitReturnsAtOnceWhenOpen(t *testing.T) {
	g := newGate()
	g.set(true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // an open gate does not look at the context
	waited, err := g.wait(ctx)
	if waited || err != nil {
		t.Fatalf("wait on an open gate = (%v, %v), want (false, nil)", waited, err)
	}
}

func TestGateWaitBlocksUntilOpened(t *testing.T) {
	g := newGate()
	type res struct {
		waited bool
		err    error
	}
	const waiters = 5
	got := make(chan res, waiters)
	for range waiters {
		go func() {
			w, err := g.wait(context.Background())
			got <- res{w, err}
		}()
	}
	select {
	case r := <-got:
		t.Fatalf("wait on a closed gate returned %+v", r)
	case <-time.After(30 * time.Millisecond):
	}
	if !g.set(true) {
		t.Fatal("set(true) on a closed gate reported no change")
	}
	for i := range waiters {
		select {
		case r := <-got:
			if !r.waited || r.err != nil {
				t.Fatalf("wait released by opening = %+v, want waited and no error", r)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d waiters still blocked after the gate opened", waiters-i, waiters)
		}
	}
}

func TestGateWaitEndsWithTheContext(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"canceled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(20*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 20*time.Millisecond)
		}, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := newGate()
			ctx, cancel := tc.ctx()
			defer cancel()
			waited, err := g.wait(ctx)
			if !waited || !errors.Is(err, tc.want) {
				t.Fatalf("wait = (%v, %v), want (true, %v)", waited, err, tc.want)
			}
		})
	}
}

func TestGateClosesAgain(t *testing.T) {
	g := newGate()
	steps := []struct {
		open, changed bool
	}{
		{false, false}, // a new gate is closed
		{true, true},
		{true, false},
		{false, true},
		{false, false},
		{true, true},
		{false, true},
	}
	for i, s := range steps {
		if got := g.set(s.open); got != s.changed {
			t.Fatalf("step %d: set(%v) changed = %v, want %v", i, s.open, got, s.changed)
		}
		if g.isOpen() != s.open {
			t.Fatalf("step %d: isOpen = %v, want %v", i, g.isOpen(), s.open)
		}
	}
	// Closed again: wait blocks.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if waited, err := g.wait(ctx); !waited || err == nil {
		t.Fatalf("wait on a re-closed gate = (%v, %v), want it to block until the deadline", waited, err)
	}
}

func TestGateSuspectNeverBlocks(t *testing.T) {
	g := newGate()
	done := make(chan struct{})
	go func() {
		for range 100 {
			g.Suspect()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("suspect blocked with nobody reading the probe")
	}
	if n := len(g.probe); n != 1 {
		t.Fatalf("probe holds %d requests after many suspects, want 1", n)
	}
	<-g.probe
	g.Suspect()
	select {
	case <-g.probe:
	default:
		t.Fatal("suspect after the probe was read did not ask again")
	}
}
