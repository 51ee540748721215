package executor

import (
	"flag"
	"fmt"
	"io"
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
}

func (f *Flags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.ServerType, "server_type", "kafka", "the executor's server type; only kafka is served")
	fs.StringVar(&f.Sdep, "sdep", "", "SeldonDeployment name")
	fs.StringVar(&f.Namespace, "namespace", "", "namespace of the SeldonDeployment")
	fs.StringVar(&f.Predictor, "predictor", "", "predictor name inside the SeldonDeployment")
	fs.StringVar(&f.Protocol, "protocol", "seldon", "payload protocol: seldon, tensorflow or v2 (kfserving)")
	fs.StringVar(&f.Transport, "transport", "rest", "transport to the model: rest or grpc")
	fs.IntVar(&f.HTTPPort, "http_port", 8000, "port of /live, /ready, /metrics and, with --transport=rest, the synchronous API")
	fs.IntVar(&f.GRPCPort, "grpc_port", 5001, "port of the synchronous gRPC API, with --transport=grpc")
	fs.StringVar(&f.File, "file", "", "SeldonDeployment YAML (or PredictorSpec JSON) to read the predictor from instead of ENGINE_PREDICTOR")
	fs.StringVar(&f.LogLevel, "log_level", "INFO", "DEBUG, INFO, WARN or ERROR")
	fs.DurationVar(&f.GracefulTimeout, "graceful_timeout", 25*time.Second, "how long SIGTERM may take: finish in-flight records, flush, commit")
	fs.StringVar(&f.PrometheusPath, "prometheus_path", "/metrics", "path of the Prometheus metrics")
}

// ParseFlags reads the executor's arguments. Flags the legacy executor had and this one does not (they
// configure its HTTP/gRPC servers, tracing, payload logging) are returned as ignored rather than
// rejected, so the binary can replace the legacy executor image under an unchanged operator.
func ParseFlags(args []string) (f Flags, ignored []string, err error) {
	fs := flag.NewFlagSet("executor", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.define(fs)
	var known []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			return f, ignored, fmt.Errorf("unexpected argument %q", a)
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if fs.Lookup(name) == nil {
			// An unknown flag's value, when it is a separate argument, goes with it.
			if !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				a += " " + args[i]
			}
			ignored = append(ignored, a)
			continue
		}
		known = append(known, a)
		if !hasValue && i+1 < len(args) && !isBoolFlag(fs, name) {
			i++
			known = append(known, args[i])
		}
	}
	if err := fs.Parse(known); err != nil {
		return f, ignored, err
	}
	return f, ignored, nil
}

func isBoolFlag(fs *flag.FlagSet, name string) bool {
	bf, ok := fs.Lookup(name).Value.(interface{ IsBoolFlag() bool })
	return ok && bf.IsBoolFlag()
}

// Usage prints the flags, for -h.
func Usage(w io.Writer) {
	fs := flag.NewFlagSet("executor", flag.ContinueOnError)
	var f Flags
	f.define(fs)
	fs.SetOutput(w)
	fmt.Fprintln(w, "usage: executor [flags]; Kafka settings come from the environment (see README)")
	fs.PrintDefaults()
}
