package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/procfs"
)

// report is a run's figures: what stdout shows as tables, and -json writes.
type report struct {
	Meta    meta      `json:"meta"`
	Results []*result `json:"results"`
}

// meta says what was measured, where and when, so that runs can be compared.
type meta struct {
	Command    string    `json:"command"`
	Commit     string    `json:"commit"`           // git describe of the working tree
	Executor   string    `json:"executor_version"` // what the sidecar binary says of itself
	Started    time.Time `json:"started"`
	Seconds    float64   `json:"seconds"`
	CPUs       int       `json:"cpus"`
	GoVersion  string    `json:"go_version"`
	Workers    int       `json:"kafka_workers"`
	Partitions int       `json:"partitions"`
	Short      bool      `json:"short"`
	// LoadStart and LoadEnd are the machine's 1-minute load average before and after: the broker, the
	// model, the sidecar and the load share the machine, and others may too.
	LoadStart float64 `json:"load_average_start"`
	LoadEnd   float64 `json:"load_average_end"`
}

func newReport(o options, args []string) *report {
	m := meta{
		Command: strings.Join(append([]string{"sidecar-bench"}, args...), " "),
		Commit:  output("git", "describe", "--always", "--dirty"), Executor: output(o.executor, "--version"),
		Started: time.Now(), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		Workers: o.workers, Partitions: o.partitions, Short: o.short, LoadStart: loadAverage(),
	}
	return &report{Meta: m}
}

func (r *report) finish() {
	r.Meta.Seconds = time.Since(r.Meta.Started).Seconds()
	r.Meta.LoadEnd = loadAverage()
}

func (m meta) header() string {
	return fmt.Sprintf("sidecar-bench: tree %s, executor %s, %d CPUs (load average %.2f), KAFKA_WORKERS=%d, %d partitions",
		m.Commit, m.Executor, m.CPUs, m.LoadStart, m.Workers, m.Partitions)
}

// output is the first line a command prints, or "unknown".
func output(name string, args ...string) string {
	b, err := exec.Command(name, args...).Output()
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if err != nil || line == "" {
		return "unknown"
	}
	return line
}

func loadAverage() float64 {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0
	}
	l, err := fs.LoadAvg()
	if err != nil {
		return 0
	}
	return l.Load1
}

func (r *report) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// print writes the tables, then a line for every run whose figures are not of answers (error records,
// failed calls); it returns how many such runs there were.
func (r *report) print(w io.Writer) (spoilt int) {
	byMode := map[string][]*result{}
	for _, res := range r.Results {
		byMode[res.Mode] = append(byMode[res.Mode], res)
	}
	if rs := byMode[modeBacklog]; len(rs) > 0 {
		fmt.Fprintln(w, "\nBacklog: the records are written first, then the process drains them; rates from the first answer to the last.")
		t := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(t, "scenario\tbytes\trecords\terrors\trec/s\tCPU µs/rec\tpeak MiB\t|\tpass rec/s\tpass µs/rec\tpass MiB\t|\tdirect rec/s\tdirect p50 ms\t|\trec/s ÷ min\tCPU ÷ pass\tRSS ÷ pass\t")
		for _, res := range rs {
			s, p, d := res.Sidecar, res.Passthrough, res.ModelDirect
			fmt.Fprintf(t, "%s\t%d\t%d\t%d\t%.0f\t%.0f\t%.0f\t|\t%.0f\t%.1f\t%.0f\t|\t%.0f\t%.2f\t|\t%s\t%s\t%s\t\n",
				res.Scenario, res.BodyBytes, res.Records, s.ErrorRecords, s.RecordsPerSec, s.CPUMicros, s.PeakRSSMiB,
				p.RecordsPerSec, p.CPUMicros, p.PeakRSSMiB, d.RecordsPerSec, d.P50Ms,
				ratio(res, "records_per_sec/min_baseline"), ratio(res, "cpu_per_record/passthrough"), ratio(res, "peak_rss/passthrough"))
		}
		t.Flush()
		fmt.Fprintln(w, "pass = passthrough (consume → produce with the sidecar's librdkafka settings, no model); direct = model-direct")
		fmt.Fprintln(w, "(the model called with KAFKA_WORKERS calls at once, no Kafka); rec/s ÷ min = sidecar ÷ the smaller of the two.")
	}
	if rs := byMode[modePaced]; len(rs) > 0 {
		fmt.Fprintln(w, "\nPaced: records at a fixed rate; latency from the record handed to the producer to its answer read.")
		t := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(t, "scenario\trate/s\trecords\terrors\tp50 ms\tp99 ms\tmax ms\tp99 - model ms\tCPU µs/rec\tpeak MiB\t|\tpass p50 ms\tpass p99 ms\tpass µs/rec\t|\tp99 ÷ pass\t")
		for _, res := range rs {
			s, p := res.Sidecar, res.Passthrough
			fmt.Fprintf(t, "%s\t%.0f\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.0f\t%.0f\t|\t%.2f\t%.2f\t%.1f\t|\t%s\t\n",
				res.Scenario, res.RatePerSec, res.Records, s.ErrorRecords, s.P50Ms, s.P99Ms, s.MaxMs, s.P99Ms-res.ModelDelayMs-res.CallCostMs,
				s.CPUMicros, s.PeakRSSMiB, p.P50Ms, p.P99Ms, p.CPUMicros, ratio(res, "p99/passthrough"))
		}
		t.Flush()
	}
	if rs := byMode[modeMemory]; len(rs) > 0 {
		fmt.Fprintln(w, "\nMemory: a large backlog and a slow model, watched from the first answer; resident set (MiB) at the start, middle and end.")
		t := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(t, "scenario\tbacklog\tseconds\tanswered\trec/s\tRSS start\tmiddle\tend\tpeak\t|\tpass answered\tpass RSS end\tpass peak\t")
		for _, res := range rs {
			s, p := res.Sidecar, res.Passthrough
			a, b, c := thirds(s.RSS)
			_, _, pc := thirds(p.RSS)
			fmt.Fprintf(t, "%s\t%d\t%.0f\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t|\t%d\t%.0f\t%.0f\t\n",
				res.Scenario, res.Records, s.Seconds, s.Answered, s.RecordsPerSec, a, b, c, s.PeakRSSMiB, p.Answered, pc, p.PeakRSSMiB)
		}
		t.Flush()
	}
	for _, res := range r.Results {
		for who, m := range map[string]*measure{"sidecar": &res.Sidecar, "passthrough": res.Passthrough} {
			if m != nil && m.ErrorRecords > 0 {
				spoilt++
				fmt.Fprintf(w, "!! %s %s: the %s wrote %d error records (the first: %s): its figures are not of answers\n",
					res.Scenario, res.Mode, who, m.ErrorRecords, m.FirstError)
			}
		}
		if d := res.ModelDirect; d != nil && d.Failed > 0 {
			spoilt++
			fmt.Fprintf(w, "!! %s %s: %d of %d model-direct calls failed\n", res.Scenario, res.Mode, d.Failed, d.Calls)
		}
	}
	return spoilt
}

func ratio(r *result, name string) string {
	v, ok := r.Ratios[name]
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

// thirds are the first, the middle and the last sample's resident set.
func thirds(s []rssSample) (start, middle, end float64) {
	if len(s) == 0 {
		return 0, 0, 0
	}
	return s[0].MiB, s[len(s)/2].MiB, s[len(s)-1].MiB
}
