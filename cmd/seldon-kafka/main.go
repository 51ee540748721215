// Command seldon-kafka is the client for people without kcat: it sends requests to a sidecar's input
// topic with the headers the sidecar wants, and — given the output topic — reads the answers back,
// matched to the requests by Seldon-Puid, decoded per proto-name, with a progress bar and a summary.
//
//	seldon-kafka --broker=localhost:9092 --in=iris-input --out=iris-output --errors=iris-errors requests.jsonl
//	seldon-kafka --in=cifar10-input --out=cifar10-output --format=protofile \
//	    --proto-name=tensorflow.serving.PredictRequest requests.data
//
// Input: with --format=json (the default) each non-empty line of FILE (or stdin) is one JSON request,
// sent with Content-Type application/json; with --format=protofile FILE holds length-prefixed protobuf
// messages (the legacy examples' format; see cmd/protofile), each checked to parse as --proto-name and
// sent with that proto-name header. Every record gets Seldon-Puid <run>-<n>, which the sidecar copies to
// its answer and error record; --key sets keys ({n} is the request's index).
//
// Output: one JSON line per answer on stdout — {"n","key","puid","latency_ms","answer"} or, for an error
// record, {"n","key","puid","latency_ms","error":{"reason","message"}} — and on stderr a progress bar
// and a summary: sent, answered, error records by reason, missing, latency percentiles, rate. Exit 0 when
// every request was answered without an error record; 1 when one is missing (after --timeout) or is an
// error record, or on failure; 2 for a bad command line.
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/internal/cli"
	"github.com/seldon-kafka/sidecar/internal/send"
	"github.com/seldon-kafka/sidecar/protocols/protofile"
)

func main() {
	os.Exit(command(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// errIncomplete is a run that ended with requests missing or answered by error records: the summary
// says which.
var errIncomplete = errors.New("not every request was answered")

func command(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := run(args, stdin, stdout, stderr)
	var usage cli.UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "seldon-kafka: %v (seldon-kafka --help lists the flags)\n", err)
		return 2
	case errors.Is(err, errIncomplete):
		return 1
	default:
		fmt.Fprintf(stderr, "seldon-kafka: %v\n", err)
		return 1
	}
}

type options struct {
	broker, in, out, errs  string
	format, protoName, key string
	timeout                time.Duration
	quiet                  bool
	extra                  send.Props
}

func parse(args []string, stdout io.Writer) (options, string, error) {
	o := options{extra: send.Props{}}
	fs := flag.NewFlagSet("seldon-kafka", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.broker, "broker", "localhost:9092", "Kafka bootstrap servers")
	fs.StringVar(&o.in, "in", "", "the sidecar's input topic, where the requests go (required)")
	fs.StringVar(&o.out, "out", "", "the sidecar's output topic: read the answers back (none: send only)")
	fs.StringVar(&o.errs, "errors", "", "the sidecar's error topic, read too (KAFKA_ERROR_TOPIC; none when it is the output topic)")
	fs.StringVar(&o.format, "format", "json", "the file's format: json (a JSON request a line) or protofile (length-prefixed protobuf)")
	fs.StringVar(&o.protoName, "proto-name", "tensorflow.serving.PredictRequest", "with --format=protofile, the messages' type, sent as each record's proto-name header")
	fs.StringVar(&o.key, "key", "", "each record's key; {n} is replaced by the request's index from 0 (empty: no key)")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "how long to wait for the deliveries, then for the last answer")
	fs.BoolVar(&o.quiet, "quiet", false, "print no answers, only the summary")
	fs.Var(o.extra, "X", "librdkafka property key=value (repeatable), e.g. -X security.protocol=SSL")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: seldon-kafka --in=TOPIC [--out=TOPIC [--errors=TOPIC]] [flags] FILE (- or none for stdin)\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return o, "", err
		}
		return o, "", cli.UsageError{Err: err}
	}
	switch {
	case o.in == "":
		return o, "", cli.Usagef("--in is required")
	case o.format != "json" && o.format != "protofile":
		return o, "", cli.Usagef("--format=%q: want json or protofile", o.format)
	case o.errs != "" && o.out == "":
		return o, "", cli.Usagef("--errors needs --out: answers are read only with an output topic")
	case o.timeout <= 0:
		return o, "", cli.Usagef("--timeout must be positive")
	case fs.NArg() > 1:
		return o, "", cli.Usagef("one file at most, got %d: %q", fs.NArg(), fs.Args())
	}
	return o, fs.Arg(0), nil
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, path, err := parse(args, stdout)
	if err != nil {
		return err
	}
	in, name := stdin, "stdin"
	if path != "" && path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, path
	}
	recs, err := readRequests(in, o)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(recs) == 0 {
		return fmt.Errorf("%s: no requests", name)
	}

	// The answers are read from where the topics end now: only this run's count.
	var r *reader
	if o.out != "" {
		if r, err = newReader(o); err != nil {
			return err
		}
		defer r.close()
	}
	p, err := send.Producer(o.broker, "seldon-kafka", o.extra, o.timeout)
	if err != nil {
		return err
	}
	defer p.Close()
	bar := newProgress(stderr, len(recs), r != nil)
	sentAt := make([]time.Time, len(recs))
	if _, err := send.Produce(p, o.in, recs, o.timeout, func(i int) { sentAt[i] = time.Now(); bar.sent(i + 1) }); err != nil {
		bar.end()
		return err
	}
	if r == nil {
		bar.end()
		fmt.Fprintf(stderr, "sent %d requests to %s\n", len(recs), o.in)
		return nil
	}
	s := r.collect(recs, sentAt, o, stdout, bar)
	bar.end()
	s.print(stderr)
	if s.missing > 0 || s.errors > 0 {
		return errIncomplete
	}
	return nil
}

// readRequests reads the file as o.format says and makes one record per request.
func readRequests(in io.Reader, o options) ([]send.Record, error) {
	run := make([]byte, 4)
	_, _ = rand.Read(run)
	prefix := hex.EncodeToString(run)
	var values [][]byte
	var headers []ckafka.Header
	switch o.format {
	case "protofile":
		msgs, err := protofile.ReadAll(in, 0)
		if err != nil {
			return nil, err
		}
		if err := send.CheckAll(o.protoName, msgs); err != nil {
			return nil, err
		}
		values, headers = msgs, []ckafka.Header{{Key: "proto-name", Value: []byte(o.protoName)}}
	default:
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 1<<20), protofile.DefaultMaxMessage)
		for line := 1; sc.Scan(); line++ {
			b := bytes.TrimSpace(sc.Bytes())
			if len(b) == 0 {
				continue
			}
			if !json.Valid(b) {
				return nil, fmt.Errorf("line %d is not JSON", line)
			}
			values = append(values, slices.Clone(b))
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
		headers = []ckafka.Header{{Key: "Content-Type", Value: []byte("application/json")}}
	}
	recs := make([]send.Record, len(values))
	for i, v := range values {
		recs[i] = send.Record{Value: v,
			Headers: append(slices.Clone(headers), ckafka.Header{Key: "Seldon-Puid", Value: []byte(prefix + "-" + strconv.Itoa(i))})}
		if o.key != "" {
			recs[i].Key = []byte(strings.ReplaceAll(o.key, "{n}", strconv.Itoa(i)))
		}
	}
	return recs, nil
}

// reader reads the output and error topics from where they ended when it was made.
type reader struct {
	c *ckafka.Consumer
}

func newReader(o options) (*reader, error) {
	cm := ckafka.ConfigMap{"bootstrap.servers": o.broker, "group.id": "seldon-kafka-client",
		"enable.auto.commit": false, "go.logs.channel.enable": false, "log_level": 3}
	for k, v := range o.extra {
		cm[k] = v
	}
	c, err := ckafka.NewConsumer(&cm)
	if err != nil {
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	var tps []ckafka.TopicPartition
	for _, topic := range []string{o.out, o.errs} {
		if topic == "" || topic == o.out && len(tps) > 0 {
			continue
		}
		md, err := c.GetMetadata(&topic, false, int(o.timeout.Milliseconds()))
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("reading %s's partitions: %w", topic, err)
		}
		t, ok := md.Topics[topic]
		if !ok || t.Error.Code() != ckafka.ErrNoError || len(t.Partitions) == 0 {
			c.Close()
			return nil, fmt.Errorf("topic %s: not found (%v)", topic, t.Error)
		}
		for _, part := range t.Partitions {
			_, high, err := c.QueryWatermarkOffsets(topic, part.ID, int(o.timeout.Milliseconds()))
			if err != nil {
				c.Close()
				return nil, fmt.Errorf("reading where %s[%d] ends: %w", topic, part.ID, err)
			}
			tps = append(tps, ckafka.TopicPartition{Topic: &topic, Partition: part.ID, Offset: ckafka.Offset(high)})
		}
	}
	if err := c.Assign(tps); err != nil {
		c.Close()
		return nil, fmt.Errorf("reading the answers: %w", err)
	}
	return &reader{c: c}, nil
}

func (r *reader) close() { _ = r.c.Close() }

// summary is what a run saw.
type summary struct {
	sent, answered, errors, missing int
	reasons                         map[string]int
	latencies                       []time.Duration
	took                            time.Duration
}

// collect reads answers until every request has one or the timeout passes since the last answer came,
// printing each (unless quiet).
func (r *reader) collect(recs []send.Record, sentAt []time.Time, o options, stdout io.Writer, bar *progress) summary {
	byPuid := make(map[string]int, len(recs))
	for i, rec := range recs {
		byPuid[header(rec.Headers, "Seldon-Puid")] = i
	}
	s := summary{sent: len(recs), reasons: map[string]int{}}
	seen := make([]bool, len(recs))
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	start, last := sentAt[0], time.Now()
	for s.answered < len(recs) && time.Since(last) < o.timeout {
		ev := r.c.Poll(200)
		m, ok := ev.(*ckafka.Message)
		if !ok || m.TopicPartition.Error != nil {
			continue
		}
		i, ok := byPuid[header(m.Headers, "Seldon-Puid")]
		if !ok || seen[i] {
			continue // another client's, or an answer repeated (at least once)
		}
		seen[i], last = true, time.Now()
		latency := last.Sub(sentAt[i])
		s.answered++
		s.latencies = append(s.latencies, latency)
		line := map[string]any{"n": i, "puid": header(m.Headers, "Seldon-Puid"), "latency_ms": float64(latency.Microseconds()) / 1000}
		if len(recs[i].Key) > 0 {
			line["key"] = string(recs[i].Key)
		}
		if reason := header(m.Headers, "Seldon-Error-Reason"); reason != "" {
			s.errors++
			s.reasons[reason]++
			line["error"] = map[string]string{"reason": reason, "message": header(m.Headers, "Seldon-Error-Message")}
		} else {
			line["answer"] = decode(m)
		}
		if !o.quiet {
			b, _ := json.Marshal(line)
			out.Write(append(b, '\n'))
		}
		bar.answered(s.answered, s.errors)
	}
	s.missing = len(recs) - s.answered
	s.took = last.Sub(start)
	return s
}

// decode is an answer's value as JSON: a protobuf answer (proto-name) in protobuf's JSON form, a JSON
// answer as it is, anything else as a string.
func decode(m *ckafka.Message) any {
	if name := header(m.Headers, "proto-name"); name != "" {
		if mt, err := send.MessageType(name); err == nil {
			msg := mt.New().Interface()
			if err := proto.Unmarshal(m.Value, msg); err == nil {
				if b, err := protojson.Marshal(msg); err == nil {
					return json.RawMessage(b)
				}
			}
		}
	}
	if json.Valid(m.Value) {
		return json.RawMessage(m.Value)
	}
	return string(m.Value)
}

func header(hs []ckafka.Header, key string) string {
	for _, h := range hs {
		if strings.EqualFold(h.Key, key) {
			return string(h.Value)
		}
	}
	return ""
}

func (s summary) print(w io.Writer) {
	fmt.Fprintf(w, "sent %d, answered %d (error records %d", s.sent, s.answered, s.errors)
	if len(s.reasons) > 0 {
		var parts []string
		for r, n := range s.reasons {
			parts = append(parts, fmt.Sprintf("%s %d", r, n))
		}
		sort.Strings(parts)
		fmt.Fprintf(w, ": %s", strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "), missing %d\n", s.missing)
	if len(s.latencies) == 0 {
		return
	}
	slices.Sort(s.latencies)
	pct := func(q float64) time.Duration {
		return s.latencies[min(len(s.latencies)-1, int(q*float64(len(s.latencies))))].Round(100 * time.Microsecond)
	}
	fmt.Fprintf(w, "latency p50 %v, p90 %v, p99 %v, max %v", pct(0.50), pct(0.90), pct(0.99), s.latencies[len(s.latencies)-1].Round(100*time.Microsecond))
	if s.took > 0 {
		fmt.Fprintf(w, "; %.0f answers/s", float64(s.answered)/s.took.Seconds())
	}
	fmt.Fprintln(w)
}

// progress draws a bar on stderr when it is a terminal, redrawn at most every 100 ms.
type progress struct {
	w                      io.Writer
	on                     bool
	total, n, done, errors int
	answers                bool
	drawn                  time.Time
}

func newProgress(w io.Writer, total int, answers bool) *progress {
	on := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			on = true
		}
	}
	return &progress{w: w, on: on, total: total, answers: answers}
}

func (p *progress) sent(n int) { p.n = n; p.draw(false) }

func (p *progress) answered(n, errors int) { p.done, p.errors = n, errors; p.draw(false) }

func (p *progress) end() {
	p.draw(true)
	if p.on {
		fmt.Fprintln(p.w)
	}
}

func (p *progress) draw(force bool) {
	if !p.on || (!force && time.Since(p.drawn) < 100*time.Millisecond) {
		return
	}
	p.drawn = time.Now()
	const width = 30
	count := p.n
	if p.answers {
		count = p.done
	}
	filled := width * count / p.total
	fmt.Fprintf(p.w, "\r[%s%s] sent %d/%d", strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.n, p.total)
	if p.answers {
		fmt.Fprintf(p.w, ", answered %d (errors %d)", p.done, p.errors)
	}
}
