package testmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
)

type v2Request struct {
	ID     string    `json:"id"`
	Inputs []v2Input `json:"inputs"`
}

type v2Input struct {
	Name     string  `json:"name"`
	Shape    []int64 `json:"shape"`
	Datatype string  `json:"datatype"`
	Data     any     `json:"data"`
}

type v2Response struct {
	ModelName string     `json:"model_name"`
	ID        string     `json:"id,omitempty"`
	Outputs   []v2Output `json:"outputs"`
}

type v2Output struct {
	Name     string  `json:"name"`
	Shape    []int64 `json:"shape"`
	Datatype string  `json:"datatype"`
	Data     []any   `json:"data"`
}

// v2OutputSuffix names each output after its input, so a test with several
// inputs can tell the answers apart.
const v2OutputSuffix = "_doubled"

// v2Type describes the numeric datatypes the test model accepts. BOOL and
// BYTES are refused: doubling means nothing for them.
type v2Type struct {
	integer  bool
	min, max *big.Int // integer types
	fmax     float64  // float types: largest finite magnitude
}

var v2Types = map[string]v2Type{
	"INT8":   intType(8, true),
	"INT16":  intType(16, true),
	"INT32":  intType(32, true),
	"INT64":  intType(64, true),
	"UINT8":  intType(8, false),
	"UINT16": intType(16, false),
	"UINT32": intType(32, false),
	"UINT64": intType(64, false),
	"FP16":   {fmax: 65504},
	"FP32":   {fmax: math.MaxFloat32},
	"FP64":   {fmax: math.MaxFloat64},
}

func intType(bits uint, signed bool) v2Type {
	one := big.NewInt(1)
	if signed {
		limit := new(big.Int).Lsh(one, bits-1)
		return v2Type{integer: true, min: new(big.Int).Neg(limit), max: limit.Sub(limit, one)}
	}
	limit := new(big.Int).Lsh(one, bits)
	return v2Type{integer: true, min: new(big.Int), max: limit.Sub(limit, one)}
}

// V2Infer answers an Open Inference Protocol (KServe v2) infer request the
// way the test model does on POST /v2/models/{model}/infer.
//
// Every input becomes one output, in the same order, named
// "<input name>_doubled", with the input's shape and datatype and every
// element doubled. data may be flat or nested; the answer is always flat
// (row-major). Numeric datatypes only (INT*, UINT*, FP16/32/64); integer
// types must hold integers and are doubled exactly; values or doubles out of
// the datatype's range are rejected. The request id is echoed when present.
// It is V2Transform for RoleModel.
func V2Infer(model string, req []byte) ([]byte, error) {
	return V2Transform(RoleModel, model, req)
}

// V2Transform answers a v2 infer request the way a test model playing role
// does on POST /v2/models/{model}/infer: as V2Infer, with the role's function
// (see Role) in place of doubling. A model names each output
// "<input name>_doubled", as V2Infer does; a transformer and an output
// transformer keep the input names unchanged, because the executor hands
// their outputs to the next node as its inputs, and the model behind expects
// the names the client sent.
func V2Transform(role Role, model string, req []byte) ([]byte, error) {
	a, err := role.arith()
	if err != nil {
		return nil, err
	}
	var in v2Request
	if err := decodeObject(req, &in); err != nil {
		return nil, err
	}
	if len(in.Inputs) == 0 {
		return nil, errors.New("request has no inputs")
	}
	out := v2Response{ModelName: model, ID: in.ID, Outputs: make([]v2Output, 0, len(in.Inputs))}
	seen := make(map[string]bool, len(in.Inputs))
	for i, input := range in.Inputs {
		if seen[input.Name] {
			return nil, fmt.Errorf("input %d: duplicate input name %q", i, input.Name)
		}
		seen[input.Name] = true
		o, err := v2Map(input, a)
		if err != nil {
			return nil, fmt.Errorf("input %d (%q): %w", i, input.Name, err)
		}
		o.Name = v2OutputName(role, input.Name)
		out.Outputs = append(out.Outputs, o)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode v2 response: %w", err)
	}
	return b, nil
}

// v2OutputName is the name of the output a role makes of an input.
func v2OutputName(role Role, input string) string {
	if role == RoleModel || role == "" {
		return input + v2OutputSuffix
	}
	return input
}

// V2Route answers a v2 infer request the way the test model does on
// POST /v2/models/{model}/route, the path the legacy executor called a v2
// router on: a bare JSON array [route], the rule of RouteFor applied to the
// first number of inputs[0].data.
func V2Route(req []byte) ([]byte, error) {
	var in struct {
		Inputs []struct {
			Data any `json:"data"`
		} `json:"inputs"`
	}
	if err := decodeObject(req, &in); err != nil {
		return nil, err
	}
	if len(in.Inputs) == 0 {
		return nil, errors.New("request has no inputs")
	}
	flat, err := flatten(in.Inputs[0].Data, nil)
	if err != nil {
		return nil, fmt.Errorf("inputs[0].data: %w", err)
	}
	if len(flat) == 0 {
		return nil, errors.New("inputs[0].data has no number to route on")
	}
	return routeAnswer(flat[0])
}

// V2Aggregate answers what the test model does on
// POST /v2/models/{model}/aggregate, the path the legacy executor called a v2
// combiner on with the JSON array of its children's infer responses. Each
// output of the answer is the element-wise mean of the outputs at the same
// position of every response, with the name and shape of the first's, as
// datatype FP64 (a mean of integers is seldom one); all responses must have
// as many outputs, of the same shapes. model_name is the combiner's own name
// (model), id the first response's.
func V2Aggregate(model string, req []byte) ([]byte, error) {
	var in []struct {
		ID      string    `json:"id"`
		Outputs []v2Input `json:"outputs"`
	}
	if err := decodeArray(req, &in); err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return nil, errors.New("no responses to aggregate")
	}
	if len(in[0].Outputs) == 0 {
		return nil, errors.New("response 0 has no outputs")
	}
	out := v2Response{ModelName: model, ID: in[0].ID, Outputs: make([]v2Output, len(in[0].Outputs))}
	for o, first := range in[0].Outputs {
		sums := []float64(nil)
		for r, resp := range in {
			if len(resp.Outputs) != len(in[0].Outputs) {
				return nil, fmt.Errorf("response %d has %d outputs, response 0 has %d", r, len(resp.Outputs), len(in[0].Outputs))
			}
			output := resp.Outputs[o]
			if !slices.Equal(output.Shape, first.Shape) {
				return nil, fmt.Errorf("response %d output %d has shape %v, response 0 has %v", r, o, output.Shape, first.Shape)
			}
			vals, err := v2Floats(output)
			if err != nil {
				return nil, fmt.Errorf("response %d output %d (%q): %w", r, o, output.Name, err)
			}
			if sums == nil {
				sums = make([]float64, len(vals))
			}
			for i, v := range vals {
				sums[i] += v
			}
		}
		data := make([]any, len(sums))
		for i, sum := range sums {
			mean := sum / float64(len(in))
			if !finite(mean) {
				return nil, fmt.Errorf("output %d: the mean of element %d overflows float64", o, i)
			}
			data[i] = mean
		}
		out.Outputs[o] = v2Output{Name: first.Name, Shape: first.Shape, Datatype: "FP64", Data: data}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode v2 response: %w", err)
	}
	return b, nil
}

// v2Floats returns the elements of a tensor in a response, checked against its shape.
func v2Floats(t v2Input) ([]float64, error) {
	if t.Shape == nil {
		return nil, errors.New("missing shape")
	}
	flat, err := flatten(t.Data, nil)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	if err := checkShape(t.Shape, len(flat)); err != nil {
		return nil, err
	}
	out := make([]float64, len(flat))
	for i, n := range flat {
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			return nil, fmt.Errorf("data[%d]: value %s is out of range", i, abbreviate([]byte(n)))
		}
		out[i] = f
	}
	return out, nil
}

// v2Map applies a to every element of an input; the caller names the output.
func v2Map(in v2Input, a arith) (v2Output, error) {
	switch {
	case in.Name == "":
		return v2Output{}, errors.New("missing name")
	case in.Shape == nil:
		return v2Output{}, errors.New("missing shape")
	case in.Datatype == "":
		return v2Output{}, errors.New("missing datatype")
	case in.Data == nil:
		return v2Output{}, errors.New("missing data")
	}
	typ, ok := v2Types[in.Datatype]
	if !ok {
		return v2Output{}, fmt.Errorf("datatype %q is not supported (numeric types only)", in.Datatype)
	}
	flat, err := flatten(in.Data, nil)
	if err != nil {
		return v2Output{}, fmt.Errorf("data: %w", err)
	}
	if err := checkShape(in.Shape, len(flat)); err != nil {
		return v2Output{}, err
	}
	data := make([]any, len(flat))
	for i, n := range flat {
		d, err := typ.apply(n, a)
		if err != nil {
			return v2Output{}, fmt.Errorf("data[%d]: %s %w", i, in.Datatype, err)
		}
		data[i] = d
	}
	return v2Output{Shape: in.Shape, Datatype: in.Datatype, Data: data}, nil
}

// checkShape checks that shape describes exactly n elements. It divides
// rather than multiplies so that absurd dimensions cannot overflow.
func checkShape(shape []int64, n int) error {
	remaining := int64(n)
	zero := false
	for _, d := range shape {
		switch {
		case d < 0:
			return fmt.Errorf("shape %v has a negative dimension", shape)
		case d == 0:
			zero = true
		case remaining%d != 0:
			return fmt.Errorf("shape %v does not match %d elements", shape, n)
		default:
			remaining /= d
		}
	}
	if (zero && n != 0) || (!zero && remaining != 1) {
		return fmt.Errorf("shape %v does not match %d elements", shape, n)
	}
	return nil
}

// flatten appends the numbers of a possibly nested array to out, row-major.
func flatten(v any, out []json.Number) ([]json.Number, error) {
	switch t := v.(type) {
	case json.Number:
		return append(out, t), nil
	case []any:
		for _, e := range t {
			var err error
			if out, err = flatten(e, out); err != nil {
				return nil, err
			}
		}
		return out, nil
	default:
		return nil, fmt.Errorf("expected numbers, got %s", jsonKind(v))
	}
}

// apply applies a to n, a value of type t, refusing values and results out of t's range.
func (t v2Type) apply(n json.Number, a arith) (any, error) {
	if !t.integer {
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil || math.Abs(f) > t.fmax {
			return nil, fmt.Errorf("value %s is out of range", abbreviate([]byte(n)))
		}
		r := a.float(f)
		if math.Abs(r) > t.fmax {
			return nil, a.overflows(n)
		}
		return r, nil
	}
	i, err := parseInteger(n)
	if err != nil {
		return nil, err
	}
	if i.Cmp(t.min) < 0 || i.Cmp(t.max) > 0 {
		return nil, fmt.Errorf("value %s is out of range", n)
	}
	r := a.bigInt(i)
	if r.Cmp(t.min) < 0 || r.Cmp(t.max) > 0 {
		return nil, a.overflows(n)
	}
	// A json.Number is written verbatim, so 64-bit integers stay exact.
	return json.Number(r.String()), nil
}

// parseInteger accepts any JSON number with an integral value, so 3, 3.0 and
// 3e0 all mean 3.
func parseInteger(n json.Number) (*big.Int, error) {
	if i, ok := new(big.Int).SetString(string(n), 10); ok {
		return i, nil
	}
	// Going through float64 (not big.Rat) keeps a number like 1e999999999
	// from costing a huge allocation.
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f != math.Trunc(f) {
		return nil, fmt.Errorf("value %s is not an integer", abbreviate([]byte(n)))
	}
	i, _ := big.NewFloat(f).Int(nil)
	return i, nil
}
