package testmodel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
)

// TensorflowPredictProto answers a PredictRequest the way the test model does on
// tensorflow.serving.PredictionService/Predict: every input tensor comes back as the output of the
// same name with every number doubled, as TensorflowPredict does for the REST columnar format. The
// dtype, the shape and the representation (typed values or tensor_content) are kept. Numeric dtypes
// only: DT_FLOAT, DT_DOUBLE, DT_HALF, DT_INT8/16/32/64, DT_UINT8/16; integers are doubled exactly and
// a double out of the dtype's range is refused. output_filter, when given, picks the outputs. The
// response's model_spec is the served model, version 1. It is TensorflowTransformProto for RoleModel.
func TensorflowPredictProto(model string, req *tfpb.PredictRequest) (*tfpb.PredictResponse, error) {
	return TensorflowTransformProto(RoleModel, model, req)
}

// TensorflowTransformProto answers a PredictRequest the way a test model playing role does on
// tensorflow.serving.PredictionService/Predict: as TensorflowPredictProto, with the role's function
// (see Role) in place of doubling: x*2 for a model, x+1 for a transformer, x*10 for an output
// transformer. Outputs keep the input names for every role, so nodes chain. Integers stay exact, floats
// are computed in float64 and rounded once to the dtype (halves to nearest, ties to even); a result out
// of the dtype's range is refused.
func TensorflowTransformProto(role Role, model string, req *tfpb.PredictRequest) (*tfpb.PredictResponse, error) {
	a, err := role.arith()
	if err != nil {
		return nil, err
	}
	if len(req.GetInputs()) == 0 {
		return nil, errors.New("request has no inputs")
	}
	names := req.GetOutputFilter()
	if len(names) == 0 {
		for name := range req.GetInputs() {
			names = append(names, name)
		}
	}
	out := &tfpb.PredictResponse{ModelSpec: servedSpec(model), Outputs: make(map[string]*tfpb.TensorProto, len(names))}
	for _, name := range names {
		in, ok := req.GetInputs()[name]
		if !ok {
			return nil, fmt.Errorf("output_filter: no tensor named %q", name)
		}
		d, err := mapTensor(in, a)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", name, err)
		}
		out.Outputs[name] = d
	}
	return out, nil
}

// TensorflowClassifyProto answers a ClassificationRequest the way the test model does on
// tensorflow.serving.PredictionService/Classify: one Classifications per example (context features
// merged in), holding, for each numeric feature in name order and each of its values, a class
// labelled with the feature's name (with "[i]" when it has several values) scored with the value
// doubled. Bytes features are skipped; an example with no number is refused.
func TensorflowClassifyProto(req *tfpb.ClassificationRequest) (*tfpb.ClassificationResponse, error) {
	res, err := classify(req.GetInput())
	if err != nil {
		return nil, err
	}
	return &tfpb.ClassificationResponse{Result: res}, nil
}

// TensorflowRegressProto answers a RegressionRequest the way the test model does on
// tensorflow.serving.PredictionService/Regress: one Regression per example (context features merged
// in) whose value is twice the sum of the example's numbers. An example with no number is refused.
func TensorflowRegressProto(model string, req *tfpb.RegressionRequest) (*tfpb.RegressionResponse, error) {
	res, err := regress(req.GetInput())
	if err != nil {
		return nil, err
	}
	return &tfpb.RegressionResponse{ModelSpec: servedSpec(model), Result: res}, nil
}

// Method names of the inference tasks MultiInference runs.
const (
	classifyMethod = "tensorflow/serving/classify"
	regressMethod  = "tensorflow/serving/regress"
)

// TensorflowMultiInferenceProto answers a MultiInferenceRequest the way the test model does on
// tensorflow.serving.PredictionService/MultiInference: one result per task, in order, each what
// TensorflowClassifyProto or TensorflowRegressProto answers for the shared input.
func TensorflowMultiInferenceProto(model string, req *tfpb.MultiInferenceRequest) (*tfpb.MultiInferenceResponse, error) {
	if len(req.GetTasks()) == 0 {
		return nil, errors.New("request has no tasks")
	}
	out := &tfpb.MultiInferenceResponse{}
	for i, task := range req.GetTasks() {
		r := &tfpb.InferenceResult{ModelSpec: servedSpec(model)}
		switch m := task.GetMethodName(); m {
		case classifyMethod:
			res, err := classify(req.GetInput())
			if err != nil {
				return nil, fmt.Errorf("task %d: %w", i, err)
			}
			r.Result = &tfpb.InferenceResult_ClassificationResult{ClassificationResult: res}
		case regressMethod:
			res, err := regress(req.GetInput())
			if err != nil {
				return nil, fmt.Errorf("task %d: %w", i, err)
			}
			r.Result = &tfpb.InferenceResult_RegressionResult{RegressionResult: res}
		default:
			return nil, fmt.Errorf("task %d: method_name %q is not %s or %s", i, abbreviate([]byte(m)), classifyMethod, regressMethod)
		}
		out.Results = append(out.Results, r)
	}
	return out, nil
}

func servedSpec(model string) *tfpb.ModelSpec {
	return &tfpb.ModelSpec{Name: model, Version: wrapperspb.Int64(1)}
}

func classify(in *tfpb.Input) (*tfpb.ClassificationResult, error) {
	exs, err := examples(in)
	if err != nil {
		return nil, err
	}
	res := &tfpb.ClassificationResult{}
	for i, ex := range exs {
		var classes []*tfpb.Class
		err := eachNumber(ex, func(label string, v float64) error {
			score := float32(2 * v)
			if math.IsInf(float64(score), 0) {
				return fmt.Errorf("doubling %s = %g overflows a float score", label, v)
			}
			classes = append(classes, &tfpb.Class{Label: label, Score: score})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("example %d: %w", i, err)
		}
		if len(classes) == 0 {
			return nil, fmt.Errorf("example %d has no numeric feature", i)
		}
		res.Classifications = append(res.Classifications, &tfpb.Classifications{Classes: classes})
	}
	return res, nil
}

func regress(in *tfpb.Input) (*tfpb.RegressionResult, error) {
	exs, err := examples(in)
	if err != nil {
		return nil, err
	}
	res := &tfpb.RegressionResult{}
	for i, ex := range exs {
		sum, n := 0.0, 0
		_ = eachNumber(ex, func(_ string, v float64) error { sum += v; n++; return nil })
		if n == 0 {
			return nil, fmt.Errorf("example %d has no numeric feature", i)
		}
		value := float32(2 * sum)
		if math.IsInf(float64(value), 0) || math.IsNaN(float64(value)) {
			return nil, fmt.Errorf("example %d: twice the sum %g is not a finite float", i, sum)
		}
		res.Regressions = append(res.Regressions, &tfpb.Regression{Value: value})
	}
	return res, nil
}

// examples returns the input's examples, each with the context's features merged in.
func examples(in *tfpb.Input) ([]*tfpb.Example, error) {
	switch k := in.GetKind().(type) {
	case *tfpb.Input_ExampleList:
		if len(k.ExampleList.GetExamples()) == 0 {
			return nil, errors.New("input has no examples")
		}
		return k.ExampleList.GetExamples(), nil
	case *tfpb.Input_ExampleListWithContext:
		exs := k.ExampleListWithContext.GetExamples()
		if len(exs) == 0 {
			return nil, errors.New("input has no examples")
		}
		ctx := k.ExampleListWithContext.GetContext().GetFeatures().GetFeature()
		out := make([]*tfpb.Example, len(exs))
		for i, ex := range exs {
			merged := make(map[string]*tfpb.Feature, len(ctx)+len(ex.GetFeatures().GetFeature()))
			for name, f := range ctx {
				merged[name] = f
			}
			for name, f := range ex.GetFeatures().GetFeature() {
				if _, dup := ctx[name]; dup {
					return nil, fmt.Errorf("example %d: feature %q is in the context too", i, name)
				}
				merged[name] = f
			}
			out[i] = &tfpb.Example{Features: &tfpb.Features{Feature: merged}}
		}
		return out, nil
	}
	return nil, errors.New("request has no input examples")
}

// eachNumber calls f for every number of an example's float and int64 features, in feature name
// order, with a label naming the feature (and the value's index when it has several).
func eachNumber(ex *tfpb.Example, f func(label string, v float64) error) error {
	features := ex.GetFeatures().GetFeature()
	names := make([]string, 0, len(features))
	for name := range features {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		var vals []float64
		switch k := features[name].GetKind().(type) {
		case *tfpb.Feature_FloatList:
			for _, v := range k.FloatList.GetValue() {
				if math.IsInf(float64(v), 0) || math.IsNaN(float64(v)) {
					return fmt.Errorf("feature %q holds %v", name, v)
				}
				vals = append(vals, float64(v))
			}
		case *tfpb.Feature_Int64List:
			for _, v := range k.Int64List.GetValue() {
				vals = append(vals, float64(v))
			}
		}
		for i, v := range vals {
			label := name
			if len(vals) > 1 {
				label += "[" + strconv.Itoa(i) + "]"
			}
			if err := f(label, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// tfInt describes the integer dtypes: their width in tensor_content and their range.
type tfInt struct {
	bytes    int
	min, max int64
}

var tfInts = map[tfpb.DataType]tfInt{
	tfpb.DataType_DT_INT8:   {1, math.MinInt8, math.MaxInt8},
	tfpb.DataType_DT_UINT8:  {1, 0, math.MaxUint8},
	tfpb.DataType_DT_INT16:  {2, math.MinInt16, math.MaxInt16},
	tfpb.DataType_DT_UINT16: {2, 0, math.MaxUint16},
	tfpb.DataType_DT_INT32:  {4, math.MinInt32, math.MaxInt32},
	tfpb.DataType_DT_INT64:  {8, math.MinInt64, math.MaxInt64},
}

// mapTensor applies a to every number of a numeric tensor, keeping its dtype, shape and
// representation.
func mapTensor(t *tfpb.TensorProto, a arith) (*tfpb.TensorProto, error) {
	n, err := tensorElements(t.GetTensorShape())
	if err != nil {
		return nil, err
	}
	out := &tfpb.TensorProto{Dtype: t.GetDtype(), TensorShape: proto.Clone(t.GetTensorShape()).(*tfpb.TensorShapeProto)}
	dt := t.GetDtype()
	if c := t.GetTensorContent(); len(c) > 0 {
		out.TensorContent, err = mapContent(dt, c, n, a)
		return out, err
	}
	count := func(got int) error {
		if got != n {
			return fmt.Errorf("%d values for shape %s of %d elements", got, shapeString(t.GetTensorShape()), n)
		}
		return nil
	}
	switch dt {
	case tfpb.DataType_DT_FLOAT:
		if err := count(len(t.GetFloatVal())); err != nil {
			return nil, err
		}
		out.FloatVal = make([]float32, n)
		for i, v := range t.GetFloatVal() {
			if out.FloatVal[i], err = a.float32(v); err != nil {
				return nil, fmt.Errorf("float_val[%d]: %w", i, err)
			}
		}
	case tfpb.DataType_DT_DOUBLE:
		if err := count(len(t.GetDoubleVal())); err != nil {
			return nil, err
		}
		out.DoubleVal = make([]float64, n)
		for i, v := range t.GetDoubleVal() {
			if out.DoubleVal[i], err = a.float64(v); err != nil {
				return nil, fmt.Errorf("double_val[%d]: %w", i, err)
			}
		}
	case tfpb.DataType_DT_HALF:
		if err := count(len(t.GetHalfVal())); err != nil {
			return nil, err
		}
		out.HalfVal = make([]int32, n)
		for i, v := range t.GetHalfVal() {
			if v < 0 || v > math.MaxUint16 {
				return nil, fmt.Errorf("half_val[%d]: %d is not 16 bits", i, v)
			}
			h, err := a.half(uint16(v))
			if err != nil {
				return nil, fmt.Errorf("half_val[%d]: %w", i, err)
			}
			out.HalfVal[i] = int32(h)
		}
	case tfpb.DataType_DT_INT64:
		if err := count(len(t.GetInt64Val())); err != nil {
			return nil, err
		}
		out.Int64Val = make([]int64, n)
		for i, v := range t.GetInt64Val() {
			if out.Int64Val[i], err = a.int(v, tfInts[dt]); err != nil {
				return nil, fmt.Errorf("int64_val[%d]: %w", i, err)
			}
		}
	case tfpb.DataType_DT_INT8, tfpb.DataType_DT_UINT8, tfpb.DataType_DT_INT16, tfpb.DataType_DT_UINT16, tfpb.DataType_DT_INT32:
		if err := count(len(t.GetIntVal())); err != nil {
			return nil, err
		}
		out.IntVal = make([]int32, n)
		for i, v := range t.GetIntVal() {
			d, err := a.int(int64(v), tfInts[dt])
			if err != nil {
				return nil, fmt.Errorf("int_val[%d]: %w", i, err)
			}
			out.IntVal[i] = int32(d)
		}
	default:
		return nil, fmt.Errorf("dtype %s is not supported (numbers only)", dt)
	}
	return out, nil
}

// mapContent applies a to the little-endian values of a tensor_content.
func mapContent(dt tfpb.DataType, c []byte, n int, a arith) ([]byte, error) {
	width := 0
	switch dt {
	case tfpb.DataType_DT_FLOAT:
		width = 4
	case tfpb.DataType_DT_DOUBLE:
		width = 8
	case tfpb.DataType_DT_HALF:
		width = 2
	default:
		it, ok := tfInts[dt]
		if !ok {
			return nil, fmt.Errorf("dtype %s is not supported (numbers only)", dt)
		}
		width = it.bytes
	}
	if len(c) != n*width {
		return nil, fmt.Errorf("tensor_content has %d bytes, want %d for %d %s values", len(c), n*width, n, dt)
	}
	out := make([]byte, len(c))
	for i := 0; i < n; i++ {
		b, o := c[i*width:(i+1)*width], out[i*width:(i+1)*width]
		var err error
		switch dt {
		case tfpb.DataType_DT_FLOAT:
			var f float32
			f, err = a.float32(math.Float32frombits(binary.LittleEndian.Uint32(b)))
			binary.LittleEndian.PutUint32(o, math.Float32bits(f))
		case tfpb.DataType_DT_DOUBLE:
			var f float64
			f, err = a.float64(math.Float64frombits(binary.LittleEndian.Uint64(b)))
			binary.LittleEndian.PutUint64(o, math.Float64bits(f))
		case tfpb.DataType_DT_HALF:
			var h uint16
			h, err = a.half(binary.LittleEndian.Uint16(b))
			binary.LittleEndian.PutUint16(o, h)
		default:
			it := tfInts[dt]
			var d int64
			d, err = a.int(readInt(b, it.min < 0), it)
			writeInt(o, d)
		}
		if err != nil {
			return nil, fmt.Errorf("tensor_content value %d: %w", i, err)
		}
	}
	return out, nil
}

// tensorElements is the number of elements a shape holds; an absent shape is a scalar.
func tensorElements(s *tfpb.TensorShapeProto) (int, error) {
	if s.GetUnknownRank() {
		return 0, errors.New("the shape's rank is unknown")
	}
	n := int64(1)
	for _, d := range s.GetDim() {
		if d.GetSize() < 0 {
			return 0, fmt.Errorf("shape %s has an unknown dimension", shapeString(s))
		}
		// Bounded well below overflow; no test tensor comes near it.
		if d.GetSize() > 0 && n > (1<<31)/d.GetSize() {
			return 0, fmt.Errorf("shape %s is too large", shapeString(s))
		}
		n *= d.GetSize()
	}
	return int(n), nil
}

func shapeString(s *tfpb.TensorShapeProto) string {
	dims := make([]int64, len(s.GetDim()))
	for i, d := range s.GetDim() {
		dims[i] = d.GetSize()
	}
	return fmt.Sprint(dims)
}

func readInt(b []byte, signed bool) int64 {
	var u uint64
	for i := len(b) - 1; i >= 0; i-- {
		u = u<<8 | uint64(b[i])
	}
	if signed && len(b) < 8 {
		shift := 64 - 8*uint(len(b))
		return int64(u<<shift) >> shift
	}
	return int64(u)
}

func writeInt(b []byte, v int64) {
	for i := range b {
		b[i] = byte(v >> (8 * uint(i)))
	}
}

// doubleHalf doubles an IEEE 754 half-precision number given as its bits. Doubling is exact: a
// normal number's exponent goes up by one, and a subnormal's mantissa shifts left, carrying into the
// exponent when it outgrows the subnormal range.
func doubleHalf(h uint16) (uint16, error) {
	sign, exp, mant := h&0x8000, (h>>10)&0x1f, h&0x3ff
	switch {
	case exp == 0x1f:
		return 0, fmt.Errorf("half value %#04x is not a finite number", h)
	case exp == 0x1e:
		return 0, fmt.Errorf("doubling half value %#04x overflows", h)
	case exp == 0:
		return sign | mant<<1, nil
	}
	return h + 0x400, nil
}
