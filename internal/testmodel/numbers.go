package testmodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// decodeObject decodes b, which must hold exactly one JSON object, into v.
// Numbers that land in an interface{} stay json.Number so integers keep
// their exact value.
func decodeObject(b []byte, v any) error {
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if len(trimmed) == 0 {
		return errors.New("empty request body")
	}
	if trimmed[0] != '{' {
		return errors.New("request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode request body: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("decode request body: trailing data after the JSON object")
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

// doubleNumber doubles n, staying in int64 when n is an integer whose double
// fits, so integer inputs come back as exact integers.
func doubleNumber(n json.Number) (any, error) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil && i <= math.MaxInt64/2 && i >= math.MinInt64/2 {
		return 2 * i, nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return nil, fmt.Errorf("parse number %s: %w", abbreviate([]byte(n)), err)
	}
	if math.IsInf(2*f, 0) {
		return nil, fmt.Errorf("doubling %s overflows float64", n)
	}
	return 2 * f, nil
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
