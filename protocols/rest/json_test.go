package rest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// jsonSeeds are bodies where a hand-written JSON reader is most easily wrong; the fuzz target starts from
// them and the table test below runs them every time.
var jsonSeeds = []string{
	``, ` `, `{}`, `[]`, `{"a":1}`, ` {"a" : [1, 2.5e-3, -0, "x"] } `, `{"a":1,}`, `[1,]`, `{,}`, `{"a"}`, `{"a":}`,
	`{"a":1 "b":2}`, `{"a":1}{"b":2}`, `{"a":1} x`, `[1 2]`, `01`, `-`, `-01`, `1.`, `.5`, `1e`, `1e+`, `1E-2`,
	`+1`, `0x10`, `1.5e3`, `-0.0`, `NaN`, `Infinity`, `true`, `tru`, `false `, `nul`, `null`, `"a`, `"\u00e9"`,
	`"\u00g9"`, `"\u00e"`, `"\x"`, `"\/\b\f\n\r\t\"\\"`, "\"tab\there\"", "\"\xff\xfe invalid utf-8\"", `"é"`,
	`{"in\u0070uts":[]}`, `{"inputs":{"a":{"inputs":1}}}`, `[[[]]]`, `[{}]`, `{"a":[{"b":[]}]}`, `}`, `]`, `[}`, `{]`,
	"\ufeff{}", "{}\x00", `[` + strings.Repeat(`[`, 100) + strings.Repeat(`]`, 101),
}

func FuzzValidJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		agreesWithEncodingJSON(t, b)
	})
}

func TestValidJSONAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range jsonSeeds {
		agreesWithEncodingJSON(t, []byte(s))
	}
}

// agreesWithEncodingJSON checks ValidJSON against json.Valid, and the top-level keys it reports against
// the keys json.Unmarshal finds.
func agreesWithEncodingJSON(t *testing.T, b []byte) {
	t.Helper()
	if got, want := ValidJSON(b), json.Valid(b); got != want {
		t.Fatalf("ValidJSON(%q) = %v, json.Valid = %v", b, got, want)
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) != nil || fields == nil {
		return
	}
	var keys []string
	if !scanJSON(b, func(k []byte) {
		var s string
		if err := json.Unmarshal([]byte(`"`+string(k)+`"`), &s); err != nil {
			t.Fatalf("key %q of %q is not a JSON string's content: %v", k, b, err)
		}
		keys = append(keys, s)
	}) {
		t.Fatalf("scanJSON(%q) failed where json.Unmarshal succeeded", b)
	}
	var want []string
	for k := range fields {
		want = append(want, k)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys) // a repeated key is one field
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Fatalf("top-level keys of %q: %q, encoding/json finds %q", b, keys, want)
	}
}

func TestValidJSONBoundsTheNestingAsEncodingJSON(t *testing.T) {
	for _, tc := range []struct {
		depth int
		ok    bool
	}{{maxDepth, true}, {maxDepth + 1, false}, {1 << 20, false}} {
		b := []byte(strings.Repeat("[", tc.depth) + strings.Repeat("]", tc.depth))
		if got := ValidJSON(b); got != tc.ok || json.Valid(b) != tc.ok {
			t.Errorf("depth %d: ValidJSON %v, json.Valid %v, want %v", tc.depth, got, json.Valid(b), tc.ok)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	var body strings.Builder
	body.WriteString(`{"data":{"names":["a","b","c","d","e","f","g","h"],"ndarray":[`)
	for row := 0; body.Len() < 1000; row++ {
		if row > 0 {
			body.WriteByte(',')
		}
		body.WriteString(`[100001,234567,345678,456789,567890,678901,789012,890123]`)
	}
	body.WriteString(`]}}`)
	tf := []byte(strings.Replace(body.String(), `"data"`, `"instances"`, 1))
	seldon := []byte(body.String())
	b.Run("seldon", func(b *testing.B) {
		b.SetBytes(int64(len(seldon)))
		for b.Loop() {
			if err := CheckObject(seldon); err != nil {
				b.Fatal(err)
			}
		}
	})
	check := CheckObjectWithAny("instances", "inputs")
	b.Run("tensorflow", func(b *testing.B) {
		b.SetBytes(int64(len(tf)))
		for b.Loop() {
			if err := check(tf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("map decode, as before", func(b *testing.B) {
		b.SetBytes(int64(len(seldon)))
		for b.Loop() {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(seldon, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
