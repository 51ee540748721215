package executor

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Flags are the arguments the Seldon operator gives the executor container.
type Flags struct {
	ServerType      string
	Sdep            string
	Namespace       string
	Predictor       string
	Protocol        string
	Transport       string
	HTTPPort        int
	GRPCPort        int
	File            string
	LogLevel        string
	GracefulTimeout time.Duration
	PrometheusPath  string
	// Version is --version: print the build's version and exit (cmd/executor does).
	Version bool

	// The payload logger of graph nodes with a logger, as the legacy executor's flags set it: how many
	// messages are sent at once, how many wait, the bound of one delivery, and a Kafka broker and topic
	// that take every message instead of the nodes' logger URLs.
	LoggerWorkers     int
	LogWorkBufferSize int
	LogWriteTimeoutMs int
	LogKafkaBroker    string
	LogKafkaTopic     string
}

// The legacy executor's defaults for the payload logger's flags.
const (
	DefaultLoggerWorkers     = 10
	DefaultLogWorkBufferSize = 10000
	DefaultLogWriteTimeoutMs = 2000
)

func (f *Flags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.ServerType, "server_type", "kafka", "the executor's server type; only kafka is served")
	fs.StringVar(&f.Sdep, "sdep", "", "SeldonDeployment name")
	fs.StringVar(&f.Namespace, "namespace", "", "namespace of the SeldonDeployment")
	fs.StringVar(&f.Predictor, "predictor", "", "predictor name inside the SeldonDeployment")
	fs.StringVar(&f.Protocol, "protocol", "seldon", "payload protocol: seldon, tensorflow or v2 (kfserving)")
	fs.StringVar(&f.Transport, "transport", "rest", "transport to the model: rest or grpc")
	fs.IntVar(&f.HTTPPort, "http_port", 8000, "port of /live, /ready, /metrics and, with --transport=rest, the synchronous API (all interfaces)")
	fs.IntVar(&f.GRPCPort, "grpc_port", 5001, "port of the synchronous gRPC API, with --transport=grpc (all interfaces)")
	fs.StringVar(&f.File, "file", "", "SeldonDeployment YAML (or PredictorSpec JSON) to read the predictor from instead of ENGINE_PREDICTOR")
	fs.StringVar(&f.LogLevel, "log_level", "INFO", "DEBUG, INFO, WARN or ERROR")
	f.GracefulTimeout = DefaultGracefulTimeout
	fs.Var((*seconds)(&f.GracefulTimeout), "graceful_timeout", "how long SIGTERM may take: finish in-flight records, flush, commit (a duration, or whole seconds)")
	fs.StringVar(&f.PrometheusPath, "prometheus_path", "/metrics", "path of the Prometheus metrics")
	fs.BoolVar(&f.Version, "version", false, "print the version and exit")
	fs.IntVar(&f.LoggerWorkers, "logger_workers", DefaultLoggerWorkers, "payload logger: messages sent at once")
	fs.IntVar(&f.LogWorkBufferSize, "log_work_buffer_size", DefaultLogWorkBufferSize, "payload logger: messages waiting at most; more are dropped (and counted)")
	fs.IntVar(&f.LogWriteTimeoutMs, "log_write_timeout_ms", DefaultLogWriteTimeoutMs, "payload logger: milliseconds one message may take to deliver")
	fs.StringVar(&f.LogKafkaBroker, "log_kafka_broker", "", "payload logger: Kafka broker taking every message (else LOGGER_KAFKA_BROKER; else the nodes' logger URLs)")
	fs.StringVar(&f.LogKafkaTopic, "log_kafka_topic", "", "payload logger: its Kafka topic (else LOGGER_KAFKA_TOPIC; else seldon)")
}

// DefaultGracefulTimeout is how long SIGTERM may take when the operator passes no --graceful_timeout
// (it does not): the Seldon operator gives the pods it makes terminationGracePeriodSeconds: 20, and the
// kubelet kills the container then. The drain ends at this deadline; flushing, the last commit and
// leaving the group take a second or two more, so 15 s leaves a margin inside the pod's 20.
const DefaultGracefulTimeout = 15 * time.Second

// legacyIgnored are the flags of the legacy executor (seldon-core v1.18, executor/main.go) that this one
// accepts and does not use, with the type the legacy gave them, so that a value the legacy refused is
// refused here too. They configure its HTTP/gRPC servers, Kubernetes access, payload logging, the
// RabbitMQ server and Kafka settings this executor reads from the environment instead.
var legacyIgnored = []struct {
	name, kind string // kind: string, int, bool or duration
}{
	{"config", "string"}, // kubeconfig, to read the SeldonDeployment from the API
	{"hostname", "string"},
	{"shutdown_delay", "duration"},
	{"full_health_checks", "bool"},
	{"debug", "bool"},
	{"kafka_full_graph", "bool"},  // KAFKA_FULL_GRAPH is ignored too (config.go)
	{"kafka_workers", "int"},      // KAFKA_WORKERS sets the records in flight
	{"kafka_auto_commit", "bool"}, // KAFKA_AUTO_COMMIT: read for compatibility only
	{"rabbitmq_full_graph", "bool"},
	{"rabbitmq_broker", "string"},
	{"rabbitmq_input_queue", "string"},
	{"rabbitmq_output_queue", "string"},
}

// legacyRefused are legacy flags that say where the records come from and go to. The legacy executor
// let them override KAFKA_BROKER, KAFKA_INPUT_TOPIC and KAFKA_OUTPUT_TOPIC; this one reads only the
// environment, and ignoring them would serve other topics than the command line names, so they are
// refused. (The operator never passes them.)
var legacyRefused = map[string]string{
	"kafka_broker":       "KAFKA_BROKER",
	"kafka_input_topic":  "KAFKA_INPUT_TOPIC",
	"kafka_output_topic": "KAFKA_OUTPUT_TOPIC",
}

func newFlagSet(f *Flags) (fs *flag.FlagSet, ignored map[string]bool) {
	fs = flag.NewFlagSet("executor", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.define(fs)
	ignored = map[string]bool{}
	for _, l := range legacyIgnored {
		usage := "legacy; accepted and ignored"
		switch l.kind {
		case "string":
			fs.String(l.name, "", usage)
		case "int":
			fs.Int(l.name, 0, usage)
		case "bool":
			fs.Bool(l.name, false, usage)
		case "duration":
			fs.Duration(l.name, 0, usage)
		}
		ignored[l.name] = true
	}
	return fs, ignored
}

// ParseFlags reads the executor's arguments. Flags the legacy executor had and this one does not use
// (they configure its HTTP/gRPC servers, payload logging, …) are returned as ignored rather than
// rejected, so the binary can replace the legacy executor image under an unchanged operator; any other
// flag is an error naming it. -h, -help and --help return flag.ErrHelp.
func ParseFlags(args []string) (f Flags, ignored []string, err error) {
	fs, ignoredNames := newFlagSet(&f)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			return f, nil, fmt.Errorf("unexpected argument %q", a)
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		if name == "" || strings.HasPrefix(name, "-") {
			return f, nil, fmt.Errorf("bad flag syntax: %s", a)
		}
		if name == "h" || name == "help" {
			return f, nil, flag.ErrHelp
		}
		fl := fs.Lookup(name)
		if fl == nil {
			if v, ok := legacyRefused[name]; ok {
				return f, nil, fmt.Errorf("--%s: this executor reads %s from the environment (svcOrchSpec.env) only; the flag is refused rather than ignored, so that the sidecar never serves another broker or topic than the command line names", name, v)
			}
			return f, nil, fmt.Errorf("unknown flag --%s%s", name, suggest(fs, name))
		}
		text := a
		if !hasValue && !isBoolFlag(fs, name) && i+1 < len(args) {
			// Its value is the next argument, whatever it looks like (-1 included), as the flag package has it.
			i++
			text += " " + args[i]
		}
		if ignoredNames[name] {
			ignored = append(ignored, text)
		}
	}
	if err := fs.Parse(args); err != nil {
		return f, nil, err
	}
	return f, ignored, nil
}

func isBoolFlag(fs *flag.FlagSet, name string) bool {
	bf, ok := fs.Lookup(name).Value.(interface{ IsBoolFlag() bool })
	return ok && bf.IsBoolFlag()
}

// suggest names the closest flag to a mistyped one, if one is close.
func suggest(fs *flag.FlagSet, name string) string {
	best, bestD := "", 3 // at most two edits away
	fs.VisitAll(func(fl *flag.Flag) {
		if d := editDistance(name, fl.Name); d < bestD {
			best, bestD = fl.Name, d
		}
	})
	if best == "" {
		return ""
	}
	return " (did you mean --" + best + "?)"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// seconds is --graceful_timeout: a duration (25s, 1m30s) or, as Seldon's manifests and operators
// often write a grace period, a whole number of seconds (25).
type seconds time.Duration

func (s *seconds) String() string { return time.Duration(*s).String() }

func (s *seconds) Set(v string) error {
	if n, err := strconv.Atoi(v); err == nil {
		*s = seconds(time.Duration(n) * time.Second)
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return errors.New("want a duration (25s, 1m) or whole seconds (25)")
	}
	*s = seconds(d)
	return nil
}

// Usage prints the flags, for -h.
func Usage(w io.Writer) {
	fs := flag.NewFlagSet("executor", flag.ContinueOnError)
	var f Flags
	f.define(fs)
	fs.SetOutput(w)
	fmt.Fprintln(w, "usage: executor [flags]; Kafka settings come from the environment (see README)")
	fs.PrintDefaults()
	names := make([]string, 0, len(legacyIgnored))
	for _, l := range legacyIgnored {
		names = append(names, "--"+l.name)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\nAccepted for the legacy executor's sake and ignored (reported once at start):\n  %s\n", strings.Join(names, " "))
	fmt.Fprintln(w, "Any other flag is refused.")
}
