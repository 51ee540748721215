package batch

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
)

// The JSON side reads bodies with gjson, which hands out each value as a span of the body (offset and
// raw text) without decoding it: a batch is made by splicing the records' row arrays into the first
// record's body, and an answer is cut back by splicing each record's rows into a copy of the batch's
// answer. Everything else in a body is left byte for byte as the client or the model wrote it.

// span is a value's place in a body: doc[from:to].
type span struct{ from, to int }

func spanOf(r gjson.Result) span { return span{r.Index, r.Index + len(r.Raw)} }

// edit replaces doc[from:to] with text.
type edit struct {
	span
	text string
}

// splice applies non-overlapping edits to doc.
func splice(doc string, edits []edit) []byte {
	slices.SortFunc(edits, func(a, b edit) int { return a.from - b.from })
	size := len(doc)
	for _, e := range edits {
		size += len(e.text) - (e.to - e.from)
	}
	var b bytes.Buffer
	b.Grow(size)
	at := 0
	for _, e := range edits {
		b.WriteString(doc[at:e.from])
		b.WriteString(e.text)
		at = e.to
	}
	b.WriteString(doc[at:])
	return b.Bytes()
}

// without is doc with the spans cut out: what batch-mates must have in common, byte for byte.
func without(doc string, cuts []span) string {
	edits := make([]edit, len(cuts))
	for i, c := range cuts {
		edits[i] = edit{span: c}
	}
	return string(splice(doc, edits))
}

// object parses a body that must be one valid JSON object. The document shares the body's bytes
// rather than copying them (a record's whole request, and a batch's whole answer, once more per record):
// the bodies the batcher reads are never written after they are made — a record's value as the
// consumer handed it, a model's answer as the client returned it — and everything made from the
// document (a batch's request, each record's answer) is a copy.
func object(body []byte) (string, gjson.Result, bool) {
	doc := unsafe.String(unsafe.SliceData(body), len(body))
	if !gjson.Valid(doc) {
		return "", gjson.Result{}, false
	}
	r := gjson.Parse(doc)
	return doc, r, r.IsObject()
}

// maxMembers is the most members one call of members reads: what the codecs ask for at once.
const maxMembers = 4

// members reads the named members (at most maxMembers) of a JSON object in one pass; a member that is
// absent does not Exist. ok is false when one of them appears twice: JSON readers disagree on which one
// counts. The result is an array, not a slice, so that reading a record's members allocates nothing.
func members(obj gjson.Result, names ...string) (out [maxMembers]gjson.Result, ok bool) {
	if len(names) > maxMembers {
		panic("batch: members asked for more than maxMembers names")
	}
	ok = true
	obj.ForEach(func(k, v gjson.Result) bool {
		if i := slices.Index(names, k.Str); i >= 0 {
			if out[i].Exists() {
				ok = false
				return false
			}
			out[i] = v
		}
		return true
	})
	return out, ok
}

// count is the number of elements of a JSON array.
func count(arr gjson.Result) int {
	n, _ := countFirst(arr)
	return n
}

// countFirst is the number of elements of a JSON array and its first element (not Exists when empty),
// in one pass.
func countFirst(arr gjson.Result) (n int, first gjson.Result) {
	arr.ForEach(func(_, v gjson.Result) bool {
		if n == 0 {
			first = v
		}
		n++
		return true
	})
	return n, first
}

// first is the first element of a JSON array (not Exists when it is empty).
func first(arr gjson.Result) gjson.Result {
	var out gjson.Result
	arr.ForEach(func(_, v gjson.Result) bool { out = v; return false })
	return out
}

// inner is the text between an array's brackets, blank-trimmed: "" for an empty array.
func inner(arr gjson.Result) string {
	raw := strings.TrimSpace(arr.Raw)
	return strings.TrimSpace(raw[1 : len(raw)-1])
}

// replaced is doc with the array at sp replaced by one array of the arrays' elements, in one copy.
func replaced(doc string, sp span, arrays ...gjson.Result) []byte {
	size := len(doc) - (sp.to - sp.from) + 2
	for _, a := range arrays {
		size += len(a.Raw) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, doc[:sp.from]...)
	b = appendConcat(b, arrays)
	return append(b, doc[sp.to:]...)
}

// keepRows is doc with the array at sp holding only the elements at rows, a span inside it.
func keepRows(doc string, sp, rows span) []byte {
	b := make([]byte, 0, len(doc)-(sp.to-sp.from)+(rows.to-rows.from)+2)
	b = append(b, doc[:sp.from]...)
	b = append(b, '[')
	b = append(b, doc[rows.from:rows.to]...)
	b = append(b, ']')
	return append(b, doc[sp.to:]...)
}

// appendConcat appends one JSON array of every array's elements, in order.
func appendConcat(b []byte, arrays []gjson.Result) []byte {
	b = append(b, '[')
	n := 0
	for _, a := range arrays {
		if in := inner(a); in != "" {
			if n > 0 {
				b = append(b, ',')
			}
			b = append(b, in...)
			n++
		}
	}
	return append(b, ']')
}

// concat is one JSON array of every array's elements, in order.
func concat(arrays []gjson.Result) string {
	size := 2
	for _, a := range arrays {
		size += len(a.Raw) + 1
	}
	return string(appendConcat(make([]byte, 0, size), arrays))
}

// rowSpans cuts an array of rows×per elements per record: each record's span runs from its first element
// to its last, commas between included. total is the number of elements the array holds, which the
// caller checks against what the records sent.
func rowSpans(arr gjson.Result, rows []int, per int) (spans []span, total int) {
	spans = make([]span, len(rows))
	k, end, start := 0, rows[0]*per, -1
	arr.ForEach(func(_, v gjson.Result) bool {
		if k < len(rows) {
			if start < 0 {
				start = v.Index
			}
			if total == end-1 {
				spans[k] = span{start, v.Index + len(v.Raw)}
				k, start = k+1, -1
				if k < len(rows) {
					end += rows[k] * per
				}
			}
		}
		total++
		return true
	})
	return spans, total
}

// shapeOf describes a JSON value's shape along its first elements: the length of each array level and
// the members of each object, down to the kind of its scalars. Rows of one shape batch together.
func shapeOf(v gjson.Result) string {
	var b strings.Builder
	writeShape(&b, v)
	return b.String()
}

func writeShape(b *strings.Builder, v gjson.Result) {
	switch {
	case v.IsArray():
		b.WriteByte('[')
		n, f := countFirst(v)
		b.WriteString(strconv.Itoa(n))
		if f.Exists() {
			writeShape(b, f)
		}
		b.WriteByte(']')
	case v.IsObject():
		b.WriteByte('{')
		v.ForEach(func(k, e gjson.Result) bool {
			b.WriteString(strconv.Quote(k.Str))
			b.WriteByte(':')
			writeShape(b, e)
			b.WriteByte(',')
			return true
		})
		b.WriteByte('}')
	default:
		b.WriteString(v.Type.String())
	}
}
