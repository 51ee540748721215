// Command cifar10 makes the legacy CIFAR10 example's requests and checks the answers a sidecar writes
// for them.
//
//	cifar10 requests [-n 4] [-json requests.jsonl] [-proto requests.data]
//	    N images (internal/cifar10) as TF Serving REST requests, one JSON request a line, and as a file of
//	    length-prefixed tensorflow.serving.PredictRequest messages (4-byte big-endian lengths, the
//	    legacy examples' format, which cmd/protofile produces to a topic).
//	cifar10 check -bootstrap HOST:PORT -in TOPIC -out TOPIC (-json FILE | -proto FILE) [-model testmodel]
//	    Sends each request of the file (key req-N; Content-Type application/json, or the proto-name
//	    header), reads the answers from the output topic, and checks them: with -model=testmodel, that
//	    each equals the project's test model's answer for it (every value doubled); with
//	    -model=resnet32, that each is 10 class probabilities, printing the most likely class.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/internal/cifar10"
	"github.com/seldon-kafka/sidecar/internal/testmodel"
	"github.com/seldon-kafka/sidecar/protocols/protofile"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
)

const usage = `usage: cifar10 requests [-n 4] [-json FILE] [-proto FILE]
       cifar10 check -bootstrap HOST:PORT -in TOPIC -out TOPIC (-json FILE | -proto FILE) [-model testmodel|resnet32]

Run "cifar10 COMMAND -h" for a command's flags.
`

const predictRequest = "tensorflow.serving.PredictRequest"

// Classes are CIFAR10's, in the order the model's 10 outputs are.
var Classes = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// errUsage is a command-line mistake, already said on stderr.
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "requests":
		err = requests(args[1:], stdout, stderr)
	case "check":
		err = check(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "cifar10: unknown command %q (cifar10 --help lists them)\n", args[0])
		return 2
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintln(stderr, "cifar10:", err)
	return 1
}

// flags makes a command's flag set: its usage on stdout for -h, one line on stderr for a mistake.
func flags(name string, stdout, stderr io.Writer) (*flag.FlagSet, func([]string) error) {
	fs := flag.NewFlagSet("cifar10 "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	parse := func(args []string) error {
		err := fs.Parse(args)
		switch {
		case errors.Is(err, flag.ErrHelp):
			fs.SetOutput(stdout)
			fmt.Fprintf(stdout, "usage: cifar10 %s [flags]\n", name)
			fs.PrintDefaults()
			return err
		case err == nil && fs.NArg() > 0:
			err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		if err != nil {
			fmt.Fprintf(stderr, "cifar10 %s: %v (cifar10 %s --help lists the flags)\n", name, err, name)
			return errUsage
		}
		return nil
	}
	return fs, parse
}

func requests(args []string, stdout, stderr io.Writer) error {
	fs, parse := flags("requests", stdout, stderr)
	n := fs.Int("n", 4, "images")
	jsonFile := fs.String("json", "requests.jsonl", "file of REST requests, one a line (empty: none)")
	protoFile := fs.String("proto", "requests.data", "file of length-prefixed PredictRequests (empty: none)")
	if err := parse(args); err != nil {
		return err
	}
	if *n < 1 {
		fmt.Fprintln(stderr, "cifar10 requests: -n must be at least 1")
		return errUsage
	}
	var js, pb bytes.Buffer
	for i := range *n {
		img := cifar10.Image(i)
		js.Write(cifar10.TensorflowJSON(img))
		js.WriteByte('\n')
		b, err := proto.Marshal(cifar10.PredictRequest(img))
		if err != nil {
			return err
		}
		if err := protofile.Write(&pb, b); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{*jsonFile, js.Bytes()}, {*protoFile, pb.Bytes()}} {
		if f.path == "" {
			continue
		}
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %d requests to %s (%d bytes)\n", *n, f.path, len(f.data))
	}
	return nil
}

// request is one request of a file, as sent.
type request struct {
	key   string
	value []byte
	proto *tfpb.PredictRequest // for -proto
}

func readRequests(jsonFile, protoFile string) ([]request, error) {
	var out []request
	if jsonFile != "" {
		f, err := os.Open(jsonFile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
				out = append(out, request{key: fmt.Sprintf("req-%d", len(out)+1), value: bytes.Clone(line)})
			}
		}
		return out, sc.Err()
	}
	f, err := os.Open(protoFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	msgs, err := protofile.ReadAll(f, 64<<20)
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		var pr tfpb.PredictRequest
		if err := proto.Unmarshal(m, &pr); err != nil {
			return nil, fmt.Errorf("%s: message %d is not a %s: %w", protoFile, len(out)+1, predictRequest, err)
		}
		out = append(out, request{key: fmt.Sprintf("req-%d", len(out)+1), value: m, proto: &pr})
	}
	return out, nil
}

func check(args []string, stdout, stderr io.Writer) error {
	fs, parse := flags("check", stdout, stderr)
	bootstrap := fs.String("bootstrap", "", "Kafka bootstrap servers")
	in := fs.String("in", "", "the sidecar's input topic")
	out := fs.String("out", "", "the sidecar's output topic")
	jsonFile := fs.String("json", "", "REST requests, one a line (cifar10 requests -json)")
	protoFile := fs.String("proto", "", "length-prefixed PredictRequests (cifar10 requests -proto)")
	model := fs.String("model", "testmodel", "what answers: testmodel (the project's, every value doubled: each answer checked) or resnet32 (the legacy example's: the most likely class printed)")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for every answer")
	if err := parse(args); err != nil {
		return err
	}
	switch {
	case *bootstrap == "" || *in == "" || *out == "":
		fmt.Fprintln(stderr, "cifar10 check: -bootstrap, -in and -out are required")
		return errUsage
	case (*jsonFile == "") == (*protoFile == ""):
		fmt.Fprintln(stderr, "cifar10 check: give -json or -proto, one of them")
		return errUsage
	case *model != "testmodel" && *model != "resnet32":
		fmt.Fprintf(stderr, "cifar10 check: -model %q: want testmodel or resnet32\n", *model)
		return errUsage
	}
	reqs, err := readRequests(*jsonFile, *protoFile)
	if err != nil {
		return err
	}
	answers, err := roundTrip(*bootstrap, *in, *out, reqs, *protoFile != "", *timeout)
	if err != nil {
		return err
	}
	failed := 0
	for i, r := range reqs {
		what, err := judge(*model, r, answers[i])
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "%s: %v\n", r.key, err)
			continue
		}
		fmt.Fprintf(stdout, "%s: %s\n", r.key, what)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d answers are wrong", failed, len(reqs))
	}
	return nil
}

// judge checks one answer: against the test model's own answer, or as resnet32's 10 probabilities.
func judge(model string, r request, a *ckafka.Message) (string, error) {
	hs := map[string]string{}
	for _, h := range a.Headers {
		hs[h.Key] = string(h.Value)
	}
	if reason := hs["Seldon-Error-Reason"]; reason != "" {
		return "", fmt.Errorf("error record: %s: %s", reason, hs["Seldon-Error-Message"])
	}
	if model == "resnet32" {
		probs, err := probabilities(a.Value, r.proto != nil)
		if err != nil {
			return "", err
		}
		top := 0
		for k, p := range probs {
			if p > probs[top] {
				top = k
			}
		}
		return fmt.Sprintf("%s (%.3f)", Classes[top], probs[top]), nil
	}
	if r.proto == nil {
		want, err := testmodel.TensorflowPredict(r.value)
		if err != nil {
			return "", err
		}
		if !bytes.Equal(bytes.TrimSpace(a.Value), bytes.TrimSpace(want)) {
			return "", fmt.Errorf("the answer (%d bytes) is not the test model's (%d bytes)", len(a.Value), len(want))
		}
		return fmt.Sprintf("the test model's answer, %d bytes of JSON", len(a.Value)), nil
	}
	want, err := testmodel.TensorflowPredictProto(cifar10.ModelName, r.proto)
	if err != nil {
		return "", err
	}
	var got tfpb.PredictResponse
	if err := proto.Unmarshal(a.Value, &got); err != nil || hs["proto-name"] != "tensorflow.serving.PredictResponse" {
		return "", fmt.Errorf("not a PredictResponse (proto-name %q): %v", hs["proto-name"], err)
	}
	if !proto.Equal(&got, want) {
		return "", errors.New("the PredictResponse is not the test model's")
	}
	return fmt.Sprintf("the test model's answer, a PredictResponse of %d bytes", len(a.Value)), nil
}

// probabilities are the 10 numbers of a resnet32 answer: REST {"predictions": [[…10…]]}, gRPC a
// PredictResponse's one output.
func probabilities(answer []byte, grpc bool) ([]float64, error) {
	var out []float64
	if grpc {
		var pr tfpb.PredictResponse
		if err := proto.Unmarshal(answer, &pr); err != nil {
			return nil, err
		}
		for _, t := range pr.GetOutputs() {
			for _, v := range t.GetFloatVal() {
				out = append(out, float64(v))
			}
		}
	} else {
		var body struct{ Predictions [][]float64 }
		if err := json.Unmarshal(answer, &body); err != nil {
			return nil, err
		}
		if len(body.Predictions) == 1 {
			out = body.Predictions[0]
		}
	}
	if len(out) != len(Classes) {
		return nil, fmt.Errorf("want %d class probabilities for one image, got %d values", len(Classes), len(out))
	}
	return out, nil
}

// roundTrip sends the requests and returns their answers, in order, read from the output topic from
// where it ended before they were sent.
func roundTrip(bootstrap, in, out string, reqs []request, grpc bool, timeout time.Duration) ([]*ckafka.Message, error) {
	c, err := ckafka.NewConsumer(&ckafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": fmt.Sprintf("cifar10-check-%d", time.Now().UnixNano()),
		"enable.auto.commit": false, "go.logs.channel.enable": false})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	md, err := c.GetMetadata(&out, false, 30000)
	if err != nil {
		return nil, err
	}
	var tps []ckafka.TopicPartition
	for _, p := range md.Topics[out].Partitions {
		_, high, err := c.QueryWatermarkOffsets(out, p.ID, 30000)
		if err != nil {
			return nil, err
		}
		tps = append(tps, ckafka.TopicPartition{Topic: &out, Partition: p.ID, Offset: ckafka.Offset(high)})
	}
	if len(tps) == 0 {
		return nil, fmt.Errorf("topic %s has no partitions (does it exist?)", out)
	}
	if err := c.Assign(tps); err != nil {
		return nil, err
	}

	p, err := ckafka.NewProducer(&ckafka.ConfigMap{"bootstrap.servers": bootstrap, "enable.idempotence": true})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	run := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)
	reports := make(chan ckafka.Event, len(reqs))
	for _, r := range reqs {
		hs := []ckafka.Header{{Key: "Content-Type", Value: []byte("application/json")}}
		if grpc {
			hs = []ckafka.Header{{Key: "proto-name", Value: []byte(predictRequest)}}
		}
		hs = append(hs, ckafka.Header{Key: "Seldon-Puid", Value: []byte(run + "-" + r.key)})
		if err := p.Produce(&ckafka.Message{TopicPartition: ckafka.TopicPartition{Topic: &in, Partition: ckafka.PartitionAny},
			Key: []byte(r.key), Value: r.value, Headers: hs}, reports); err != nil {
			return nil, err
		}
	}
	for range reqs {
		select {
		case e := <-reports:
			if m, ok := e.(*ckafka.Message); ok && m.TopicPartition.Error != nil {
				return nil, fmt.Errorf("request %s not delivered to %s: %w", m.Key, in, m.TopicPartition.Error)
			}
		case <-time.After(30 * time.Second):
			return nil, fmt.Errorf("requests not delivered to %s within 30 s", in)
		}
	}

	answers := make([]*ckafka.Message, len(reqs))
	keys := make([]string, len(reqs))
	for i, r := range reqs {
		keys[i] = run + "-" + r.key
	}
	got, deadline := 0, time.Now().Add(timeout)
	for got < len(reqs) && time.Now().Before(deadline) {
		m, err := c.ReadMessage(500 * time.Millisecond)
		if err != nil {
			continue
		}
		var puid string
		for _, h := range m.Headers {
			if strings.EqualFold(h.Key, "Seldon-Puid") {
				puid = string(h.Value)
			}
		}
		if i := slices.Index(keys, puid); i >= 0 && answers[i] == nil {
			answers[i] = m
			got++
		}
	}
	if got < len(reqs) {
		return nil, fmt.Errorf("%d of %d answers on %s within %v", got, len(reqs), out, timeout)
	}
	return answers, nil
}
