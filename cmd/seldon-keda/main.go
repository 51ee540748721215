// Command seldon-keda makes KEDA scaling for the Kafka sidecar agree with what the sidecar consumes.
//
//	seldon-keda generate [-f sdep.yaml]...   SeldonDeployment kedaSpecs -> ScaledObjects, TriggerAuthentications
//	seldon-keda lag                          the sidecar's group lag, and the replicas KEDA would ask for
//	seldon-keda topics create|delete|status  a SeldonDeployment's input, output and error topics
//
// It is the only binary that links KEDA's API types (github.com/kedacore/keda/v2/apis/keda/v1alpha1).
package main

import (
	"bytes"
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
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if args[0] == "help" && len(args) > 1 {
		args = []string{args[1], "--help"} // "seldon-keda help topics" is "seldon-keda topics --help"
	}
	if isHelp(args[0]) || args[0] == "help" {
		fmt.Fprint(stdout, usage) // asked for: the output, not a complaint
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

// isHelp reports whether an argument asks for usage, as the flag package reads -h and -help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "--h", "-help", "--help":
		return true
	}
	return false
}

// flagSet is a command's flags. Its usage goes to stdout when asked for (-h, --help) and to stderr after
// a mistake, so "seldon-keda generate --help | less" shows it.
type flagSet struct {
	*flag.FlagSet
	stdout, stderr io.Writer
	out            bytes.Buffer // what the flag package prints while parsing
}

// newFlags makes a command's flag set.
func newFlags(name, synopsis string, stdout, stderr io.Writer) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("seldon-keda "+name, flag.ContinueOnError), stdout: stdout, stderr: stderr}
	fs.SetOutput(&fs.out)
	fs.Usage = func() {
		fmt.Fprintf(&fs.out, "usage: seldon-keda %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags: flag.ErrHelp after printing the usage to stdout, or errUsage after printing the
// mistake and the usage to stderr.
func (fs *flagSet) parse(args []string) error {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		_, _ = fs.stdout.Write(fs.out.Bytes())
		return err
	}
	_, _ = fs.stderr.Write(fs.out.Bytes())
	return errUsage
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
