package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seldon-kafka/sidecar/kafka"
	"github.com/seldon-kafka/sidecar/tls"
)

// Rotation of the security material.
//
// librdkafka reads certificates, keys and passwords only when a client is made, so new material on disk
// (a Kubernetes secret update, a Strimzi or cert-manager renewal, a rotated password) needs new clients.
// While the poll loop runs, watchSecurity re-reads the files every KAFKA_SECURITY_RELOAD_INTERVAL; when
// their content changed and passes every check of tls.Load, it ends the poll loop, and rotate:
//
//  1. makes the new consumer and producer first and proves them against the broker (a metadata request
//     for the input topic from each), so that material librdkafka refuses, or the broker refuses — a
//     certificate from a CA the broker does not trust, a wrong password — leaves the sidecar running
//     on the old clients, the refusal logged and counted, until the material changes again;
//  2. stops fetching and waits until every record in flight is answered and delivered (records fetched
//     meanwhile are handed back, as on shutdown), committing as they finish;
//  3. flushes, commits, closes the old consumer (leaving the group) and producer;
//  4. swaps the new clients in and resumes polling: the new consumer rejoins the group and starts at the
//     committed offsets, which cover exactly the records answered.
//
// No record is lost or answered twice: nothing is in flight when the clients change. While it drains,
// /ready reports shutting_down. If SIGTERM comes during the drain, the rotation is dropped and the
// ordinary shutdown goes on with the old clients.

// clientRun is the goroutines that live as long as one consumer and producer: the log forwarders, the
// delivery reports, and the broker watch.
type clientRun struct {
	deliveries sync.WaitGroup
	helpers    sync.WaitGroup
	stopWatch  context.CancelFunc
}

// startClients starts the goroutines that serve the pipeline's current consumer and producer.
func (e *Executor) startClients() *clientRun {
	p := e.p
	cr := &clientRun{}
	consumerLogs, producerLogs := p.consumer.Logs(), p.producer.Logs()
	ctx, cancel := context.WithCancel(context.Background())
	cr.stopWatch = cancel
	cr.helpers.Add(3)
	go func() { defer cr.helpers.Done(); forwardLogs(e.log, "consumer", consumerLogs) }()
	go func() { defer cr.helpers.Done(); forwardLogs(e.log, "producer", producerLogs) }()
	go func() { defer cr.helpers.Done(); p.watchBroker(ctx) }()
	cr.deliveries.Add(1)
	go func() { defer cr.deliveries.Done(); p.deliveries() }()
	return cr
}

// wait waits, once both clients are closed, for the delivery reports to end, then stops the broker
// watch and waits for it and the log forwarders.
func (cr *clientRun) wait() {
	cr.deliveries.Wait()
	cr.stopWatch()
	cr.helpers.Wait()
}

// pollRotating runs the poll loop until ctx ends or a fatal error, rotating the clients whenever the
// security material changes on disk.
func (e *Executor) pollRotating(ctx context.Context, cr **clientRun) error {
	for {
		pctx, stopPoll := context.WithCancel(ctx)
		var next *tls.Material
		var watching sync.WaitGroup
		if e.security != nil && e.security.Watching() && e.cfg.SecurityReload > 0 {
			watching.Add(1)
			go func() {
				defer watching.Done()
				if m := e.watchSecurity(pctx); m != nil {
					next = m
					stopPoll()
				}
			}()
		}
		err := e.p.poll(pctx)
		stopPoll()
		watching.Wait()
		if err != nil || ctx.Err() != nil || next == nil {
			return err
		}
		e.rotate(ctx, cr, next)
	}
}

// watchSecurity re-reads the security files every SecurityReload until ctx ends, and returns the first
// new material that passes the checks. While the client certificate in use is within
// tls.ExpiryWarning of its end it warns again once a day (the start-up log warned first).
func (e *Executor) watchSecurity(ctx context.Context) *tls.Material {
	t := time.NewTicker(e.cfg.SecurityReload)
	defer t.Stop()
	warned := time.Now() // the start-up log (or the rotation's) has just warned
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now()
		if c := e.security.Current().ClientCertificate(); c != nil && c.NotAfter.Sub(now) < tls.ExpiryWarning && now.Sub(warned) > 24*time.Hour {
			warned = now
			e.log.Warn("the client certificate is near its end and no renewal has appeared on disk",
				"subject", c.Subject.String(), "expires", c.NotAfter.UTC().Format(time.RFC3339))
		}
		m, err := e.security.Poll(now)
		if err != nil {
			e.log.Warn("security material changed on disk but cannot be used; keeping the current", "error", err)
			continue
		}
		if m != nil {
			return m
		}
	}
}

// rotate replaces the consumer and producer with ones made from m; see the comment at the top.
func (e *Executor) rotate(ctx context.Context, cr **clientRun, m *tls.Material) {
	p, log := e.p, e.log
	log.Info("security material changed on disk; reconnecting with it", m.Summary()...)
	for _, w := range m.Warnings {
		log.Warn("security", "warning", w)
	}
	consumer, producer, err := newClients(e.cfg, m)
	if err != nil {
		e.security.Refuse(m)
		p.m.rotationRefused.Inc()
		log.Error("librdkafka refuses the new security material; keeping the current", "error", err)
		return
	}
	if err := e.probe(consumer, producer); err != nil {
		producer.Close()
		_ = consumer.Close()
		e.security.Refuse(m)
		p.m.rotationRefused.Inc()
		log.Error("the broker does not accept the new security material; keeping the current until the files change again", "error", err)
		return
	}

	started := time.Now()
	e.drain(ctx, time.Time{})
	if ctx.Err() != nil {
		// Shutting down: Run drains and closes the old clients.
		producer.Close()
		_ = consumer.Close()
		return
	}
	e.closeClients(*cr, time.Now().Add(5*time.Second))

	p.prodMu.Lock()
	p.producer, p.prodClosed = producer, false
	p.prodMu.Unlock()
	p.consumer = consumer
	p.paused = false
	p.m.paused.Set(0)
	clear(p.assigned)
	clear(p.pauseFlag) // a new librdkafka instance: nothing is paused
	clear(p.toCommit)
	e.security.Accept(m)
	*cr = e.startClients()
	p.draining.Store(false)
	log.Info("reconnected with the new security material", "took", time.Since(started).Round(time.Millisecond).String())
}

// rotationProbe bounds the proof of new clients: a TLS handshake and SASL exchange with a managed
// cluster across a region takes a second or two; a refused certificate shows in well under this.
const rotationProbe = 10 * time.Second

// probe asks the broker for the input topic's metadata with each new client, as the clients will
// connect: it fails when the broker refuses their TLS or SASL material. The clients' own log lines say
// why (librdkafka's "SSL handshake failed …", "Authentication failed …"); the last error among them is
// returned with the failure.
func (e *Executor) probe(consumer *ckafka.Consumer, producer *ckafka.Producer) error {
	var (
		mu      sync.Mutex
		lastErr string
		wg      sync.WaitGroup
	)
	// The clients' logs are forwarded while the probe lasts; startClients forwards them afterwards, when
	// the clients are swapped in.
	done := make(chan struct{})
	defer func() { close(done); wg.Wait() }()
	for name, ch := range map[string]chan ckafka.LogEvent{"consumer": consumer.Logs(), "producer": producer.Logs()} {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				case ev, ok := <-ch:
					if !ok {
						return
					}
					e.log.Log(context.Background(), kafka.LogLevel(ev.Level), ev.Message, "client", "new "+name, "facility", ev.Tag)
					if ev.Level <= 3 { // syslog error or worse
						mu.Lock()
						lastErr = ev.Message
						mu.Unlock()
					}
				}
			}
		})
	}
	topic := e.cfg.InputTopic
	ms := int(rotationProbe.Milliseconds())
	var cerr, perr error
	var asks sync.WaitGroup
	asks.Go(func() { _, cerr = consumer.GetMetadata(&topic, false, ms) })
	asks.Go(func() { _, perr = producer.GetMetadata(&topic, false, ms) })
	asks.Wait()
	var failed []string
	if cerr != nil {
		failed = append(failed, "consumer: "+cerr.Error())
	}
	if perr != nil {
		failed = append(failed, "producer: "+perr.Error())
	}
	if len(failed) == 0 {
		return nil
	}
	mu.Lock()
	defer mu.Unlock()
	if lastErr != "" {
		failed = append(failed, "librdkafka: "+lastErr)
	}
	return errors.New(strings.Join(failed, "; "))
}

// newClients makes the consumer and producer from the configuration and the security material.
func newClients(cfg Config, m *tls.Material) (*ckafka.Consumer, *ckafka.Producer, error) {
	settings := kafka.Settings{
		Brokers:         cfg.Brokers,
		ClientID:        cfg.ClientID,
		GroupID:         cfg.GroupID,
		AutoOffsetReset: cfg.AutoOffsetReset,
	}
	if m != nil {
		settings.Security = m.Properties()
	}
	settings.Apply(cfg.Overrides)
	ccfg, err := kafka.ConsumerConfig(settings)
	if err != nil {
		return nil, nil, err
	}
	pcfg, err := kafka.ProducerConfig(settings)
	if err != nil {
		return nil, nil, err
	}
	consumer, err := ckafka.NewConsumer(ccfg)
	if err != nil {
		return nil, nil, clientError("kafka consumer", err, cfg, m)
	}
	producer, err := ckafka.NewProducer(pcfg)
	if err != nil {
		_ = consumer.Close()
		return nil, nil, clientError("kafka producer", err, cfg, m)
	}
	return consumer, producer, nil
}

// clientError names the variable behind a property librdkafka refused when making a client: a TLS
// file it could not use, or an override. librdkafka's messages name properties, never their values when
// the property is a secret.
func clientError(client string, err error, cfg Config, m *tls.Material) error {
	msg := err.Error()
	var ke ckafka.Error
	if errors.As(err, &ke) {
		msg = ke.Error()
	}
	if m != nil {
		s := m.Settings
		for _, c := range []struct {
			prop string
			src  tls.Source
		}{{"ssl.key", s.ClientKey}, {"ssl.certificate", s.ClientCert}, {"ssl.ca", s.CA}} {
			if strings.Contains(msg, c.prop) && c.src.IsSet() {
				return &ConfigError{Name: c.src.Var, Msg: fmt.Sprintf("%s: librdkafka cannot use it: %s", client, msg)}
			}
		}
	}
	for i := len(cfg.Overrides) - 1; i >= 0; i-- {
		if o := cfg.Overrides[i]; strings.Contains(msg, `"`+o.Key+`"`) {
			return &ConfigError{Name: o.From, Msg: fmt.Sprintf("%s: librdkafka refuses %s: %s", client, o.Key, msg)}
		}
	}
	return fmt.Errorf("%s: %w", client, err)
}

// logSecurity writes the security settings and the material's warnings to the start-up log.
func logSecurity(log *slog.Logger, cfg Config) {
	if cfg.Security == nil {
		return
	}
	attrs := cfg.Security.Summary()
	if cfg.SecurityReload > 0 && len(cfg.Security.Settings.Files()) > 0 {
		attrs = append(attrs, "reload_every", cfg.SecurityReload.String())
	}
	log.Info("kafka security", attrs...)
	if s := cfg.Security.Settings; s.Protocol.TLS() && !s.VerifyHostname {
		log.Warn("broker hostname verification is off (KAFKA_SSL_VERIFY_HOSTNAME=false): any certificate the CA signed is accepted for any broker")
	}
	if !cfg.Security.Settings.Protocol.TLS() && cfg.Security.Settings.Protocol.SASL() {
		log.Warn("SASL over an unencrypted connection (SASL_PLAINTEXT): credentials and records cross the network in clear")
	}
	for _, w := range cfg.Security.Warnings {
		log.Warn("security", "warning", w)
	}
	if len(cfg.Overrides) > 0 {
		keys := make([]string, len(cfg.Overrides))
		for i, o := range cfg.Overrides {
			keys[i] = o.Key + " (" + o.From + ")"
		}
		log.Info("librdkafka overrides", "properties", strings.Join(keys, ", "))
	}
}
