package testmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// TensorflowPredict answers a TF Serving REST predict request the way the
// test model does on POST /v1/models/{name}:predict.
//
// Row format {"instances": [...]} answers {"predictions": [...]}; columnar
// format {"inputs": ...} answers {"outputs": ...}. Every number is doubled
// and the nesting (arrays and named-input objects) is kept. Integers whose
// double fits in int64 stay exact; other numbers are doubled as float64.
// As TF Serving does, it rejects ragged arrays and instances of different
// shapes; strings, booleans and null are rejected too (numbers only).
func TensorflowPredict(req []byte) ([]byte, error) {
	var in map[string]any
	if err := decodeObject(req, &in); err != nil {
		return nil, err
	}
	instances, hasInstances := in["instances"]
	inputs, hasInputs := in["inputs"]
	var out map[string]any
	switch {
	case hasInstances == hasInputs:
		return nil, errors.New("exactly one of 'instances' (row format) or 'inputs' (columnar format) must be present")
	case hasInstances:
		if _, ok := instances.([]any); !ok {
			return nil, fmt.Errorf("'instances' must be a list, got %s", jsonKind(instances))
		}
		doubled, _, err := doubleTree(instances, "instances")
		if err != nil {
			return nil, err
		}
		out = map[string]any{"predictions": doubled}
	default:
		doubled, _, err := doubleTree(inputs, "inputs")
		if err != nil {
			return nil, err
		}
		out = map[string]any{"outputs": doubled}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode tensorflow response: %w", err)
	}
	return b, nil
}

// doubleTree doubles every number in v. It also returns a signature of v's
// shape so that arrays can insist all their elements have the same one,
// which is how TF Serving tells a tensor from a ragged list.
func doubleTree(v any, path string) (any, string, error) {
	switch t := v.(type) {
	case json.Number:
		d, err := doubleNumber(t)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
		return d, "n", nil
	case []any:
		out := make([]any, len(t))
		first := ""
		for i, e := range t {
			d, sig, err := doubleTree(e, path+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, "", err
			}
			if i == 0 {
				first = sig
			} else if sig != first {
				return nil, "", fmt.Errorf("%s: element %d has a different shape than element 0 (ragged tensor)", path, i)
			}
			out[i] = d
		}
		return out, "[" + strconv.Itoa(len(t)) + first + "]", nil
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make(map[string]any, len(t))
		var sig strings.Builder
		sig.WriteString("{")
		for _, k := range keys {
			d, s, err := doubleTree(t[k], path+"."+k)
			if err != nil {
				return nil, "", err
			}
			out[k] = d
			fmt.Fprintf(&sig, "%q:%s,", k, s)
		}
		sig.WriteString("}")
		return out, sig.String(), nil
	default:
		return nil, "", fmt.Errorf("%s: expected a number, got %s", path, jsonKind(v))
	}
}
