package rest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/rest"
	"github.com/seldon-kafka/sidecar/protocols/seldon"
)

// countingServer is a model server that counts the connections opened to it.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func call(t *testing.T, c *rest.Client, ctx context.Context, body string) (*protocols.Response, error) {
	t.Helper()
	return c.Call(ctx, protocols.Predict, &protocols.Request{Body: []byte(body)})
}

func TestCallsReuseTheirConnection(t *testing.T) {
	srv, conns := countingServer(t, echo)
	c := rest.New(seldon.REST, rest.Options{BaseURL: srv.URL, Model: "m", Timeout: 5 * time.Second})
	defer c.Close()
	for i := range 5 {
		body := fmt.Sprintf(`{"i":%d}`, i)
		resp, err := call(t, c, context.Background(), body)
		if err != nil || string(resp.Body) != body {
			t.Fatalf("call %d: %v, %q; want the body echoed", i, err, resp)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("5 calls one after the other opened %d connections, want 1", n)
	}
}

func TestAConnectionTheServerClosedIsReplacedWithoutFailingTheCall(t *testing.T) {
	srv, conns := countingServer(t, echo)
	c := rest.New(seldon.REST, rest.Options{BaseURL: srv.URL, Model: "m", Timeout: 5 * time.Second})
	defer c.Close()
	if _, err := call(t, c, context.Background(), `{"first":1}`); err != nil {
		t.Fatal(err)
	}
	// The server drops its idle connections, as model servers do after a few idle seconds.
	srv.CloseClientConnections()
	resp, err := call(t, c, context.Background(), `{"second":2}`)
	if err != nil || string(resp.Body) != `{"second":2}` {
		t.Fatalf("the call after the server closed the idle connection: %v, %q; want it answered", err, resp)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections opened, want 2 (the first, closed by the server, and its replacement)", n)
	}
}

func TestAnAnswerSayingConnectionCloseIsNotReused(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		echo(w, r)
	})
	c := rest.New(seldon.REST, rest.Options{BaseURL: srv.URL, Model: "m", Timeout: 5 * time.Second})
	defer c.Close()
	for i := range 3 {
		if _, err := call(t, c, context.Background(), `{}`); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("3 calls answered with Connection: close opened %d connections, want 3", n)
	}
}

func TestAnEndedContextAbandonsTheCall(t *testing.T) {
	started := make(chan struct{})
	hungUp := make(chan struct{})
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		close(started)
		<-r.Context().Done() // the client hung up
		close(hungUp)
	})
	c := rest.New(seldon.REST, rest.Options{BaseURL: srv.URL, Model: "m", Timeout: time.Minute})
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := call(t, c, ctx, `{}`)
	ce := callError(t, err)
	if !ce.Transient || !errors.Is(err, context.Canceled) {
		t.Errorf("call abandoned by its context: %+v (%v), want transient, wrapping context.Canceled", ce, err)
	}
	select {
	case <-hungUp:
	case <-time.After(30 * time.Second):
		t.Error("the server never saw the connection of the abandoned call close")
	}
}

func TestConcurrentCallsEachGetTheirOwnAnswer(t *testing.T) {
	// Answers large enough to be sent in chunks, flushed as they are written.
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		for range 3 {
			_, _ = w.Write(b)
			w.(http.Flusher).Flush()
		}
	})
	c := rest.New(seldon.REST, rest.Options{BaseURL: srv.URL, Model: "m", Timeout: 30 * time.Second, MaxConns: 4})
	defer c.Close()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				body := fmt.Sprintf(`{"g":%d,"i":%d,"pad":%q}`, g, i, strings.Repeat("x", 3000))
				resp, err := call(t, c, context.Background(), body)
				if err != nil {
					t.Errorf("goroutine %d call %d: %v", g, i, err)
					return
				}
				if string(resp.Body) != strings.Repeat(body, 3) {
					t.Errorf("goroutine %d call %d got another call's answer or a cut one (%d bytes)", g, i, len(resp.Body))
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestAnHTTPSOrMalformedModelURLFailsEveryCallClearly(t *testing.T) {
	for _, u := range []string{"https://127.0.0.1:9000", "127.0.0.1:9000", "http://"} {
		c := rest.New(seldon.REST, rest.Options{BaseURL: u, Model: "m"})
		_, err := call(t, c, context.Background(), `{}`)
		if ce := callError(t, err); ce.Transient || !strings.Contains(err.Error(), "model URL") {
			t.Errorf("model URL %q: %v, want a non-transient error naming the model URL", u, err)
		}
		if err := c.Ready(context.Background()); err == nil {
			t.Errorf("model URL %q: ready", u)
		}
	}
}

func TestACallWhoseAnswerBreaksOffIsNotMadeAgain(t *testing.T) {
	var calls atomic.Int64
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if calls.Add(1) == 1 {
			echo(w, r)
			return
		}
		// The model has the request and dies half-way through the answer's headers.
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Ty")
		_ = buf.Flush()
		_ = conn.Close()
	})
	c := rest.New(seldon.REST, rest.Options{BaseURL: srv.URL, Model: "m", Timeout: 5 * time.Second})
	defer c.Close()
	if _, err := call(t, c, context.Background(), `{}`); err != nil {
		t.Fatal(err)
	}
	_, err := call(t, c, context.Background(), `{}`) // on the kept connection
	if ce := callError(t, err); !ce.Transient {
		t.Errorf("an answer cut off: %+v, want a transient error (the walk retries it with backoff)", ce)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("the model got %d requests, want 2: a request it received is not sent again by the client", n)
	}
}

func TestAnswersKeptByTheCallerAreNotOverwrittenByLaterCalls(t *testing.T) {
	// Small answers are copied out of fasthttp's pooled buffer, large ones take the buffer itself: either
	// way an answer held (as the pipeline holds one until its delivery report) must not change when the
	// next call reads into a buffer from the pool.
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	c := rest.New(seldon.REST, rest.Options{BaseURL: srv.URL, Model: "m", Timeout: 30 * time.Second, MaxConns: 1})
	defer c.Close()
	var sent, kept []string
	for i, size := range []int{1 << 10, 256 << 10, 2 << 10, 512 << 10, 300 << 10, 100} {
		body := fmt.Sprintf(`{"i":%d,"pad":%q}`, i, strings.Repeat(string(rune('a'+i)), size))
		resp, err := call(t, c, context.Background(), body)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		sent = append(sent, body)
		kept = append(kept, unsafeString(resp.Body))
	}
	for i := range sent {
		if kept[i] != sent[i] {
			t.Errorf("answer %d (%d bytes) changed after later calls: %.40q…", i, len(sent[i]), kept[i])
		}
	}
}

// unsafeString looks at b without copying it, so that a later write to b shows.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
