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
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/seldon-kafka/sidecar/protocols/protofile"
	// The protocols' types, so that --proto-name can name any request a sidecar takes.
	_ "github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
	_ "github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
	_ "github.com/seldon-kafka/sidecar/protocols/v2/v2pb"
)

func main() {
	os.Exit(command(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// command runs protofile and returns its exit code: 0 when every record was delivered (and for --help,
// which prints the usage to stdout), 2 for a bad command line, named on one line of stderr, 1 otherwise.
func command(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	err := run(args, stdin, stdout, log)
	var usage usageError
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

// usageError is a bad command line.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// props collects repeated -X key=value librdkafka properties (security settings and the like).
type props map[string]string

func (p props) String() string { return fmt.Sprint(map[string]string(p)) }

func (p props) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("%q: want key=value", s)
	}
	p[strings.TrimSpace(k)] = v
	return nil
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
	extra := props{}
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
		return usageError{err}
	}
	if *topic == "" {
		return usageError{errors.New("--topic is required")}
	}
	if fs.NArg() > 1 {
		return usageError{fmt.Errorf("one file at most, got %d: %q", fs.NArg(), fs.Args())}
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
		if err := checkAll(*protoName, msgs); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	n, err := produce(*broker, *topic, *protoName, *key, extra, msgs, *timeout)
	if err != nil {
		return err
	}
	log.Info("produced", "file", name, "topic", *topic, "proto_name", *protoName, "records", n)
	return nil
}

// checkAll parses every message as the named type.
func checkAll(protoName string, msgs [][]byte) error {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(protoName))
	if err != nil {
		return fmt.Errorf("--proto-name %q is not a known message type (use --check=false to send anyway)", protoName)
	}
	for i, b := range msgs {
		if err := proto.Unmarshal(b, mt.New().Interface()); err != nil {
			return fmt.Errorf("message %d is not a %s: %w", i, protoName, err)
		}
	}
	return nil
}

func produce(broker, topic, protoName, key string, extra props, msgs [][]byte, timeout time.Duration) (int, error) {
	cm := ckafka.ConfigMap{
		"bootstrap.servers":  broker,
		"client.id":          "seldon-protofile",
		"enable.idempotence": true, // in file order, each once
		"acks":               "all",
		"linger.ms":          5,
		"message.timeout.ms": int(timeout.Milliseconds()),
	}
	for k, v := range extra {
		cm[k] = v
	}
	p, err := ckafka.NewProducer(&cm)
	if err != nil {
		return 0, fmt.Errorf("kafka producer: %w", err)
	}
	defer p.Close()
	reports := make(chan ckafka.Event, len(msgs))
	for i, b := range msgs {
		m := &ckafka.Message{
			TopicPartition: ckafka.TopicPartition{Topic: &topic, Partition: ckafka.PartitionAny},
			Value:          b,
			Headers:        []ckafka.Header{{Key: "proto-name", Value: []byte(protoName)}},
			Opaque:         i,
		}
		if key != "" {
			m.Key = []byte(strings.ReplaceAll(key, "{n}", strconv.Itoa(i)))
		}
		for {
			err := p.Produce(m, reports)
			var ke ckafka.Error
			if errors.As(err, &ke) && ke.Code() == ckafka.ErrQueueFull {
				p.Flush(100)
				continue
			}
			if err != nil {
				return i, fmt.Errorf("producing message %d: %w", i, err)
			}
			break
		}
	}
	deadline := time.After(timeout + 5*time.Second)
	for done := 0; done < len(msgs); done++ {
		select {
		case ev := <-reports:
			m, ok := ev.(*ckafka.Message)
			if !ok {
				done--
				continue
			}
			if m.TopicPartition.Error != nil {
				return done, fmt.Errorf("delivering message %v to %s: %w", m.Opaque, topic, m.TopicPartition.Error)
			}
		case <-deadline:
			return done, fmt.Errorf("%d of %d messages delivered to %s within %v", done, len(msgs), topic, timeout)
		}
	}
	return len(msgs), nil
}
