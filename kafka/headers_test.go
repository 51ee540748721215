package kafka_test

import (
	"slices"
	"testing"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seldon-kafka/sidecar/kafka"
)

func hdrs(kv ...string) []ckafka.Header {
	var hs []ckafka.Header
	for i := 0; i+1 < len(kv); i += 2 {
		hs = append(hs, ckafka.Header{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return hs
}

func flat(hs []ckafka.Header) []string {
	out := []string{}
	for _, h := range hs {
		out = append(out, h.Key+"="+string(h.Value))
	}
	return out
}

func TestHeaderFindsTheLastOfAnyCase(t *testing.T) {
	tests := []struct {
		name   string
		hs     []ckafka.Header
		key    string
		want   string
		wantOK bool
	}{
		{"exact case", hdrs("Content-Type", "application/json"), "Content-Type", "application/json", true},
		{"lower case", hdrs("content-type", "application/json"), "Content-Type", "application/json", true},
		{"upper case asked", hdrs("Seldon-Puid", "p1"), "SELDON-PUID", "p1", true},
		{"last wins across cases", hdrs("Content-Type", "a", "x", "1", "CONTENT-TYPE", "b", "content-type", "c"), "Content-Type", "c", true},
		{"absent", hdrs("Content-Type", "a"), "Seldon-Puid", "", false},
		{"no headers", nil, "Seldon-Puid", "", false},
		{"present but empty", hdrs("Seldon-Puid", ""), "Seldon-Puid", "", true},
		{"nil value", []ckafka.Header{{Key: "proto-name", Value: nil}}, "proto-name", "", true},
		{"a prefix is not the key", hdrs("Content-Type-Extra", "x"), "Content-Type", "", false},
	}
	for _, tc := range tests {
		got, ok := kafka.Header(tc.hs, tc.key)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: Header(%v, %q) = (%q, %v), want (%q, %v)", tc.name, flat(tc.hs), tc.key, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestSetHeaderReplacesEveryCase(t *testing.T) {
	tests := []struct {
		name string
		hs   []ckafka.Header
		want []string
	}{
		{"absent: appended", hdrs("a", "1"), []string{"a=1", "Seldon-Puid=new"}},
		{"no headers", nil, []string{"Seldon-Puid=new"}},
		{"one of another case", hdrs("seldon-puid", "old", "b", "2"), []string{"b=2", "Seldon-Puid=new"}},
		{"several of every case, others kept in order", hdrs("x", "1", "SELDON-PUID", "o1", "y", "2", "Seldon-Puid", "o2", "seldon-puid", "o3", "z", "3"),
			[]string{"x=1", "y=2", "z=3", "Seldon-Puid=new"}},
	}
	for _, tc := range tests {
		before := flat(tc.hs)
		got := kafka.SetHeader(tc.hs, "Seldon-Puid", "new")
		if !slices.Equal(flat(got), tc.want) {
			t.Errorf("%s: SetHeader = %v, want %v", tc.name, flat(got), tc.want)
		}
		if !slices.Equal(flat(tc.hs), before) {
			t.Errorf("%s: SetHeader changed its input: %v, was %v", tc.name, flat(tc.hs), before)
		}
		if v, _ := kafka.Header(got, "seldon-puid"); v != "new" {
			t.Errorf("%s: Header after SetHeader = %q", tc.name, v)
		}
	}
}

// The pipeline copies a record's headers and sets its puid on the copy: the consumed record, whose
// headers may share a backing array with the copy, must not change.
func TestSetHeaderDoesNotWriteIntoTheInputsArray(t *testing.T) {
	in := make([]ckafka.Header, 0, 8)
	in = append(in, hdrs("a", "1", "Seldon-Puid", "old", "b", "2")...)
	out := kafka.SetHeader(in[:3], "Seldon-Puid", "new")
	if got := flat(in[:3]); !slices.Equal(got, []string{"a=1", "Seldon-Puid=old", "b=2"}) {
		t.Fatalf("input changed to %v", got)
	}
	out[0].Key = "changed"
	if in[0].Key != "a" {
		t.Fatal("SetHeader's result shares the input's array")
	}
}
