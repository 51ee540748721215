package registry

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde"
)

// The frames are checked against Confluent's own code for them (confluent-kafka-go's serde.SchemaID),
// which the sidecar does not link: it panics on short input and allocates what a corrupt count asks.
func TestFramesAreConfluentsByteForByte(t *testing.T) {
	for _, tc := range []struct {
		name    string
		h       Header
		typ     string
		literal []byte // the frame, when the case pins it down by hand
	}{
		{"JSON Schema: no indexes", Header{ID: 7}, "JSON", []byte{0, 0, 0, 0, 7}},
		{"first message: a lone 0", Header{ID: 1, Indexes: []int{0}}, "PROTOBUF", []byte{0, 0, 0, 0, 1, 0}},
		{"third message", Header{ID: 258, Indexes: []int{2}}, "PROTOBUF", []byte{0, 0, 0, 1, 2, 2, 4}},
		{"nested message", Header{ID: 42, Indexes: []int{10, 0}}, "PROTOBUF", []byte{0, 0, 0, 0, 42, 4, 20, 0}},
		{"deep and wide", Header{ID: 1 << 30, Indexes: []int{300, 1, 2, 3, 64}}, "PROTOBUF", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.h.Frame([]byte("payload"))
			if tc.literal != nil && !bytes.Equal(got[:len(got)-len("payload")], tc.literal) {
				t.Errorf("frame % x, want % x", got[:len(got)-len("payload")], tc.literal)
			}
			want, err := (&serde.SchemaID{ID: tc.h.ID, MessageIndexes: tc.h.Indexes}).IDToBytes()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(got, want) || !bytes.Equal(got[len(want):], []byte("payload")) {
				t.Fatalf("frame % x, Confluent's % x", got, want)
			}

			theirs := serde.SchemaID{SchemaType: tc.typ}
			n, err := theirs.FromBytes(got)
			if err != nil {
				t.Fatalf("Confluent's reader refuses % x: %v", got, err)
			}
			id, rest, err := ParseID(got)
			if err != nil || id != tc.h.ID || id != theirs.ID {
				t.Fatalf("id %d (%v), Confluent's %d, want %d", id, err, theirs.ID, tc.h.ID)
			}
			if tc.typ == "PROTOBUF" {
				var idx []int
				if idx, rest, err = ParseIndexes(rest); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(idx, tc.h.Indexes) || !slices.Equal(idx, theirs.MessageIndexes) {
					t.Errorf("indexes %v, Confluent's %v, want %v", idx, theirs.MessageIndexes, tc.h.Indexes)
				}
			}
			if string(rest) != "payload" || string(got[n:]) != "payload" {
				t.Errorf("payload %q, Confluent's %q", rest, got[n:])
			}
		})
	}
}

func TestMalformedFramesAreRefusedSayingWhy(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value []byte
		proto bool // the indexes are read too
		want  string
	}{
		{"empty", nil, false, "empty value"},
		{"JSON, not framed", []byte(`{"a":1}`), false, "first byte 123 is not the magic byte 0"},
		{"magic byte 1 (a schema GUID)", []byte{1, 2, 3, 4, 5, 6}, false, "first byte 1 is not the magic byte 0"},
		{"magic byte only", []byte{0}, false, "1 bytes: too short"},
		{"id cut short", []byte{0, 0, 0, 7}, false, "4 bytes: too short"},
		{"no indexes", []byte{0, 0, 0, 0, 7}, true, "no message indexes"},
		{"negative count", []byte{0, 0, 0, 0, 7, 1}, true, "count -1 is not between 1 and 64"},
		{"count beyond any nesting", []byte{0, 0, 0, 0, 7, 0xfe, 0xff, 0xff, 0xff, 0x0f}, true, "count 2147483647 is not between"},
		{"count not a varint", []byte{0, 0, 0, 0, 7, 0x80}, true, "count is not a varint"},
		{"index missing", []byte{0, 0, 0, 0, 7, 4, 2}, true, "message index 2 of 2 is missing"},
		{"negative index", []byte{0, 0, 0, 0, 7, 2, 3}, true, "message index 1 of 1 is -2"},
		{"index beyond int32", []byte{0, 0, 0, 0, 7, 2, 0x80, 0x80, 0x80, 0x80, 0x10}, true, "message index 1 of 1 is 2147483648"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, rest, err := ParseID(tc.value)
			if err == nil && tc.proto {
				_, _, err = ParseIndexes(rest)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestOnlyAValueStartingWithByteZeroLooksFramed(t *testing.T) {
	for _, tc := range []struct {
		value []byte
		want  bool
	}{
		{nil, false}, {[]byte{}, false}, {[]byte(`{"x":1}`), false}, {[]byte{0x0a, 0x00}, false}, {[]byte{0}, true}, {[]byte{0, 0, 0, 0, 1, 0, 0x0a}, true},
	} {
		if got := IsFramed(tc.value); got != tc.want {
			t.Errorf("IsFramed(% x) = %v", tc.value, got)
		}
	}
}

// FuzzFrame: whatever a record's value holds, reading its frame fails or succeeds without a panic, and
// what it reads, written again, reads back the same.
func FuzzFrame(f *testing.F) {
	for _, seed := range [][]byte{nil, {0}, {0, 0, 0, 0, 1, 0}, {0, 0, 0, 0, 1, 4, 20, 0}, {0, 0, 0, 0, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f}, []byte(`{"a":1}`)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		id, rest, err := ParseID(value)
		if err != nil {
			return
		}
		indexes, payload, err := ParseIndexes(rest)
		if err != nil {
			return
		}
		again := Header{ID: id, Indexes: indexes}.Frame(payload)
		id2, rest2, err := ParseID(again)
		if err != nil {
			t.Fatalf("% x written back as % x, which does not read: %v", value, again, err)
		}
		indexes2, payload2, err := ParseIndexes(rest2)
		if err != nil || id2 != id || !slices.Equal(indexes2, indexes) || !bytes.Equal(payload2, payload) {
			t.Fatalf("% x (id %d, indexes %v) written back as % x, read as id %d, indexes %v (%v)", value, id, indexes, again, id2, indexes2, err)
		}
	})
}
