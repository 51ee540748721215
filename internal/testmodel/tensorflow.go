package testmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
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
// It is TensorflowTransform for RoleModel.
func TensorflowPredict(req []byte) ([]byte, error) {
	return TensorflowTransform(RoleModel, req)
}

// TensorflowTransform answers a TF Serving REST predict request the way a
// test model playing role does on POST /v1/models/{name}:predict: as
// TensorflowPredict, with the role's function (see Role) in place of
// doubling: x*2 for a model, x+1 for a transformer, x*10 for an output
// transformer. Integers whose result fits in int64 stay exact.
func TensorflowTransform(role Role, req []byte) ([]byte, error) {
	a, err := role.arith()
	if err != nil {
		return nil, err
	}
	key, tree, err := tensorflowPayload(req)
	if err != nil {
		return nil, err
	}
	mapped, _, err := mapTree(tree, key, a)
	if err != nil {
		return nil, err
	}
	outKey := "outputs"
	if key == "instances" {
		outKey = "predictions"
	}
	b, err := json.Marshal(map[string]any{outKey: mapped})
	if err != nil {
		return nil, fmt.Errorf("encode tensorflow response: %w", err)
	}
	return b, nil
}

// tensorflowPayload returns which of "instances" (row format) or "inputs"
// (columnar format) a predict request holds, and its value.
func tensorflowPayload(req []byte) (key string, tree any, err error) {
	var in map[string]any
	if err := decodeObject(req, &in); err != nil {
		return "", nil, err
	}
	instances, hasInstances := in["instances"]
	inputs, hasInputs := in["inputs"]
	switch {
	case hasInstances == hasInputs:
		return "", nil, errors.New("exactly one of 'instances' (row format) or 'inputs' (columnar format) must be present")
	case hasInstances:
		if _, ok := instances.([]any); !ok {
			return "", nil, fmt.Errorf("'instances' must be a list, got %s", jsonKind(instances))
		}
		return "instances", instances, nil
	default:
		return "inputs", inputs, nil
	}
}

// TensorflowRoute answers a TF Serving REST predict request the way the test
// model does on POST /v1/models/{name}:route, the path the legacy executor
// called a TF router on: a bare JSON array [route], the rule of RouteFor
// applied to the first number of "instances" (or "inputs"), depth first,
// named inputs in name order.
func TensorflowRoute(req []byte) ([]byte, error) {
	key, tree, err := tensorflowPayload(req)
	if err != nil {
		return nil, err
	}
	n, err := firstNumber(tree, key)
	if err != nil {
		return nil, err
	}
	return routeAnswer(n)
}

// TensorflowAggregate answers what the test model does on
// POST /v1/models/{name}:aggregate, the path the legacy executor called a TF
// combiner on with the JSON array of its children's predict responses:
// {"predictions": mean}, the element-wise mean of every response's
// "predictions", which must all have the same nesting. Means are float64.
func TensorflowAggregate(req []byte) ([]byte, error) {
	var in []map[string]any
	if err := decodeArray(req, &in); err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return nil, errors.New("no responses to aggregate")
	}
	trees := make([]any, len(in))
	for i, resp := range in {
		p, ok := resp["predictions"]
		if !ok {
			return nil, fmt.Errorf("response %d has no 'predictions'", i)
		}
		trees[i] = p
	}
	mean, err := meanTrees(trees, "predictions")
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(map[string]any{"predictions": mean})
	if err != nil {
		return nil, fmt.Errorf("encode tensorflow response: %w", err)
	}
	return b, nil
}

// firstNumber is the first number of a JSON tree, depth first, object keys
// in sorted order.
func firstNumber(v any, path string) (json.Number, error) {
	switch t := v.(type) {
	case json.Number:
		return t, nil
	case []any:
		if len(t) == 0 {
			return "", fmt.Errorf("%s: no number to route on", path)
		}
		return firstNumber(t[0], path+"[0]")
	case map[string]any:
		keys := slices.Sorted(maps.Keys(t))
		if len(keys) == 0 {
			return "", fmt.Errorf("%s: no number to route on", path)
		}
		return firstNumber(t[keys[0]], path+"."+keys[0])
	default:
		return "", fmt.Errorf("%s: expected a number, got %s", path, jsonKind(v))
	}
}

// routeAnswer is the bare [route] the TF and v2 routers answer.
func routeAnswer(n json.Number) ([]byte, error) {
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return nil, fmt.Errorf("parse number %s: %w", abbreviate([]byte(n)), err)
	}
	return mustJSON([]int{RouteFor(f)}), nil
}

// meanTrees is the element-wise mean of JSON trees of the same nesting.
func meanTrees(trees []any, path string) (any, error) {
	switch first := trees[0].(type) {
	case json.Number:
		sum := 0.0
		for i, t := range trees {
			n, ok := t.(json.Number)
			if !ok {
				return nil, fmt.Errorf("%s: response %d has %s where response 0 has a number", path, i, jsonKind(t))
			}
			f, err := strconv.ParseFloat(string(n), 64)
			if err != nil {
				return nil, fmt.Errorf("%s: response %d: parse number %s: %w", path, i, abbreviate([]byte(n)), err)
			}
			sum += f
		}
		mean := sum / float64(len(trees))
		if !finite(mean) {
			return nil, fmt.Errorf("%s: the mean overflows float64", path)
		}
		return mean, nil
	case []any:
		out := make([]any, len(first))
		for e := range first {
			elems := make([]any, len(trees))
			for i, t := range trees {
				l, ok := t.([]any)
				if !ok || len(l) != len(first) {
					return nil, fmt.Errorf("%s: response %d is not a list of %d like response 0", path, i, len(first))
				}
				elems[i] = l[e]
			}
			m, err := meanTrees(elems, path+"["+strconv.Itoa(e)+"]")
			if err != nil {
				return nil, err
			}
			out[e] = m
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(first))
		for k := range first {
			elems := make([]any, len(trees))
			for i, t := range trees {
				o, ok := t.(map[string]any)
				if !ok || len(o) != len(first) {
					return nil, fmt.Errorf("%s: response %d does not have the named outputs of response 0", path, i)
				}
				if elems[i], ok = o[k]; !ok {
					return nil, fmt.Errorf("%s: response %d has no %q", path, i, k)
				}
			}
			m, err := meanTrees(elems, path+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = m
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%s: expected a number, got %s", path, jsonKind(first))
	}
}

// mapTree applies a to every number in v. It also returns a signature of v's
// shape so that arrays can insist all their elements have the same one,
// which is how TF Serving tells a tensor from a ragged list.
func mapTree(v any, path string, a arith) (any, string, error) {
	switch t := v.(type) {
	case json.Number:
		d, err := a.jsonNumber(t)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
		return d, "n", nil
	case []any:
		out := make([]any, len(t))
		first := ""
		for i, e := range t {
			d, sig, err := mapTree(e, path+"["+strconv.Itoa(i)+"]", a)
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
			d, s, err := mapTree(t[k], path+"."+k, a)
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
