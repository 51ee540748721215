package executor

import (
	"context"
	"strconv"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// A stalled partition is assigned, has records waiting, and is not read while fetching is on. That is
// silent data delay — and KEDA scales on the lag it leaves — so the poll loop watches for it whatever
// the cause (librdkafka has had bugs of this shape around pause, resume and assignment, e.g. its issues
// 2190 and 5591), and restarts the partition's fetch: resume it and seek it to the next record to read.
//
// The poll goroutine notes when each partition was last read (or assigned, or fetching resumed); a
// partition is a suspect when librdkafka's queue is found empty after the partition has been quiet for
// stallAfter while fetching is on. librdkafka fetches every unpaused partition within fetch.wait.max.ms
// and its queue delivers in order, so records fetched by then would have been read before the queue ran
// dry. A quiet partition with the queue not empty may only wait its turn behind other partitions'
// prefetched records, with a slow model or a backlog; nor does an empty queue right after an assignment or
// a resume prove anything — no fetch has answered yet — so the queue must run dry stallAfter into the
// quiet, not merely at some time during it. Whether it has records waiting
// takes a round trip to the broker, so a goroutine of the clientRun (answer) asks, and hands back the
// suspects that do, with the offset to seek to.

// stallAfter is how long a partition with records waiting may go unread while fetching is on. librdkafka
// fetches every unpaused partition at least every fetch.wait.max.ms (500 ms), so seconds of quiet with
// records waiting are a stall; a false suspicion costs one watermark query, a false finding one refetch.
const stallAfter = 5 * time.Second

// idleRecheck is how long a quiet partition with nothing waiting goes before it is asked about again:
// each question is a request to its leader.
const idleRecheck = 30 * time.Second

// stallCheckEvery is how often the poll loop looks for suspects.
const stallCheckEvery = time.Second

type stallWatch struct {
	// Owned by the poll goroutine.
	parts     map[int32]*partWatch
	lastCheck time.Time
	lastIdle  time.Time // when a poll last found nothing to read
	// Between the poll goroutine and the clientRun's answer goroutine.
	suspects chan []suspect // 1 slot: one question at a time
	stalled  chan suspect
}

type partWatch struct {
	quietSince time.Time // last read, assigned, or fetching resumed
	next       int64     // the offset after the last record read; -1 before the first
	asked      bool      // a question about it is out
}

// suspect is a partition quiet for too long, and the offset it should be read from: next when a record
// was read, else (from the answer) where the group's committed offset or auto.offset.reset puts it.
type suspect struct {
	part   int32
	offset ckafka.Offset
	lag    int64
}

func newStallWatch() stallWatch {
	return stallWatch{parts: map[int32]*partWatch{}, suspects: make(chan []suspect, 1), stalled: make(chan suspect, 64)}
}

func (s *stallWatch) assigned(n int32, now time.Time) {
	s.parts[n] = &partWatch{quietSince: now, next: -1}
}

func (s *stallWatch) forget(n int32) { delete(s.parts, n) }

// recordLag sets the lag gauge of each partition read at least once: librdkafka keeps the high watermark
// of each fetch, so this costs no request. (A partition not read yet has no position of the sidecar's
// own; the group's committed lag, as KEDA reads it, covers it.)
func (p *pipeline) recordLag() {
	for n, w := range p.stall.parts {
		if w.next < 0 {
			continue
		}
		if _, high, err := p.consumer.GetWatermarkOffsets(p.cfg.InputTopic, n); err == nil && high >= 0 {
			p.m.lag.WithLabelValues(strconv.Itoa(int(n))).Set(float64(max(high-w.next, 0)))
		}
	}
}

func (s *stallWatch) reset() { clear(s.parts) }

func (s *stallWatch) idle(now time.Time) { s.lastIdle = now }

func (s *stallWatch) read(n int32, offset int64, now time.Time) {
	if w, ok := s.parts[n]; ok {
		w.quietSince, w.next = now, offset+1
	}
}

// resumed restarts every partition's quiet time: while paused, no partition is read, rightly.
func (s *stallWatch) resumed(now time.Time) {
	for _, w := range s.parts {
		w.quietSince = now
	}
}

// checkStalls runs on the poll goroutine at each turn: it restarts the partitions found stalled, and
// asks about the partitions quiet for too long.
func (p *pipeline) checkStalls(now time.Time) {
	s := &p.stall
	for {
		select {
		case st := <-s.stalled:
			p.restart(st, now)
			continue
		default:
		}
		break
	}
	if now.Sub(s.lastCheck) < stallCheckEvery {
		return
	}
	s.lastCheck = now
	p.recordLag()
	if p.paused {
		return
	}
	var ask []suspect
	for n, w := range s.parts {
		if !w.asked && s.lastIdle.Sub(w.quietSince) >= stallAfter {
			ask = append(ask, suspect{part: n, offset: ckafka.Offset(w.next)})
		}
	}
	if len(ask) == 0 {
		return
	}
	select {
	case s.suspects <- ask:
		for _, q := range ask {
			s.parts[q.part].asked = true
		}
	default: // the last question is still out
	}
}

// restart resumes a stalled partition and seeks it to where reading should go on.
func (p *pipeline) restart(st suspect, now time.Time) {
	w, ok := p.stall.parts[st.part]
	if !ok {
		return // revoked meanwhile
	}
	w.asked = false
	if now.Sub(w.quietSince) < stallAfter {
		return // read meanwhile
	}
	if st.lag <= 0 || p.paused {
		w.quietSince = now.Add(idleRecheck - stallAfter) // nothing waits (or unknown): ask again later
		return
	}
	w.quietSince = now
	p.m.stalls.Inc()
	p.log.Warn("partition assigned with records waiting but not read; restarting its fetch",
		"topic", p.cfg.InputTopic, "partition", st.part, "lag", st.lag, "from", st.offset.String())
	tp := ckafka.TopicPartition{Topic: &p.cfg.InputTopic, Partition: st.part, Offset: st.offset}
	if err := p.consumer.Resume([]ckafka.TopicPartition{tp}); err != nil {
		p.log.Warn("resuming a stalled partition", "partition", st.part, "error", err)
	}
	delete(p.pauseFlag, st.part)
	if err := p.consumer.Seek(tp, 0); err != nil {
		p.log.Warn("seeking a stalled partition", "partition", st.part, "error", err)
	}
}

// answer runs for one consumer: it takes the poll loop's suspects, asks the broker whether each has
// records waiting, and hands back those that do, until ctx ends.
func (s *stallWatch) answer(ctx context.Context, c *ckafka.Consumer, cfg Config) {
	const timeoutMs = 5000
	for {
		var ask []suspect
		select {
		case <-ctx.Done():
			return
		case ask = <-s.suspects:
		}
		for _, q := range ask {
			_, high, err := c.QueryWatermarkOffsets(cfg.InputTopic, q.part, timeoutMs)
			if err != nil {
				q.lag = 0 // unknown: the broker is away, which watchBroker reports; asked again later
			} else {
				q.offset, q.lag = s.position(c, cfg, q, high, timeoutMs)
			}
			select {
			case s.stalled <- q:
			case <-ctx.Done():
				return
			}
		}
	}
}

// position is where a suspect should be read from and how many records wait there.
func (s *stallWatch) position(c *ckafka.Consumer, cfg Config, q suspect, high int64, timeoutMs int) (ckafka.Offset, int64) {
	if q.offset >= 0 {
		return q.offset, high - int64(q.offset)
	}
	committed, err := c.Committed([]ckafka.TopicPartition{{Topic: &cfg.InputTopic, Partition: q.part}}, timeoutMs)
	if err == nil && len(committed) == 1 && committed[0].Offset >= 0 {
		return committed[0].Offset, high - int64(committed[0].Offset)
	}
	if cfg.AutoOffsetReset != "earliest" {
		return ckafka.OffsetEnd, 0 // starts at the end: nothing waits
	}
	low, _, err := c.QueryWatermarkOffsets(cfg.InputTopic, q.part, timeoutMs)
	if err != nil {
		return ckafka.OffsetBeginning, 0
	}
	return ckafka.Offset(low), high - low
}
