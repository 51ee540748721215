// Command seldon-keda makes KEDA scaling for the Kafka sidecar agree with what the sidecar consumes.
//
//	seldon-keda generate [-f sdep.yaml]...   SeldonDeployment kedaSpecs -> ScaledObjects, TriggerAuthentications
//	seldon-keda lag                          the sidecar's group lag, and the replicas KEDA would ask for
//	seldon-keda topics create|delete|status  a SeldonDeployment's input, output and error topics
//
// It is the only binary that links KEDA's API types (github.com/kedacore/keda/v2/apis/keda/v1alpha1).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `seldon-keda: KEDA scaling on the Kafka sidecar's consumer lag

  seldon-keda generate [-f FILE]... [flags]   SeldonDeployments (files or stdin) -> KEDA YAML on stdout
  seldon-keda lag [flags]                     per-partition lag of the sidecar's group, and KEDA's replicas
  seldon-keda topics create|delete|status -f FILE [flags]
                                              the input, output and error topics of SeldonDeployments

Run "seldon-keda COMMAND -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// errUsage is a command-line mistake, already explained on stderr.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var err error
	switch args[0] {
	case "generate":
		err = runGenerate(args[1:], stdin, stdout, stderr)
	case "lag":
		err = runLag(ctx, args[1:], stdout, stderr, getenv)
	case "topics":
		err = runTopics(ctx, args[1:], stdin, stdout, stderr, getenv)
	default:
		fmt.Fprintf(stderr, "seldon-keda: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "seldon-keda %s: %v\n", args[0], err)
	return 1
}

// newFlags makes a command's flag set that prints its usage to stderr.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("seldon-keda "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: seldon-keda %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags, turning a parse error into errUsage (the flag package has printed it).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

// files is a repeatable -f flag.
type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

// readInputs reads each file, or stdin for "-" or when none is given.
func readInputs(fs files, stdin io.Reader, each func(source string, data []byte) error) error {
	if len(fs) == 0 {
		fs = files{"-"}
	}
	for _, f := range fs {
		var data []byte
		var err error
		source := f
		if f == "-" {
			source = "stdin"
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(f)
		}
		if err != nil {
			return err
		}
		if err := each(source, data); err != nil {
			return err
		}
	}
	return nil
}

// kv is a repeatable key=value flag.
type kv map[string]string

func (m kv) String() string { return "" }
func (m kv) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("%q: want key=value", v)
	}
	m[strings.TrimSpace(k)] = val
	return nil
}
