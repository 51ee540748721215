package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// The request check reads a body once, without decoding it: it validates the whole document as
// encoding/json would (RFC 8259, nesting at most maxDepth deep, invalid UTF-8 in strings tolerated) and
// notes the keys of the top-level object on the way. Decoding the body into a map of raw values, as the
// check first did, cost about a tenth of the sidecar's CPU per 1 KB record; this costs about as much as
// copying the body. It loops instead of recursing, so a hostile body of a million '[' cannot grow the
// stack. encoding/json is asked again only to word the error of a body that fails.

// maxDepth is encoding/json's bound on nesting.
const maxDepth = 10000

// CheckObject accepts a JSON object.
func CheckObject(body []byte) error {
	return checkObject(body, nil)
}

// CheckObjectWithAny accepts a JSON object holding at least one of the keys.
func CheckObjectWithAny(keys ...string) func([]byte) error {
	return func(body []byte) error {
		found := false
		err := checkObject(body, func(key []byte) {
			if !found {
				found = hasKey(keys, key)
			}
		})
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("the object has none of the fields %q", keys)
		}
		return nil
	}
}

// hasKey says whether the raw (still escaped) key is one of keys.
func hasKey(keys []string, raw []byte) bool {
	if bytes.IndexByte(raw, '\\') >= 0 {
		var s string
		if json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s) != nil {
			return false
		}
		raw = []byte(s)
	}
	for _, k := range keys {
		if string(raw) == k {
			return true
		}
	}
	return false
}

// checkObject validates body as one JSON object, calling key (when set) with each key of the object.
func checkObject(body []byte, key func([]byte)) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return errors.New("blank value")
	}
	if !scanJSON(trimmed, key) {
		// encoding/json words the error, as the check always has; it is asked only for bodies that fail.
		if err := json.Unmarshal(trimmed, new(json.RawMessage)); err != nil {
			return fmt.Errorf("invalid JSON: %v", err)
		}
		return errors.New("invalid JSON")
	}
	switch trimmed[0] {
	case '{':
		return nil
	case 'n':
		return errors.New("JSON null, not an object")
	case '[':
		return errors.New("a JSON array, not an object")
	case '"':
		return errors.New("a JSON string, not an object")
	case 't', 'f':
		return errors.New("a JSON bool, not an object")
	}
	return errors.New("a JSON number, not an object")
}

// ValidJSON reports whether b is one JSON value, as json.Valid does, in a single pass and without
// recursion.
func ValidJSON(b []byte) bool { return scanJSON(b, nil) }

// scanJSON reports whether b is exactly one JSON value with optional white space around it. When b is an
// object and topKey is set, topKey gets each of its keys as they are written, without the quotes.
func scanJSON(b []byte, topKey func([]byte)) bool {
	var stackBuf [64]byte
	stack := stackBuf[:0] // the open containers, '{' or '['
	i := skipSpace(b, 0)
	for {
		// A value starts at i.
		if i >= len(b) {
			return false
		}
		switch c := b[i]; c {
		case '{', '[':
			if len(stack) >= maxDepth {
				return false
			}
			stack = append(stack, c)
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' is '{'+2, ']' is '['+2
				stack = stack[:len(stack)-1]
				i++
				break
			}
			if c == '{' {
				var ok bool
				if i, ok = member(b, i, len(stack) == 1, topKey); !ok {
					return false
				}
			}
			continue
		case '"':
			end, ok := scanString(b, i)
			if !ok {
				return false
			}
			i = end
		case 't':
			if !bytes.HasPrefix(b[i:], []byte("true")) {
				return false
			}
			i += 4
		case 'f':
			if !bytes.HasPrefix(b[i:], []byte("false")) {
				return false
			}
			i += 5
		case 'n':
			if !bytes.HasPrefix(b[i:], []byte("null")) {
				return false
			}
			i += 4
		default:
			end, ok := scanNumber(b, i)
			if !ok {
				return false
			}
			i = end
		}
		// A value ended before i: close the containers it ends, or go on to the next value.
		for {
			i = skipSpace(b, i)
			if len(stack) == 0 {
				return i == len(b)
			}
			if i >= len(b) {
				return false
			}
			top := stack[len(stack)-1]
			if b[i] == top+2 {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return false
			}
			i = skipSpace(b, i+1)
			if top == '{' {
				var ok bool
				if i, ok = member(b, i, len(stack) == 1, topKey); !ok {
					return false
				}
			}
			break
		}
	}
}

// member reads an object's key and its colon from i, returning where the value starts.
func member(b []byte, i int, top bool, topKey func([]byte)) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	end, ok := scanString(b, i)
	if !ok {
		return i, false
	}
	if top && topKey != nil {
		topKey(b[i+1 : end-1])
	}
	i = skipSpace(b, end)
	if i >= len(b) || b[i] != ':' {
		return i, false
	}
	return skipSpace(b, i+1), true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString reads the string whose opening quote is at i and returns the index after its closing quote.
// Control characters must be escaped; bytes of 0x80 and above pass as they are, as encoding/json lets
// invalid UTF-8 through.
func scanString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			i++
			if i >= len(b) {
				return i, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return i, false
				}
				for _, h := range b[i+1 : i+5] {
					if !strings.ContainsRune("0123456789abcdefABCDEF", rune(h)) {
						return i, false
					}
				}
				i += 4
			default:
				return i, false
			}
		}
	}
	return i, false
}

// scanNumber reads -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? from i.
func scanNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return i, false
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		start := i + 1
		if i = digits(b, start); i == start {
			return i, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		if i = digits(b, start); i == start {
			return i, false
		}
	}
	return i, true
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}
