package rest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Transport is the connection pool for model containers: keep-alive HTTP/1.1 connections per host:port,
// shared by the clients of a graph's nodes. A call is made entirely on the caller's goroutine — write the
// request, read the answer — with fasthttp's request and response codecs, which are pooled and reused.
// net/http hands every call to two goroutines of the connection's own (a writer and a reader) and back,
// and allocates its request, header maps and response each time: in a profile of the sidecar at 2 000
// records/s that machinery cost more than the model call's own system calls. fasthttp's HostClient has no
// way to abandon a call when its context ends (the graph stops siblings of a failed node, and shutdown
// stops calls past the grace period), so the pool is this one: an ended context sets a past deadline on
// the call's connection, which ends its read or write at once.
type Transport struct {
	maxIdle     int
	idleTimeout time.Duration
	dialer      net.Dialer

	mu   sync.Mutex
	idle map[string][]*conn // per host:port, most recently used last
}

// Connection settings. A model's answer headers must fit in the read buffer (fasthttp parses them in
// place); bodies of any size pass through it.
const (
	dialTimeout     = 5 * time.Second
	idleConnTimeout = 90 * time.Second
	readBufferSize  = 8 << 10
	writeBufferSize = 4 << 10
)

// NewTransport is the connection pool for model containers, keeping up to maxIdle idle connections per
// container so that no call waits for one to be opened.
func NewTransport(maxIdle int) *Transport {
	return &Transport{
		maxIdle:     max(maxIdle, 1),
		idleTimeout: idleConnTimeout,
		dialer:      net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second},
		idle:        map[string][]*conn{},
	}
}

// conn is one connection to a model container, with its buffers.
type conn struct {
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
	reused bool // it served a call before this one
}

// CloseIdleConnections closes the connections not in use; those in use are closed when their call ends.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*conn{}
	t.mu.Unlock()
	for _, cs := range idle {
		for _, c := range cs {
			_ = c.nc.Close()
		}
	}
}

// get returns an idle connection to addr, or dials one.
func (t *Transport) get(ctx context.Context, addr string, deadline time.Time) (*conn, error) {
	now := time.Now()
	t.mu.Lock()
	for cs := t.idle[addr]; len(cs) > 0; cs = t.idle[addr] {
		c := cs[len(cs)-1]
		cs[len(cs)-1] = nil
		t.idle[addr] = cs[:len(cs)-1]
		if now.Sub(c.idleAt) > t.idleTimeout {
			_ = c.nc.Close()
			continue
		}
		t.mu.Unlock()
		c.reused = true
		return c, nil
	}
	t.mu.Unlock()
	d := t.dialer
	d.Deadline = deadline
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &conn{nc: nc, br: bufio.NewReaderSize(nc, readBufferSize), bw: bufio.NewWriterSize(nc, writeBufferSize)}, nil
}

// put keeps a connection whose call ended cleanly for the next call, or closes it when enough are idle.
func (t *Transport) put(addr string, c *conn) {
	c.idleAt = time.Now()
	t.mu.Lock()
	if cs := t.idle[addr]; len(cs) < t.maxIdle {
		t.idle[addr] = append(cs, c)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	_ = c.nc.Close()
}

// errCanceled marks a call abandoned because its context ended; the caller reports ctx's own error.
var errCanceled = errors.New("call abandoned: its context ended")

// aLongTimeAgo is a deadline in the past: a read or write blocked on a connection given it returns at once.
var aLongTimeAgo = time.Unix(1, 0)

// roundTrip sends req to addr and reads the answer into resp, by deadline (zero: none) and while ctx
// lasts. A connection kept idle may have been closed by the server meanwhile (model servers keep idle
// connections for seconds, not minutes): when such a connection fails before any answer, the call is
// made once more on a new one.
func (t *Transport) roundTrip(ctx context.Context, addr string, deadline time.Time, req *fasthttp.Request,
	resp *fasthttp.Response, maxBody int) error {
	for {
		c, err := t.get(ctx, addr, deadline)
		if err != nil {
			return err
		}
		err = c.exchange(ctx, deadline, req, resp, maxBody)
		if err == nil {
			if resp.ConnectionClose() {
				_ = c.nc.Close()
			} else {
				t.put(addr, c)
			}
			return nil
		}
		_ = c.nc.Close()
		if !c.reused || !staleConn(err) || ctx.Err() != nil || (!deadline.IsZero() && time.Now().After(deadline)) {
			return err
		}
	}
}

// exchange writes the request and reads the whole answer on c.
func (c *conn) exchange(ctx context.Context, deadline time.Time, req *fasthttp.Request, resp *fasthttp.Response, maxBody int) error {
	if err := c.nc.SetDeadline(deadline); err != nil {
		return err
	}
	var stop func() bool
	if ctx.Done() != nil {
		// No goroutine waits for ctx: the callback runs only if ctx ends during the exchange.
		stop = context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(aLongTimeAgo) })
	}
	err := req.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		err = writeError{err}
	} else {
		resp.Header.SetNoDefaultContentType(true) // an answer without Content-Type says so
		err = resp.ReadLimitBody(c.br, maxBody)
	}
	if stop != nil && !stop() {
		// ctx ended: the connection's deadline is in the past, so it cannot serve another call, and
		// whatever was read is not the caller's any more.
		return errCanceled
	}
	return err
}

// writeError is a failure to send the request: nothing of an answer was read.
type writeError struct{ error }

func (e writeError) Unwrap() error { return e.error }

// staleConn says whether a failure on a reused connection is that of a connection the server had
// closed: the request could not be written, or not a byte of an answer came back (fasthttp reports any
// failure to read the first byte as a bare io.EOF). A failure after part of an answer is not: the
// model has the request, and the call is not made again here.
func staleConn(err error) bool {
	var we writeError
	return err == io.EOF || errors.As(err, &we)
}
