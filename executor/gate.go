package executor

import (
	"context"
	"sync"
)

// gate is open while the model is ready. Workers wait at it before each call, so a model that is down
// costs waiting, not retries, and the consumer pauses while it is closed.
type gate struct {
	mu   sync.Mutex
	open bool
	ch   chan struct{} // closed while the gate is open
	// probe asks the readiness checker to look now, after a failed call.
	probe chan struct{}
}

func newGate() *gate {
	return &gate{ch: make(chan struct{}), probe: make(chan struct{}, 1)}
}

func (g *gate) set(open bool) (changed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open == open {
		return false
	}
	g.open = open
	if open {
		close(g.ch)
	} else {
		g.ch = make(chan struct{})
	}
	return true
}

func (g *gate) isOpen() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

// wait returns when the gate is open or ctx ends; waited says whether it had to wait.
func (g *gate) wait(ctx context.Context) (waited bool, err error) {
	g.mu.Lock()
	ch, open := g.ch, g.open
	g.mu.Unlock()
	if open {
		return false, nil
	}
	select {
	case <-ch:
		return true, nil
	case <-ctx.Done():
		return true, ctx.Err()
	}
}

// Wait is wait for the graph walk: it returns when the gate is open, or with ctx's error.
func (g *gate) Wait(ctx context.Context) error {
	_, err := g.wait(ctx)
	return err
}

// Suspect asks for a readiness check now: a call failed in a way a node going down would explain.
func (g *gate) Suspect() {
	select {
	case g.probe <- struct{}{}:
	default:
	}
}
