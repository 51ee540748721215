package testmodel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/seldon-kafka/sidecar/protocols/v2/v2pb"
)

// v2Width is each numeric datatype's size in raw contents.
var v2Width = map[string]int{
	"INT8": 1, "UINT8": 1, "INT16": 2, "UINT16": 2, "INT32": 4, "UINT32": 4, "INT64": 8, "UINT64": 8,
	"FP16": 2, "FP32": 4, "FP64": 8,
}

// V2InferProto answers a ModelInferRequest the way the test model does on
// inference.GRPCInferenceService/ModelInfer, as V2Infer does over REST: every input becomes one
// output, in the same order, named "<input name>_doubled", with the input's shape and datatype and
// every element doubled. The representation is kept: typed contents answer typed contents (the
// field the protocol assigns the datatype), raw_input_contents answer raw_output_contents. Numeric
// datatypes only; FP16 only as raw contents, as the protocol has no typed field for it. Integers are
// doubled exactly; values or doubles out of the datatype's range are refused. The response names the
// served model and echoes the request id. It is V2TransformProto for RoleModel.
func V2InferProto(model string, req *v2pb.ModelInferRequest) (*v2pb.ModelInferResponse, error) {
	return V2TransformProto(RoleModel, model, req)
}

// V2TransformProto answers a ModelInferRequest the way a test model playing role does on
// inference.GRPCInferenceService/ModelInfer: as V2InferProto, with the role's function (see Role) in
// place of doubling. A model names each output "<input name>_doubled", as before; a transformer and an
// output transformer keep the input names unchanged, so that the next node of a graph, which expects the
// names the client sent, can take their outputs as its inputs.
func V2TransformProto(role Role, model string, req *v2pb.ModelInferRequest) (*v2pb.ModelInferResponse, error) {
	a, err := role.arith()
	if err != nil {
		return nil, err
	}
	inputs := req.GetInputs()
	if len(inputs) == 0 {
		return nil, errors.New("request has no inputs")
	}
	raw := req.GetRawInputContents()
	if len(raw) > 0 && len(raw) != len(inputs) {
		return nil, fmt.Errorf("%d raw_input_contents for %d inputs", len(raw), len(inputs))
	}
	out := &v2pb.ModelInferResponse{ModelName: model, Id: req.GetId()}
	seen := make(map[string]bool, len(inputs))
	for i, in := range inputs {
		name := in.GetName()
		switch {
		case name == "":
			return nil, fmt.Errorf("input %d: missing name", i)
		case seen[name]:
			return nil, fmt.Errorf("input %d: duplicate input name %q", i, name)
		case in.GetDatatype() == "":
			return nil, fmt.Errorf("input %d (%q): missing datatype", i, name)
		}
		seen[name] = true
		n, err := v2Elements(in.GetShape())
		if err != nil {
			return nil, fmt.Errorf("input %d (%q): %w", i, name, err)
		}
		o := &v2pb.ModelInferResponse_InferOutputTensor{Name: v2OutputName(role, name), Datatype: in.GetDatatype(), Shape: in.GetShape()}
		if len(raw) > 0 {
			if in.GetContents() != nil {
				return nil, fmt.Errorf("input %d (%q): contents given along with raw_input_contents", i, name)
			}
			d, err := v2MapRaw(in.GetDatatype(), raw[i], n, a)
			if err != nil {
				return nil, fmt.Errorf("input %d (%q): %w", i, name, err)
			}
			out.RawOutputContents = append(out.RawOutputContents, d)
		} else {
			o.Contents, err = v2MapContents(in.GetDatatype(), in.GetContents(), n, a)
			if err != nil {
				return nil, fmt.Errorf("input %d (%q): %w", i, name, err)
			}
		}
		out.Outputs = append(out.Outputs, o)
	}
	return out, nil
}

// v2Elements is the number of elements a shape holds, refusing negative and absurd dimensions.
func v2Elements(shape []int64) (int, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v has a negative dimension", shape)
		}
		if d > 0 && n > (1<<31)/d {
			return 0, fmt.Errorf("shape %v is too large", shape)
		}
		n *= d
	}
	return int(n), nil
}

// v2MapContents applies a to every element of typed contents.
func v2MapContents(datatype string, c *v2pb.InferTensorContents, n int, a arith) (*v2pb.InferTensorContents, error) {
	typ, ok := v2Types[datatype]
	if !ok {
		return nil, fmt.Errorf("datatype %q is not supported (numeric types only)", datatype)
	}
	count := func(field string, got int) error {
		if got != n {
			return fmt.Errorf("%d %s for %d elements", got, field, n)
		}
		return nil
	}
	out := &v2pb.InferTensorContents{}
	var err error
	switch datatype {
	case "INT8", "INT16", "INT32":
		if err := count("int_contents", len(c.GetIntContents())); err != nil {
			return nil, err
		}
		out.IntContents = make([]int32, n)
		for i, v := range c.GetIntContents() {
			d, err := a.int(int64(v), v2IntRange(typ))
			if err != nil {
				return nil, fmt.Errorf("int_contents[%d]: %s %w", i, datatype, err)
			}
			out.IntContents[i] = int32(d)
		}
	case "INT64":
		if err := count("int64_contents", len(c.GetInt64Contents())); err != nil {
			return nil, err
		}
		out.Int64Contents = make([]int64, n)
		for i, v := range c.GetInt64Contents() {
			if out.Int64Contents[i], err = a.int(v, v2IntRange(typ)); err != nil {
				return nil, fmt.Errorf("int64_contents[%d]: %s %w", i, datatype, err)
			}
		}
	case "UINT8", "UINT16", "UINT32":
		if err := count("uint_contents", len(c.GetUintContents())); err != nil {
			return nil, err
		}
		out.UintContents = make([]uint32, n)
		for i, v := range c.GetUintContents() {
			d, err := a.uint(uint64(v), typ.max.Uint64())
			if err != nil {
				return nil, fmt.Errorf("uint_contents[%d]: %s %w", i, datatype, err)
			}
			out.UintContents[i] = uint32(d)
		}
	case "UINT64":
		if err := count("uint64_contents", len(c.GetUint64Contents())); err != nil {
			return nil, err
		}
		out.Uint64Contents = make([]uint64, n)
		for i, v := range c.GetUint64Contents() {
			if out.Uint64Contents[i], err = a.uint(v, math.MaxUint64); err != nil {
				return nil, fmt.Errorf("uint64_contents[%d]: %s %w", i, datatype, err)
			}
		}
	case "FP32":
		if err := count("fp32_contents", len(c.GetFp32Contents())); err != nil {
			return nil, err
		}
		out.Fp32Contents = make([]float32, n)
		for i, v := range c.GetFp32Contents() {
			if out.Fp32Contents[i], err = a.float32(v); err != nil {
				return nil, fmt.Errorf("fp32_contents[%d]: %w", i, err)
			}
		}
	case "FP64":
		if err := count("fp64_contents", len(c.GetFp64Contents())); err != nil {
			return nil, err
		}
		out.Fp64Contents = make([]float64, n)
		for i, v := range c.GetFp64Contents() {
			if out.Fp64Contents[i], err = a.float64(v); err != nil {
				return nil, fmt.Errorf("fp64_contents[%d]: %w", i, err)
			}
		}
	default: // FP16
		return nil, fmt.Errorf("datatype %s has no typed contents: send it as raw_input_contents", datatype)
	}
	return out, nil
}

// v2MapRaw applies a to every little-endian element of raw contents.
func v2MapRaw(datatype string, b []byte, n int, a arith) ([]byte, error) {
	typ, ok := v2Types[datatype]
	width := v2Width[datatype]
	if !ok || width == 0 {
		return nil, fmt.Errorf("datatype %q is not supported (numeric types only)", datatype)
	}
	if len(b) != n*width {
		return nil, fmt.Errorf("raw contents have %d bytes, want %d for %d %s elements", len(b), n*width, n, datatype)
	}
	out := make([]byte, len(b))
	for i := 0; i < n; i++ {
		in, o := b[i*width:(i+1)*width], out[i*width:(i+1)*width]
		var err error
		switch {
		case datatype == "FP16":
			var h uint16
			h, err = a.half(binary.LittleEndian.Uint16(in))
			binary.LittleEndian.PutUint16(o, h)
		case datatype == "FP32":
			var f float32
			f, err = a.float32(math.Float32frombits(binary.LittleEndian.Uint32(in)))
			binary.LittleEndian.PutUint32(o, math.Float32bits(f))
		case datatype == "FP64":
			var f float64
			f, err = a.float64(math.Float64frombits(binary.LittleEndian.Uint64(in)))
			binary.LittleEndian.PutUint64(o, math.Float64bits(f))
		case typ.min.Sign() < 0:
			var d int64
			d, err = a.int(readInt(in, true), v2IntRange(typ))
			writeInt(o, d)
		default:
			var d uint64
			d, err = a.uint(uint64(readInt(in, false)), typ.max.Uint64())
			writeInt(o, int64(d))
		}
		if err != nil {
			return nil, fmt.Errorf("raw element %d: %s %w", i, datatype, err)
		}
	}
	return out, nil
}

func v2IntRange(t v2Type) tfInt { return tfInt{min: t.min.Int64(), max: t.max.Int64()} }
