package testmodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// decodeObject decodes b, which must hold exactly one JSON object, into v.
// Numbers that land in an interface{} stay json.Number so integers keep
// their exact value.
func decodeObject(b []byte, v any) error { return decodeJSON(b, v, '{', "object") }

// decodeArray is decodeObject for a body that must be a JSON array.
func decodeArray(b []byte, v any) error { return decodeJSON(b, v, '[', "array") }

func decodeJSON(b []byte, v any, open byte, kind string) error {
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if len(trimmed) == 0 {
		return errors.New("empty request body")
	}
	if trimmed[0] != open {
		return fmt.Errorf("request body must be a JSON %s", kind)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode request body: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("decode request body: trailing data after the JSON %s", kind)
	}
	return nil
}

// number is a float64 that refuses anything but a JSON number: plain
// float64 decoding would silently turn null into 0 and accept nothing
// else useful.
type number float64

func (n *number) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return fmt.Errorf("expected a number, got %s", abbreviate(b))
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("parse number %s: %w", abbreviate(b), err)
	}
	*n = number(f)
	return nil
}

// jsonKind names the JSON type of a value decoded with UseNumber, for error
// messages a client can act on (Go type names would mean nothing to it).
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// abbreviate keeps error messages short when a client sends a huge value.
func abbreviate(b []byte) string {
	const max = 40
	if len(b) <= max {
		return string(b)
	}
	return string(b[:max]) + "..."
}
