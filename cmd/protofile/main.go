// Command protofile produces a file of length-prefixed protobuf messages (each preceded by its length
// as a 4-byte big-endian integer, the format the legacy Seldon Kafka examples ship) to a Kafka topic,
// one record per message, each with the proto-name header a gRPC sidecar routes by:
//
//	go run ./cmd/protofile --broker=localhost:9092 --topic=tf-requests \
//	    --proto-name=tensorflow.serving.PredictRequest --key='req-{n}' requests.data
//
// Every message is checked to parse as the named type before anything is produced, so a wrong
// --proto-name or a damaged file sends nothing. It exits non-zero unless every record was delivered.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seldon-kafka/sidecar/internal/cli"
	"github.com/seldon-kafka/sidecar/internal/send"
	"github.com/seldon-kafka/sidecar/protocols/protofile"
)

func main() {
	os.Exit(command(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// command runs protofile and returns its exit code: 0 when every record was delivered (and for --help,
// which prints the usage to stdout), 2 for a bad command line, named on one line of stderr, 1 otherwise.
func command(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	err := run(args, stdin, stdout, log)
	var usage cli.UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "protofile: %v (protofile --help lists the flags)\n", err)
		return 2
	default:
		log.Error("protofile failed", "error", err)
		return 1
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("protofile", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // an error is one line, printed by command; the usage only on --help
	broker := fs.String("broker", "localhost:9092", "Kafka bootstrap servers")
	topic := fs.String("topic", "", "topic to produce to (required)")
	protoName := fs.String("proto-name", "tensorflow.serving.PredictRequest", "the messages' type, sent as each record's proto-name header")
	key := fs.String("key", "", "each record's key; {n} is replaced by the message's index from 0 (empty: no key)")
	check := fs.Bool("check", true, "refuse to produce unless every message parses as --proto-name")
	maxMessage := fs.Int("max-message-bytes", protofile.DefaultMaxMessage, "largest message accepted from the file")
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for every delivery")
	extra := send.Props{}
	fs.Var(extra, "X", "librdkafka property key=value (repeatable), e.g. -X security.protocol=SSL")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: protofile --topic=T [flags] FILE (- or none for stdin)\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return err
		}
		return cli.UsageError{Err: err}
	}
	if *topic == "" {
		return cli.Usagef("--topic is required")
	}
	if fs.NArg() > 1 {
		return cli.Usagef("one file at most, got %d: %q", fs.NArg(), fs.Args())
	}
	in, name := stdin, "stdin"
	if path := fs.Arg(0); path != "" && path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, path
	}
	msgs, err := protofile.ReadAll(in, *maxMessage)
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	if *check {
		if err := send.CheckAll(*protoName, msgs); err != nil {
			return fmt.Errorf("%s: %w (use --check=false to send anyway)", name, err)
		}
	}
	n, err := produce(*broker, *topic, *protoName, *key, extra, msgs, *timeout)
	if err != nil {
		return err
	}
	log.Info("produced", "file", name, "topic", *topic, "proto_name", *protoName, "records", n)
	return nil
}

func produce(broker, topic, protoName, key string, extra send.Props, msgs [][]byte, timeout time.Duration) (int, error) {
	p, err := send.Producer(broker, "seldon-protofile", extra, timeout)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	recs := make([]send.Record, len(msgs))
	for i, b := range msgs {
		recs[i] = send.Record{Value: b, Headers: []ckafka.Header{{Key: "proto-name", Value: []byte(protoName)}}}
		if key != "" {
			recs[i].Key = []byte(strings.ReplaceAll(key, "{n}", strconv.Itoa(i)))
		}
	}
	return send.Produce(p, topic, recs, timeout, nil)
}
