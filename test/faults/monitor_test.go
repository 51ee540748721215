package faults

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// sampleEvery is how often the monitor reads the offsets and the group.
const sampleEvery = 250 * time.Millisecond

// monitor reads, over the admin API, every input partition's end offset and the group's committed offset,
// who owns each partition, and how many records the output and error topics hold. From these it finds
// stalls and times each recovery. While nothing is wrong — no fault in progress, the group stable, the
// partition's owner alive — an assigned partition with lag is stalled when
//
//   - neither its committed offset nor any other partition's moves for stallBound: the group is stuck
//     though records wait; or
//   - its committed offset does not move for starveBound, whatever the others do: it is starved.
//
// Not every partition for stallBound: a sidecar takes records in the order librdkafka fetched them, a
// batch of each partition in turn, so with a backlog one partition's next batch may wait longer than
// that behind the others' while the sidecar works flat out (finish adds the stalls the sidecars
// report themselves, which are the "assigned and never read" kind).
type monitor struct {
	r      *run
	faults atomic.Int32 // faults in progress
	// pauses asks the loop to stop reading (true) — and to close its admin client: the broker is about to
	// stop, and a request waiting for it could hit librdkafka's bugs — or to go on (false); it answers on
	// paused.
	pauses chan bool
	paused chan struct{}
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once

	mu         sync.Mutex
	lastErr    error           // of the last read that failed
	alive      map[string]bool // sidecar client.id → running and not signalled
	last       sample          // the last successful sample
	watching   map[int32]watch // partitions with lag, watched since the last advance
	groupMoved time.Time       // when a committed offset last moved, or no partition had lag
	groupSum   int64           // the committed offsets summed, at groupMoved
	stalls     []string
	pending    []*recovery
	recoveries []time.Duration
}

type sample struct {
	at        time.Time
	end       map[int32]int64 // input end offsets
	committed map[int32]int64 // the group's committed offsets on the input
	outEnd    int64           // records on the output topic (end offsets summed)
	errEnd    int64           // records on the error topic
	state     kafka.ConsumerGroupState
	owners    map[int32]string // input partition → client.id of the member it is assigned to
}

type watch struct {
	since     time.Time
	committed int64
}

// recoveryKind says what shows that the sidecars are past a fault.
type recoveryKind int

const (
	// commits: every partition that had lag when the fault ended has committed past where it was (or
	// caught up).
	commits recoveryKind = iota
	// answers: the next answer on the output topic (the fault was on the way out).
	answers
	// regroup: every partition has committed past where it stood at the first sample after the fault —
	// new records, taken by a group formed again. After a broker restart the coordinator has reloaded the
	// group as it was: it may show it Stable, its members' sessions still running, though those members
	// are rejoining (a session that timed out while the broker was away) and own nothing until the next
	// assignment. Nothing in the group's description tells the two apart, so until this recovery shows,
	// no stall clock runs; waitRecovered bounds the wait instead, and the recovery time is the figure.
	// It needs requests flowing, as they do in the scenarios that use it.
	regroup
)

type recovery struct {
	what    string
	kind    recoveryKind
	from    time.Time
	base    map[int32]int64 // committed offsets when the fault ended (regroup: at the first sample after)
	baseOut int64
}

func newMonitor(r *run) *monitor {
	m := &monitor{r: r, pauses: make(chan bool), paused: make(chan struct{}), quit: make(chan struct{}),
		done: make(chan struct{}), alive: map[string]bool{}, watching: map[int32]watch{}}
	go m.loop()
	return m
}

func newAdmin(bootstrap string) (*kafka.AdminClient, error) {
	return kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "broker.address.family": "v4",
		"client.id": "faults-monitor", "log_level": 0})
}

// clients are the monitor's: an admin client for the end offsets and the group's members, and a consumer
// of the group, never subscribed (so never a member), for the committed offsets. Not the admin client's
// ListConsumerGroupOffsets: librdkafka (2.11) dereferences a consumer group handle an admin client does not
// have when the answer is NOT_COORDINATOR, as it is just after a broker restart — a segfault (its
// issue 5040).
type clients struct {
	admin   *kafka.AdminClient
	offsets *kafka.Consumer
}

func newClients(bootstrap, group string) (*clients, error) {
	a, err := newAdmin(bootstrap)
	if err != nil {
		return nil, err
	}
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "broker.address.family": "v4",
		"client.id": "faults-monitor", "group.id": group, "enable.auto.commit": false, "log_level": 0})
	if err != nil {
		a.Close()
		return nil, err
	}
	return &clients{admin: a, offsets: c}, nil
}

func (c *clients) close() {
	if c == nil {
		return
	}
	_ = c.offsets.Close()
	c.admin.Close()
}

func (m *monitor) stop() {
	m.once.Do(func() {
		close(m.quit)
		<-m.done
	})
}

// pause stops reading, and closes the admin client, (true) until resumed (false).
func (m *monitor) pause(paused bool) {
	m.pauses <- paused
	<-m.paused
}

func (m *monitor) setAlive(id string, alive bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.alive[id] = alive
}

// loop samples until stopped; it owns the clients, made anew after a pause.
func (m *monitor) loop() {
	defer close(m.done)
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	var c *clients
	defer func() { c.close() }()
	paused := false
	for {
		select {
		case <-m.quit:
			return
		case paused = <-m.pauses:
			if paused {
				c.close()
				c = nil
			}
			m.mu.Lock()
			clear(m.watching) // nothing is known meanwhile, so no clock runs
			m.mu.Unlock()
			m.paused <- struct{}{}
			continue
		case <-t.C:
		}
		if paused {
			continue
		}
		var s sample
		var err error
		if c == nil {
			c, err = newClients(m.r.bootstrap, m.r.group)
		}
		if err == nil {
			s, err = m.read(c)
		}
		m.mu.Lock()
		if err != nil {
			// The broker is away, or slow: nothing is known, so no clock runs.
			m.lastErr = err
			clear(m.watching)
		} else {
			m.observe(s)
		}
		m.mu.Unlock()
	}
}

// read takes one sample.
func (m *monitor) read(c *clients) (sample, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r := m.r
	req := map[kafka.TopicPartition]kafka.OffsetSpec{}
	for _, topic := range []string{r.in, r.out, r.errs} {
		for p := range int32(r.spec.partitions) {
			req[kafka.TopicPartition{Topic: &topic, Partition: p}] = kafka.LatestOffsetSpec
		}
	}
	ends, err := c.admin.ListOffsets(ctx, req, kafka.SetAdminIsolationLevel(kafka.IsolationLevelReadUncommitted))
	if err != nil {
		return sample{}, err
	}
	s := sample{end: map[int32]int64{}, committed: map[int32]int64{}, owners: map[int32]string{}}
	for tp, info := range ends.ResultInfos {
		if info.Error.Code() != kafka.ErrNoError {
			return sample{}, info.Error
		}
		switch *tp.Topic {
		case r.in:
			s.end[tp.Partition] = int64(info.Offset)
		case r.out:
			s.outEnd += int64(info.Offset)
		case r.errs:
			s.errEnd += int64(info.Offset)
		}
	}
	var tps []kafka.TopicPartition
	for p := range int32(r.spec.partitions) {
		tps = append(tps, kafka.TopicPartition{Topic: &r.in, Partition: p})
	}
	committed, err := c.offsets.Committed(tps, 5000)
	if err != nil {
		return sample{}, err
	}
	for _, tp := range committed {
		if tp.Error != nil {
			return sample{}, tp.Error
		}
		if tp.Offset >= 0 {
			s.committed[tp.Partition] = int64(tp.Offset)
		}
	}
	desc, err := c.admin.DescribeConsumerGroups(ctx, []string{r.group})
	if err != nil {
		return sample{}, err
	}
	for _, g := range desc.ConsumerGroupDescriptions {
		if g.Error.Code() != kafka.ErrNoError {
			return sample{}, g.Error
		}
		s.state = g.State
		for _, member := range g.Members {
			for _, tp := range member.Assignment.TopicPartitions {
				if *tp.Topic == r.in {
					s.owners[tp.Partition] = member.ClientID
				}
			}
		}
	}
	s.at = time.Now()
	return s, nil
}

// observe runs the stall clocks and the recoveries on a new sample; m.mu is held.
func (m *monitor) observe(s sample) {
	m.last = s
	healthy := m.faults.Load() == 0 && s.state == kafka.ConsumerGroupStateStable && !m.regrouping()
	var sum int64
	lag := false
	for p, end := range s.end {
		sum += s.committed[p]
		lag = lag || s.committed[p] < end
	}
	if !healthy || !lag || sum != m.groupSum || len(m.watching) == 0 {
		m.groupMoved, m.groupSum = s.at, sum
	}
	for p, end := range s.end {
		committed := s.committed[p]
		owner := s.owners[p]
		if !healthy || !m.alive[owner] || committed >= end {
			delete(m.watching, p)
			continue
		}
		w, ok := m.watching[p]
		if !ok || committed != w.committed {
			m.watching[p] = watch{since: s.at, committed: committed}
			continue
		}
		still := s.at.Sub(w.since)
		stuck := min(still, s.at.Sub(m.groupMoved))
		var kind string
		switch {
		case stuck > stallBound:
			kind = fmt.Sprintf("no partition moved for %v", stuck.Round(100*time.Millisecond))
		case still > starveBound:
			kind = fmt.Sprintf("starved: not moved for %v while others did", still.Round(100*time.Millisecond))
		default:
			continue
		}
		m.stalls = append(m.stalls, fmt.Sprintf("at %s, partition %d (owner %s, committed %d, end %d): %s",
			s.at.Format("15:04:05.0"), p, owner, committed, end, kind))
		delete(m.watching, p) // one report per stall; the clock starts again
	}
	left := m.pending[:0]
	for _, rc := range m.pending {
		if rc.done(s) {
			m.recoveries = append(m.recoveries, s.at.Sub(rc.from))
			continue
		}
		left = append(left, rc)
	}
	m.pending = left
}

// regrouping says whether a regroup recovery is pending; m.mu is held.
func (m *monitor) regrouping() bool {
	return slices.ContainsFunc(m.pending, func(rc *recovery) bool { return rc.kind == regroup })
}

// done says whether s shows the recovery (see recoveryKind).
func (rc *recovery) done(s sample) bool {
	switch rc.kind {
	case answers:
		return s.outEnd > rc.baseOut
	case regroup:
		if rc.base == nil { // the first sample after the fault
			rc.base = maps.Clone(s.committed)
			return false
		}
		for p := range s.end {
			if s.committed[p] <= rc.base[p] {
				return false
			}
		}
		return true
	}
	for p, end := range s.end {
		if c := s.committed[p]; c <= rc.base[p] && c < end {
			return false
		}
	}
	return true
}

// recovering starts timing a recovery from now.
func (m *monitor) recovering(what string, kind recoveryKind) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rc := &recovery{what: what, kind: kind, from: time.Now(), baseOut: m.last.outEnd}
	if kind != regroup {
		rc.base = maps.Clone(m.last.committed)
	}
	m.pending = append(m.pending, rc)
}

func (m *monitor) recovered() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pending) == 0 && m.faults.Load() == 0
}

// answered is the number of records on the output and error topics at the last sample.
func (m *monitor) answered() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last.outEnd + m.last.errEnd
}

// settled says whether the group has committed every record of the input at the last sample, and the
// sample is younger than the call.
func (m *monitor) settled(since time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last.at.Before(since) || len(m.last.end) == 0 {
		return false
	}
	for p, end := range m.last.end {
		if m.last.committed[p] < end {
			return false
		}
	}
	return true
}

// committedAndOut waits for a sample taken after since, and returns the group's committed offsets
// summed and the records on the output and error topics.
func (m *monitor) committedAndOut(since time.Time) (committed, out int64) {
	for {
		m.mu.Lock()
		s := m.last
		m.mu.Unlock()
		if s.at.After(since) {
			for _, c := range s.committed {
				committed += c
			}
			return committed, s.outEnd + s.errEnd
		}
		time.Sleep(sampleEvery / 2)
	}
}

// report returns the stalls seen and the recovery times.
func (m *monitor) report() (stalls []string, recoveries []time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.stalls), slices.Clone(m.recoveries)
}

// state describes the last sample, for a failure's message.
func (m *monitor) state() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.last
	var parts []string
	keys := slices.Collect(maps.Keys(s.end))
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, p := range keys {
		parts = append(parts, fmt.Sprintf("p%d %d/%d %s", p, s.committed[p], s.end[p], s.owners[p]))
	}
	var pending []string
	for _, rc := range m.pending {
		pending = append(pending, rc.what)
	}
	return fmt.Sprintf("at %s: group %v; committed/end/owner: %s; output %d, errors %d; faults in progress %d; waiting to recover from %q; alive %v; last read error: %v",
		s.at.Format("15:04:05.000"), s.state, strings.Join(parts, ", "), s.outEnd, s.errEnd, m.faults.Load(), pending, m.alive, m.lastErr)
}
