// Command sidecar-bench measures the sidecar from outside, against a real broker, next to the test
// model, and prints the figures with two baselines measured in the same run:
//
//   - passthrough: a consume → produce loop with the sidecar's own librdkafka settings and no model
//     (sidecar-bench passthrough, a child process measured as the sidecar is);
//   - model-direct: a load generator calling the same model with the sidecar's concurrency, no Kafka.
//
// Each scenario is a protocol (seldon, tensorflow, v2), a transport (REST, gRPC), a request size (1k: a
// 14×10 tensor of six-digit integers; cifar10: a 32×32×3 image) and a model (a latency per call, or a
// cost per call on one compute slot), in one of three modes:
//
//   - backlog: the records are produced first, then the sidecar is started and drains them — records/s,
//     CPU per record and peak RSS;
//   - paced: records at a fixed rate (half the backlog rate unless -rate) — end-to-end latency, from the
//     time a record is produced to the time its answer is read;
//   - memory: a large backlog and a slow model — the resident set over time.
//
// The sidecar (bin/executor), the passthrough loop and the model (bin/testmodel) are child processes;
// their CPU time (utime+stime) and memory (VmRSS, VmHWM) are read from /proc.
//
//	make bench                                  # the long form, several minutes
//	go run ./cmd/sidecar-bench -short           # a few thousand records: proves it runs
//	go run ./cmd/sidecar-bench -only 'grpc' -json out.json
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

type options struct {
	bootstrap  string
	executor   string
	testmodel  string
	short      bool
	workers    int
	partitions int
	// records is the backlog of a 1k scenario, cifarRecords of a cifar10 one; a scenario whose model
	// has a cost per call gets records/costDivisor.
	records       int
	cifarRecords  int
	pacedSeconds  int
	pacedFraction float64
	rate          int // paced records/s; 0: pacedFraction of the backlog rate
	memoryRecords int
	memorySeconds int
	memoryDelay   time.Duration
	only          *regexp.Regexp
	jsonPath      string
	sidecarEnv    []string
	list          bool
}

// defaults of the long form, and of -short (the CI form: under a minute).
var (
	longForm  = options{records: 20000, cifarRecords: 3000, pacedSeconds: 10, memoryRecords: 1000000, memorySeconds: 60}
	shortForm = options{records: 2000, cifarRecords: 200, pacedSeconds: 3, memoryRecords: 20000, memorySeconds: 5}
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == passthroughCommand {
		os.Exit(runPassthrough(os.Args[2:], os.Stderr))
	}
	o, code := parseArgs(os.Args[1:], os.Stdout, os.Stderr)
	if code >= 0 {
		os.Exit(code)
	}
	if err := run(o, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sidecar-bench:", err)
		os.Exit(1)
	}
}

// envList is a repeatable KEY=VALUE flag.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }
func (e *envList) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

// parseArgs reads the command line. It returns code -1 to go on, else the exit code: 0 for --help
// (the usage on stdout), 2 for a bad command line (one line on stderr naming what is wrong).
func parseArgs(args []string, stdout, stderr io.Writer) (o options, code int) {
	fs := flag.NewFlagSet("sidecar-bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var only string
	var env envList
	fs.StringVar(&o.bootstrap, "bootstrap", "", "Kafka bootstrap servers (default: the test broker's, from .kafka/bootstrap)")
	fs.StringVar(&o.executor, "executor", "bin/executor", "the sidecar binary")
	fs.StringVar(&o.testmodel, "testmodel", "bin/testmodel", "the test model binary")
	fs.BoolVar(&o.short, "short", false, "the short form: few records, few scenarios (proves the bench runs; the figures are rough)")
	fs.IntVar(&o.workers, "workers", 32, "KAFKA_WORKERS, and the model-direct load's concurrency")
	fs.IntVar(&o.partitions, "partitions", 4, "partitions of every topic")
	fs.IntVar(&o.records, "records", 0, fmt.Sprintf("backlog of a 1k scenario (default %d, -short %d)", longForm.records, shortForm.records))
	fs.IntVar(&o.cifarRecords, "cifar-records", 0, fmt.Sprintf("backlog of a cifar10 scenario (default %d, -short %d)", longForm.cifarRecords, shortForm.cifarRecords))
	fs.IntVar(&o.pacedSeconds, "paced-seconds", 0, fmt.Sprintf("length of a paced run (default %d, -short %d)", longForm.pacedSeconds, shortForm.pacedSeconds))
	fs.Float64Var(&o.pacedFraction, "paced-fraction", 0.5, "paced rate as a fraction of the same scenario's backlog rate")
	fs.IntVar(&o.rate, "rate", 0, "paced rate in records/s, instead of -paced-fraction")
	fs.IntVar(&o.memoryRecords, "memory-records", 0, fmt.Sprintf("backlog of the memory scenario (default %d, -short %d)", longForm.memoryRecords, shortForm.memoryRecords))
	fs.IntVar(&o.memorySeconds, "memory-seconds", 0, fmt.Sprintf("how long the memory scenario is watched (default %d, -short %d)", longForm.memorySeconds, shortForm.memorySeconds))
	fs.DurationVar(&o.memoryDelay, "memory-delay", 20*time.Millisecond, "the slow model's latency per call in the memory scenario")
	fs.StringVar(&only, "only", "", "run only the scenarios whose name and mode match this regular expression (see -list)")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results to this file, as JSON")
	fs.Var(&env, "sidecar-env", "KEY=VALUE for the sidecar's environment, on top of the bench's (repeatable)")
	fs.BoolVar(&o.list, "list", false, "print the scenarios and exit")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: sidecar-bench [flags]  (make broker && make build first; make bench does both)")
		fs.PrintDefaults()
	}
	err := fs.Parse(args)
	if err == nil {
		err = o.complete(fs, only)
	}
	o.sidecarEnv = env
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return o, 0
	case err == nil && fs.NArg() > 0:
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err != nil {
		fmt.Fprintf(stderr, "sidecar-bench: %v (sidecar-bench --help lists the flags)\n", err)
		return o, 2
	}
	return o, -1
}

// complete fills in the sizes of the chosen form that were not given, and checks the values.
func (o *options) complete(fs *flag.FlagSet, only string) error {
	form := longForm
	if o.short {
		form = shortForm
	}
	for _, f := range []struct {
		v    *int
		def  int
		name string
	}{
		{&o.records, form.records, "records"}, {&o.cifarRecords, form.cifarRecords, "cifar-records"},
		{&o.pacedSeconds, form.pacedSeconds, "paced-seconds"}, {&o.memoryRecords, form.memoryRecords, "memory-records"},
		{&o.memorySeconds, form.memorySeconds, "memory-seconds"},
	} {
		if *f.v == 0 {
			*f.v = f.def
		}
		if *f.v < 2 {
			return fmt.Errorf("-%s must be at least 2, got %d", f.name, *f.v)
		}
	}
	switch {
	case o.workers < 1 || o.partitions < 1:
		return fmt.Errorf("-workers and -partitions must be at least 1, got %d and %d", o.workers, o.partitions)
	case o.rate < 0:
		return fmt.Errorf("-rate must not be negative, got %d", o.rate)
	case o.pacedFraction <= 0 || o.pacedFraction > 1:
		return fmt.Errorf("-paced-fraction must be in (0, 1], got %v", o.pacedFraction)
	case o.memoryDelay < 0:
		return fmt.Errorf("-memory-delay must not be negative, got %v", o.memoryDelay)
	}
	re, err := regexp.Compile(only)
	if err != nil {
		return fmt.Errorf("-only: %w", err)
	}
	o.only = re
	return nil
}

func run(o options, args []string, stdout io.Writer) error {
	scenarios := selected(o)
	if o.list {
		for _, s := range scenarios {
			fmt.Fprintf(stdout, "%-36s %s\n", s.name(), s.Mode)
		}
		return nil
	}
	if len(scenarios) == 0 {
		return fmt.Errorf("-only %q matches no scenario (see -list)", o.only)
	}
	if o.bootstrap == "" {
		b, err := os.ReadFile(filepath.Join(".kafka", "bootstrap"))
		if err != nil {
			return fmt.Errorf("no -bootstrap and no test broker (run make broker): %w", err)
		}
		o.bootstrap = strings.TrimSpace(string(b))
	}
	for _, bin := range []string{o.executor, o.testmodel} {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("%s: %w (run make build)", bin, err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this binary, to run the passthrough loop: %w", err)
	}
	b := &bench{o: o, self: self, stdout: stdout, backlogRates: map[string]float64{}}
	rep := newReport(o, args)
	fmt.Fprintln(stdout, rep.Meta.header())
	for _, s := range scenarios {
		fmt.Fprintf(stdout, "  %-36s %-8s ", s.name(), s.Mode)
		start := time.Now()
		r, err := b.run(s)
		if err != nil {
			fmt.Fprintln(stdout, "FAILED")
			return fmt.Errorf("%s %s: %w", s.name(), s.Mode, err)
		}
		fmt.Fprintf(stdout, "done in %v\n", time.Since(start).Round(100*time.Millisecond))
		rep.Results = append(rep.Results, r)
	}
	rep.finish()
	spoilt := rep.print(stdout)
	if o.jsonPath != "" {
		if err := rep.write(o.jsonPath); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nresults written to %s\n", o.jsonPath)
	}
	if spoilt > 0 {
		// A request the model refuses measures the error path, not the sidecar: a broken bench.
		return fmt.Errorf("%d runs had error records or failed calls (see above)", spoilt)
	}
	return nil
}
