package executor

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// keyedJob is a record with a key; the offset serves as its name in failures.
func keyedJob(key string, offset int64) *job {
	return &job{keyed: true, laneKey: key, offset: offset}
}

func unkeyedJob(offset int64) *job { return &job{offset: offset} }

func jobName(j *job) string {
	if j == nil {
		return "<nil>"
	}
	if j.keyed {
		return fmt.Sprintf("%s%d", j.laneKey, j.offset)
	}
	return fmt.Sprintf("_%d", j.offset)
}

// runQueue is the names of the records ready to start, in order.
func runQueue(l *lanes) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []string{}
	for _, j := range l.run {
		out = append(out, jobName(j))
	}
	return out
}

// nextWithin takes the next record, failing the test if none is ready within d.
func nextWithin(t *testing.T, l *lanes, d time.Duration) *job {
	t.Helper()
	ch := make(chan *job, 1)
	go func() { ch <- l.next() }()
	select {
	case j := <-ch:
		return j
	case <-time.After(d):
		l.close() // release the goroutine
		t.Fatalf("next blocked for %v with records expected to be ready", d)
		return nil
	}
}

// stopWorkers closes the lanes and waits for the workers to return, failing the test (rather than
// hanging it) if close does not wake them all.
func stopWorkers(t *testing.T, l *lanes, wg *sync.WaitGroup) {
	t.Helper()
	l.close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("workers still waiting in next 5s after close")
	}
}

func TestLanesHandOutInOrderOneAtATimePerKey(t *testing.T) {
	// ops: "+k1" submits record 1 of key k ("+_1" an unkeyed one), "<k1" takes the next record and
	// expects k1, "-k1" marks k1 done; after every op the run queue must be as listed.
	type op struct {
		do   string
		want []string // the run queue after the op
	}
	tests := []struct {
		name string
		ops  []op
	}{
		{
			name: "same key waits behind the running record",
			ops: []op{
				{"+a1", []string{"a1"}},
				{"+a2", []string{"a1"}},
				{"+a3", []string{"a1"}},
				{"<a1", []string{}},
				{"-a1", []string{"a2"}},
				{"<a2", []string{}},
				{"-a2", []string{"a3"}},
				{"<a3", []string{}},
				{"-a3", []string{}},
			},
		},
		{
			name: "different keys and unkeyed records are ready together",
			ops: []op{
				{"+a1", []string{"a1"}},
				{"+b1", []string{"a1", "b1"}},
				{"+_1", []string{"a1", "b1", "_1"}},
				{"+_2", []string{"a1", "b1", "_1", "_2"}},
				{"+a2", []string{"a1", "b1", "_1", "_2"}},
			},
		},
		{
			name: "a busy key goes to the back of the run queue",
			ops: []op{
				{"+a1", []string{"a1"}},
				{"+a2", []string{"a1"}},
				{"+b1", []string{"a1", "b1"}},
				{"+c1", []string{"a1", "b1", "c1"}},
				{"<a1", []string{"b1", "c1"}},
				{"-a1", []string{"b1", "c1", "a2"}},
				{"+_1", []string{"b1", "c1", "a2", "_1"}},
				{"<b1", []string{"c1", "a2", "_1"}},
				{"<c1", []string{"a2", "_1"}},
				{"<a2", []string{"_1"}},
			},
		},
		{
			name: "a key submitted again after its lane emptied starts at once",
			ops: []op{
				{"+a1", []string{"a1"}},
				{"<a1", []string{}},
				{"-a1", []string{}},
				{"+a2", []string{"a2"}},
			},
		},
		{
			name: "done of a record that is not running its lane changes nothing",
			ops: []op{
				{"+a1", []string{"a1"}},
				{"+a2", []string{"a1"}},
				{"<a1", []string{}},
				{"-a2", []string{}},
				{"-a1", []string{"a2"}},
				{"-a1", []string{"a2"}},
			},
		},
		{
			name: "done of an unkeyed record changes nothing",
			ops: []op{
				{"+_1", []string{"_1"}},
				{"+_2", []string{"_1", "_2"}},
				{"<_1", []string{"_2"}},
				{"-_1", []string{"_2"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLanes()
			jobs := map[string]*job{}
			get := func(name string) *job {
				if j, ok := jobs[name]; ok {
					return j
				}
				var off int64
				if _, err := fmt.Sscanf(name[1:], "%d", &off); err != nil {
					t.Fatalf("bad op name %q", name)
				}
				j := keyedJob(name[:1], off)
				if name[0] == '_' {
					j = unkeyedJob(off)
				}
				jobs[name] = j
				return j
			}
			for i, o := range tc.ops {
				name := o.do[1:]
				switch o.do[0] {
				case '+':
					l.submit(get(name))
				case '<':
					if got := nextWithin(t, l, time.Second); got != jobs[name] {
						t.Fatalf("op %d %q: next = %s", i, o.do, jobName(got))
					}
				case '-':
					l.done(get(name))
				}
				if got := runQueue(l); !slices.Equal(got, o.want) {
					t.Fatalf("op %d %q: run queue %v, want %v", i, o.do, got, o.want)
				}
			}
		})
	}
}

func TestLanesForgetAKeyWhoseLaneEmptied(t *testing.T) {
	l := newLanes()
	for i := range 3 {
		l.submit(keyedJob("a", int64(i)))
	}
	for range 3 {
		l.done(nextWithin(t, l, time.Second))
	}
	l.mu.Lock()
	n := len(l.byKey)
	l.mu.Unlock()
	if n != 0 {
		t.Fatalf("byKey holds %d lanes after every record is done, want 0", n)
	}
}

// With more workers than keys, records of different keys and unkeyed records are with workers at the
// same time, while a second record of a busy key waits until the first is done.
func TestLanesRunDifferentKeysInParallelAndOneRecordPerKey(t *testing.T) {
	const workers = 6
	l := newLanes()
	started := make(chan *job, 16)
	release := map[*job]chan struct{}{}
	var mu sync.Mutex
	releaseAll := false // set by the cleanup: a record that starts after it must not block its worker
	gateOf := func(j *job) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		if release[j] == nil {
			release[j] = make(chan struct{})
			if releaseAll {
				close(release[j])
			}
		}
		return release[j]
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := l.next(); j != nil; j = l.next() {
				started <- j
				<-gateOf(j)
				l.done(j)
			}
		}()
	}
	defer func() {
		mu.Lock()
		releaseAll = true
		for _, ch := range release {
			select {
			case <-ch:
			default:
				close(ch)
			}
		}
		mu.Unlock()
		stopWorkers(t, l, &wg)
	}()

	a1, a2, b1, u1, u2 := keyedJob("a", 1), keyedJob("a", 2), keyedJob("b", 1), unkeyedJob(1), unkeyedJob(2)
	for _, j := range []*job{a1, a2, b1, u1, u2} {
		l.submit(j)
	}
	inFlight := map[*job]bool{}
	for range 4 {
		select {
		case j := <-started:
			inFlight[j] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d records started with %d idle workers: records of different keys must run in parallel", len(inFlight), workers)
		}
	}
	for _, j := range []*job{a1, b1, u1, u2} {
		if !inFlight[j] {
			t.Fatalf("%s is not with a worker; in flight: %v", jobName(j), inFlight)
		}
	}
	// Two workers are idle: a2 must still wait for a1.
	select {
	case j := <-started:
		t.Fatalf("%s started while a1 was in flight", jobName(j))
	case <-time.After(50 * time.Millisecond):
	}
	close(gateOf(a1))
	select {
	case j := <-started:
		if j != a2 {
			t.Fatalf("after a1 was done, %s started; want a2", jobName(j))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a2 did not start after a1 was done")
	}
}

// Many workers, few keys: no key ever has two records with workers, and each key's records run in the
// order they were submitted.
func TestLanesStressKeepsPerKeyOrderAndExclusion(t *testing.T) {
	const (
		workers = 16
		keys    = 5
		perKey  = 300
		unkeyed = 300
	)
	l := newLanes()
	var busy [keys]atomic.Int32
	var order [keys][]int64
	var orderMu sync.Mutex
	var overlap atomic.Bool
	var maxParallel, cur atomic.Int32
	var finished sync.WaitGroup
	finished.Add(keys*perKey + unkeyed)

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := l.next(); j != nil; j = l.next() {
				n := cur.Add(1)
				for m := maxParallel.Load(); n > m && !maxParallel.CompareAndSwap(m, n); m = maxParallel.Load() {
				}
				if j.keyed {
					k := int(j.laneKey[0] - 'a')
					if busy[k].Add(1) != 1 {
						overlap.Store(true)
					}
					orderMu.Lock()
					order[k] = append(order[k], j.offset)
					orderMu.Unlock()
					time.Sleep(time.Duration(j.offset%3) * 10 * time.Microsecond)
					busy[k].Add(-1)
				} else {
					time.Sleep(20 * time.Microsecond)
				}
				cur.Add(-1)
				l.done(j)
				finished.Done()
			}
		}()
	}
	for i := range perKey {
		for k := range keys {
			l.submit(keyedJob(string(rune('a'+k)), int64(i)))
		}
		l.submit(unkeyedJob(int64(i)))
	}
	waited := make(chan struct{})
	go func() { finished.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(30 * time.Second):
		l.close()
		t.Fatal("records did not all finish")
	}
	stopWorkers(t, l, &wg)

	if overlap.Load() {
		t.Error("two records of the same key were with workers at once")
	}
	for k := range keys {
		if len(order[k]) != perKey {
			t.Errorf("key %c: %d records ran, want %d", 'a'+k, len(order[k]), perKey)
			continue
		}
		for i, off := range order[k] {
			if off != int64(i) {
				t.Errorf("key %c: record %d ran at position %d: order %v...", 'a'+k, off, i, order[k][:min(i+5, len(order[k]))])
				break
			}
		}
	}
	if maxParallel.Load() < 2 {
		t.Errorf("at most %d record ran at once with %d workers", maxParallel.Load(), workers)
	}
}

func TestLanesCloseWakesEveryWaitingWorker(t *testing.T) {
	const workers = 8
	l := newLanes()
	got := make(chan *job, workers)
	for range workers {
		go func() { got <- l.next() }()
	}
	time.Sleep(20 * time.Millisecond) // let them block
	l.close()
	for i := range workers {
		select {
		case j := <-got:
			if j != nil {
				t.Fatalf("next returned %s after close, want nil", jobName(j))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d workers still waiting after close", workers-i, workers)
		}
	}
}

func TestLanesDoNotStartQueuedRecordsAfterClose(t *testing.T) {
	l := newLanes()
	l.submit(keyedJob("a", 1))
	l.submit(unkeyedJob(1))
	l.close()
	if j := nextWithin(t, l, time.Second); j != nil {
		t.Fatalf("next = %s after close, want nil: queued records are not started", jobName(j))
	}
}
