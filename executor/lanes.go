package executor

import "sync"

// lanes hands records to workers so that records with the same key run one at a time, in the order they
// were consumed, while records with different keys (or no key) run in parallel. A record waits in its
// key's lane while an earlier record of that key is with a worker; a worker that finishes a record moves
// the next one of its lane to the back of the run queue, so a busy key cannot starve the others.
type lanes struct {
	mu     sync.Mutex
	wake   *sync.Cond
	run    []*job            // ready to start, oldest first
	byKey  map[string][]*job // per key: the running record first, then those waiting behind it
	closed bool
}

func newLanes() *lanes {
	l := &lanes{byKey: map[string][]*job{}}
	l.wake = sync.NewCond(&l.mu)
	return l
}

// submit queues a record.
func (l *lanes) submit(j *job) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if j.keyed {
		q := l.byKey[j.laneKey]
		l.byKey[j.laneKey] = append(q, j)
		if len(q) > 0 {
			return // behind an earlier record of its key
		}
	}
	l.run = append(l.run, j)
	l.wake.Signal()
}

// next blocks until a record is ready or the lanes are closed (nil).
func (l *lanes) next() *job {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.run) == 0 && !l.closed {
		l.wake.Wait()
	}
	if l.closed {
		return nil
	}
	j := l.run[0]
	l.run[0] = nil
	l.run = l.run[1:]
	return j
}

// done releases a record's lane: the next record of its key becomes ready.
func (l *lanes) done(j *job) {
	if !j.keyed {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.byKey[j.laneKey]
	if len(q) == 0 || q[0] != j {
		return
	}
	q[0] = nil
	q = q[1:]
	if len(q) == 0 {
		delete(l.byKey, j.laneKey)
		return
	}
	l.byKey[j.laneKey] = q
	l.run = append(l.run, q[0])
	l.wake.Signal()
}

// close wakes every worker to stop; records still queued are not started.
func (l *lanes) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.wake.Broadcast()
}
