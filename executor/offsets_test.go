package executor

import (
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// trackAll assigns p and adds the offsets, failing the test if any is not tracked.
func trackAll(t *testing.T, tr *offsetTracker, p partKey, offsets ...int64) uint64 {
	t.Helper()
	var epoch uint64
	for _, off := range offsets {
		e, ok := tr.add(p, off)
		if !ok {
			t.Fatalf("add(%d, %d) not tracked", p, off)
		}
		epoch = e
	}
	return epoch
}

func TestOffsetTrackerCommitsOnlyTheContiguousFinishedRun(t *testing.T) {
	// Each step finishes some offsets and then asks what may be committed; want is the offset for the
	// partition, or -1 when nothing may be (committable leaves the partition out).
	type step struct {
		finish []int64
		want   int64
	}
	tests := []struct {
		name    string
		offsets []int64
		steps   []step
	}{
		{
			name:    "in order",
			offsets: []int64{0, 1, 2, 3},
			steps:   []step{{[]int64{0}, 1}, {[]int64{1, 2}, 3}, {[]int64{3}, 4}},
		},
		{
			name:    "a later finish waits for the earlier one",
			offsets: []int64{0, 1, 2, 3},
			steps:   []step{{[]int64{3, 2, 1}, -1}, {nil, -1}, {[]int64{0}, 4}},
		},
		{
			name:    "out of order with a hole in the middle",
			offsets: []int64{10, 11, 12, 13, 14},
			steps:   []step{{[]int64{10, 12, 14}, 11}, {[]int64{13}, -1}, {[]int64{11}, 15}},
		},
		{
			name:    "gaps of a compacted topic",
			offsets: []int64{0, 1, 5, 9},
			steps:   []step{{[]int64{0, 1}, 2}, {[]int64{9}, -1}, {[]int64{5}, 10}},
		},
		{
			name:    "gap after a commit",
			offsets: []int64{0, 1, 5, 9},
			steps:   []step{{[]int64{0, 1, 5}, 6}, {[]int64{9}, 10}},
		},
		{
			name:    "nothing finished",
			offsets: []int64{7},
			steps:   []step{{nil, -1}},
		},
		{
			name:    "finishing twice counts once",
			offsets: []int64{0, 1},
			steps:   []step{{[]int64{1, 1}, -1}, {[]int64{0}, 2}},
		},
		{
			name:    "finish of an offset never added is ignored",
			offsets: []int64{0, 2},
			steps:   []step{{[]int64{1}, -1}, {[]int64{0}, 1}, {[]int64{3}, -1}, {[]int64{2}, 3}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := newOffsetTracker()
			tr.assign([]partKey{0})
			epoch := trackAll(t, tr, 0, tc.offsets...)
			for i, s := range tc.steps {
				for _, off := range s.finish {
					tr.finish(0, epoch, off)
				}
				got, ok := tr.committable()[0]
				switch {
				case s.want < 0 && ok:
					t.Fatalf("step %d (finish %v): committable %d, want nothing", i, s.finish, got)
				case s.want >= 0 && got != s.want:
					t.Fatalf("step %d (finish %v): committable %d (present %v), want %d", i, s.finish, got, ok, s.want)
				}
			}
		})
	}
}

func TestOffsetTrackerReReadsAreNotTracked(t *testing.T) {
	tr := newOffsetTracker()
	tr.assign([]partKey{0})
	epoch := trackAll(t, tr, 0, 5, 6)
	for _, off := range []int64{6, 5, 0} {
		if _, ok := tr.add(0, off); ok {
			t.Errorf("add(0, %d) after 6 was tracked; a re-read must not move commits", off)
		}
	}
	if n := tr.held([]partKey{0}); n != 2 {
		t.Errorf("held = %d after re-reads, want 2", n)
	}
	tr.finish(0, epoch, 5)
	tr.finish(0, epoch, 6)
	if got := tr.committable()[0]; got != 7 {
		t.Errorf("committable = %d, want 7", got)
	}
	// A re-read of a committed offset is still untracked.
	if _, ok := tr.add(0, 6); ok {
		t.Error("add(0, 6) after its commit was tracked")
	}
	if _, ok := tr.add(0, 7); !ok {
		t.Error("add(0, 7), the next new offset, was not tracked")
	}
}

func TestOffsetTrackerUnassignedPartitionIsNotTracked(t *testing.T) {
	tr := newOffsetTracker()
	tr.assign([]partKey{1})
	if _, ok := tr.add(0, 0); ok {
		t.Error("add on a partition never assigned was tracked")
	}
	trackAll(t, tr, 1, 0)
	tr.revoke([]partKey{1})
	if _, ok := tr.add(1, 1); ok {
		t.Error("add on a revoked partition was tracked")
	}
	if got := tr.committable(); len(got) != 0 {
		t.Errorf("committable = %v after revoke, want nothing", got)
	}
	if n := tr.held([]partKey{0, 1}); n != 0 {
		t.Errorf("held = %d for unassigned partitions, want 0", n)
	}
}

func TestOffsetTrackerIgnoresFinishFromAnEarlierAssignment(t *testing.T) {
	tr := newOffsetTracker()
	tr.assign([]partKey{0})
	oldEpoch := trackAll(t, tr, 0, 0, 1, 2)

	// The partition goes and comes back while offset 0 is still with the model.
	tr.revoke([]partKey{0})
	tr.assign([]partKey{0})
	newEpoch, ok := tr.add(0, 0)
	if !ok {
		t.Fatal("add(0, 0) after reassignment not tracked: a new assignment starts afresh")
	}
	if newEpoch == oldEpoch {
		t.Fatalf("reassignment kept epoch %d", oldEpoch)
	}
	trackAll(t, tr, 0, 1)

	// The old in-flight records finish: they must not count for the new assignment.
	tr.finish(0, oldEpoch, 0)
	tr.finish(0, oldEpoch, 1)
	if got := tr.committable(); len(got) != 0 {
		t.Fatalf("committable = %v after finishes from the old epoch, want nothing", got)
	}
	if n := tr.held([]partKey{0}); n != 2 {
		t.Fatalf("held = %d, want 2: old-epoch finishes must not release new records", n)
	}
	tr.finish(0, newEpoch, 0)
	if got := tr.committable()[0]; got != 1 {
		t.Fatalf("committable = %d after the new epoch's finish, want 1", got)
	}
}

func TestOffsetTrackerEpochsDifferAcrossPartitions(t *testing.T) {
	tr := newOffsetTracker()
	tr.assign([]partKey{0, 1})
	e0 := trackAll(t, tr, 0, 0)
	e1 := trackAll(t, tr, 1, 0)
	if e0 == e1 {
		t.Fatalf("partitions 0 and 1 share epoch %d", e0)
	}
	// A finish with partition 1's epoch on partition 0 is not partition 0's record.
	tr.finish(0, e1, 0)
	if got := tr.committable(); len(got) != 0 {
		t.Fatalf("committable = %v after a finish with the wrong epoch, want nothing", got)
	}
}

func TestOffsetTrackerHeldCountsUnfinishedRecords(t *testing.T) {
	tr := newOffsetTracker()
	tr.assign([]partKey{0, 1, 2})
	e0 := trackAll(t, tr, 0, 0, 1, 2)
	e1 := trackAll(t, tr, 1, 10, 11)
	trackAll(t, tr, 2, 100)

	check := func(parts []partKey, want int) {
		t.Helper()
		if got := tr.held(parts); got != want {
			t.Errorf("held(%v) = %d, want %d", parts, got, want)
		}
	}
	check([]partKey{0}, 3)
	check([]partKey{0, 1, 2}, 6)
	check(nil, 0)
	check([]partKey{7}, 0)

	tr.finish(0, e0, 2) // out of order: not committable, but no longer held
	tr.finish(1, e1, 10)
	check([]partKey{0}, 2)
	check([]partKey{1}, 1)
	check([]partKey{0, 1}, 3)

	tr.committable()
	check([]partKey{0, 1}, 3) // committing does not change what is held

	tr.revoke([]partKey{2})
	check([]partKey{0, 1, 2}, 3)
}

func TestOffsetTrackerCommittableOnlyNamedPartitions(t *testing.T) {
	tr := newOffsetTracker()
	tr.assign([]partKey{0, 1, 2})
	for _, p := range []partKey{0, 1, 2} {
		e := trackAll(t, tr, p, 0, 1)
		tr.finish(p, e, 0)
		tr.finish(p, e, 1)
	}
	got := tr.committable(1, 5)
	if want := map[partKey]int64{1: 2}; !maps.Equal(got, want) {
		t.Fatalf("committable(1, 5) = %v, want %v", got, want)
	}
	// The others kept their runs; partition 1's was handed out already.
	got = tr.committable()
	if want := map[partKey]int64{0: 2, 2: 2}; !maps.Equal(got, want) {
		t.Fatalf("committable() = %v, want %v", got, want)
	}
	if got := tr.committable(); len(got) != 0 {
		t.Fatalf("committable() again = %v, want nothing: the runs were handed out", got)
	}
}

func TestOffsetTrackerDropsCommittedEntries(t *testing.T) {
	tr := newOffsetTracker()
	tr.assign([]partKey{0})
	const n = 1000
	offs := make([]int64, n)
	for i := range offs {
		offs[i] = int64(i)
	}
	epoch := trackAll(t, tr, 0, offs...)
	entries := func() int {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.parts[0].entries)
	}
	if got := entries(); got != n {
		t.Fatalf("entries = %d before any finish, want %d", got, n)
	}
	for i := range n - 1 { // all but the last
		tr.finish(0, epoch, int64(i))
	}
	if got := tr.committable()[0]; got != n-1 {
		t.Fatalf("committable = %d, want %d", got, n-1)
	}
	if got := entries(); got != 1 {
		t.Fatalf("entries = %d after committable, want 1 (only the unfinished one)", got)
	}
	tr.mu.Lock()
	capacity := cap(tr.parts[0].entries)
	tr.mu.Unlock()
	if capacity > 16 {
		t.Errorf("entries keep a backing array of capacity %d after the run was dropped: memory is not released", capacity)
	}
	tr.finish(0, epoch, n-1)
	if got := tr.committable()[0]; got != n {
		t.Fatalf("committable = %d, want %d", got, n)
	}
	if got := entries(); got != 0 {
		t.Fatalf("entries = %d when everything is committed, want 0", got)
	}
}

// Workers finish records in any order while the poll loop adds records and commits: every offset
// committable hands out must be one past a run of finished records, the offsets must only grow, and the
// last must be one past the last record.
func TestOffsetTrackerConcurrentFinishesCommitEverything(t *testing.T) {
	const (
		parts    = 4
		perPart  = 2000
		finishes = 8
	)
	tr := newOffsetTracker()
	all := make([]partKey, parts)
	for i := range all {
		all[i] = partKey(i)
	}
	tr.assign(all)

	// finished[p][i] is set just before offset i*2 of partition p is finished (offsets have gaps).
	var finished [parts][perPart]atomic.Bool
	type rec struct {
		p     partKey
		epoch uint64
		off   int64
	}
	work := make(chan rec, 256)

	var wg sync.WaitGroup
	for range finishes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []rec
			for r := range work {
				// Hold some back to finish later, so finishes really come out of order.
				buf = append(buf, r)
				if len(buf) >= 8 || rand.IntN(4) == 0 {
					rand.Shuffle(len(buf), func(i, j int) { buf[i], buf[j] = buf[j], buf[i] })
					for _, b := range buf {
						finished[b.p][b.off/2].Store(true)
						tr.finish(b.p, b.epoch, b.off)
					}
					buf = buf[:0]
				}
			}
			for _, b := range buf {
				finished[b.p][b.off/2].Store(true)
				tr.finish(b.p, b.epoch, b.off)
			}
		}()
	}

	done := make(chan struct{})
	last := map[partKey]int64{}
	var bad atomic.Value
	check := func(got map[partKey]int64) {
		for p, off := range got {
			prev := last[p]
			if off <= prev {
				bad.Store("committable went backwards or repeated")
			}
			last[p] = off
			// Every record below off is finished (those below prev were checked before).
			for i := prev; i < off; i++ {
				if i%2 == 0 && !finished[p][i/2].Load() {
					bad.Store("committable passed an unfinished record")
				}
			}
		}
	}
	committer := make(chan struct{})
	go func() {
		defer close(committer)
		for {
			select {
			case <-done:
				return
			default:
			}
			check(tr.committable())
		}
	}()

	for i := range perPart {
		for p := range parts {
			off := int64(i * 2)
			epoch, ok := tr.add(partKey(p), off)
			if !ok {
				t.Errorf("add(%d, %d) not tracked", p, off)
			}
			work <- rec{partKey(p), epoch, off}
		}
	}
	close(work)
	wg.Wait()
	close(done)
	<-committer
	check(tr.committable())

	if msg := bad.Load(); msg != nil {
		t.Fatal(msg)
	}
	want := int64(perPart-1)*2 + 1
	for p := range parts {
		if last[partKey(p)] != want {
			t.Errorf("partition %d: last committable %d, want %d", p, last[partKey(p)], want)
		}
	}
	if n := tr.held(all); n != 0 {
		t.Errorf("held = %d after every record finished, want 0", n)
	}
}
