// Command kafkaclient is the Kafka side of the examples (make demo, examples/graphs/run.sh): it creates
// the topics, sends requests to the input topic and prints each answer the executor writes back, with
// its headers, in the order the requests were sent.
//
//	kafkaclient -bootstrap 127.0.0.1:9092 -in requests -out answers -errors errors -create
//	kafkaclient -bootstrap 127.0.0.1:9092 -in requests -out answers -errors errors [-grpc] <requests
//
// Each line of standard input is one request: a key, a space, and a JSON SeldonMessage. With -grpc the
// message is sent as a binary seldon.protos.SeldonMessage with the proto-name header, as the executor
// wants records with --transport=grpc, and the protobuf answers are printed as JSON. With -pretty the
// rows of data.ndarray or data.tensor are printed with their names (the answer's largest value marked),
// and each answer with the time it took.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
)

const seldonMessage = "seldon.protos.SeldonMessage"

// pretty prints data rows with their names instead of JSON (-pretty).
var pretty bool

func main() {
	fs := flag.NewFlagSet("kafkaclient", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // an error is one line, below; the usage only on --help
	bootstrap := fs.String("bootstrap", "127.0.0.1:9092", "Kafka bootstrap servers")
	in := fs.String("in", "graph-requests", "input topic")
	out := fs.String("out", "graph-answers", "output topic")
	errs := fs.String("errors", "graph-errors", "error topic")
	create := fs.Bool("create", false, "create the topics and exit")
	grpc := fs.Bool("grpc", false, "send protobuf SeldonMessages (for an executor with --transport=grpc)")
	prefix := fs.String("puid", "req", "prefix of the Seldon-Puid of each request")
	timeout := fs.Duration("timeout", 90*time.Second, "how long to wait for all the answers")
	fs.BoolVar(&pretty, "pretty", false, "print the rows of requests and answers with their names, and each answer's time")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: kafkaclient -create [flags]      create the topics\n"+
			"       kafkaclient [flags] <requests     send each \"key json\" line of stdin, print the answers\n")
		fs.PrintDefaults()
	}
	err := fs.Parse(os.Args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(os.Stdout)
		fs.Usage()
		return
	case err == nil && fs.NArg() > 0:
		err = fmt.Errorf("unexpected argument %q (the requests come on standard input)", fs.Arg(0))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kafkaclient: %v (kafkaclient --help lists the flags)\n", err)
		os.Exit(2)
	}
	if *create {
		err = createTopics(*bootstrap, *in, *out, *errs)
	} else {
		var reqs []request
		if reqs, err = readRequests(os.Stdin, *prefix); err == nil {
			err = roundTrip(*bootstrap, *in, *out, *errs, *grpc, reqs, *timeout)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kafkaclient:", err)
		os.Exit(1)
	}
}

func createTopics(bootstrap string, topics ...string) error {
	a, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		return err
	}
	defer a.Close()
	var specs []kafka.TopicSpecification
	for _, t := range topics {
		specs = append(specs, kafka.TopicSpecification{Topic: t, NumPartitions: 2, ReplicationFactor: 1})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := a.CreateTopics(ctx, specs)
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError && r.Error.Code() != kafka.ErrTopicAlreadyExists {
			return fmt.Errorf("creating %s: %v", r.Topic, r.Error)
		}
		fmt.Printf("topic %s ready\n", r.Topic)
	}
	return nil
}

type request struct {
	key, value, puid string
}

// readRequests reads "key json" lines; the puids are prefix-N-nonce, so that answers left over from
// an earlier run on the same topics are not taken for this run's.
func readRequests(r io.Reader, prefix string) ([]request, error) {
	nonce := make([]byte, 2)
	_, _ = rand.Read(nonce)
	var out []request
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("request line %q: want a key, a space and a JSON message", line)
		}
		out = append(out, request{key: key, value: strings.TrimSpace(value),
			puid: fmt.Sprintf("%s-%d-%s", prefix, len(out)+1, hex.EncodeToString(nonce))})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no requests on standard input")
	}
	return out, sc.Err()
}

func roundTrip(bootstrap, in, out, errs string, grpc bool, reqs []request, timeout time.Duration) error {
	p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "enable.idempotence": true})
	if err != nil {
		return err
	}
	defer p.Close()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap,
		"group.id": fmt.Sprintf("kafkaclient-reader-%d", time.Now().UnixNano()), "auto.offset.reset": "latest",
		"enable.auto.commit": false})
	if err != nil {
		return err
	}
	defer c.Close()
	topics := []string{out}
	if errs != out {
		topics = append(topics, errs)
	}
	if err := c.SubscribeTopics(topics, nil); err != nil {
		return err
	}
	// Wait for the assignment so that the answers are not missed with auto.offset.reset=latest.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.Poll(100)
		parts, _ := c.Assignment()
		if len(parts) > 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no partitions of %v assigned", topics)
		}
	}
	time.Sleep(500 * time.Millisecond) // let the fetch positions settle at the end of the topics

	byPuid := map[string]int{}
	sent := make([]time.Time, len(reqs))
	took := make([]time.Duration, len(reqs))
	delivered := make(chan kafka.Event, len(reqs))
	for i, r := range reqs {
		byPuid[r.puid] = i
		value := []byte(r.value)
		hs := []kafka.Header{{Key: "Seldon-Puid", Value: []byte(r.puid)}}
		if grpc {
			// A line that is not a SeldonMessage goes as it is, to show what the executor does with bytes
			// that do not parse.
			var sm seldonpb.SeldonMessage
			if err := protojson.Unmarshal(value, &sm); err == nil {
				if value, err = proto.Marshal(&sm); err != nil {
					return err
				}
			}
			hs = append(hs, kafka.Header{Key: "proto-name", Value: []byte(seldonMessage)})
		} else {
			hs = append(hs, kafka.Header{Key: "Content-Type", Value: []byte("application/json")})
		}
		how := "JSON"
		if grpc {
			how = fmt.Sprintf("protobuf %s, %d bytes", seldonMessage, len(value))
		}
		if pretty {
			fmt.Printf("→ %-10s %s\n", r.key, rows([]byte(r.value), false))
		} else {
			fmt.Printf("→ %-10s %s\n             (Seldon-Puid %s, %s)\n", r.key, r.value, r.puid, how)
		}
		sent[i] = time.Now()
		if err := p.Produce(&kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &in, Partition: kafka.PartitionAny},
			Key:            []byte(r.key), Value: value, Headers: hs,
		}, delivered); err != nil {
			return err
		}
	}
	for range reqs {
		select {
		case e := <-delivered:
			if m, ok := e.(*kafka.Message); ok && m.TopicPartition.Error != nil {
				return fmt.Errorf("request %s not delivered to %s: %v", m.Key, in, m.TopicPartition.Error)
			}
		case <-time.After(30 * time.Second):
			return fmt.Errorf("requests not delivered to %s within 30s", in)
		}
	}

	answers := make([]*kafka.Message, len(reqs))
	got := 0
	deadline = time.Now().Add(timeout)
	for got < len(reqs) {
		if time.Now().After(deadline) {
			break
		}
		msg, err := c.ReadMessage(200 * time.Millisecond)
		if err != nil {
			continue
		}
		i, ok := byPuid[header(msg, "Seldon-Puid")]
		if !ok || answers[i] != nil {
			continue // not one of this run's requests
		}
		answers[i] = msg
		took[i] = time.Since(sent[i])
		got++
	}
	fmt.Println()
	for i, r := range reqs {
		printAnswer(r, answers[i], took[i])
	}
	if got < len(reqs) {
		return fmt.Errorf("%d of %d answers within %v", got, len(reqs), timeout)
	}
	return nil
}

func header(m *kafka.Message, key string) string {
	for _, h := range m.Headers {
		if strings.EqualFold(h.Key, key) {
			return string(h.Value)
		}
	}
	return ""
}

func printAnswer(r request, m *kafka.Message, took time.Duration) {
	if m == nil {
		fmt.Printf("← %-10s no answer\n", r.key)
		return
	}
	where := fmt.Sprintf("%s[%d]@%d", *m.TopicPartition.Topic, m.TopicPartition.Partition, m.TopicPartition.Offset)
	if pretty {
		if reason := header(m, "Seldon-Error-Reason"); reason != "" {
			fmt.Printf("← %-10s error record (%s): %s\n", r.key, reason, header(m, "Seldon-Error-Message"))
			return
		}
		fmt.Printf("← %-10s %s   [%v, %s]\n", r.key, rows([]byte(body(m)), true), took.Round(time.Millisecond), where)
		return
	}
	if reason := header(m, "Seldon-Error-Reason"); reason != "" {
		fmt.Printf("← %-10s ERROR RECORD on %s\n", r.key, where)
		for _, h := range []string{"Seldon-Puid", "Seldon-Error-Reason", "Seldon-Error-Stage", "Seldon-Error-Node",
			"Seldon-Error-Method", "Seldon-Error-Status", "Seldon-Error-Code", "Seldon-Error-Message"} {
			if v := header(m, h); v != "" {
				fmt.Printf("             %s: %s\n", h, v)
			}
		}
		return
	}
	fmt.Printf("← %-10s answer on %s\n", r.key, where)
	hs := []string{"Seldon-Puid", "Content-Type"}
	if header(m, "proto-name") != "" {
		hs = append(hs, "proto-name")
	}
	for _, h := range hs {
		fmt.Printf("             %s: %s\n", h, header(m, h))
	}
	fmt.Printf("             %s\n", body(m))
}

// body is the answer as one line of JSON: a protobuf SeldonMessage decoded, JSON compacted as it is.
func body(m *kafka.Message) string {
	v := m.Value
	if header(m, "proto-name") == seldonMessage {
		var sm seldonpb.SeldonMessage
		if err := proto.Unmarshal(v, &sm); err != nil {
			return fmt.Sprintf("(not a %s: %v)", seldonMessage, err)
		}
		b, err := protojson.Marshal(&sm)
		if err != nil {
			return fmt.Sprintf("(%v)", err)
		}
		v = b
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		return strings.TrimSpace(string(v))
	}
	return buf.String()
}

// rows prints the rows of a SeldonMessage's data.ndarray or data.tensor with data.names: "name value,
// …" a row, rows separated by " | "; with mark, a row starts with the name of its largest value
// ("setosa (setosa 0.982, versicolor 0.018, …)"). Anything else is printed as it is.
func rows(msg []byte, mark bool) string {
	var sm seldonpb.SeldonMessage
	if err := protojson.Unmarshal(msg, &sm); err != nil || sm.GetData() == nil {
		return strings.TrimSpace(string(msg))
	}
	d := sm.GetData()
	var table [][]float64
	switch {
	case d.GetNdarray() != nil:
		for _, rv := range d.GetNdarray().GetValues() {
			var row []float64
			for _, v := range rv.GetListValue().GetValues() {
				row = append(row, v.GetNumberValue())
			}
			table = append(table, row)
		}
	case d.GetTensor() != nil && len(d.GetTensor().GetShape()) == 2:
		vals, width := d.GetTensor().GetValues(), int(d.GetTensor().GetShape()[1])
		for i := 0; width > 0 && i+width <= len(vals); i += width {
			table = append(table, vals[i:i+width])
		}
	default:
		return strings.TrimSpace(string(msg))
	}
	var out []string
	for _, row := range table {
		var cells []string
		top := 0
		for j, v := range row {
			name := fmt.Sprintf("[%d]", j)
			if j < len(d.GetNames()) {
				name = d.GetNames()[j]
			}
			cells = append(cells, fmt.Sprintf("%s %s", name, strconv.FormatFloat(v, 'f', -1, 64)))
			if mark {
				cells[j] = fmt.Sprintf("%s %.3f", name, v)
			}
			if v > row[top] {
				top = j
			}
		}
		line := strings.Join(cells, ", ")
		if mark && len(row) > 0 && top < len(d.GetNames()) {
			line = d.GetNames()[top] + " (" + line + ")"
		}
		out = append(out, line)
	}
	return strings.Join(out, " | ")
}
