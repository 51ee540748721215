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
// While the data path runs, offerRotations re-reads the files every KAFKA_SECURITY_RELOAD_INTERVAL; when
// their content changed and passes every check of tls.Load, it
//
//  1. makes the new consumer and producer and proves them against the broker (a metadata request for the
//     input topic from each), so that material librdkafka refuses, or the broker refuses — a
//     certificate from a CA the broker does not trust, a wrong password — leaves the sidecar running on
//     the old clients, the refusal logged and counted, until the material changes again;
//  2. offers them to the pipeline, whose lifecycle swaps them in (lifecycle.go, pipeline.swap): it stops
//     fetching and waits until every record in flight is answered and delivered, committing as they
//     finish; closes the old clients (leaving the group); and resumes with the new, which rejoin the
//     group at the committed offsets — exactly the records answered.
//
// No record is lost or answered twice: nothing is in flight when the clients change. While it drains,
// /ready reports shutting_down. If SIGTERM comes during the drain, the new clients are dropped and the
// ordinary shutdown goes on with the old.

// offerRotations watches the security files until ctx ends and offers each new material's proven
// clients on swaps.
func (e *Executor) offerRotations(ctx context.Context, swaps chan<- clients) {
	for {
		m := e.watchSecurity(ctx)
		if m == nil {
			return // ctx ended
		}
		next, ok := e.prepare(m)
		if !ok {
			continue
		}
		select {
		case swaps <- next:
			e.security.Accept(m)
		case <-ctx.Done():
			next.close()
			return
		}
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

// prepare makes the clients for new material m and proves them; a refusal is logged and counted, and
// the material kept from use until the files change again.
func (e *Executor) prepare(m *tls.Material) (clients, bool) {
	log := e.log
	log.Info("security material changed on disk; reconnecting with it", m.Summary()...)
	for _, w := range m.Warnings {
		log.Warn("security", "warning", w)
	}
	consumer, producer, err := newClients(e.cfg, m)
	if err != nil {
		e.security.Refuse(m)
		e.p.m.rotationRefused.Inc()
		log.Error("librdkafka refuses the new security material; keeping the current", "error", err)
		return clients{}, false
	}
	next := clients{consumer: consumer, producer: producer}
	if err := e.probe(consumer, producer); err != nil {
		next.close()
		e.security.Refuse(m)
		e.p.m.rotationRefused.Inc()
		log.Error("the broker does not accept the new security material; keeping the current until the files change again", "error", err)
		return clients{}, false
	}
	return next, true
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
		TransactionalID: cfg.TransactionalID,
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
