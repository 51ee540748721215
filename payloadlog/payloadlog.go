// Package payloadlog is the payload logger of graph nodes with a `logger` (the legacy executor's
// request logger): each request a node receives and each answer it gives are sent, as the legacy
// executor's executor/logger/worker.go sends them, to an HTTP endpoint as binary-mode CloudEvents or to
// a Kafka topic. Sending is asynchronous and bounded: a full queue drops the message (counted and
// logged) instead of holding the record, so a logger that is down or slow costs no answer.
package payloadlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// Kind is what a message is: the CloudEvent type the legacy logger gives it.
type Kind string

const (
	Request  Kind = "io.seldon.serving.inference.request"
	Response Kind = "io.seldon.serving.inference.response"
	// Feedback is a seldon.protos.Feedback (the request, its answer, the reward, the truth) as a node
	// receives it; its answer is not logged. Stateful metrics servers and other feedback consumers
	// subscribe to this type (a Knative Trigger filtering on it).
	Feedback Kind = "io.seldon.serving.feedback"
)

// The legacy logger's CloudEvent extensions (and, to Kafka, header names).
const (
	AttrRequestID            = "requestid"
	AttrModelID              = "modelid"
	AttrInferenceServiceName = "inferenceservicename"
	AttrNamespace            = "namespace"
	AttrEndpoint             = "endpoint"
	AttrProtocol             = "protocol"
)

// Settings configure a Logger.
type Settings struct {
	// DefaultURL is where the messages of a node whose logger names no url go
	// (REQUEST_LOGGER_DEFAULT_ENDPOINT, which the operator sets).
	DefaultURL string
	// KafkaBroker and KafkaTopic send every message to a topic instead (LOGGER_KAFKA_BROKER and
	// LOGGER_KAFKA_TOPIC, or --log_kafka_broker and --log_kafka_topic); the topic is "seldon" by default.
	KafkaBroker string
	KafkaTopic  string
	// KafkaSecurity are the librdkafka security properties of the sidecar's own clients (the legacy
	// logger read the same KAFKA_SECURITY_PROTOCOL and KAFKA_SSL_* variables).
	KafkaSecurity map[string]string
	// Workers send at once (--logger_workers); Buffer messages wait at most (--log_work_buffer_size).
	Workers int
	Buffer  int
	// Timeout bounds one delivery (--log_write_timeout_ms): an HTTP POST, or a Kafka message.
	Timeout time.Duration
	// Source is the events' source: the executor's URL, as the legacy executor named it.
	Source string
	// Deployment, Namespace, Predictor and Protocol are the inferenceservicename, namespace, endpoint
	// and protocol of every message.
	Deployment, Namespace, Predictor, Protocol string
}

// Logger sends payload messages in the background. A nil *Logger logs nothing.
type Logger struct {
	s        Settings
	log      *slog.Logger
	queue    chan message
	http     *http.Client
	producer *ckafka.Producer
	workers  sync.WaitGroup
	reports  sync.WaitGroup
	closed   atomic.Bool
	abandon  atomic.Bool // shutting down past the deadline: what is queued is dropped
	// stop ends the sends in progress when the shutdown deadline passes.
	stopCtx context.Context
	stop    context.CancelFunc
	mu      sync.RWMutex // guards sending on queue against its close

	sent    prometheus.Counter
	dropped *prometheus.CounterVec // reason: queue_full | failed
	// lastDropLog limits the drop warnings to one a period (unix nanoseconds).
	lastDropLog atomic.Int64
}

type message struct {
	url         string
	kind        Kind
	node, puid  string
	body        []byte
	contentType string
}

// New starts the workers (and, for Kafka, the producer). reg gets the logger's metrics.
func New(s Settings, reg prometheus.Registerer, log *slog.Logger) (*Logger, error) {
	s.Workers = max(s.Workers, 1)
	s.Buffer = max(s.Buffer, 1)
	if s.Timeout <= 0 {
		s.Timeout = 2 * time.Second
	}
	if s.KafkaBroker != "" && s.KafkaTopic == "" {
		s.KafkaTopic = "seldon"
	}
	l := &Logger{
		s: s, log: log, queue: make(chan message, s.Buffer),
		http: &http.Client{Timeout: s.Timeout},
		sent: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seldon_kafka", Name: "payload_logs_sent_total",
			Help: "Payload log messages (requests and answers of graph nodes with a logger) delivered."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "seldon_kafka", Name: "payload_logs_dropped_total",
			Help: "Payload log messages not delivered: the queue was full, or the logger refused or did not answer in time."}, []string{"reason"}),
	}
	l.stopCtx, l.stop = context.WithCancel(context.Background())
	for _, c := range []prometheus.Collector{l.sent, l.dropped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("payload logger metrics: %w", err)
		}
	}
	if s.KafkaBroker != "" {
		cm := ckafka.ConfigMap{
			"bootstrap.servers":            s.KafkaBroker,
			"client.id":                    "seldon-payload-logger",
			"message.timeout.ms":           int(s.Timeout.Milliseconds()),
			"queue.buffering.max.messages": s.Buffer,
			"linger.ms":                    5,
			"go.delivery.reports":          true,
			"go.delivery.report.fields":    "none",
		}
		for k, v := range s.KafkaSecurity {
			cm[k] = v
		}
		p, err := ckafka.NewProducer(&cm)
		if err != nil {
			return nil, fmt.Errorf("payload logger's Kafka producer for %s: %w", s.KafkaBroker, err)
		}
		l.producer = p
		l.reports.Add(1)
		go l.deliveries()
	}
	for range s.Workers {
		l.workers.Add(1)
		go l.work()
	}
	return l, nil
}

// Log queues one message for node's logger at url ("" for the default), never waiting: when the queue
// is full the message is dropped, counted and logged.
func (l *Logger) Log(url string, kind Kind, node, puid string, body []byte, contentType string) {
	if l == nil {
		return
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed.Load() {
		return
	}
	if url == "" {
		url = l.s.DefaultURL
	}
	select {
	case l.queue <- message{url: url, kind: kind, node: node, puid: puid, body: body, contentType: contentType}:
	default:
		l.drop("queue_full", node, puid, errors.New("the payload log queue is full"))
	}
}

func (l *Logger) work() {
	defer l.workers.Done()
	for m := range l.queue {
		if l.abandon.Load() {
			l.drop("failed", m.node, m.puid, errors.New("not sent before the shutdown deadline"))
			continue
		}
		var err error
		if l.producer != nil {
			err = l.produce(m)
		} else {
			err = l.post(m)
			if err == nil {
				l.sent.Inc()
			}
		}
		if err != nil {
			l.drop("failed", m.node, m.puid, err)
		}
	}
}

// post sends a message as a binary-mode CloudEvent over HTTP, as the legacy logger's sendCloudEvent.
func (l *Logger) post(m message) error {
	ctx, cancel := context.WithTimeout(l.stopCtx, l.s.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.url, bytes.NewReader(m.body))
	if err != nil {
		return fmt.Errorf("logger url %q: %w", m.url, err)
	}
	h := req.Header
	h.Set("Ce-Specversion", "1.0")
	h.Set("Ce-Id", uuid.NewString())
	h.Set("Ce-Type", string(m.kind))
	h.Set("Ce-Source", l.s.Source)
	h.Set("Ce-Time", time.Now().UTC().Format(time.RFC3339Nano))
	for k, v := range l.attrs(m) {
		h.Set("Ce-"+k, v)
	}
	if m.contentType != "" {
		h.Set("Content-Type", m.contentType)
	}
	resp, err := l.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered HTTP %d", m.url, resp.StatusCode)
	}
	return nil
}

// produce sends a message to the Kafka topic with the legacy logger's headers (type, content-type and
// the attributes, unprefixed) and the payload as the value; its delivery is counted by deliveries.
func (l *Logger) produce(m message) error {
	hs := []ckafka.Header{
		{Key: "type", Value: []byte(m.kind)},
		{Key: "content-type", Value: []byte(m.contentType)},
	}
	for _, k := range []string{AttrModelID, AttrRequestID, AttrInferenceServiceName, AttrNamespace, AttrEndpoint, AttrProtocol} {
		hs = append(hs, ckafka.Header{Key: k, Value: []byte(l.attrs(m)[k])})
	}
	msg := &ckafka.Message{TopicPartition: ckafka.TopicPartition{Topic: &l.s.KafkaTopic, Partition: ckafka.PartitionAny},
		Value: m.body, Headers: hs, Opaque: m}
	for {
		err := l.producer.Produce(msg, nil)
		var ke ckafka.Error
		if errors.As(err, &ke) && ke.Code() == ckafka.ErrQueueFull && !l.closed.Load() {
			time.Sleep(10 * time.Millisecond) // the worker waits, not the record: Log never blocks
			continue
		}
		return err
	}
}

func (l *Logger) deliveries() {
	defer l.reports.Done()
	for ev := range l.producer.Events() {
		switch e := ev.(type) {
		case *ckafka.Message:
			m, _ := e.Opaque.(message)
			if e.TopicPartition.Error != nil {
				l.drop("failed", m.node, m.puid, e.TopicPartition.Error)
				continue
			}
			l.sent.Inc()
		case ckafka.Error:
			l.log.Debug("payload logger's Kafka producer", "error", e)
		}
	}
}

func (l *Logger) attrs(m message) map[string]string {
	return map[string]string{
		AttrModelID: m.node, AttrRequestID: m.puid, AttrInferenceServiceName: l.s.Deployment,
		AttrNamespace: l.s.Namespace, AttrEndpoint: l.s.Predictor, AttrProtocol: l.s.Protocol,
	}
}

// dropLogEvery is how often a drop is logged at warning level; the metric counts each.
const dropLogEvery = 10 * time.Second

func (l *Logger) drop(reason, node, puid string, err error) {
	l.dropped.WithLabelValues(reason).Inc()
	now := time.Now().UnixNano()
	last := l.lastDropLog.Load()
	if now-last < int64(dropLogEvery) || !l.lastDropLog.CompareAndSwap(last, now) {
		l.log.Debug("payload log message dropped", "reason", reason, "node", node, "puid", puid, "error", err)
		return
	}
	l.log.Warn("payload log message dropped (seldon_kafka_payload_logs_dropped_total counts them all)",
		"reason", reason, "node", node, "puid", puid, "error", err)
}

// Close stops taking messages and sends those queued until ctx ends; what is left then is dropped.
func (l *Logger) Close(ctx context.Context) {
	if l == nil {
		return
	}
	l.mu.Lock()
	if l.closed.Swap(true) {
		l.mu.Unlock()
		return
	}
	close(l.queue)
	l.mu.Unlock()
	done := make(chan struct{})
	go func() { l.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		l.abandon.Store(true)
		l.stop() // a send in progress ends now
		<-done
	}
	l.stop()
	if l.producer != nil {
		if d, ok := ctx.Deadline(); ok {
			l.producer.Flush(max(int(time.Until(d).Milliseconds()), 0))
		}
		l.producer.Close()
		l.reports.Wait()
	}
}

// Wants says whether a logger of mode sends payloads of kind: request, response, or all (also when the
// mode is unset, as the operator defaults it). Feedback goes with response and all, as the legacy
// executor logged it.
func Wants(mode string, kind Kind) bool {
	switch strings.ToLower(mode) {
	case "request":
		return kind == Request
	case "response":
		return kind == Response || kind == Feedback
	}
	return true
}
