package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/internal/testkit"
)

// eosStream is a stream served exactly once, with poison records among the requests whose error
// records go to a topic of their own. The model takes 10 ms a call, so that the stream outlasts the
// steps of a test (a kill, a replica joining) on a fast day too.
func eosStream(t *testing.T, n, poison int) (s *stream, errs string, bad []testkit.Record) {
	t.Helper()
	s = newStream(t, n, 10*time.Millisecond)
	errs = testkit.Topic(t, s.bootstrap, 1)
	s.env["KAFKA_ERROR_TOPIC"] = errs
	s.env["KAFKA_EXACTLY_ONCE"] = "true"
	for i := range poison {
		bad = append(bad, testkit.Record{Key: []byte(fmt.Sprintf("poison-%03d", i)), Value: []byte("not json")})
	}
	testkit.Produce(t, s.bootstrap, s.in, bad)
	return s, errs, bad
}

// committed is how many input records the stream's group has committed.
func (s *stream) committed(t *testing.T) int64 {
	var n int64
	for _, o := range testkit.CommittedOffsets(t, s.bootstrap, s.group, s.in) {
		n += o
	}
	return n
}

// onceEach waits until every input is committed, then checks that a read_committed reader sees exactly
// one answer for each request and one error record for each poison record — none lost, none twice.
func onceEach(t *testing.T, s *stream, errs string, bad []testkit.Record) {
	t.Helper()
	testkit.WaitCommitted(t, s.bootstrap, s.group, s.in, testkit.EndOffsets(t, s.bootstrap, s.in), 120*time.Second)
	for _, c := range []struct {
		topic, what string
		want        []testkit.Record
	}{{s.out, "answers", s.sent}, {errs, "error records", bad}} {
		// A replica killed with a transaction open holds read_committed readers of its output partitions
		// back until the broker aborts it (transaction.timeout.ms): read again until every answer shows,
		// for longer than that timeout.
		var got []testkit.Record
		var missing, twice int
		for deadline := time.Now().Add(75 * time.Second); ; {
			got = testkit.ConsumeAll(t, s.bootstrap, c.topic, time.Second)
			count := map[string]int{}
			for _, r := range got {
				count[string(r.Key)]++
			}
			missing, twice = 0, 0
			for _, r := range c.want {
				switch count[string(r.Key)] {
				case 0:
					missing++
				case 1:
				default:
					twice++
				}
			}
			if missing == 0 || twice > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		if missing > 0 || twice > 0 || len(got) != len(c.want) {
			t.Errorf("%s read_committed: %d for %d inputs; %d inputs without one, %d with more than one",
				c.what, len(got), len(c.want), missing, twice)
		}
	}
}

// SIGKILL leaves a transaction open; the restarted sidecar (same transactional.id: the group's and the
// host's) aborts it when it starts, and serves again from the offsets committed with the last
// transaction. The model is called again for those records, but each answer is seen once.
func TestExactlyOnceAcrossSIGKILLs(t *testing.T) {
	const n, poison = 3000, 30
	s, errs, bad := eosStream(t, n, poison)
	for kill := 1; kill <= 3; kill++ {
		p := startProc(t, s.env, operatorArgs...)
		waitUntil(t, fmt.Sprintf("%d%% committed", kill*20), 90*time.Second, func() bool {
			return s.committed(t) >= int64(kill)*(n+poison)/5
		})
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		p.wait(t, 10*time.Second)
	}
	if s.committed(t) >= n+poison {
		t.Fatalf("all committed before the last kill; the test proves less than it says")
	}
	startProc(t, s.env, operatorArgs...)
	onceEach(t, s, errs, bad)
	t.Logf("%d model calls for %d requests, 3 SIGKILLs", s.model.Calls(), n)
}

// Two replicas share the group; one joins mid-stream and the other leaves (SIGTERM: it commits and
// hands over) or dies (SIGKILL: its partitions move after the session timeout, and the broker aborts
// its open transaction after transaction.timeout.ms, here 10 s).
func TestExactlyOnceAcrossARebalanceBetweenTwoReplicas(t *testing.T) {
	for _, leave := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(leave.String(), func(t *testing.T) {
			const n, poison = 3000, 30
			s, errs, bad := eosStream(t, n, poison)
			s.env["KAFKA_PRODUCER_TRANSACTION_TIMEOUT_MS"] = "10000"
			envA, envB := clone(s.env), clone(s.env)
			envA["KAFKA_TRANSACTIONAL_ID"], envB["KAFKA_TRANSACTIONAL_ID"] = s.group+"-a", s.group+"-b"
			a := startProc(t, envA, operatorArgs...)
			waitUntil(t, "a fifth committed", 90*time.Second, func() bool { return s.committed(t) >= (n+poison)/5 })
			b := startProc(t, envB, operatorArgs...)
			waitUntil(t, "the partitions shared", 60*time.Second, func() bool {
				return strings.Contains(b.log(), `"msg":"partitions assigned"`) && strings.Contains(a.log(), `"msg":"partitions revoked"`)
			})
			waitUntil(t, "half committed", 90*time.Second, func() bool { return s.committed(t) >= (n+poison)/2 })
			if s.committed(t) >= n+poison {
				t.Fatalf("all committed before replica a left; the test proves less than it says")
			}
			if err := a.cmd.Process.Signal(leave); err != nil {
				t.Fatal(err)
			}
			if code := a.wait(t, 30*time.Second); leave == syscall.SIGTERM && code != 0 {
				t.Errorf("replica a: exit %d after SIGTERM, want 0", code)
			}
			onceEach(t, s, errs, bad)
		})
	}
}

// A zombie: a second sidecar with the same transactional.id (a replica thought dead that is not). The
// newer fences the older, whose next transaction call is refused: it stops with an error naming the
// fencing and exits non-zero, and what it had not committed is served by the newer, once.
func TestExactlyOnceZombieWithTheSameTransactionalIDIsFencedAndStops(t *testing.T) {
	const n, poison = 3000, 30
	s, errs, bad := eosStream(t, n, poison)
	s.env["KAFKA_TRANSACTIONAL_ID"] = s.group + "-replica"
	old := startProc(t, s.env, operatorArgs...)
	waitUntil(t, "a fifth committed", 90*time.Second, func() bool { return s.committed(t) >= (n+poison)/5 })
	startProc(t, s.env, operatorArgs...)
	if s.committed(t) >= n+poison {
		t.Fatalf("all committed before the second sidecar started; the test proves less than it says")
	}
	if code := old.wait(t, 60*time.Second); code == 0 {
		t.Errorf("the fenced sidecar exited 0, want non-zero")
	}
	if log := old.log(); !strings.Contains(log, "took over (fenced)") {
		t.Errorf("the fenced sidecar's log does not say it was fenced:\n%s", lastLines(log, 15))
	}
	onceEach(t, s, errs, bad)
}

// A zombie of another kind: a replica frozen (SIGSTOP) past its session timeout, whose partitions move
// to the other replica, and which then wakes with a transaction open. Its transactional.id is its own, so
// nothing fences it by id. Waking, it finds its assignment lost and aborts (had it tried to commit first,
// the group would refuse offsets sent with its old generation: exactly-once v2, KIP-447); what it
// answered before the freeze is never seen, and the other replica's answers are, once.
func TestExactlyOnceAReplicaFrozenPastItsSessionIsRefusedItsTransaction(t *testing.T) {
	const n, poison = 3000, 30
	s, errs, bad := eosStream(t, n, poison)
	envA, envB := clone(s.env), clone(s.env)
	envA["KAFKA_TRANSACTIONAL_ID"], envB["KAFKA_TRANSACTIONAL_ID"] = s.group+"-a", s.group+"-b"
	a := startProc(t, envA, operatorArgs...)
	waitUntil(t, "a tenth committed", 90*time.Second, func() bool { return s.committed(t) >= (n+poison)/10 })
	b := startProc(t, envB, operatorArgs...)
	waitUntil(t, "the partitions shared", 60*time.Second, func() bool {
		return strings.Contains(b.log(), `"msg":"partitions assigned"`) && strings.Contains(a.log(), `"msg":"partitions revoked"`)
	})
	if s.committed(t) >= n+poison {
		t.Fatalf("all committed before replica a froze; the test proves less than it says")
	}
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// The session times out after 10 s; b is given a's partitions and serves them from a's last commit.
	waitUntil(t, "b to take a's partitions", 60*time.Second, func() bool {
		return strings.Count(b.log(), `"msg":"partitions assigned"`) >= 2
	})
	before := s.committed(t)
	waitUntil(t, "b to commit more", 60*time.Second, func() bool { return s.committed(t) > before })
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	onceEach(t, s, errs, bad)
	// Whether the freeze caught a transaction open is timing: a replica frozen just after a commit has
	// none to abort. Either way no answer may be read twice (onceEach); an open one must be aborted.
	if !strings.Contains(a.log(), "transaction aborted") {
		t.Logf("the freeze caught no open transaction this run (nothing to abort):\n%s", lastLines(a.log(), 5))
	}
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
