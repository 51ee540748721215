package faults

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/seldon-kafka/sidecar/internal/testkit"
)

// expect is what a scenario must end with, besides nothing lost, no crash and no stall.
type expect struct {
	// reasons are the Seldon-Error-Reason values error records may carry; none: no error record at all.
	reasons []string
	// minErrors is how many requests at least must have an error record.
	minErrors int
	// noDuplicates: every request has exactly one record out (a clean shutdown, exactly-once).
	noDuplicates bool
}

// result is one scenario's line.
type result struct {
	name       string
	in         int // requests written
	answered   int // requests with an answer
	errored    int // requests with an error record
	lost       int // requests with neither
	duplicates int // records out beyond one per request
	recoveries []time.Duration
	stalls     int
	took       time.Duration
	note       string
	failed     bool
}

func (res result) line() string {
	return fmt.Sprintf("%-15s in %6d  answered %6d  error records %5d  lost %d  duplicates %5d  recovery %-22s stalls %d  %s%s",
		res.name, res.in, res.answered, res.errored, res.lost, res.duplicates, recoveryText(res.recoveries), res.stalls,
		res.took.Round(time.Second), noteText(res.note))
}

func noteText(note string) string {
	if note == "" {
		return ""
	}
	return "  (" + note + ")"
}

// recoveryText is "max 12.3s of 3" (the longest of the recoveries timed), or "-".
func recoveryText(rs []time.Duration) string {
	if len(rs) == 0 {
		return "-"
	}
	return fmt.Sprintf("max %.1fs of %d", slices.Max(rs).Seconds(), len(rs))
}

// results are the lines of the battery so far, for the table printed at its end.
var results struct {
	sync.Mutex
	list []result
}

// finish ends a scenario: it waits for the feed to end (a scenario with an open-ended feed stops it
// first), for every request to be written and committed (stalls are still
// watched meanwhile), stops the sidecars with SIGTERM, reads the output and error topics from the
// beginning, counts each request's records out, prints the scenario's line, and fails the test on any
// loss, crash, stall or broken expectation.
func (r *run) finish(e expect, note string) result {
	r.t.Helper()
	written := r.feed.wait(r.t, 5*time.Minute)
	r.waitRecovered(5 * time.Minute)
	since := time.Now()
	r.waitFor("every request committed", 5*time.Minute, func() bool { return r.mon.settled(since) })
	for _, sc := range r.all() {
		if !sc.signalled.Load() {
			sc.terminate()
		}
	}
	r.mon.stop()
	stalls, recoveries := r.mon.report()
	for _, sc := range r.all() {
		stalls = append(stalls, sc.reportedStalls()...)
	}

	answers := testkit.ConsumeAll(r.t, r.bootstrap, r.out, 2*time.Second)
	errRecords := testkit.ConsumeAll(r.t, r.bootstrap, r.errs, 2*time.Second)
	res := result{name: r.name, in: written, recoveries: recoveries, stalls: len(stalls),
		took: time.Since(r.started), note: note}
	outs := make([]int, written)
	answered := make([]bool, written)
	errored := make([]bool, written)
	var wrong []string
	check := func(rec testkit.Record, isError bool) {
		key := string(rec.Key)
		i, err := strconv.Atoi(strings.TrimPrefix(key, "r"))
		if err != nil || i < 0 || i >= written || key != requestKey(i) {
			wrong = append(wrong, fmt.Sprintf("a record out for no request: key %q", key))
			return
		}
		if puid := rec.Headers["Seldon-Puid"]; puid != key {
			wrong = append(wrong, fmt.Sprintf("%s: Seldon-Puid %q", key, puid))
		}
		reason := rec.Headers["Seldon-Error-Reason"]
		switch {
		case isError && !slices.Contains(e.reasons, reason):
			wrong = append(wrong, fmt.Sprintf("%s: error record %q (%s), want one of %q", key, reason,
				rec.Headers["Seldon-Error-Message"], e.reasons))
		case !isError && reason != "":
			wrong = append(wrong, fmt.Sprintf("%s: an error record %q on the output topic", key, reason))
		}
		outs[i]++
		if isError {
			errored[i] = true
		} else {
			answered[i] = true
		}
	}
	for _, a := range answers {
		check(a, false)
	}
	for _, a := range errRecords {
		check(a, true)
	}
	var lostKeys []string
	for i, n := range outs {
		switch {
		case n == 0:
			res.lost++
			if len(lostKeys) < 10 {
				lostKeys = append(lostKeys, requestKey(i))
			}
		default:
			res.duplicates += n - 1
		}
		if answered[i] {
			res.answered++
		}
		if errored[i] {
			res.errored++
		}
	}

	r.mu.Lock()
	problems := slices.Clone(r.problems)
	r.mu.Unlock()
	if res.lost > 0 {
		problems = append(problems, fmt.Sprintf("%d requests lost (no answer, no error record), first %q", res.lost, lostKeys))
	}
	if len(wrong) > 0 {
		problems = append(problems, fmt.Sprintf("%d wrong records out, first: %s", len(wrong), strings.Join(wrong[:min(5, len(wrong))], "; ")))
	}
	if res.errored < e.minErrors {
		problems = append(problems, fmt.Sprintf("%d requests with an error record, want at least %d", res.errored, e.minErrors))
	}
	if e.noDuplicates && res.duplicates > 0 {
		problems = append(problems, fmt.Sprintf("%d duplicates, want none", res.duplicates))
	}
	for _, s := range stalls {
		problems = append(problems, "stall: "+s)
	}
	res.failed = len(problems) > 0
	fmt.Println(res.line())
	results.Lock()
	results.list = append(results.list, res)
	results.Unlock()
	for _, p := range problems {
		r.t.Error(p)
	}
	if res.failed {
		r.t.Logf("sidecar logs: %s", logDir)
	}
	return res
}

// table is the battery's results as a Markdown table, for the README.
func table(list []result) string {
	var b strings.Builder
	b.WriteString("| scenario | records in | answered | error records | lost | duplicates | recovery | stalls | took |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---|---:|---:|\n")
	for _, r := range list {
		name := r.name
		if r.failed {
			name += " **FAILED**"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %s | %d | %s |\n", name, r.in, r.answered, r.errored, r.lost,
			r.duplicates, recoveryText(r.recoveries), r.stalls, r.took.Round(time.Second))
	}
	return b.String()
}
