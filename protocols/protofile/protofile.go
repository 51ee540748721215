// Package protofile reads and writes files of length-prefixed protobuf messages: each message is
// preceded by its length as a 4-byte big-endian unsigned integer, as the legacy Seldon Kafka examples
// ship their TensorFlow Serving PredictRequests. The format carries no type: the reader is told what
// the messages are (the proto-name the records are produced with).
package protofile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// DefaultMaxMessage bounds one message unless the reader is told otherwise: a corrupt or foreign file
// reads as a huge length, and that must fail rather than allocate it.
const DefaultMaxMessage = 64 << 20

// Reader reads messages one at a time.
type Reader struct {
	r   *bufio.Reader
	max int
	n   int // messages read
	off int64
}

// NewReader reads from r; messages longer than maxMessage bytes (DefaultMaxMessage when <= 0) are an
// error.
func NewReader(r io.Reader, maxMessage int) *Reader {
	if maxMessage <= 0 {
		maxMessage = DefaultMaxMessage
	}
	return &Reader{r: bufio.NewReader(r), max: maxMessage}
}

// Next returns the next message, or io.EOF after the last one. A file that ends inside a length or a
// message is an error naming the message and the offset, never a short message.
func (r *Reader) Next() ([]byte, error) {
	var prefix [4]byte
	n, err := io.ReadFull(r.r, prefix[:])
	switch {
	case err == io.EOF:
		return nil, io.EOF
	case err != nil:
		return nil, fmt.Errorf("message %d at byte %d: length prefix cut short after %d bytes: %w", r.n, r.off, n, io.ErrUnexpectedEOF)
	}
	size := binary.BigEndian.Uint32(prefix[:])
	if uint64(size) > uint64(r.max) {
		return nil, fmt.Errorf("message %d at byte %d: length %d is over the %d-byte limit (not a length-prefixed file?)", r.n, r.off, size, r.max)
	}
	msg := make([]byte, size)
	if n, err := io.ReadFull(r.r, msg); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("message %d at byte %d: %d of %d bytes: %w", r.n, r.off, n, size, err)
	}
	r.n++
	r.off += 4 + int64(size)
	return msg, nil
}

// ReadAll reads every message of r.
func ReadAll(r io.Reader, maxMessage int) ([][]byte, error) {
	pr := NewReader(r, maxMessage)
	var out [][]byte
	for {
		msg, err := pr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, msg)
	}
}

// Write writes one message with its length prefix.
func Write(w io.Writer, msg []byte) error {
	if uint64(len(msg)) > math.MaxUint32 {
		return fmt.Errorf("message of %d bytes does not fit a 4-byte length", len(msg))
	}
	var prefix [4]byte
	binary.BigEndian.PutUint32(prefix[:], uint32(len(msg)))
	if _, err := w.Write(prefix[:]); err != nil {
		return fmt.Errorf("writing a length prefix: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("writing a message: %w", err)
	}
	return nil
}
