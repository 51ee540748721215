package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/executor"
	"github.com/seldon-kafka/sidecar/internal/testkit"
	"github.com/seldon-kafka/sidecar/protocols/protofile"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
)

// sidecar runs the executor in this process against the test broker, for a model process of the
// protocol and transport given, and returns its input, output and error topics.
func sidecar(t *testing.T, protocol, transport string) (bs, in, out, errs string) {
	t.Helper()
	bs = testkit.Bootstrap(t)
	in, out, errs = testkit.Topic(t, bs, 2), testkit.Topic(t, bs, 2), testkit.Topic(t, bs, 1)
	model := testkit.StartModelProcess(t, "--host=127.0.0.1", "--model_name=classifier")
	typ := strings.ToUpper(transport)
	spec := fmt.Sprintf(`{"name":"default","graph":{"name":"classifier","type":"MODEL","endpoint":{"service_host":"127.0.0.1","httpPort":%d,"grpcPort":%d,"type":%q}}}`,
		model.HTTPPort, model.GRPCPort, typ)
	for k, v := range map[string]string{"KAFKA_BROKER": bs, "KAFKA_INPUT_TOPIC": in, "KAFKA_OUTPUT_TOPIC": out,
		"KAFKA_ERROR_TOPIC": errs, "KAFKA_GROUP_ID": "g-" + in, "ENGINE_PREDICTOR": base64.StdEncoding.EncodeToString([]byte(spec))} {
		t.Setenv(k, v)
	}
	cfg, err := executor.LoadConfig([]string{"--server_type=kafka", "--protocol=" + protocol, "--transport=" + transport,
		"--http_port=0", "--grpc_port=0", "--sdep=test", "--namespace=test"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := executor.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("executor: %v", err)
		}
	})
	return bs, in, out, errs
}

type answerLine struct {
	N      int             `json:"n"`
	Key    string          `json:"key"`
	Puid   string          `json:"puid"`
	Answer json.RawMessage `json:"answer"`
	Error  *struct {
		Reason, Message string
	} `json:"error"`
}

func lines(t *testing.T, stdout string) []answerLine {
	t.Helper()
	var out []answerLine
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var a answerLine
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("stdout line %q: %v", l, err)
		}
		out = append(out, a)
	}
	return out
}

// JSON lines to a REST sidecar: every request is answered, one answer line each, matched by its
// Seldon-Puid; a request the sidecar refuses is reported as its error record, counted by reason in the
// summary, and makes the exit code 1.
func TestJSONLinesAreSentAndEveryAnswerAndErrorRecordIsReadBack(t *testing.T) {
	bs, in, out, errs := sidecar(t, "seldon", "rest")
	var file strings.Builder
	const n = 30
	for i := range n {
		fmt.Fprintf(&file, `{"data":{"ndarray":[[%d,1,2,3]]}}`+"\n", i)
	}
	file.WriteString("\n[1,2,3]\n") // JSON, but not a seldon message: an invalid_request error record
	var stdout, stderr bytes.Buffer
	code := command([]string{"--broker=" + bs, "--in=" + in, "--out=" + out, "--errors=" + errs, "--key=k{n}", "--timeout=60s"},
		strings.NewReader(file.String()), &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (one error record); stderr:\n%s", code, stderr.String())
	}
	got := lines(t, stdout.String())
	if len(got) != n+1 {
		t.Fatalf("%d answer lines, want %d", len(got), n+1)
	}
	seen := map[int]bool{}
	for _, a := range got {
		seen[a.N] = true
		if a.Key != fmt.Sprintf("k%d", a.N) || a.Puid == "" {
			t.Errorf("line %+v: key or puid wrong", a)
		}
		switch {
		case a.N == n:
			if a.Error == nil || a.Error.Reason != "invalid_request" {
				t.Errorf("request %d: %+v, want an invalid_request error record", a.N, a)
			}
		case a.Error != nil:
			t.Errorf("request %d: error %+v", a.N, a.Error)
		case !bytes.Contains(a.Answer, []byte(`"ndarray"`)):
			t.Errorf("request %d: answer %s is not a seldon message", a.N, a.Answer)
		}
	}
	if len(seen) != n+1 {
		t.Errorf("%d distinct requests answered, want %d", len(seen), n+1)
	}
	summary := stderr.String()
	t.Log(summary)
	for _, want := range []string{fmt.Sprintf("sent %d, answered %d (error records 1: invalid_request 1), missing 0", n+1, n+1), "latency p50 "} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary %q lacks %q", summary, want)
		}
	}
}

// A length-prefixed file of TensorFlow PredictRequests to a gRPC sidecar: sent with their proto-name,
// and the PredictResponses read back decoded to protobuf's JSON form; exit 0.
func TestAProtofileIsSentAndItsAnswersAreDecodedPerProtoName(t *testing.T) {
	bs, in, out, errs := sidecar(t, "tensorflow", "grpc")
	var file bytes.Buffer
	const n = 5
	for i := range n {
		b, err := proto.Marshal(&tfpb.PredictRequest{ModelSpec: &tfpb.ModelSpec{Name: "classifier"},
			Inputs: map[string]*tfpb.TensorProto{"x": {Dtype: tfpb.DataType_DT_FLOAT, FloatVal: []float32{float32(i), 1},
				TensorShape: &tfpb.TensorShapeProto{Dim: []*tfpb.TensorShapeProto_Dim{{Size: 1}, {Size: 2}}}}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := protofile.Write(&file, b); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "requests.data")
	if err := os.WriteFile(path, file.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := command([]string{"--broker=" + bs, "--in=" + in, "--out=" + out, "--errors=" + errs, "--format=protofile",
		"--proto-name=tensorflow.serving.PredictRequest", "--timeout=60s", path}, nil, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	got := lines(t, stdout.String())
	if len(got) != n {
		t.Fatalf("%d answer lines, want %d", len(got), n)
	}
	for _, a := range got {
		var resp map[string]any
		if err := json.Unmarshal(a.Answer, &resp); err != nil || resp["outputs"] == nil {
			t.Errorf("request %d: answer %s, want a PredictResponse in JSON with outputs", a.N, a.Answer)
		}
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("sent %d, answered %d (error records 0), missing 0", n, n)) {
		t.Errorf("summary: %s", stderr.String())
	}
}

func TestBadCommandLinesExit2NamingTheProblem(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--in is required"},
		{[]string{"--in=x", "--format=csv"}, "--format"},
		{[]string{"--in=x", "--errors=e"}, "--errors needs --out"},
		{[]string{"--in=x", "a", "b"}, "one file at most"},
		{[]string{"--in=x", "--nope"}, "nope"},
	} {
		var stdout, stderr bytes.Buffer
		if code := command(tc.args, strings.NewReader(""), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := command([]string{"--help"}, nil, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "usage: seldon-kafka") {
		t.Errorf("--help: exit %d, stdout %q", code, stdout.String())
	}
	if code := command([]string{"--in=x"}, strings.NewReader("{\"a\":1}\nnot json\n"), &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "line 2 is not JSON") {
		t.Errorf("a bad line: exit %d, stderr %q; want 1 naming line 2", code, stderr.String())
	}
}
