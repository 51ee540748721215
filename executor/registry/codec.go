package registry

import (
	"context"
	cryptotls "crypto/tls"
	"fmt"
	"strconv"
	"strings"
	"sync"

	sr "github.com/confluentinc/confluent-kafka-go/v2/schemaregistry"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/cache"
	"golang.org/x/sync/singleflight"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/rest"
	"github.com/seldon-kafka/sidecar/tls"
)

// Strategy names the subject an answer's schema is registered under, as Confluent's serializers'
// subject name strategies do.
type Strategy int

const (
	TopicName       Strategy = iota // <topic>-value
	RecordName                      // <record name>: the message's full name, the JSON Schema's title
	TopicRecordName                 // <topic>-<record name>
)

// ParseStrategy reads a strategy by its Confluent name (TopicNameStrategy, RecordNameStrategy,
// TopicRecordNameStrategy), any case, or by its Java class name (io.confluent.….TopicNameStrategy).
func ParseStrategy(s string) (Strategy, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s[strings.LastIndex(s, ".")+1:]) {
	case "topicnamestrategy", "":
		return TopicName, nil
	case "recordnamestrategy":
		return RecordName, nil
	case "topicrecordnamestrategy":
		return TopicRecordName, nil
	}
	return 0, fmt.Errorf("%q: want TopicNameStrategy, RecordNameStrategy or TopicRecordNameStrategy", s)
}

func (s Strategy) String() string {
	return [...]string{"TopicNameStrategy", "RecordNameStrategy", "TopicRecordNameStrategy"}[s]
}

// Subject is the subject of a record value's schema on a topic.
func (s Strategy) Subject(topic, record string) string {
	switch s {
	case RecordName:
		return record
	case TopicRecordName:
		return topic + "-" + record
	}
	return topic + "-value"
}

// Options configure a Codec.
type Options struct {
	Registry
	Transport   string         // rest: requests and answers are JSON Schema framed; grpc: Protobuf
	Protocol    protocols.Name // whose answers' JSON Schema is registered, over REST
	OutputTopic string         // the answers' topic, for their subject
	Strategy    Strategy
	// AutoRegister registers the answer's schema (and, for Protobuf, the files it imports) when the
	// subject lacks it; otherwise it is looked up and must be there.
	AutoRegister bool
	// UseLatest frames answers with the subject's latest schema, whatever it is, once it is checked to
	// be of the right type and, for Protobuf, to define the answer's message.
	UseLatest bool
	// Accept says whether a Protobuf message type is one of the protocol's requests (gRPC), with a
	// *protocols.CallError saying why not; nil accepts any.
	Accept func(protoName string) error
}

// Codec takes the frame off requests and puts one on their answers. It is safe for concurrent use; a
// nil *Codec is the wire format turned off: it leaves every record as it is.
type Codec struct {
	o        Options
	c        *client
	requests *cache.LRUCache // schema id → *requestSchema
	fetch    singleflight.Group
	mu       sync.Mutex
	answers  map[string]Header // by subject and answer type
}

// requestSchema is a request's schema as fetched and read, or why it cannot be read. Schema ids never
// change meaning, so both are cached.
type requestSchema struct {
	typ  string
	file *descriptorpb.FileDescriptorProto // Protobuf
	err  error
}

// New builds a codec; it asks the registry nothing until the first framed record.
func New(o Options) (*Codec, error) {
	c, err := newClient(o.Registry)
	if err != nil {
		return nil, err
	}
	requests, err := cache.NewLRUCache(max(o.CacheCapacity, 1))
	if err != nil {
		return nil, err
	}
	return &Codec{o: o, c: c, requests: requests, answers: map[string]Header{}}, nil
}

// Rotate has the requests to come made with new credentials ("user:password"; unset for none) and TLS
// material (nil for none), once a request with them proves that the registry takes them; until then, and
// when it does not, the ones in use stay, and the error says why. Nothing cached is fetched again.
func (c *Codec) Rotate(ctx context.Context, userInfo tls.Secret, tlsConf *cryptotls.Config) error {
	return c.c.rotate(ctx, userInfo, tlsConf)
}

// Close ends the registry client.
func (c *Codec) Close() error {
	if c == nil {
		return nil
	}
	return c.c.c.Close()
}

// Unframe takes the frame off a framed request: it fetches the schema its id names (once: it is
// cached), checks that the payload is what the transport takes — a Protobuf message of one of the
// protocol's request types, whose name it puts in req.ProtoName, over gRPC; JSON Schema JSON over
// REST — and leaves the payload in req.Body. A value that is not framed is left as it is, and so over
// REST is one whose Content-Type is not JSON (a binary body is the model's, whatever its first byte).
// It reports whether the request was framed, so that its answer is; a failure is a
// *protocols.CallError: invalid_request, schema_unknown or registry_unavailable.
func (c *Codec) Unframe(ctx context.Context, req *protocols.Request) (framed bool, err error) {
	if c == nil || !IsFramed(req.Body) || (c.o.Transport != "grpc" && !rest.IsJSON(req.ContentType)) {
		return false, nil
	}
	id, payload, err := ParseID(req.Body)
	if err != nil {
		return true, &protocols.CallError{Reason: protocols.ReasonInvalidRequest, Msg: "not in the Schema Registry wire format", Err: err}
	}
	s, err := c.requestSchema(ctx, id)
	if err != nil {
		return true, err
	}
	if s.err != nil {
		return true, protocols.Invalid("schema %d cannot be read: %v", id, s.err)
	}
	if c.o.Transport != "grpc" {
		if s.typ != typeJSON {
			return true, protocols.Invalid("schema %d is %s: over REST a framed request's schema is JSON Schema", id, s.typ)
		}
		req.Body = payload
		return true, nil
	}
	if s.typ != typeProtobuf {
		return true, protocols.Invalid("schema %d is %s: over gRPC a framed request's schema is Protobuf", id, s.typ)
	}
	indexes, payload, err := ParseIndexes(payload)
	if err != nil {
		return true, &protocols.CallError{Reason: protocols.ReasonInvalidRequest, Msg: fmt.Sprintf("schema %d: not in the Schema Registry wire format", id), Err: err}
	}
	name, err := messageAt(s.file, indexes)
	if err != nil {
		return true, protocols.Invalid("schema %d: %v", id, err)
	}
	if req.ProtoName != "" && strings.TrimSpace(req.ProtoName) != name {
		return true, protocols.Invalid("the proto-name header says %q, but schema %d (message indexes %v) frames %s", req.ProtoName, id, indexes, name)
	}
	if c.o.Accept != nil {
		if err := c.o.Accept(name); err != nil {
			return true, protocols.Invalid("schema %d (message indexes %v) frames %s: %v", id, indexes, name, err)
		}
	}
	req.ProtoName, req.Body = name, payload
	return true, nil
}

// requestSchema is the schema of an id, from the cache or the registry. Records that miss at once
// share one fetch.
func (c *Codec) requestSchema(ctx context.Context, id int) (*requestSchema, error) {
	if s, ok := c.requests.Get(id); ok {
		return s.(*requestSchema), nil
	}
	v, err, _ := c.fetch.Do("id "+strconv.Itoa(id), func() (any, error) {
		var info sr.SchemaInfo
		err := c.c.do(ctx, fmt.Sprintf("schema %d", id), func(sc sr.Client) (err error) {
			info, err = sc.GetBySubjectAndID("", id)
			return err
		})
		if err != nil {
			return nil, err
		}
		s := &requestSchema{typ: schemaTypeOf(info.SchemaType)}
		if s.typ == typeProtobuf {
			s.file, s.err = parseProto(info.Schema)
		}
		c.requests.Put(id, s)
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*requestSchema), nil
}

// Frame frames an answer with the registered schema of its type under its subject: over gRPC the
// Protobuf file of the message resp.ProtoName names, over REST the protocol's JSON Schema. The schema's
// id is cached once found. A failure is a *protocols.CallError: schema_unknown when the subject has no
// such schema and may not be given one, registry_unavailable, or invalid_answer for an answer that is
// not of the transport's kind.
func (c *Codec) Frame(ctx context.Context, resp *protocols.Response) error {
	var (
		record string
		md     protoreflect.MessageDescriptor
		js     jsonSchema
	)
	if c.o.Transport == "grpc" {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(resp.ProtoName))
		if err != nil {
			return &protocols.CallError{Reason: protocols.ReasonInvalidAnswer, Msg: fmt.Sprintf("the answer's type %q has no schema to frame it with", resp.ProtoName), Err: err}
		}
		md, record = mt.Descriptor(), resp.ProtoName
	} else {
		if !rest.IsJSON(resp.ContentType) {
			return &protocols.CallError{Reason: protocols.ReasonInvalidAnswer, Msg: fmt.Sprintf("an answer of Content-Type %q cannot be framed with a JSON Schema", resp.ContentType)}
		}
		var ok bool
		if js, ok = answerJSONSchemas[c.o.Protocol]; !ok {
			return &protocols.CallError{Reason: protocols.ReasonInvalidAnswer, Msg: fmt.Sprintf("protocol %s has no JSON Schema for its answers", c.o.Protocol)}
		}
		record = js.title
	}
	subject := c.o.Strategy.Subject(c.o.OutputTopic, record)
	key := subject + "\x00" + record
	c.mu.Lock()
	h, ok := c.answers[key]
	c.mu.Unlock()
	if !ok {
		v, err, _ := c.fetch.Do("answer "+key, func() (any, error) {
			h, err := c.answerHeader(ctx, subject, md, js)
			if err == nil {
				c.mu.Lock()
				c.answers[key] = h
				c.mu.Unlock()
			}
			return h, err
		})
		if err != nil {
			return err
		}
		h = v.(Header)
	}
	resp.Body = h.Frame(resp.Body)
	return nil
}

// answerHeader finds the schema id (and message indexes) answers of a type are framed with: md for
// Protobuf, else js.
func (c *Codec) answerHeader(ctx context.Context, subject string, md protoreflect.MessageDescriptor, js jsonSchema) (Header, error) {
	if c.o.UseLatest {
		return c.latestHeader(ctx, subject, md)
	}
	var info sr.SchemaInfo
	var indexes []int
	if md != nil {
		var err error
		if info, err = c.protoInfo(ctx, md.ParentFile()); err != nil {
			return Header{}, err
		}
		indexes = indexPath(md)
	} else {
		info = sr.SchemaInfo{Schema: js.schema, SchemaType: typeJSON}
	}
	id, err := c.idIn(ctx, subject, info)
	return Header{ID: id, Indexes: indexes}, err
}

// idIn is the id of a schema under a subject: registered there when AutoRegister says so, else looked
// up, and then it must be there already.
func (c *Codec) idIn(ctx context.Context, subject string, info sr.SchemaInfo) (id int, err error) {
	what, ask := "looking up the answer's schema under subject "+subject, sr.Client.GetID
	if c.o.AutoRegister {
		what, ask = "registering the answer's schema under subject "+subject, sr.Client.Register
	}
	err = c.c.do(ctx, what, func(sc sr.Client) (err error) {
		id, err = ask(sc, subject, info, false)
		return err
	})
	if err != nil {
		return 0, err // id may still be written by a request given up on
	}
	return id, nil
}

// latestHeader frames answers with the subject's latest schema, once it is checked to fit: JSON Schema
// over REST; over gRPC a Protobuf file that defines the answer's message.
func (c *Codec) latestHeader(ctx context.Context, subject string, md protoreflect.MessageDescriptor) (Header, error) {
	var latest sr.SchemaMetadata
	err := c.c.do(ctx, "the latest schema of subject "+subject, func(sc sr.Client) (err error) {
		latest, err = sc.GetLatestSchemaMetadata(subject)
		return err
	})
	if err != nil {
		return Header{}, err
	}
	typ := schemaTypeOf(latest.SchemaType)
	unfit := func(format string, args ...any) (Header, error) {
		return Header{}, &protocols.CallError{Reason: protocols.ReasonSchemaUnknown,
			Msg: fmt.Sprintf("the latest schema of subject %s (id %d) ", subject, latest.ID) + fmt.Sprintf(format, args...)}
	}
	if md == nil {
		if typ != typeJSON {
			return unfit("is %s, not the JSON Schema answers over REST are framed with", typ)
		}
		return Header{ID: latest.ID}, nil
	}
	if typ != typeProtobuf {
		return unfit("is %s, not the Protobuf answers over gRPC are framed with", typ)
	}
	fd, err := parseProto(latest.Schema)
	if err != nil {
		return unfit("cannot be read: %v", err)
	}
	indexes := indexesOf(fd, string(md.FullName()))
	if indexes == nil {
		return unfit("does not define message %s", md.FullName())
	}
	return Header{ID: latest.ID, Indexes: indexes}, nil
}

// protoInfo is a compiled-in file as a schema to register or look up, with a reference to each file it
// imports (but the registry's built-in ones), as Confluent's serializers write them: the import path as
// the reference's name and subject, and the version the file has there — registered first when
// AutoRegister says so.
func (c *Codec) protoInfo(ctx context.Context, fd protoreflect.FileDescriptor) (sr.SchemaInfo, error) {
	var refs []sr.Reference
	imports := fd.Imports()
	for i := range imports.Len() {
		dep := imports.Get(i).FileDescriptor
		if builtIn(dep.Path()) {
			continue
		}
		info, err := c.protoInfo(ctx, dep)
		if err != nil {
			return sr.SchemaInfo{}, err
		}
		subject := dep.Path()
		if c.o.AutoRegister {
			err := c.c.do(ctx, "registering "+subject+" under its own subject", func(sc sr.Client) error {
				_, err := sc.Register(subject, info, false)
				return err
			})
			if err != nil {
				return sr.SchemaInfo{}, err
			}
		}
		var md sr.SchemaMetadata
		err = c.c.do(ctx, "looking up "+subject+", which the answer's schema imports, under its own subject", func(sc sr.Client) (err error) {
			md, err = sc.GetIDFullResponse(subject, info, false)
			return err
		})
		if err != nil {
			return sr.SchemaInfo{}, err
		}
		refs = append(refs, sr.Reference{Name: dep.Path(), Subject: subject, Version: md.Version})
	}
	schema, err := encodeFile(fd)
	if err != nil {
		return sr.SchemaInfo{}, &protocols.CallError{Reason: protocols.ReasonInvalidAnswer, Msg: "encoding the schema of " + fd.Path(), Err: err}
	}
	return sr.SchemaInfo{Schema: schema, SchemaType: typeProtobuf, References: refs}, nil
}
