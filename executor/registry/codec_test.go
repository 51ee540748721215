package registry

import (
	"context"
	cryptotls "crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/internal/testkit"
	"github.com/seldon-kafka/sidecar/internal/testregistry"
	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/grpc"
	"github.com/seldon-kafka/sidecar/protocols/seldon"
	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
	"github.com/seldon-kafka/sidecar/tls"
)

// newCodec is a codec against a test registry: gRPC, seldon, answers on topic "answers", quick retries.
func newCodec(t *testing.T, url string, o Options) *Codec {
	t.Helper()
	o.URL = url
	if o.Transport == "" {
		o.Transport = "grpc"
	}
	if o.Protocol == "" {
		o.Protocol = protocols.Seldon
	}
	if o.Transport == "grpc" && o.Accept == nil {
		reg, err := grpc.NewRegistry(seldon.GRPC)
		if err != nil {
			t.Fatal(err)
		}
		o.Accept = func(name string) error { _, err := reg.Lookup(name); return err }
	}
	o.OutputTopic = "answers"
	o.Timeout = 5 * time.Second
	o.CacheCapacity = 100
	if o.Attempts == 0 {
		o.Attempts = 3
	}
	o.Backoff = protocols.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// predictionProto is Seldon's prediction.proto as the project generates from it: the text a producer's
// serializer registers for a SeldonMessage.
func predictionProto(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../protocols/proto/seldon/prediction.proto")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func seldonRequest(t *testing.T) []byte {
	t.Helper()
	b, err := proto.Marshal(&seldonpb.SeldonMessage{DataOneof: &seldonpb.SeldonMessage_StrData{StrData: "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func reasonOf(err error) string {
	var ce *protocols.CallError
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return ""
}

func TestFramedProtobufRequestsAreUnframedAndChecked(t *testing.T) {
	reg := testregistry.New(t, testregistry.Options{})
	text := predictionProto(t)
	protoID := reg.Register(t, "requests-value", testregistry.Schema{Schema: text, SchemaType: "PROTOBUF"})
	jsonID := reg.Register(t, "json-value", testregistry.Schema{Schema: `{"type":"object"}`, SchemaType: "JSON"})
	avroID := reg.Register(t, "avro-value", testregistry.Schema{Schema: `"string"`})
	brokenID := reg.Register(t, "broken-value", testregistry.Schema{Schema: "message {", SchemaType: "PROTOBUF"})
	fd, err := parseProto(text)
	if err != nil {
		t.Fatal(err)
	}
	at := func(name string) []int {
		if p := indexesOf(fd, name); p != nil {
			return p
		}
		t.Fatalf("prediction.proto has no %s", name)
		return nil
	}
	payload := seldonRequest(t)
	c := newCodec(t, reg.URL, Options{})

	for _, tc := range []struct {
		name      string
		value     []byte
		protoName string // the record's proto-name header
		framed    bool
		wantName  string // the proto-name the request goes on with
		reason    string // the error's, when it fails
		msg       string
	}{
		{name: "plain protobuf: left as it is", value: payload, protoName: "seldon.protos.SeldonMessage", wantName: "seldon.protos.SeldonMessage"},
		{name: "first message, lone 0", value: Header{ID: protoID, Indexes: []int{0}}.Frame(payload), framed: true, wantName: "seldon.protos.SeldonMessage"},
		{name: "Feedback by its indexes", value: Header{ID: protoID, Indexes: at("seldon.protos.Feedback")}.Frame(payload), framed: true, wantName: "seldon.protos.Feedback"},
		{name: "proto-name header agreeing", value: Header{ID: protoID, Indexes: []int{0}}.Frame(payload), protoName: "seldon.protos.SeldonMessage", framed: true, wantName: "seldon.protos.SeldonMessage"},
		{name: "proto-name header disagreeing", value: Header{ID: protoID, Indexes: []int{0}}.Frame(payload), protoName: "seldon.protos.Feedback", framed: true,
			reason: protocols.ReasonInvalidRequest, msg: `the proto-name header says "seldon.protos.Feedback", but schema 1 (message indexes [0]) frames seldon.protos.SeldonMessage`},
		{name: "a message that is no request", value: Header{ID: protoID, Indexes: at("seldon.protos.Meta")}.Frame(payload), framed: true,
			reason: protocols.ReasonInvalidRequest, msg: "frames seldon.protos.Meta: proto-name \"seldon.protos.Meta\" is not a seldon request"},
		{name: "indexes past the file's messages", value: Header{ID: protoID, Indexes: []int{99}}.Frame(payload), framed: true,
			reason: protocols.ReasonInvalidRequest, msg: "schema 1: message index 99: the file has"},
		{name: "unknown schema id", value: Header{ID: 999, Indexes: []int{0}}.Frame(payload), framed: true,
			reason: protocols.ReasonSchemaUnknown, msg: "schema 999: not in the schema registry"},
		{name: "a JSON Schema over gRPC", value: Header{ID: jsonID, Indexes: []int{0}}.Frame(payload), framed: true,
			reason: protocols.ReasonInvalidRequest, msg: "schema 2 is JSON: over gRPC a framed request's schema is Protobuf"},
		{name: "an Avro schema", value: Header{ID: avroID, Indexes: []int{0}}.Frame(payload), framed: true,
			reason: protocols.ReasonInvalidRequest, msg: "schema 3 is AVRO"},
		{name: "a schema that does not parse", value: Header{ID: brokenID, Indexes: []int{0}}.Frame(payload), framed: true,
			reason: protocols.ReasonInvalidRequest, msg: "schema 4 cannot be read: not a .proto file"},
		{name: "too short", value: []byte{0, 0, 1}, framed: true, reason: protocols.ReasonInvalidRequest, msg: "not in the Schema Registry wire format: 3 bytes: too short"},
		{name: "indexes cut short", value: []byte{0, 0, 0, 0, byte(protoID), 4, 2}, framed: true,
			reason: protocols.ReasonInvalidRequest, msg: "schema 1: not in the Schema Registry wire format: message index 2 of 2 is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &protocols.Request{Body: tc.value, ProtoName: tc.protoName}
			framed, err := c.Unframe(context.Background(), req)
			if framed != tc.framed {
				t.Errorf("framed = %v", framed)
			}
			if tc.reason != "" {
				if reasonOf(err) != tc.reason || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("error %v (reason %q), want %s saying %q", err, reasonOf(err), tc.reason, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.ProtoName != tc.wantName || string(req.Body) != string(payload) {
				t.Errorf("proto-name %q, body % x; want %q and the payload", req.ProtoName, req.Body, tc.wantName)
			}
		})
	}
}

func TestFramedJSONRequestsAreUnframedOverREST(t *testing.T) {
	reg := testregistry.New(t, testregistry.Options{})
	jsonID := reg.Register(t, "requests-value", testregistry.Schema{Schema: `{"type":"object"}`, SchemaType: "JSON"})
	protoID := reg.Register(t, "proto-value", testregistry.Schema{Schema: predictionProto(t), SchemaType: "PROTOBUF"})
	c := newCodec(t, reg.URL, Options{Transport: "rest"})
	body := []byte(`{"data":{"ndarray":[[1,2]]}}`)
	for _, tc := range []struct {
		name        string
		value       []byte
		contentType string
		framed      bool
		want        []byte
		msg         string // the invalid_request error's, when it fails
	}{
		{name: "plain JSON", value: body, want: body},
		{name: "framed JSON", value: Header{ID: jsonID}.Frame(body), framed: true, want: body},
		{name: "framed JSON, JSON content type", value: Header{ID: jsonID}.Frame(body), contentType: "application/json; charset=utf-8", framed: true, want: body},
		{name: "binary body of another content type, whatever its first byte", value: []byte{0, 1, 2}, contentType: "application/octet-stream", want: []byte{0, 1, 2}},
		{name: "a Protobuf schema over REST", value: Header{ID: protoID}.Frame(body), framed: true, msg: "schema 2 is PROTOBUF: over REST a framed request's schema is JSON Schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &protocols.Request{Body: tc.value, ContentType: tc.contentType}
			framed, err := c.Unframe(context.Background(), req)
			if framed != tc.framed {
				t.Errorf("framed = %v", framed)
			}
			if tc.msg != "" {
				if reasonOf(err) != protocols.ReasonInvalidRequest || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("error %v, want invalid_request saying %q", err, tc.msg)
				}
				return
			}
			if err != nil || string(req.Body) != string(tc.want) {
				t.Fatalf("body %q, %v; want %q", req.Body, err, tc.want)
			}
		})
	}
}

func TestASchemaIsFetchedOnceHoweverManyRecordsNameIt(t *testing.T) {
	reg := testregistry.New(t, testregistry.Options{})
	id := reg.Register(t, "requests-value", testregistry.Schema{Schema: predictionProto(t), SchemaType: "PROTOBUF"})
	c := newCodec(t, reg.URL, Options{})
	value := Header{ID: id, Indexes: []int{0}}.Frame(seldonRequest(t))
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 2 {
		for range 40 {
			wg.Go(func() {
				if _, err := c.Unframe(context.Background(), &protocols.Request{Body: value}); err != nil {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of 80 records failed", failed.Load())
	}
	if got := reg.Requests("GET /schemas/ids/{id}"); got != 1 {
		t.Fatalf("the registry was asked %d times for one schema", got)
	}
	// An unknown id is asked again: the registry may hold it later.
	for range 2 {
		_, _ = c.Unframe(context.Background(), &protocols.Request{Body: Header{ID: 77, Indexes: []int{0}}.Frame(nil)})
	}
	if got := reg.Requests("GET /schemas/ids/{id}"); got != 3 {
		t.Fatalf("the registry was asked %d times in all, want 3", got)
	}
}

// unframeAnswer reads a framed answer back as a consumer would.
func unframeAnswer(t *testing.T, value []byte, protobuf bool) (Header, []byte) {
	t.Helper()
	id, rest, err := ParseID(value)
	if err != nil {
		t.Fatal(err)
	}
	h := Header{ID: id}
	if protobuf {
		if h.Indexes, rest, err = ParseIndexes(rest); err != nil {
			t.Fatal(err)
		}
	}
	return h, rest
}

func TestProtobufAnswersAreFramedWithTheirRegisteredFile(t *testing.T) {
	reg := testregistry.New(t, testregistry.Options{})
	c := newCodec(t, reg.URL, Options{Protocol: protocols.Tensorflow, AutoRegister: true, Accept: func(string) error { return nil }})
	answer, _ := proto.Marshal(&tfpb.PredictResponse{ModelSpec: &tfpb.ModelSpec{Name: "m"}})
	for i := range 3 {
		resp := &protocols.Response{Body: answer, ProtoName: "tensorflow.serving.PredictResponse"}
		if err := c.Frame(context.Background(), resp); err != nil {
			t.Fatal(err)
		}
		h, payload := unframeAnswer(t, resp.Body, true)
		if string(payload) != string(answer) {
			t.Fatalf("answer %d: payload differs after the frame", i)
		}
		sc, id, ok := reg.Latest("answers-value")
		if !ok || h.ID != id || sc.SchemaType != "PROTOBUF" {
			t.Fatalf("framed with id %d; subject answers-value holds %d (%s, found %v)", h.ID, id, sc.SchemaType, ok)
		}
		fd, err := parseProto(sc.Schema)
		if err != nil {
			t.Fatal(err)
		}
		if name, err := messageAt(fd, h.Indexes); err != nil || name != "tensorflow.serving.PredictResponse" {
			t.Fatalf("indexes %v name %q in the registered schema (%v)", h.Indexes, name, err)
		}
		if refs := sc.References; len(refs) != 2 || refs[0].Name != "tensorflow/core/framework/tensor.proto" || refs[1].Name != "tensorflow_serving/apis/model.proto" {
			t.Fatalf("references %+v, want tensor.proto and model.proto (wrappers.proto is the registry's own)", refs)
		}
	}
	want := []string{"answers-value", "tensorflow/core/framework/resource_handle.proto", "tensorflow/core/framework/tensor.proto",
		"tensorflow/core/framework/tensor_shape.proto", "tensorflow/core/framework/types.proto", "tensorflow_serving/apis/model.proto"}
	if got := reg.Subjects(); !slices.Equal(got, want) {
		t.Errorf("subjects %v, want %v", got, want)
	}
	if got := reg.Requests("POST /subjects/{subject}/versions"); got != len(want) {
		t.Errorf("%d registrations for 3 answers, want one per file", got)
	}

	// Without registration the same file is found where the first codec put it.
	lookup := newCodec(t, reg.URL, Options{Protocol: protocols.Tensorflow, Accept: func(string) error { return nil }})
	resp := &protocols.Response{Body: answer, ProtoName: "tensorflow.serving.PredictResponse"}
	if err := lookup.Frame(context.Background(), resp); err != nil {
		t.Fatal(err)
	}
	_, id, _ := reg.Latest("answers-value")
	if h, _ := unframeAnswer(t, resp.Body, true); h.ID != id {
		t.Fatalf("looked up id %d, registered %d", h.ID, id)
	}
}

func TestAnswersWithoutTheirSchemaAreRefused(t *testing.T) {
	reg := testregistry.New(t, testregistry.Options{Refuse: func(subject string) bool { return subject == "answers-value" }})
	answer := seldonRequest(t)
	for _, tc := range []struct {
		name string
		o    Options
		msg  string
	}{
		{"not registered, no registering", Options{}, "looking up tensorflow/core/framework/resource_handle.proto, which the answer's schema imports, under its own subject: not in the schema registry"},
		{"registration refused", Options{AutoRegister: true}, "registering the answer's schema under subject answers-value: the schema registry refused the schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCodec(t, reg.URL, tc.o)
			err := c.Frame(context.Background(), &protocols.Response{Body: answer, ProtoName: "seldon.protos.SeldonMessage"})
			if reasonOf(err) != protocols.ReasonSchemaUnknown || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want schema_unknown saying %q", err, tc.msg)
			}
		})
	}
}

func TestTheLatestSchemaFramesAnswersWhenItFits(t *testing.T) {
	answer := seldonRequest(t)
	for _, tc := range []struct {
		name   string
		latest testregistry.Schema
		msg    string // the schema_unknown error's, when it does not fit
	}{
		{name: "the .proto text of the answer's file", latest: testregistry.Schema{Schema: predictionProto(t), SchemaType: "PROTOBUF"}},
		{name: "a JSON Schema", latest: testregistry.Schema{Schema: `{"type":"object"}`, SchemaType: "JSON"}, msg: "(id 1) is JSON, not the Protobuf"},
		{name: "a file without the message", latest: testregistry.Schema{Schema: "syntax = \"proto3\";\npackage seldon.protos;\nmessage Other {}", SchemaType: "PROTOBUF"},
			msg: "(id 1) does not define message seldon.protos.SeldonMessage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := testregistry.New(t, testregistry.Options{})
			id := reg.Register(t, "answers-value", tc.latest)
			c := newCodec(t, reg.URL, Options{UseLatest: true})
			resp := &protocols.Response{Body: answer, ProtoName: "seldon.protos.SeldonMessage"}
			err := c.Frame(context.Background(), resp)
			if tc.msg != "" {
				if reasonOf(err) != protocols.ReasonSchemaUnknown || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("error %v, want schema_unknown saying %q", err, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h, _ := unframeAnswer(t, resp.Body, true); h.ID != id || !slices.Equal(h.Indexes, []int{0}) {
				t.Fatalf("framed %+v, want id %d and SeldonMessage's indexes [0]", h, id)
			}
		})
	}
}

func TestJSONAnswersAreFramedUnderTheStrategysSubject(t *testing.T) {
	answer := []byte(`{"data":{"ndarray":[[0.5]]}}`)
	for _, tc := range []struct {
		strategy Strategy
		subject  string
	}{
		{TopicName, "answers-value"},
		{RecordName, "seldon.protos.SeldonMessage"},
		{TopicRecordName, "answers-seldon.protos.SeldonMessage"},
	} {
		t.Run(tc.strategy.String(), func(t *testing.T) {
			reg := testregistry.New(t, testregistry.Options{})
			c := newCodec(t, reg.URL, Options{Transport: "rest", Strategy: tc.strategy, AutoRegister: true})
			resp := &protocols.Response{Body: answer, ContentType: "application/json"}
			if err := c.Frame(context.Background(), resp); err != nil {
				t.Fatal(err)
			}
			h, payload := unframeAnswer(t, resp.Body, false)
			sc, id, ok := reg.Latest(tc.subject)
			if !ok || h.ID != id || sc.SchemaType != "JSON" || string(payload) != string(answer) {
				t.Fatalf("framed id %d, payload %q; subject %s holds id %d %s (found %v)", h.ID, payload, tc.subject, id, sc.SchemaType, ok)
			}
			if !strings.Contains(sc.Schema, `"title":"seldon.protos.SeldonMessage"`) {
				t.Errorf("registered %s", sc.Schema)
			}
			err := c.Frame(context.Background(), &protocols.Response{Body: []byte{1, 2}, ContentType: "application/octet-stream"})
			if reasonOf(err) != protocols.ReasonInvalidAnswer {
				t.Errorf("a binary answer: error %v, want invalid_answer", err)
			}
		})
	}
}

func TestStrategiesAreReadByTheirConfluentNames(t *testing.T) {
	for in, want := range map[string]Strategy{
		"": TopicName, "TopicNameStrategy": TopicName, "recordnamestrategy": RecordName,
		"io.confluent.kafka.serializers.subject.TopicRecordNameStrategy": TopicRecordName,
	} {
		if got, err := ParseStrategy(in); err != nil || got != want {
			t.Errorf("ParseStrategy(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseStrategy("Topic"); err == nil {
		t.Error("ParseStrategy(Topic) accepted")
	}
}

func TestRegistryCredentialsAndTLS(t *testing.T) {
	ca := testkit.NewCA(t, "registry-ca")
	certPEM, keyPEM := ca.Issue(t, "registry", testkit.CertOptions{Server: true})
	serverCert, err := cryptotls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	clients := x509.NewCertPool()
	clients.AddCert(ca.Cert)
	reg := testregistry.New(t, testregistry.Options{User: "sidecar", Password: "s3cret-Pw",
		TLS: &cryptotls.Config{Certificates: []cryptotls.Certificate{serverCert}, ClientAuth: cryptotls.RequireAndVerifyClientCert, ClientCAs: clients}})
	id := reg.Register(t, "requests-value", testregistry.Schema{Schema: predictionProto(t), SchemaType: "PROTOBUF"})
	clientCert, clientKey := ca.Issue(t, "sidecar", testkit.CertOptions{})
	other := testkit.NewCA(t, "other-ca")

	material := func(caPEM, cert, key []byte) *cryptotls.Config {
		s := tls.Settings{Protocol: tls.SSL, VerifyHostname: true,
			CA: tls.Source{Var: "CA", Value: tls.NewSecret(string(caPEM))}}
		if cert != nil {
			s.ClientCert = tls.Source{Var: "CERT", Value: tls.NewSecret(string(cert))}
			s.ClientKey = tls.Source{Var: "KEY", Value: tls.NewSecret(string(key))}
		}
		m, err := tls.Load(s, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c, err := m.ClientTLS()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	value := Header{ID: id, Indexes: []int{0}}.Frame(seldonRequest(t))
	for _, tc := range []struct {
		name     string
		userInfo string
		tls      *cryptotls.Config
		ok       bool
		attempts int // requests that reached the registry's handlers
	}{
		{"right credentials, CA and client certificate", "sidecar:s3cret-Pw", material(ca.CertPEM, clientCert, clientKey), true, 1},
		{"wrong password: refused, not asked again", "sidecar:wrong", material(ca.CertPEM, clientCert, clientKey), false, 0},
		{"no client certificate", "sidecar:s3cret-Pw", material(ca.CertPEM, nil, nil), false, 0},
		{"another CA", "sidecar:s3cret-Pw", material(other.CertPEM, clientCert, clientKey), false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := reg.Requests("GET /schemas/ids/{id}")
			c := newCodec(t, reg.URL, Options{Registry: Registry{UserInfo: tls.NewSecret(tc.userInfo), TLS: tc.tls}})
			_, err := c.Unframe(context.Background(), &protocols.Request{Body: value})
			if tc.ok != (err == nil) {
				t.Fatalf("error %v", err)
			}
			if !tc.ok && reasonOf(err) != protocols.ReasonRegistryUnavailable {
				t.Fatalf("error %v, want registry_unavailable", err)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error shows the password: %v", err)
			}
			if got := reg.Requests("GET /schemas/ids/{id}") - before; got != tc.attempts {
				t.Errorf("%d requests answered, want %d", got, tc.attempts)
			}
		})
	}
}

func TestAFailingRegistryIsAskedAgainThenTheRecordFails(t *testing.T) {
	var calls atomic.Int32
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error_code":50003,"message":"Error while forwarding the request to the leader"}`))
	}))
	defer failing.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	value := Header{ID: 1, Indexes: []int{0}}.Frame(nil)
	for _, tc := range []struct {
		name, url, msg string
	}{
		{"503", failing.URL, "schema 1: the schema registry failed (3 attempts)"},
		{"nothing listening", closed, "schema 1: no usable answer from the schema registry (3 attempts)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCodec(t, tc.url, Options{Registry: Registry{Attempts: 3}})
			_, err := c.Unframe(context.Background(), &protocols.Request{Body: value})
			if reasonOf(err) != protocols.ReasonRegistryUnavailable || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want registry_unavailable saying %q", err, tc.msg)
			}
		})
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("the failing registry was asked %d times, want 3", got)
	}
}

func TestARecordWaitingOnTheRegistryIsGivenUpWhenItsContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel() // the shutdown grace ends while the registry holds the request
		<-release
	}))
	defer hung.Close()
	defer close(release)
	c := newCodec(t, hung.URL, Options{})
	_, err := c.Unframe(ctx, &protocols.Request{Body: Header{ID: 1, Indexes: []int{0}}.Frame(nil)})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "schema 1: given up waiting") {
		t.Fatalf("error %v, want the request given up when its context ended", err)
	}
}

func TestANilCodecLeavesRecordsAsTheyAre(t *testing.T) {
	var c *Codec
	req := &protocols.Request{Body: []byte{0, 0, 0, 0, 1, 0}}
	if framed, err := c.Unframe(context.Background(), req); framed || err != nil || len(req.Body) != 6 {
		t.Fatalf("framed %v, %v", framed, err)
	}
}
