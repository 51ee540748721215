package registry

import (
	"context"
	cryptotls "crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	sr "github.com/confluentinc/confluent-kafka-go/v2/schemaregistry"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/rest"

	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/tls"
)

// Registry is how the sidecar reaches a Schema Registry: where, with which credentials, and how
// patiently.
type Registry struct {
	URL      string     // one or more base URLs, comma-separated; each is tried in turn
	UserInfo tls.Secret // "user:password" for HTTP basic authentication; unset for none
	TLS      *cryptotls.Config
	Timeout  time.Duration // one request, connecting included
	// CacheCapacity bounds each cache of schemas: the client's and this package's.
	CacheCapacity int
	// Attempts is how many times a request that failed in a way that may pass (no answer, a 5xx, 408,
	// 429) is made in all; Backoff the wait between attempts.
	Attempts int
	Backoff  protocols.Backoff
}

// client is confluent-kafka-go's registry client, one request at a time, retried here. Its REST layer
// writes the authentication header into one header map shared by every request it makes, a data race
// when two run at once (confluent-kafka-go issue 1548, fixed after v2.11.1); and it sleeps between its
// own retries without regard to a context, and sends a POST's body only once. So its own retries are
// off, requests are serialised, and the retries are made here, each a whole new request, with the
// caller's context. Requests are rare: what they fetch is cached.
type client struct {
	c        sr.Client     // replaced by rotate, under the turn
	turn     chan struct{} // one request at a time
	base     Registry      // what the client was made from; rotate changes only the credentials and TLS
	attempts int
	backoff  protocols.Backoff
}

func newClient(r Registry) (*client, error) {
	c, err := srClient(r)
	if err != nil {
		return nil, err
	}
	return &client{c: c, turn: make(chan struct{}, 1), base: r, attempts: max(r.Attempts, 1), backoff: r.Backoff}, nil
}

// srClient makes confluent-kafka-go's client for r.
func srClient(r Registry) (sr.Client, error) {
	conf := sr.NewConfig(r.URL)
	if r.UserInfo.IsSet() {
		conf.BasicAuthCredentialsSource = "USER_INFO"
		conf.BasicAuthUserInfo = r.UserInfo.Reveal()
	}
	conf.CacheCapacity = r.CacheCapacity
	conf.MaxRetries = 0
	tlsConf := r.TLS
	if tlsConf == nil {
		tlsConf = &cryptotls.Config{MinVersion: cryptotls.VersionTLS12}
	}
	// The client's own transport reads TLS material only from files; this one takes it as loaded.
	conf.HTTPClient = &http.Client{
		Timeout: r.Timeout,
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment, // as Confluent's client does
			DialContext:         (&net.Dialer{Timeout: r.Timeout}).DialContext,
			TLSClientConfig:     tlsConf,
			TLSHandshakeTimeout: r.Timeout,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	c, err := sr.NewClient(conf)
	if err != nil {
		return nil, fmt.Errorf("schema registry client: %w", err)
	}
	return c, nil
}

// rotate makes a client with new credentials and TLS material (nil for none), proves it against the
// registry with a request for its subjects — which a registry answers 401 or 403 when it refuses them —
// and gives it the requests to come. When anything fails the client in use stays, and the error says why.
func (c *client) rotate(ctx context.Context, userInfo tls.Secret, tlsConf *cryptotls.Config) error {
	r := c.base
	r.UserInfo, r.TLS = userInfo, tlsConf
	next, err := srClient(r)
	if err != nil {
		return err
	}
	proof := &client{c: next, turn: make(chan struct{}, 1), attempts: 1}
	if err := proof.do(ctx, "listing the subjects with the new credentials", func(sc sr.Client) error {
		_, err := sc.GetAllSubjects()
		return err
	}); err != nil {
		_ = next.Close()
		return err
	}
	// With the turn no request is using the client while it changes.
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		_ = next.Close()
		return ctx.Err()
	}
	old := c.c
	c.c = next
	<-c.turn
	return old.Close()
}

// do makes one registry request, what says what for errors ("fetching schema 7"); a failure is a
// *protocols.CallError with a schema_unknown or registry_unavailable reason. The client's requests take
// no context, so a request runs on a goroutine of its own and do returns when ctx ends without waiting
// for it (req must then write nothing its caller reads); the request keeps its turn until it is over.
func (c *client) do(ctx context.Context, what string, req func(sr.Client) error) error {
	for attempt := 1; ; attempt++ {
		select {
		case c.turn <- struct{}{}:
		case <-ctx.Done():
			return &protocols.CallError{Reason: protocols.ReasonRegistryUnavailable, Msg: what + ": not asked", Err: ctx.Err()}
		}
		done := make(chan error, 1)
		go func() {
			defer func() { <-c.turn }()
			done <- req(c.c)
		}()
		var err error
		select {
		case err = <-done:
		case <-ctx.Done():
			return &protocols.CallError{Reason: protocols.ReasonRegistryUnavailable, Msg: what + ": given up waiting", Err: ctx.Err()}
		}
		if err == nil {
			return nil
		}
		ce := classify(what, err)
		if !ce.Transient || attempt >= c.attempts {
			if ce.Transient {
				ce.Msg += fmt.Sprintf(" (%d attempts)", attempt)
			}
			return ce
		}
		t := time.NewTimer(c.backoff.Delay(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return &protocols.CallError{Reason: protocols.ReasonRegistryUnavailable, Msg: what + ": not asked again", Err: ctx.Err()}
		}
	}
}

// Refused says whether err holds the registry's own refusal — an answer with a 4xx status other than
// 408 and 429: credentials it does not take, a request it will not serve — which asking again with the
// same request does not change.
func Refused(err error) bool {
	var re *rest.Error
	if !errors.As(err, &re) {
		return false
	}
	status := httpStatus(re.Code)
	return status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
}

// httpStatus is the HTTP status of a registry error code: its first three digits (40403 is a 404).
func httpStatus(code int) int {
	for code >= 1000 {
		code /= 10
	}
	return code
}

// classify says what a failed registry request means for the record. The registry answers errors as
// {"error_code": 40403, "message": …}: a code's first three digits are the HTTP status.
func classify(what string, err error) *protocols.CallError {
	var re *rest.Error
	if !errors.As(err, &re) {
		// No answer (refused, reset, timed out), or one that is not the registry's JSON: may pass.
		return &protocols.CallError{Reason: protocols.ReasonRegistryUnavailable, Transient: true,
			Msg: what + ": no usable answer from the schema registry", Err: err}
	}
	status := httpStatus(re.Code)
	switch {
	case status == http.StatusNotFound:
		return &protocols.CallError{Reason: protocols.ReasonSchemaUnknown, Msg: what + ": not in the schema registry", Err: re}
	case status == http.StatusConflict || status == http.StatusUnprocessableEntity:
		return &protocols.CallError{Reason: protocols.ReasonSchemaUnknown, Msg: what + ": the schema registry refused the schema", Err: re}
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		return &protocols.CallError{Reason: protocols.ReasonRegistryUnavailable, Transient: true,
			Msg: what + ": the schema registry failed", Err: re}
	}
	// 401, 403: the credentials; another 4xx: a request it will not take. Asking again changes nothing.
	return &protocols.CallError{Reason: protocols.ReasonRegistryUnavailable, Msg: what + ": the schema registry refused the request", Err: re}
}
