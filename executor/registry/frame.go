// Package registry reads and writes the Confluent Schema Registry wire format on the sidecar's records:
// a request framed as magic byte 0, a 4-byte big-endian schema id and — for Protobuf — the message
// indexes, then the payload, is checked against the schema the registry holds for the id and handed on
// without its frame; its answer is framed with the registered schema of the answer's type. The registry
// is asked through confluent-kafka-go's schemaregistry client; the framing is this package's own (see
// Header), byte for byte Confluent's.
package registry

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// MagicByte starts every value framed by Confluent's serializers (wire format 0). Over gRPC it also
// tells a framed value from a plain one: a protobuf message never starts with byte 0 (field 0 does not
// exist), and neither does JSON.
const MagicByte byte = 0

// headerLen is the magic byte and the schema id.
const headerLen = 5

// maxIndexes bounds the message-index path a frame may give. A path is as long as the message is
// nested deep; the bound keeps a corrupt count from making the reader allocate for it.
const maxIndexes = 64

// Header is the frame of a value: the schema id and, for Protobuf, the path of indexes from the
// schema's file to the message (the first message of the file is [0]; the second message nested in the
// fourth is [3, 1]).
type Header struct {
	ID      int
	Indexes []int // Protobuf only; nil for JSON Schema
}

// IsFramed says whether a value starts as a framed value does.
func IsFramed(value []byte) bool { return len(value) > 0 && value[0] == MagicByte }

// ParseID reads the magic byte and the schema id, and returns the rest of the value.
func ParseID(value []byte) (id int, rest []byte, err error) {
	switch {
	case len(value) == 0:
		return 0, nil, errors.New("empty value")
	case value[0] != MagicByte:
		return 0, nil, fmt.Errorf("first byte %d is not the magic byte 0", value[0])
	case len(value) < headerLen:
		return 0, nil, fmt.Errorf("%d bytes: too short for the magic byte and a 4-byte schema id", len(value))
	}
	return int(binary.BigEndian.Uint32(value[1:headerLen])), value[headerLen:], nil
}

// ParseIndexes reads a Protobuf frame's message indexes: their count, then each index, all zig-zag
// varints, where a lone 0 stands for [0], the first message of the file. It returns the rest of b.
func ParseIndexes(b []byte) (indexes []int, rest []byte, err error) {
	count, n := binary.Varint(b)
	switch {
	case len(b) == 0:
		return nil, nil, errors.New("no message indexes after the schema id")
	case n <= 0: // 0: cut short; below 0: longer than 64 bits
		return nil, nil, errors.New("the message-index count is not a varint")
	case count == 0:
		return []int{0}, b[n:], nil
	case count < 0 || count > maxIndexes:
		return nil, nil, fmt.Errorf("message-index count %d is not between 1 and %d", count, maxIndexes)
	}
	indexes = make([]int, count)
	for i := range indexes {
		v, m := binary.Varint(b[n:])
		if m <= 0 {
			return nil, nil, fmt.Errorf("message index %d of %d is missing or not a varint", i+1, count)
		}
		if v < 0 || v > math.MaxInt32 {
			return nil, nil, fmt.Errorf("message index %d of %d is %d", i+1, count, v)
		}
		indexes[i] = int(v)
		n += m
	}
	return indexes, b[n:], nil
}

// Append appends the frame to dst: the magic byte, the id and, when there are indexes, the indexes
// ([0] as a lone 0, as Confluent's serializers write it).
func (h Header) Append(dst []byte) []byte {
	dst = append(dst, MagicByte)
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.ID))
	switch {
	case len(h.Indexes) == 0:
	case len(h.Indexes) == 1 && h.Indexes[0] == 0:
		dst = append(dst, 0)
	default:
		dst = binary.AppendVarint(dst, int64(len(h.Indexes)))
		for _, i := range h.Indexes {
			dst = binary.AppendVarint(dst, int64(i))
		}
	}
	return dst
}

// Frame returns payload framed with h, in one new slice.
func (h Header) Frame(payload []byte) []byte {
	out := make([]byte, 0, headerLen+1+binary.MaxVarintLen64*len(h.Indexes)+len(payload))
	return append(h.Append(out), payload...)
}
