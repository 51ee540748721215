// Package cloudevents is the CloudEvents Kafka protocol binding (version 1.0) for the sidecar's records:
// it reads a request record as a CloudEvent in binary or structured content mode (specversion 0.3 or
// 1.0) and writes answers and error records as the deployment's own CloudEvents, in the same mode.
//
// The event model, its validation and the JSON event format are the CloudEvents Go SDK's
// (github.com/cloudevents/sdk-go/v2/event). The SDK's Kafka bindings target Sarama and, for
// confluent-kafka-go, prefix the headers with "ce-" where the binding specifies "ce_", so the header
// mapping is done here, as the specification words it.
package cloudevents

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"slices"
	"strings"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/seldon-kafka/sidecar/kafka"
)

// Mode is how a record carries a CloudEvent: the binding's content modes, or none at all.
type Mode uint8

const (
	// None: the record is a plain request, not a CloudEvent.
	None Mode = iota
	// Binary: the attributes are ce_* headers, content-type is datacontenttype, the value is data.
	Binary
	// Structured: the value is the whole event in the JSON event format.
	Structured
)

func (m Mode) String() string {
	switch m {
	case Binary:
		return "binary"
	case Structured:
		return "structured"
	}
	return "none"
}

// Header names and media types of the binding.
const (
	HeaderPrefix      = "ce_"
	HeaderContentType = "content-type"
	// MediaType is what the content-type header of a structured-mode record starts with.
	MediaType = "application/cloudevents"
	// StructuredContentType is the content-type of the structured records the sidecar writes.
	StructuredContentType = event.ApplicationCloudEventsJSON + "; charset=UTF-8"
	// SpecVersion is the specversion of every event the sidecar writes.
	SpecVersion = event.CloudEventsVersionV1
	// RequestHeaderPrefix is put before the name of a request's own ce_* headers on its error record,
	// where the error event's attributes take their place.
	RequestHeaderPrefix = "Seldon-Request-"
)

// headerSpecs maps ce_* header names to the attributes of each spec version the SDK knows (0.3, 1.0).
var headerSpecs = spec.WithPrefix(HeaderPrefix)

// Incoming is a request record read as the binding reads it.
type Incoming struct {
	Mode  Mode
	Event *event.Event // the event, valid; nil when Mode is None or the event is malformed
}

// Read reads a record as the Kafka binding says a receiver does: structured when the content-type
// header starts with application/cloudevents (any case), binary when a ce_specversion header is present,
// otherwise not a CloudEvent. Header names are matched without regard to case. A record that claims to
// be a CloudEvent and is not a valid one (bad JSON, no id, an unknown specversion, an event format other
// than JSON, the batch mode the Kafka binding does not define) is an error, with Mode saying which mode
// it claimed.
func Read(hs []ckafka.Header, value []byte) (Incoming, error) {
	ct, _ := kafka.Header(hs, HeaderContentType)
	if isCloudEventsMediaType(ct) {
		in := Incoming{Mode: Structured}
		ev, err := readStructured(ct, value)
		if err != nil {
			return in, err
		}
		in.Event = ev
		return in, nil
	}
	sv, ok := kafka.Header(hs, HeaderPrefix+"specversion")
	if !ok {
		return Incoming{Mode: None}, nil
	}
	in := Incoming{Mode: Binary}
	ev, err := readBinary(strings.TrimSpace(sv), hs, value)
	if err != nil {
		return in, err
	}
	in.Event = ev
	return in, nil
}

func isCloudEventsMediaType(ct string) bool {
	return len(ct) >= len(MediaType) && strings.EqualFold(ct[:len(MediaType)], MediaType)
}

func readStructured(ct string, value []byte) (*event.Event, error) {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, fmt.Errorf("content-type %q: %v", ct, err)
	}
	switch mt {
	case event.ApplicationCloudEventsJSON:
	case event.ApplicationCloudEventsBatchJSON:
		return nil, errors.New("batch mode (application/cloudevents-batch+json) is not defined for Kafka: one event a record")
	default:
		return nil, fmt.Errorf("event format %q is not served: structured mode takes the JSON format (application/cloudevents+json)", mt)
	}
	if len(bytes.TrimSpace(value)) == 0 {
		return nil, errors.New("structured mode, and the value is empty")
	}
	ev := event.New()
	if err := event.ReadJson(&ev, bytes.NewReader(value)); err != nil {
		return nil, fmt.Errorf("not an event in the JSON format: %s", describe(err))
	}
	if err := ev.Validate(); err != nil {
		return nil, fmt.Errorf("invalid event: %s", describe(err))
	}
	return &ev, nil
}

func readBinary(sv string, hs []ckafka.Header, value []byte) (*event.Event, error) {
	version := headerSpecs.Version(sv)
	if version == nil {
		return nil, fmt.Errorf("ce_specversion %q: want 1.0 or 0.3", sv)
	}
	ev := event.New(version.String())
	for _, h := range hs {
		key := strings.ToLower(h.Key)
		if !strings.HasPrefix(key, HeaderPrefix) || key == HeaderPrefix+"specversion" {
			continue
		}
		if attr := version.Attribute(key); attr != nil {
			if err := attr.Set(ev.Context, string(h.Value)); err != nil {
				return nil, fmt.Errorf("header %s: %v", h.Key, err)
			}
			continue
		}
		if err := ev.Context.SetExtension(strings.TrimPrefix(key, HeaderPrefix), string(h.Value)); err != nil {
			return nil, fmt.Errorf("header %s: %v", h.Key, err)
		}
	}
	if ct, ok := kafka.Header(hs, HeaderContentType); ok {
		ev.SetDataContentType(ct)
	}
	if len(value) > 0 {
		ev.DataEncoded = value
	}
	if err := ev.Validate(); err != nil {
		return nil, fmt.Errorf("invalid event: %s", describe(err))
	}
	return &ev, nil
}

// describe is an SDK error on one line, its fields in a stable order (a ValidationError is a map).
func describe(err error) string {
	var ve event.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	parts := make([]string, 0, len(ve))
	for k, v := range ve {
		parts = append(parts, k+": "+v.Error())
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// Data is what the event asks the model: its data and datacontenttype ("" when it has none).
func (in Incoming) Data() ([]byte, string) {
	if in.Event == nil {
		return nil, ""
	}
	return in.Event.Data(), in.Event.DataContentType()
}

// Extension is the value of an extension attribute of the event as a string, "" when it has none.
func (in Incoming) Extension(name string) string {
	if in.Event == nil {
		return ""
	}
	v, ok := in.Event.Extensions()[name]
	if !ok {
		return ""
	}
	s, _ := v.(string)
	return s
}

// Producer names the events a deployment writes, as the legacy executor named its CloudEvent answers:
// source seldon.<sdep>.<namespace>, type seldon.<sdep>.<namespace>.response and, for error records,
// seldon.<sdep>.<namespace>.error.
type Producer struct {
	Source       string
	ResponseType string
	ErrorType    string
}

// NewProducer is the Producer of a SeldonDeployment.
func NewProducer(deployment, namespace string) Producer {
	src := "seldon." + deployment + "." + namespace
	return Producer{Source: src, ResponseType: src + ".response", ErrorType: src + ".error"}
}

// Answer makes an answer record a CloudEvent in mode m (binary or structured): id is the request id,
// datacontenttype the model's content type. hs are the answer's headers; any Content-Type among them
// gives way to the binding's content-type.
func (p Producer) Answer(m Mode, id string, now time.Time, contentType string, data []byte, hs []ckafka.Header) ([]byte, []ckafka.Header, error) {
	return p.write(m, p.ResponseType, id, now, contentType, data, hs, nil)
}

// Error makes an error record a CloudEvent in mode m: the error event's data is the request record's
// value and its datacontenttype the request's content type, so a structured request's error event holds
// the whole request event. The request's own ce_* headers are kept, renamed with RequestHeaderPrefix,
// since the error event's attributes take their names; so is a content type that is no media type.
func (p Producer) Error(m Mode, id string, now time.Time, value []byte, hs []ckafka.Header, ext ...Extension) ([]byte, []ckafka.Header, error) {
	// A content type that is no media type cannot be the error event's datacontenttype: it is kept
	// as the request's, like its ce_* headers.
	ct, _ := kafka.Header(hs, HeaderContentType)
	_, _, ctErr := mime.ParseMediaType(ct)
	out := make([]ckafka.Header, 0, len(hs)+6)
	for _, h := range hs {
		if len(h.Key) > len(HeaderPrefix) && strings.EqualFold(h.Key[:len(HeaderPrefix)], HeaderPrefix) ||
			ctErr != nil && strings.EqualFold(h.Key, HeaderContentType) {
			h.Key = RequestHeaderPrefix + h.Key
		}
		out = append(out, h)
	}
	if ctErr != nil {
		ct = ""
	}
	return p.write(m, p.ErrorType, id, now, ct, value, out, ext)
}

// Extension is an extension attribute of an event the sidecar writes, with a string value. Its name is
// lower-case letters and digits; in binary mode it is the header ce_<name>.
type Extension struct{ Name, Value string }

func (p Producer) write(m Mode, typ, id string, now time.Time, contentType string, data []byte, hs []ckafka.Header, ext []Extension) ([]byte, []ckafka.Header, error) {
	if m != Binary && m != Structured {
		return nil, nil, fmt.Errorf("no CloudEvent content mode %d", m)
	}
	ev := event.New(SpecVersion)
	ev.SetID(id)
	ev.SetSource(p.Source)
	ev.SetType(typ)
	ev.SetTime(now.UTC())
	if contentType != "" {
		ev.SetDataContentType(contentType)
	}
	for _, x := range ext {
		ev.SetExtension(x.Name, x.Value) // a bad name fails Validate
	}
	if err := ev.Validate(); err != nil {
		return nil, nil, fmt.Errorf("writing a %s event: %s", typ, describe(err))
	}
	hs = kafka.WithoutHeader(hs, HeaderContentType)
	if m == Binary {
		hs = append(hs,
			ckafka.Header{Key: HeaderPrefix + "specversion", Value: []byte(SpecVersion)},
			ckafka.Header{Key: HeaderPrefix + "id", Value: []byte(id)},
			ckafka.Header{Key: HeaderPrefix + "source", Value: []byte(p.Source)},
			ckafka.Header{Key: HeaderPrefix + "type", Value: []byte(typ)},
			ckafka.Header{Key: HeaderPrefix + "time", Value: []byte(ev.Time().Format(time.RFC3339Nano))},
		)
		for _, x := range ext {
			hs = append(hs, ckafka.Header{Key: HeaderPrefix + x.Name, Value: []byte(x.Value)})
		}
		if contentType != "" {
			hs = append(hs, ckafka.Header{Key: HeaderContentType, Value: []byte(contentType)})
		}
		return data, hs, nil
	}
	if len(data) > 0 {
		ev.DataEncoded = data
		// JSON data is embedded as JSON where the JSON format says so (and the SDK reads it so);
		// anything else, protobuf answers among them, goes base64 in data_base64.
		ev.DataBase64 = !(embedsJSON(contentType) && json.Valid(data))
	}
	value, err := json.Marshal(ev)
	if err != nil {
		return nil, nil, fmt.Errorf("writing a %s event: %w", typ, err)
	}
	return value, append(hs, ckafka.Header{Key: HeaderContentType, Value: []byte(StructuredContentType)}), nil
}

// WithoutData is a structured event, value, with its data and datacontenttype left out and its other
// attributes kept: what an error record becomes when the topic refuses it for its size, so that it is
// still a CloudEvent, only without the request it carried.
func WithoutData(value []byte) ([]byte, error) {
	ev := event.New()
	if err := event.ReadJson(&ev, bytes.NewReader(value)); err != nil {
		return nil, fmt.Errorf("not an event in the JSON format: %s", describe(err))
	}
	ev.DataEncoded, ev.DataBase64 = nil, false
	ev.SetDataContentType("")
	out, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("writing the event without its data: %w", err)
	}
	return out, nil
}

// embedsJSON says whether the JSON event format writes data of this content type as JSON: the media
// types the format (and the SDK reading it back) treats as JSON, and none at all.
func embedsJSON(contentType string) bool {
	mt := contentType
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "", event.ApplicationJSON, event.TextJSON, event.ApplicationCloudEventsJSON:
		return true
	}
	return false
}
