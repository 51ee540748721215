package batch

import (
	"encoding/binary"
	"maps"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
	"github.com/seldon-kafka/sidecar/protocols/v2/v2pb"
)

// Over gRPC a request arrives decoded (the walker's Check keeps the message on the request): a batch
// is a new message whose tensors hold every record's rows, and each answer a new message holding a
// slice of the batch answer's tensors (sharing its arrays: answers are only read, to be encoded).

// only reports whether m sets no field but those named, and carries no unknown field: a field the
// codec does not know how to batch sends the request alone.
func only(m protoreflect.Message, names ...protoreflect.Name) bool {
	ok := len(m.GetUnknown()) == 0
	m.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		ok = ok && slices.Contains(names, fd.Name())
		return ok
	})
	return ok
}

// keyOf is a message's bytes, for a key: batch-mates must agree on it.
func keyOf(m proto.Message) string {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	return string(b)
}

func protoRequest(parts []part, m proto.Message) *protocols.Request {
	return &protocols.Request{Decoded: m, ProtoName: parts[0].req.ProtoName, ContentType: parts[0].req.ContentType}
}

// column is a repeated field that holds a tensor's elements.
type column[M any] interface {
	size(M) int
	// cat sets dst's field to every src's, in order.
	cat(dst M, srcs []M)
	// cut sets dst's field to src's entries [from, to).
	cut(dst, src M, from, to int)
}

// repeated is the column of one repeated field, reached through its address.
type repeated[M any, E any] func(M) *[]E

func (f repeated[M, E]) size(m M) int { return len(*f(m)) }

func (f repeated[M, E]) cat(dst M, srcs []M) {
	n := 0
	for _, s := range srcs {
		n += len(*f(s))
	}
	out := make([]E, 0, n)
	for _, s := range srcs {
		out = append(out, *f(s)...)
	}
	*f(dst) = out
}

func (f repeated[M, E]) cut(dst, src M, from, to int) { *f(dst) = (*f(src))[from:to:to] }

// columnOf is the one column of cols that is set on m; ok is false when none or several are.
func columnOf[M any](cols []column[M], m M) (int, bool) {
	found := -1
	for i, c := range cols {
		if c.size(m) > 0 {
			if found >= 0 {
				return 0, false
			}
			found = i
		}
	}
	return found, found >= 0
}

// dimsOf reads a shape: at least one dimension, none negative or too large for a request.
func dimsOf(shape []int64) ([]int, bool) {
	if len(shape) == 0 {
		return nil, false
	}
	dims := make([]int, len(shape))
	for i, d := range shape {
		if d < 0 || d > 1<<31 {
			return nil, false
		}
		dims[i] = int(d)
	}
	return dims, true
}

// ---- tensorflow ----

// tensorflowGRPC batches PredictRequests: every input tensor's first dimension is the batch, its
// elements in tensor_content or in one typed field (float_val, int_val, …). Requests batch when they
// name the same model spec, output filter, inputs, dtypes and the other dimensions; a tensor given by
// one value for all its elements (TF's shorthand), another request type, or any other field set, and
// the request is called alone.
type tensorflowGRPC struct{}

// tfColumns are the TensorProto fields that hold elements; each entry of tensor_content is a byte.
var tfColumns = []column[*tfpb.TensorProto]{
	repeated[*tfpb.TensorProto, byte](func(t *tfpb.TensorProto) *[]byte { return &t.TensorContent }),
	repeated[*tfpb.TensorProto, int32](func(t *tfpb.TensorProto) *[]int32 { return &t.HalfVal }),
	repeated[*tfpb.TensorProto, float32](func(t *tfpb.TensorProto) *[]float32 { return &t.FloatVal }),
	repeated[*tfpb.TensorProto, float64](func(t *tfpb.TensorProto) *[]float64 { return &t.DoubleVal }),
	repeated[*tfpb.TensorProto, int32](func(t *tfpb.TensorProto) *[]int32 { return &t.IntVal }),
	repeated[*tfpb.TensorProto, []byte](func(t *tfpb.TensorProto) *[][]byte { return &t.StringVal }),
	repeated[*tfpb.TensorProto, float32](func(t *tfpb.TensorProto) *[]float32 { return &t.ScomplexVal }),
	repeated[*tfpb.TensorProto, int64](func(t *tfpb.TensorProto) *[]int64 { return &t.Int64Val }),
	repeated[*tfpb.TensorProto, bool](func(t *tfpb.TensorProto) *[]bool { return &t.BoolVal }),
	repeated[*tfpb.TensorProto, float64](func(t *tfpb.TensorProto) *[]float64 { return &t.DcomplexVal }),
}

const tfContent = 0 // tfColumns' tensor_content

// tfWidth is the bytes an element takes in tensor_content, by dtype; string tensors have none.
var tfWidth = map[tfpb.DataType]int{
	tfpb.DataType_DT_FLOAT: 4, tfpb.DataType_DT_DOUBLE: 8, tfpb.DataType_DT_INT32: 4, tfpb.DataType_DT_UINT8: 1,
	tfpb.DataType_DT_INT16: 2, tfpb.DataType_DT_INT8: 1, tfpb.DataType_DT_COMPLEX64: 8, tfpb.DataType_DT_INT64: 8,
	tfpb.DataType_DT_BOOL: 1, tfpb.DataType_DT_QINT8: 1, tfpb.DataType_DT_QUINT8: 1, tfpb.DataType_DT_QINT32: 4,
	tfpb.DataType_DT_BFLOAT16: 2, tfpb.DataType_DT_QINT16: 2, tfpb.DataType_DT_QUINT16: 2, tfpb.DataType_DT_UINT16: 2,
	tfpb.DataType_DT_COMPLEX128: 16, tfpb.DataType_DT_HALF: 2,
}

// tfTensor reads a tensor: its dimensions, the column holding its elements and the entries an element
// takes there; ok is false unless it holds exactly the elements its shape says.
func tfTensor(t *tfpb.TensorProto) (dims []int, col, each int, ok bool) {
	if t == nil || !only(t.TensorShape.ProtoReflect(), "dim") {
		return nil, 0, 0, false
	}
	shape := make([]int64, len(t.TensorShape.GetDim()))
	for i, d := range t.TensorShape.GetDim() {
		shape[i] = d.GetSize()
	}
	if dims, ok = dimsOf(shape); !ok || dims[0] < 1 {
		return nil, 0, 0, false
	}
	per, ok := perRow(dims)
	if !ok {
		return nil, 0, 0, false
	}
	if col, ok = columnOf(tfColumns, t); !ok {
		return nil, 0, 0, false
	}
	switch {
	case col == tfContent:
		each = tfWidth[t.Dtype]
	case t.Dtype == tfpb.DataType_DT_COMPLEX64 || t.Dtype == tfpb.DataType_DT_COMPLEX128:
		each = 2 // real and imaginary parts
	default:
		each = 1
	}
	return dims, col, each, each > 0 && tfColumns[col].size(t) == dims[0]*per*each
}

// withRows is a copy of shape with its first dimension n.
func withRows(shape *tfpb.TensorShapeProto, n int) *tfpb.TensorShapeProto {
	dims := slices.Clone(shape.GetDim())
	dims[0] = &tfpb.TensorShapeProto_Dim{Size: int64(n), Name: dims[0].GetName()}
	return &tfpb.TensorShapeProto{Dim: dims}
}

func (tensorflowGRPC) read(req *protocols.Request) (part, bool) {
	r, ok := req.Decoded.(*tfpb.PredictRequest)
	if !ok || len(r.Inputs) == 0 || !only(r.ProtoReflect(), "model_spec", "inputs", "output_filter") {
		return part{}, false
	}
	var key strings.Builder
	key.WriteString(keyOf(r.ModelSpec))
	key.WriteString("\x00" + strings.Join(r.OutputFilter, "\x01"))
	rows := -1
	for _, name := range slices.Sorted(maps.Keys(r.Inputs)) {
		t := r.Inputs[name]
		if t == nil || !only(t.ProtoReflect(), "dtype", "tensor_shape", "version_number", "tensor_content", "half_val",
			"float_val", "double_val", "int_val", "string_val", "scomplex_val", "int64_val", "bool_val", "dcomplex_val") {
			return part{}, false
		}
		dims, col, _, ok := tfTensor(t)
		if !ok || rows >= 0 && dims[0] != rows {
			return part{}, false
		}
		rows = dims[0]
		// The tensor's all but its first dimension, whose size the key leaves out.
		rest := proto.Clone(t.TensorShape).(*tfpb.TensorShapeProto)
		rest.Dim[0].Size = 0
		key.WriteString("\x00" + name + "\x01" + t.Dtype.String() + "\x01" + strconv.Itoa(int(t.VersionNumber)) +
			"\x01" + strconv.Itoa(col) + "\x01" + keyOf(rest))
	}
	return part{key: key.String(), rows: rows, req: req, v: r}, true
}

func (tensorflowGRPC) merge(parts []part) *protocols.Request {
	first := parts[0].v.(*tfpb.PredictRequest)
	out := &tfpb.PredictRequest{ModelSpec: first.ModelSpec, OutputFilter: first.OutputFilter,
		Inputs: make(map[string]*tfpb.TensorProto, len(first.Inputs))}
	for name, t := range first.Inputs {
		srcs := make([]*tfpb.TensorProto, len(parts))
		for i, p := range parts {
			srcs[i] = p.v.(*tfpb.PredictRequest).Inputs[name]
		}
		m := &tfpb.TensorProto{Dtype: t.Dtype, VersionNumber: t.VersionNumber, TensorShape: withRows(t.TensorShape, totalRows(parts))}
		_, col, _, _ := tfTensor(t)
		tfColumns[col].cat(m, srcs)
		out.Inputs[name] = m
	}
	return protoRequest(parts, out)
}

func (tensorflowGRPC) split(resp *protocols.Response, parts []part) ([]*protocols.Response, error) {
	r, ok := resp.Decoded.(*tfpb.PredictResponse)
	if !ok {
		return nil, mismatch("the answer is a %s, not a PredictResponse", resp.ProtoName)
	}
	total := totalRows(parts)
	outs := make([]*tfpb.PredictResponse, len(parts))
	for i := range outs {
		outs[i] = &tfpb.PredictResponse{ModelSpec: r.ModelSpec, Outputs: make(map[string]*tfpb.TensorProto, len(r.Outputs))}
	}
	for name, t := range r.Outputs {
		dims, col, each, ok := tfTensor(t)
		if !ok || dims[0] != total {
			return nil, mismatch("output %q is not a tensor of %d rows", name, total)
		}
		per, _ := perRow(dims)
		at := 0
		for i, p := range parts {
			m := &tfpb.TensorProto{Dtype: t.Dtype, VersionNumber: t.VersionNumber, TensorShape: withRows(t.TensorShape, p.rows)}
			n := p.rows * per * each
			tfColumns[col].cut(m, t, at, at+n)
			at += n
			outs[i].Outputs[name] = m
		}
	}
	return answers(resp, outs), nil
}

func answers[M proto.Message](resp *protocols.Response, msgs []M) []*protocols.Response {
	out := make([]*protocols.Response, len(msgs))
	for i, m := range msgs {
		out[i] = &protocols.Response{Decoded: m, ContentType: resp.ContentType, ProtoName: resp.ProtoName}
	}
	return out
}

// ---- v2 ----

// v2GRPC batches ModelInferRequests: every input's shape[0] is the batch dimension, its elements in
// one typed field of its contents or, for every input at once, in raw_input_contents. Requests batch
// when they name the same model and version, inputs, datatypes, other dimensions and requested
// outputs, and either all have an id or none has; a request with parameters is called alone.
type v2GRPC struct{}

var v2Columns = []column[*v2pb.InferTensorContents]{
	repeated[*v2pb.InferTensorContents, bool](func(c *v2pb.InferTensorContents) *[]bool { return &c.BoolContents }),
	repeated[*v2pb.InferTensorContents, int32](func(c *v2pb.InferTensorContents) *[]int32 { return &c.IntContents }),
	repeated[*v2pb.InferTensorContents, int64](func(c *v2pb.InferTensorContents) *[]int64 { return &c.Int64Contents }),
	repeated[*v2pb.InferTensorContents, uint32](func(c *v2pb.InferTensorContents) *[]uint32 { return &c.UintContents }),
	repeated[*v2pb.InferTensorContents, uint64](func(c *v2pb.InferTensorContents) *[]uint64 { return &c.Uint64Contents }),
	repeated[*v2pb.InferTensorContents, float32](func(c *v2pb.InferTensorContents) *[]float32 { return &c.Fp32Contents }),
	repeated[*v2pb.InferTensorContents, float64](func(c *v2pb.InferTensorContents) *[]float64 { return &c.Fp64Contents }),
	repeated[*v2pb.InferTensorContents, []byte](func(c *v2pb.InferTensorContents) *[][]byte { return &c.BytesContents }),
}

// v2Width is the bytes an element of a datatype takes in raw contents; BYTES elements are each a
// 4-byte little-endian length and that many bytes.
var v2Width = map[string]int{"BOOL": 1, "UINT8": 1, "UINT16": 2, "UINT32": 4, "UINT64": 8, "INT8": 1, "INT16": 2,
	"INT32": 4, "INT64": 8, "FP16": 2, "BF16": 2, "FP32": 4, "FP64": 8}

// rawCuts is where raw contents of a datatype end after each count of elements, in bytes; ok is false
// unless they hold exactly the elements counted.
func rawCuts(datatype string, b []byte, counts []int) (ends []int, ok bool) {
	ends = make([]int, len(counts))
	at := 0
	for i, n := range counts {
		if w := v2Width[datatype]; w > 0 {
			at += n * w
		} else if datatype == "BYTES" {
			for range n {
				if len(b)-at < 4 {
					return nil, false
				}
				l := int(binary.LittleEndian.Uint32(b[at:]))
				if l > len(b)-at-4 {
					return nil, false
				}
				at += 4 + l
			}
		} else {
			return nil, false
		}
		ends[i] = at
	}
	return ends, at == len(b)
}

// v2Tensor reads an input or output tensor: its dimensions and elements, held in contents (the column)
// or in raw (col -1); ok is false unless it holds exactly the elements its shape says.
func v2Tensor(datatype string, shape []int64, contents *v2pb.InferTensorContents, raw []byte, isRaw bool) (dims []int, col int, ok bool) {
	if dims, ok = dimsOf(shape); !ok || dims[0] < 1 {
		return nil, 0, false
	}
	per, ok := perRow(dims)
	if !ok {
		return nil, 0, false
	}
	if isRaw {
		_, ok = rawCuts(datatype, raw, []int{dims[0] * per})
		return dims, -1, ok && contents == nil
	}
	if contents == nil || !only(contents.ProtoReflect(), "bool_contents", "int_contents", "int64_contents", "uint_contents",
		"uint64_contents", "fp32_contents", "fp64_contents", "bytes_contents") {
		return nil, 0, false
	}
	col, ok = columnOf(v2Columns, contents)
	return dims, col, ok && v2Columns[col].size(contents) == dims[0]*per
}

func (v2GRPC) read(req *protocols.Request) (part, bool) {
	r, ok := req.Decoded.(*v2pb.ModelInferRequest)
	if !ok || len(r.Inputs) == 0 || !only(r.ProtoReflect(), "model_name", "model_version", "id", "inputs", "outputs", "raw_input_contents") {
		return part{}, false
	}
	isRaw := len(r.RawInputContents) > 0
	if isRaw && len(r.RawInputContents) != len(r.Inputs) {
		return part{}, false
	}
	var key strings.Builder
	key.WriteString(r.ModelName + "\x00" + r.ModelVersion + "\x00" + strconv.FormatBool(r.Id != "") + strconv.FormatBool(isRaw))
	for _, o := range r.Outputs {
		key.WriteString("\x00" + keyOf(o))
	}
	rows := -1
	for i, in := range r.Inputs {
		if !only(in.ProtoReflect(), "name", "datatype", "shape", "contents") {
			return part{}, false
		}
		var raw []byte
		if isRaw {
			raw = r.RawInputContents[i]
		}
		dims, col, ok := v2Tensor(in.Datatype, in.Shape, in.Contents, raw, isRaw)
		if !ok || rows >= 0 && dims[0] != rows {
			return part{}, false
		}
		rows = dims[0]
		key.WriteString("\x01" + in.Name + "\x00" + in.Datatype + "\x00" + strconv.Itoa(col))
		for _, d := range dims[1:] {
			key.WriteString("\x00" + strconv.Itoa(d))
		}
	}
	return part{key: key.String(), rows: rows, req: req, v: r}, true
}

func (v2GRPC) merge(parts []part) *protocols.Request {
	first := parts[0].v.(*v2pb.ModelInferRequest)
	// The batch goes under the first record's id; each answer gets its own back.
	out := &v2pb.ModelInferRequest{ModelName: first.ModelName, ModelVersion: first.ModelVersion, Id: first.Id, Outputs: first.Outputs}
	total := int64(totalRows(parts))
	for i, in := range first.Inputs {
		t := &v2pb.ModelInferRequest_InferInputTensor{Name: in.Name, Datatype: in.Datatype,
			Shape: append([]int64{total}, in.Shape[1:]...)}
		if len(first.RawInputContents) > 0 {
			var raw []byte
			for _, p := range parts {
				raw = append(raw, p.v.(*v2pb.ModelInferRequest).RawInputContents[i]...)
			}
			out.RawInputContents = append(out.RawInputContents, raw)
		} else {
			srcs := make([]*v2pb.InferTensorContents, len(parts))
			for j, p := range parts {
				srcs[j] = p.v.(*v2pb.ModelInferRequest).Inputs[i].Contents
			}
			col, _ := columnOf(v2Columns, in.Contents)
			t.Contents = &v2pb.InferTensorContents{}
			v2Columns[col].cat(t.Contents, srcs)
		}
		out.Inputs = append(out.Inputs, t)
	}
	return protoRequest(parts, out)
}

func (v2GRPC) split(resp *protocols.Response, parts []part) ([]*protocols.Response, error) {
	r, ok := resp.Decoded.(*v2pb.ModelInferResponse)
	if !ok {
		return nil, mismatch("the answer is a %s, not a ModelInferResponse", resp.ProtoName)
	}
	isRaw := len(r.RawOutputContents) > 0
	if isRaw && len(r.RawOutputContents) != len(r.Outputs) {
		return nil, mismatch("%d raw_output_contents for %d outputs", len(r.RawOutputContents), len(r.Outputs))
	}
	total := totalRows(parts)
	outs := make([]*v2pb.ModelInferResponse, len(parts))
	for i, p := range parts {
		id := r.Id
		if own := p.v.(*v2pb.ModelInferRequest).Id; own != "" {
			id = own
		}
		outs[i] = &v2pb.ModelInferResponse{ModelName: r.ModelName, ModelVersion: r.ModelVersion, Id: id, Parameters: r.Parameters}
	}
	for k, o := range r.Outputs {
		var raw []byte
		if isRaw {
			raw = r.RawOutputContents[k]
		}
		dims, col, ok := v2Tensor(o.Datatype, o.Shape, o.Contents, raw, isRaw)
		if !ok || dims[0] != total {
			return nil, mismatch("output %q is not a tensor of %d rows", o.Name, total)
		}
		per, _ := perRow(dims)
		counts := make([]int, len(parts))
		for i, p := range parts {
			counts[i] = p.rows * per
		}
		var ends []int
		if isRaw {
			ends, _ = rawCuts(o.Datatype, raw, counts)
		}
		at := 0
		for i, p := range parts {
			t := &v2pb.ModelInferResponse_InferOutputTensor{Name: o.Name, Datatype: o.Datatype, Parameters: o.Parameters,
				Shape: append([]int64{int64(p.rows)}, o.Shape[1:]...)}
			if isRaw {
				outs[i].RawOutputContents = append(outs[i].RawOutputContents, raw[at:ends[i]:ends[i]])
				at = ends[i]
			} else {
				t.Contents = &v2pb.InferTensorContents{}
				v2Columns[col].cut(t.Contents, o.Contents, at, at+counts[i])
				at += counts[i]
			}
			outs[i].Outputs = append(outs[i].Outputs, t)
		}
	}
	return answers(resp, outs), nil
}

// ---- seldon ----

// seldonGRPC batches SeldonMessages whose data is an ndarray of rows (each a list), as seldonREST does
// over REST: batch-mates have the same names, meta and row shape.
type seldonGRPC struct{}

// ndarrayOf is a SeldonMessage's data.ndarray when that is all its data holds.
func ndarrayOf(m *seldonpb.SeldonMessage) (*seldonpb.DefaultData, []*structpb.Value, bool) {
	d := m.GetData()
	if d == nil || !only(d.ProtoReflect(), "names", "ndarray") || d.GetNdarray() == nil || !only(d.GetNdarray().ProtoReflect(), "values") {
		return nil, nil, false
	}
	return d, d.GetNdarray().GetValues(), true
}

func (seldonGRPC) read(req *protocols.Request) (part, bool) {
	r, ok := req.Decoded.(*seldonpb.SeldonMessage)
	if !ok || !only(r.ProtoReflect(), "meta", "data") {
		return part{}, false
	}
	d, rows, ok := ndarrayOf(r)
	if !ok || len(rows) == 0 || rows[0].GetListValue() == nil {
		return part{}, false
	}
	var key strings.Builder
	writeValueShape(&key, rows[0])
	key.WriteString("\x00" + strings.Join(d.Names, "\x01") + "\x00" + keyOf(r.Meta))
	return part{key: key.String(), rows: len(rows), req: req, v: rows}, true
}

// writeValueShape is writeShape for a structpb value: list lengths along the first elements, a
// struct's members, the kind of its scalars.
func writeValueShape(b *strings.Builder, v *structpb.Value) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_ListValue:
		vs := k.ListValue.GetValues()
		b.WriteString("[" + strconv.Itoa(len(vs)))
		if len(vs) > 0 {
			writeValueShape(b, vs[0])
		}
		b.WriteByte(']')
	case *structpb.Value_StructValue:
		fields := k.StructValue.GetFields()
		b.WriteByte('{')
		for _, name := range slices.Sorted(maps.Keys(fields)) {
			b.WriteString(strconv.Quote(name) + ":")
			writeValueShape(b, fields[name])
			b.WriteByte(',')
		}
		b.WriteByte('}')
	case *structpb.Value_NumberValue:
		b.WriteString("number")
	case *structpb.Value_StringValue:
		b.WriteString("string")
	case *structpb.Value_BoolValue:
		b.WriteString("bool")
	default:
		b.WriteString("null")
	}
}

func (seldonGRPC) merge(parts []part) *protocols.Request {
	first := parts[0].req.Decoded.(*seldonpb.SeldonMessage)
	var rows []*structpb.Value
	for _, p := range parts {
		rows = append(rows, p.v.([]*structpb.Value)...)
	}
	return protoRequest(parts, &seldonpb.SeldonMessage{Meta: first.Meta, DataOneof: ndarray(first.GetData().GetNames(), rows)})
}

func ndarray(names []string, rows []*structpb.Value) *seldonpb.SeldonMessage_Data {
	return &seldonpb.SeldonMessage_Data{Data: &seldonpb.DefaultData{Names: names,
		DataOneof: &seldonpb.DefaultData_Ndarray{Ndarray: &structpb.ListValue{Values: rows}}}}
}

func (seldonGRPC) split(resp *protocols.Response, parts []part) ([]*protocols.Response, error) {
	r, ok := resp.Decoded.(*seldonpb.SeldonMessage)
	if !ok {
		return nil, mismatch("the answer is a %s, not a SeldonMessage", resp.ProtoName)
	}
	d, rows, ok := ndarrayOf(r)
	if !ok || len(rows) != totalRows(parts) {
		return nil, mismatch("the answer's data.ndarray does not have the %d rows sent", totalRows(parts))
	}
	outs := make([]*seldonpb.SeldonMessage, len(parts))
	at := 0
	for i, p := range parts {
		outs[i] = &seldonpb.SeldonMessage{Status: r.Status, Meta: r.Meta, DataOneof: ndarray(d.Names, rows[at:at+p.rows:at+p.rows])}
		at += p.rows
	}
	return answers(resp, outs), nil
}
