package protofile_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/seldon-kafka/sidecar/protocols/protofile"
)

func file(msgs ...[]byte) []byte {
	var b bytes.Buffer
	for _, m := range msgs {
		if err := protofile.Write(&b, m); err != nil {
			panic(err)
		}
	}
	return b.Bytes()
}

func TestReadAllReturnsEachMessageInOrder(t *testing.T) {
	msgs := [][]byte{[]byte("first"), {}, bytes.Repeat([]byte{0xab}, 70000), []byte("last")}
	got, err := protofile.ReadAll(bytes.NewReader(file(msgs...)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(msgs) {
		t.Fatalf("%d messages, want %d", len(got), len(msgs))
	}
	for i := range msgs {
		if !bytes.Equal(got[i], msgs[i]) {
			t.Errorf("message %d differs", i)
		}
	}
}

func TestWriteUsesAFourByteBigEndianLength(t *testing.T) {
	if got, want := file([]byte("abc")), []byte{0, 0, 0, 3, 'a', 'b', 'c'}; !bytes.Equal(got, want) {
		t.Errorf("Write = %v, want %v", got, want)
	}
}

func TestReaderRefusesDamagedFiles(t *testing.T) {
	whole := file([]byte("hello"), []byte("world"))
	tests := []struct {
		name    string
		data    []byte
		max     int
		wantN   int    // messages read before the error
		wantErr string // part of the error
	}{
		{"cut inside the second length", whole[:9+2], 0, 1, "message 1 at byte 9: length prefix cut short after 2 bytes"},
		{"cut inside the second message", whole[:len(whole)-1], 0, 1, "message 1 at byte 9: 4 of 5 bytes"},
		{"length over the limit", file([]byte("0123456789")), 9, 0, "length 10 is over the 9-byte limit"},
		{"a text file", []byte("instances: [1, 2]\n"), 0, 0, "over the"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := protofile.ReadAll(bytes.NewReader(tt.data), tt.max)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to say %q", err, tt.wantErr)
			}
			if len(got) != tt.wantN {
				t.Errorf("%d messages before the error, want %d", len(got), tt.wantN)
			}
		})
	}
}

func TestAnEmptyFileHasNoMessages(t *testing.T) {
	r := protofile.NewReader(bytes.NewReader(nil), 0)
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next = %v, want io.EOF", err)
	}
}

// FuzzReader reads arbitrary bytes as a length-prefixed file: it must never panic nor allocate past
// its limit, and whatever it reads must write back to the same bytes.
func FuzzReader(f *testing.F) {
	f.Add(file([]byte("a"), []byte("bc")))
	f.Add([]byte{0, 0, 0, 5, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := protofile.ReadAll(bytes.NewReader(data), 1<<16)
		back := file(msgs...)
		if !bytes.HasPrefix(data, back) {
			t.Fatalf("the messages read do not write back to the file's start")
		}
		if err == nil && !bytes.Equal(back, data) {
			t.Fatalf("read without error but %d of %d bytes accounted for", len(back), len(data))
		}
	})
}
