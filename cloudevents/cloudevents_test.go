package cloudevents

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cloudevents/sdk-go/v2/event"
)

func hdrs(kv ...string) []ckafka.Header {
	var hs []ckafka.Header
	for i := 0; i < len(kv); i += 2 {
		hs = append(hs, ckafka.Header{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return hs
}

func header(hs []ckafka.Header, key string) (string, int) {
	v, n := "", 0
	for _, h := range hs {
		if h.Key == key {
			v, n = string(h.Value), n+1
		}
	}
	return v, n
}

func TestReadTellsTheContentModeAndGivesTheRequestInTheData(t *testing.T) {
	body := `{"instances":[[1,2]]}`
	cases := []struct {
		name     string
		headers  []ckafka.Header
		value    string
		mode     Mode
		version  string
		id       string
		data     string
		ct       string
		extValue string // of the extension "traceparent"
	}{
		{"a plain record is no event", hdrs("Content-Type", "application/json", "ce_id", "1"), body, None, "", "", "", "", ""},
		{"binary 1.0", hdrs("ce_specversion", "1.0", "ce_id", "a1", "ce_type", "t", "ce_source", "/s", "content-type", "application/json"),
			body, Binary, "1.0", "a1", body, "application/json", ""},
		{"binary 0.3, header names in any case, an extension", hdrs("CE_SPECVERSION", "0.3", "Ce_Id", "a2", "ce_type", "t", "ce_source", "/s",
			"Content-Type", "application/json", "ce_traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
			body, Binary, "0.3", "a2", body, "application/json", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{"structured 1.0 with JSON data", hdrs("content-type", "application/cloudevents+json; charset=UTF-8"),
			`{"specversion":"1.0","id":"s1","type":"t","source":"/s","datacontenttype":"application/json","data":` + body + `}`,
			Structured, "1.0", "s1", body, "application/json", ""},
		{"structured 1.0 with data_base64", hdrs("Content-Type", "Application/CloudEvents+JSON"),
			`{"specversion":"1.0","id":"s2","type":"t","source":"/s","datacontenttype":"application/x-protobuf","data_base64":"` +
				base64.StdEncoding.EncodeToString([]byte{8, 1, 0xff}) + `"}`,
			Structured, "1.0", "s2", "\x08\x01\xff", "application/x-protobuf", ""},
		{"structured 0.3 with JSON data and the tracing extension", hdrs("content-type", "application/cloudevents+json"),
			`{"specversion":"0.3","id":"s3","type":"t","source":"/s","data":` + body + `,"traceparent":"00-x"}`,
			Structured, "0.3", "s3", body, "", "00-x"},
		{"structured 0.3 with base64 data", hdrs("content-type", "application/cloudevents+json"),
			`{"specversion":"0.3","id":"s4","type":"t","source":"/s","datacontentencoding":"base64","datacontenttype":"application/json","data":"` +
				base64.StdEncoding.EncodeToString([]byte(body)) + `"}`,
			Structured, "0.3", "s4", body, "application/json", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := Read(tc.headers, []byte(tc.value))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if in.Mode != tc.mode {
				t.Fatalf("mode %v, want %v", in.Mode, tc.mode)
			}
			if tc.mode == None {
				if in.Event != nil {
					t.Fatalf("an event for a plain record: %v", in.Event)
				}
				return
			}
			if got := in.Event.SpecVersion(); got != tc.version {
				t.Errorf("specversion %q, want %q", got, tc.version)
			}
			if got := in.Event.ID(); got != tc.id {
				t.Errorf("id %q, want %q", got, tc.id)
			}
			data, ct := in.Data()
			if string(data) != tc.data || ct != tc.ct {
				t.Errorf("data %q (%q), want %q (%q)", data, ct, tc.data, tc.ct)
			}
			if got := in.Extension("traceparent"); got != tc.extValue {
				t.Errorf("traceparent extension %q, want %q", got, tc.extValue)
			}
		})
	}
}

func TestReadRefusesMalformedEventsNamingWhatIsWrong(t *testing.T) {
	cases := []struct {
		name    string
		headers []ckafka.Header
		value   string
		mode    Mode
		says    string
	}{
		{"structured without id", hdrs("content-type", "application/cloudevents+json"),
			`{"specversion":"1.0","type":"t","source":"/s","data":{}}`, Structured, "id: MUST be a non-empty string"},
		{"structured with an unknown specversion", hdrs("content-type", "application/cloudevents+json"),
			`{"specversion":"2.0","id":"1","type":"t","source":"/s"}`, Structured, "specversion"},
		{"structured and not JSON", hdrs("content-type", "application/cloudevents+json"), `{"specversion":`, Structured, "not an event in the JSON format"},
		{"structured and empty", hdrs("content-type", "application/cloudevents+json"), ``, Structured, "empty"},
		{"the batch mode", hdrs("content-type", "application/cloudevents-batch+json"), `[]`, Structured, "batch mode"},
		{"an event format other than JSON", hdrs("content-type", "application/cloudevents+avro"), `x`, Structured, "application/cloudevents+avro"},
		{"binary with an unknown specversion", hdrs("ce_specversion", "0.2", "ce_id", "1", "ce_type", "t", "ce_source", "/s"), `{}`, Binary, `ce_specversion "0.2"`},
		{"binary without source and type", hdrs("ce_specversion", "1.0", "ce_id", "1"), `{}`, Binary, "source: REQUIRED; type: MUST be a non-empty string"},
		{"binary with a bad time", hdrs("ce_specversion", "1.0", "ce_id", "1", "ce_type", "t", "ce_source", "/s", "ce_time", "yesterday"), `{}`, Binary, "ce_time"},
		{"binary with an extension name the spec forbids", hdrs("ce_specversion", "1.0", "ce_id", "1", "ce_type", "t", "ce_source", "/s", "ce_my-ext", "v"), `{}`, Binary, "ce_my-ext"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := Read(tc.headers, []byte(tc.value))
			if err == nil {
				t.Fatalf("read as valid: %+v", in.Event)
			}
			if in.Mode != tc.mode {
				t.Errorf("mode %v, want %v", in.Mode, tc.mode)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
		})
	}
}

var producer = NewProducer("iris", "ns1")

var now = time.Date(2026, 12, 1, 10, 30, 0, 123000000, time.FixedZone("CET", 3600))

func TestAnAnswerInBinaryModeIsTheModelsAnswerWithTheDeploymentsAttributes(t *testing.T) {
	body := []byte(`{"predictions":[1]}`)
	value, hs, err := producer.Answer(Binary, "puid-1", now, "application/json", body,
		hdrs("Seldon-Puid", "puid-1", "Content-Type", "application/json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(value, body) {
		t.Errorf("value %s, want the model's answer", value)
	}
	want := map[string]string{
		"ce_specversion": "1.0", "ce_id": "puid-1", "ce_source": "seldon.iris.ns1", "ce_type": "seldon.iris.ns1.response",
		"ce_time": "2026-12-01T09:30:00.123Z", "content-type": "application/json", "Seldon-Puid": "puid-1",
	}
	for k, v := range want {
		if got, n := header(hs, k); got != v || n != 1 {
			t.Errorf("header %s = %q (%d of them), want %q once", k, got, n, v)
		}
	}
	if _, n := header(hs, "Content-Type"); n != 0 {
		t.Errorf("Content-Type kept beside content-type: %v", hs)
	}
	back, err := Read(hs, value)
	if err != nil || back.Mode != Binary {
		t.Fatalf("the answer does not read back as a binary event: %v", err)
	}
}

func TestAnAnswerInStructuredModeEmbedsJSONAndEncodesTheRestBase64(t *testing.T) {
	cases := []struct {
		name, ct string
		data     []byte
		field    string
	}{
		{"JSON", "application/json", []byte(`{"predictions":[1]}`), "data"},
		{"JSON with parameters", "application/json; charset=utf-8", []byte(`{"a":1}`), "data"},
		{"protobuf", "application/x-protobuf", []byte{8, 150, 1}, "data_base64"},
		{"said JSON and is not", "application/json", []byte(`{"a":`), "data_base64"},
		{"a JSON suffix the format does not embed", "application/vnd.x+json", []byte(`{"a":1}`), "data_base64"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			value, hs, err := producer.Answer(Structured, "p2", now, tc.ct, tc.data, hdrs("Content-Type", tc.ct, "proto-name", "x"))
			if err != nil {
				t.Fatal(err)
			}
			if got, n := header(hs, "content-type"); got != StructuredContentType || n != 1 {
				t.Errorf("content-type %q (%d)", got, n)
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(value, &fields); err != nil {
				t.Fatalf("not JSON: %s", value)
			}
			for k, v := range map[string]string{"specversion": `"1.0"`, "id": `"p2"`, "source": `"seldon.iris.ns1"`,
				"type": `"seldon.iris.ns1.response"`, "time": `"2026-12-01T09:30:00.123Z"`} {
				if string(fields[k]) != v {
					t.Errorf("%s = %s, want %s", k, fields[k], v)
				}
			}
			if _, ok := fields[tc.field]; !ok {
				t.Errorf("no %s field in %s", tc.field, value)
			}
			ev := event.New()
			if err := json.Unmarshal(value, &ev); err != nil {
				t.Fatalf("the SDK does not read the answer: %v", err)
			}
			if err := ev.Validate(); err != nil {
				t.Fatalf("invalid: %v", err)
			}
			if !bytes.Equal(ev.Data(), tc.data) || ev.DataContentType() != tc.ct {
				t.Errorf("the SDK reads data %q (%q), want %q (%q)", ev.Data(), ev.DataContentType(), tc.data, tc.ct)
			}
		})
	}
}

func TestAnAnswerWhoseContentTypeIsNoMediaTypeIsRefused(t *testing.T) {
	if _, _, err := producer.Answer(Binary, "p", now, "not a type;;", []byte("x"), nil); err == nil {
		t.Fatal("an answer with datacontenttype 'not a type;;' was written")
	}
}

func TestAnErrorRecordKeepsTheRequestAndItsOwnAttributesUnderOtherNames(t *testing.T) {
	req := `{"specversion":"1.0","id":"r1","type":"t","source":"/s","data":{"x":1}}`
	cases := []struct {
		name     string
		mode     Mode
		headers  []ckafka.Header
		value    string
		dataCT   string
		renamed  map[string]string
		base64ed bool
	}{
		{"binary", Binary, hdrs("ce_specversion", "1.0", "ce_id", "r1", "ce_type", "t", "ce_source", "/s", "Content-Type", "application/json"),
			`{"x":1}`, "application/json",
			map[string]string{"Seldon-Request-ce_id": "r1", "Seldon-Request-ce_type": "t", "Seldon-Request-ce_source": "/s", "Seldon-Request-ce_specversion": "1.0"}, false},
		{"binary with a content type that is no media type", Binary, hdrs("ce_specversion", "0.2", "content-type", "bad;;"),
			`x`, "", map[string]string{"Seldon-Request-ce_specversion": "0.2", "Seldon-Request-content-type": "bad;;"}, false},
		{"structured", Structured, hdrs("content-type", "application/cloudevents+json"), req, "application/cloudevents+json", nil, false},
		{"structured and not JSON", Structured, hdrs("content-type", "application/cloudevents+json"), `{"spec`, "application/cloudevents+json", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := append(tc.headers, ckafka.Header{Key: "Seldon-Error-Reason", Value: []byte("invalid_cloudevent")})
			value, out, err := producer.Error(tc.mode, "puid-9", now, []byte(tc.value), hs)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := header(out, "Seldon-Error-Reason"); got != "invalid_cloudevent" {
				t.Errorf("Seldon-Error-Reason %q", got)
			}
			for k, v := range tc.renamed {
				if got, n := header(out, k); got != v || n != 1 {
					t.Errorf("%s = %q (%d), want %q", k, got, n, v)
				}
			}
			switch tc.mode {
			case Binary:
				if string(value) != tc.value {
					t.Errorf("value %q, want the request's %q", value, tc.value)
				}
				for k, v := range map[string]string{"ce_id": "puid-9", "ce_type": "seldon.iris.ns1.error", "ce_source": "seldon.iris.ns1", "ce_specversion": "1.0"} {
					if got, n := header(out, k); got != v || n != 1 {
						t.Errorf("%s = %q (%d), want %q once", k, got, n, v)
					}
				}
				if got, _ := header(out, "content-type"); got != tc.dataCT {
					t.Errorf("content-type %q, want %q", got, tc.dataCT)
				}
				if _, err := Read(out, value); err != nil {
					t.Errorf("the error record is not a valid event: %v", err)
				}
			case Structured:
				ev := event.New()
				if err := json.Unmarshal(value, &ev); err != nil {
					t.Fatalf("the SDK does not read the error event: %v", err)
				}
				if ev.Type() != "seldon.iris.ns1.error" || ev.ID() != "puid-9" || ev.DataContentType() != tc.dataCT {
					t.Errorf("event %s", ev)
				}
				if !bytes.Equal(ev.Data(), []byte(tc.value)) || ev.DataBase64 != tc.base64ed {
					t.Errorf("data %q (base64 %v), want the request %q (base64 %v)", ev.Data(), ev.DataBase64, tc.value, tc.base64ed)
				}
			}
		})
	}
}

// An error event resent without the request it carried (the topic refused it for its size) is still a
// valid event, with every attribute but its data and datacontenttype.
func TestAnErrorEventWithoutItsDataKeepsItsAttributes(t *testing.T) {
	for _, data := range []string{`{"x":1}`, `not JSON`} {
		t.Run(data, func(t *testing.T) {
			full, hs, err := producer.Error(Structured, "puid-9", now, []byte(data), hdrs("content-type", "application/cloudevents+json", "ce_traceparent", "t"))
			if err != nil {
				t.Fatal(err)
			}
			value, err := WithoutData(full)
			if err != nil {
				t.Fatal(err)
			}
			in, err := Read(hs, value)
			if err != nil || in.Mode != Structured {
				t.Fatalf("not a structured event (%v): %s", err, value)
			}
			if d, ct := in.Data(); len(d) != 0 || ct != "" {
				t.Errorf("data %q, datacontenttype %q; want neither", d, ct)
			}
			ev := in.Event
			if ev.ID() != "puid-9" || ev.Type() != "seldon.iris.ns1.error" || ev.Source() != "seldon.iris.ns1" || !ev.Time().Equal(now) {
				t.Errorf("attributes not kept: %s", ev)
			}
			if len(value) >= len(full) {
				t.Errorf("%d bytes without the data, %d with it", len(value), len(full))
			}
		})
	}
	if _, err := WithoutData([]byte(`{"spec`)); err == nil {
		t.Error("a value that is no event was taken")
	}
}

// An error event carries the extensions it is given as attributes in both modes, where an event router
// sees them: in binary mode as ce_<name> headers (a request's own attribute of that name is kept under
// Seldon-Request-, not repeated), in structured mode in the event.
func TestAnErrorEventCarriesItsExtensionsAsAttributesInEachMode(t *testing.T) {
	ext := []Extension{{Name: "seldonerrorreason", Value: "model_rejected"}, {Name: "seldonerrorstatus", Value: "400"}}
	for _, mode := range []Mode{Binary, Structured} {
		t.Run(mode.String(), func(t *testing.T) {
			hs := hdrs("ce_specversion", "1.0", "ce_id", "r1", "ce_type", "t", "ce_source", "/s",
				"ce_seldonerrorreason", "from the request", "content-type", "application/json")
			value, out, err := producer.Error(mode, "puid-9", now, []byte(`{"x":1}`), hs, ext...)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			switch mode {
			case Binary:
				for _, x := range ext {
					if v, n := header(out, "ce_"+x.Name); v != x.Value || n != 1 {
						t.Errorf("ce_%s = %q (%d headers), want %q once", x.Name, v, n, x.Value)
					}
				}
				if v, _ := header(out, "Seldon-Request-ce_seldonerrorreason"); v != "from the request" {
					t.Errorf("the request's own attribute: %q", v)
				}
				in, err := Read(out, value)
				if err != nil {
					t.Fatalf("the error record is not a valid event: %v", err)
				}
				got = map[string]any{}
				for _, x := range ext {
					got[x.Name] = in.Extension(x.Name)
				}
			case Structured:
				ev := event.New()
				if err := json.Unmarshal(value, &ev); err != nil {
					t.Fatalf("the SDK does not read the error event: %v", err)
				}
				got = ev.Extensions()
			}
			for _, x := range ext {
				if got[x.Name] != x.Value {
					t.Errorf("extension %s = %v, want %q (all: %v)", x.Name, got[x.Name], x.Value, got)
				}
			}
		})
	}
	if _, _, err := producer.Error(Binary, "p", now, nil, nil, Extension{Name: "seldon-error", Value: "x"}); err == nil {
		t.Error("an extension named seldon-error (a dash: not a CloudEvents name) was written")
	}
}
