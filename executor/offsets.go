package executor

import (
	"slices"
	"sort"
	"sync"
)

// partKey names a partition of the input topic (there is one input topic, so the number is enough).
type partKey = int32

// offsetTracker knows, for each assigned partition, which consumed records are finished, and so the
// offset that may be committed: one past the end of the contiguous run of finished records. A record is
// finished when its answer or error record is delivered; until then nothing at or above it is committed,
// whatever finished after it.
type offsetTracker struct {
	mu    sync.Mutex
	parts map[partKey]*partState
	epoch uint64
}

type partState struct {
	epoch   uint64
	entries []entry // consumed offsets, ascending, from the oldest unfinished one
	held    int     // entries not finished
	last    int64   // highest offset added, -1 before any
}

type entry struct {
	offset int64
	done   bool
}

func newOffsetTracker() *offsetTracker {
	return &offsetTracker{parts: map[partKey]*partState{}}
}

// assign starts tracking partitions. A partition assigned again starts afresh with a new epoch, so a
// record still in flight from an earlier assignment cannot mark an offset of the new one finished.
func (t *offsetTracker) assign(parts []partKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range parts {
		t.epoch++
		t.parts[p] = &partState{epoch: t.epoch, last: -1}
	}
}

// revoke stops tracking partitions.
func (t *offsetTracker) revoke(parts []partKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range parts {
		delete(t.parts, p)
	}
}

// add records a consumed offset and returns the epoch to finish it with; ok is false when the partition
// is not assigned or the offset is not above the last one (a re-read): such a record is served but does
// not move commits.
func (t *offsetTracker) add(p partKey, offset int64) (epoch uint64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ps := t.parts[p]
	if ps == nil || offset <= ps.last {
		return 0, false
	}
	ps.entries = append(ps.entries, entry{offset: offset})
	ps.last = offset
	ps.held++
	return ps.epoch, true
}

// finish marks a record finished.
func (t *offsetTracker) finish(p partKey, epoch uint64, offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ps := t.parts[p]
	if ps == nil || ps.epoch != epoch {
		return
	}
	i := sort.Search(len(ps.entries), func(i int) bool { return ps.entries[i].offset >= offset })
	if i == len(ps.entries) || ps.entries[i].offset != offset || ps.entries[i].done {
		return
	}
	ps.entries[i].done = true
	ps.held--
}

// committable returns, for each of the partitions (all when none are named) whose contiguous finished run
// has grown since the last call, the offset to commit: one past the run. It drops the run from memory.
func (t *offsetTracker) committable(only ...partKey) map[partKey]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out map[partKey]int64
	for p, ps := range t.parts {
		if len(only) > 0 && !slices.Contains(only, p) {
			continue
		}
		n := 0
		for n < len(ps.entries) && ps.entries[n].done {
			n++
		}
		if n == 0 {
			continue
		}
		if out == nil {
			out = map[partKey]int64{}
		}
		out[p] = ps.entries[n-1].offset + 1
		ps.entries = append(ps.entries[:0:0], ps.entries[n:]...)
	}
	return out
}

// held returns how many records of the partitions are not finished.
func (t *offsetTracker) held(parts []partKey) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range parts {
		if ps := t.parts[p]; ps != nil {
			n += ps.held
		}
	}
	return n
}
