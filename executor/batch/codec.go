package batch

import (
	"errors"
	"fmt"

	"github.com/seldon-kafka/sidecar/protocols"
)

// codec merges the requests of one protocol and transport along their batch dimension and cuts the
// answer back.
type codec interface {
	// read looks at a request: the key its batch-mates must share and the rows it brings; ok is false
	// when it cannot be merged with others and is to be called alone.
	read(req *protocols.Request) (p part, ok bool)
	// merge makes one request of the parts, which share a key; the caller adds the headers.
	merge(parts []part) *protocols.Request
	// split cuts the batch's answer into one answer per part, in order. An answer that does not hold
	// the rows sent along its batch dimension is an error: the records are then called alone.
	split(resp *protocols.Response, parts []part) ([]*protocols.Response, error)
}

// part is one request as its codec read it.
type part struct {
	key  string
	rows int
	req  *protocols.Request
	v    any // what the codec keeps of its reading, for merge and split
}

func rowsOf(parts []part) []int {
	rows := make([]int, len(parts))
	for i, p := range parts {
		rows[i] = p.rows
	}
	return rows
}

func totalRows(parts []part) int {
	n := 0
	for _, p := range parts {
		n += p.rows
	}
	return n
}

// errMismatch is an answer whose batch dimension does not match the rows sent.
var errMismatch = errors.New("the answer does not hold the batch's rows along its first dimension")

func mismatch(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMismatch, fmt.Sprintf(format, args...))
}

// codecs are the protocols that batch, by transport.
var codecs = map[string]map[protocols.Name]codec{
	"rest": {protocols.Seldon: seldonREST{}, protocols.Tensorflow: tensorflowREST{}, protocols.V2: v2REST{}},
	"grpc": {protocols.Seldon: seldonGRPC{}, protocols.Tensorflow: tensorflowGRPC{}, protocols.V2: v2GRPC{}},
}
