// Package send is what the project's client commands (seldon-kafka, protofile) share: librdkafka
// properties from the command line, a check that messages parse as their protobuf type, and producing a
// list of records in order, each once, waiting for every delivery.
package send

import (
	"errors"
	"fmt"
	"strings"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	// The protocols' types, so that a proto-name can name any request or answer a sidecar handles.
	_ "github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
	_ "github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
	_ "github.com/seldon-kafka/sidecar/protocols/v2/v2pb"
)

// Props collects repeated -X key=value librdkafka properties (security settings and the like).
type Props map[string]string

func (p Props) String() string { return fmt.Sprint(map[string]string(p)) }

func (p Props) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("%q: want key=value", s)
	}
	p[strings.TrimSpace(k)] = v
	return nil
}

// MessageType is the registered protobuf type of a proto-name.
func MessageType(protoName string) (protoreflect.MessageType, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(protoName))
	if err != nil {
		return nil, fmt.Errorf("proto-name %q is not a known message type", protoName)
	}
	return mt, nil
}

// CheckAll parses every message as the named type.
func CheckAll(protoName string, msgs [][]byte) error {
	mt, err := MessageType(protoName)
	if err != nil {
		return err
	}
	for i, b := range msgs {
		if err := proto.Unmarshal(b, mt.New().Interface()); err != nil {
			return fmt.Errorf("message %d is not a %s: %w", i, protoName, err)
		}
	}
	return nil
}

// Record is one record to produce.
type Record struct {
	Key     []byte
	Value   []byte
	Headers []ckafka.Header
}

// Producer is an idempotent producer — records in the order given, each once — with the properties
// extra added (they win).
func Producer(broker, clientID string, extra Props, timeout time.Duration) (*ckafka.Producer, error) {
	cm := ckafka.ConfigMap{
		"bootstrap.servers":  broker,
		"client.id":          clientID,
		"enable.idempotence": true,
		"acks":               "all",
		"linger.ms":          5,
		"message.timeout.ms": int(timeout.Milliseconds()),
	}
	for k, v := range extra {
		cm[k] = v
	}
	p, err := ckafka.NewProducer(&cm)
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	return p, nil
}

// Produce sends the records to topic in order and waits, up to timeout, for every delivery; sent, when
// not nil, is called with each record's index as it is handed to the producer. It returns how many were
// delivered.
func Produce(p *ckafka.Producer, topic string, recs []Record, timeout time.Duration, sent func(i int)) (int, error) {
	reports := make(chan ckafka.Event, len(recs))
	for i, r := range recs {
		m := &ckafka.Message{
			TopicPartition: ckafka.TopicPartition{Topic: &topic, Partition: ckafka.PartitionAny},
			Key:            r.Key, Value: r.Value, Headers: r.Headers, Opaque: i,
		}
		for {
			err := p.Produce(m, reports)
			var ke ckafka.Error
			if errors.As(err, &ke) && ke.Code() == ckafka.ErrQueueFull {
				p.Flush(100)
				continue
			}
			if err != nil {
				return i, fmt.Errorf("producing record %d: %w", i, err)
			}
			break
		}
		if sent != nil {
			sent(i)
		}
	}
	deadline := time.After(timeout + 5*time.Second)
	for done := 0; done < len(recs); done++ {
		select {
		case ev := <-reports:
			m, ok := ev.(*ckafka.Message)
			if !ok {
				done--
				continue
			}
			if m.TopicPartition.Error != nil {
				return done, fmt.Errorf("delivering record %v to %s: %w", m.Opaque, topic, m.TopicPartition.Error)
			}
		case <-deadline:
			return done, fmt.Errorf("%d of %d records delivered to %s within %v", done, len(recs), topic, timeout)
		}
	}
	return len(recs), nil
}
