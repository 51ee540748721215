package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
	"github.com/seldon-kafka/sidecar/protocols/v2/v2pb"
)

// Request sizes: a "1k" request is a tensor of 14×10 six-digit integers (about 1 KB as JSON; the seldon
// test model answers each row's sum and product, which a row of 10 such numbers keeps finite), a
// "cifar10" request one 32×32×3 image, each channel a float in [0, 1] as a Python client writes a
// CIFAR10 image divided by 255 (about 60 KB as JSON, 12 KB as a float32 tensor).
const (
	size1K      = "1k"
	sizeCIFAR10 = "cifar10"

	rows1K, cols1K = 14, 10
	imageSide      = 32
	imageChannels  = 3

	// variants is how many different requests of a kind a run sends, in turn: the values differ, the
	// shapes do not.
	variants = 16
)

// payload is what a scenario sends: the record values, and for gRPC the messages they encode (the
// model-direct load calls the model with those).
type payload struct {
	values    [][]byte
	messages  []proto.Message // gRPC only
	protoName string          // the proto-name header, gRPC only
}

func (p payload) value(i int) []byte { return p.values[i%len(p.values)] }

// newPayload builds the requests of a protocol, transport and size, from a fixed seed so that every run
// sends the same bytes.
func newPayload(protocol, transport, size string) (payload, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	var p payload
	for range variants {
		var (
			value []byte
			msg   proto.Message
			err   error
		)
		switch size {
		case size1K:
			value, msg, err = request1K(protocol, transport, integers(rng))
		case sizeCIFAR10:
			value, msg, err = requestImage(protocol, transport, image(rng))
		default:
			err = fmt.Errorf("unknown request size %q", size)
		}
		if err != nil {
			return payload{}, err
		}
		if msg != nil {
			if value, err = proto.Marshal(msg); err != nil {
				return payload{}, fmt.Errorf("encoding a %s request: %w", protocol, err)
			}
			p.messages = append(p.messages, msg)
			p.protoName = string(msg.ProtoReflect().Descriptor().FullName())
		}
		p.values = append(p.values, value)
	}
	return p, nil
}

// integers are the 14×10 six-digit integers of a 1k request, row after row.
func integers(rng *rand.Rand) []int64 {
	v := make([]int64, rows1K*cols1K)
	for i := range v {
		v[i] = 100000 + rng.Int64N(900000)
	}
	return v
}

// image is a CIFAR10-sized image, height × width × channel, each value a byte divided by 255.
func image(rng *rand.Rand) []float64 {
	v := make([]float64, imageSide*imageSide*imageChannels)
	for i := range v {
		v[i] = float64(rng.IntN(256)) / 255
	}
	return v
}

func request1K(protocol, transport string, v []int64) ([]byte, proto.Message, error) {
	switch protocol + "/" + transport {
	case "seldon/rest":
		b := []byte(`{"data":{"ndarray":`)
		b = appendRows(b, v, cols1K)
		return append(b, "}}"...), nil, nil
	case "tensorflow/rest":
		b := []byte(`{"instances":`)
		b = appendRows(b, v, cols1K)
		return append(b, '}'), nil, nil
	case "v2/rest":
		b := fmt.Appendf(nil, `{"inputs":[{"name":"input-0","shape":[%d,%d],"datatype":"INT64","data":`, rows1K, cols1K)
		b = appendNumbers(b, v)
		return append(b, "}]}"...), nil, nil
	case "seldon/grpc":
		rows := make([]any, rows1K)
		for r := range rows {
			row := make([]any, cols1K)
			for c := range row {
				row[c] = float64(v[r*cols1K+c])
			}
			rows[r] = row
		}
		nd, err := structpb.NewList(rows)
		if err != nil {
			return nil, nil, err
		}
		return nil, &seldonpb.SeldonMessage{DataOneof: &seldonpb.SeldonMessage_Data{
			Data: &seldonpb.DefaultData{DataOneof: &seldonpb.DefaultData_Ndarray{Ndarray: nd}}}}, nil
	case "tensorflow/grpc":
		return nil, &tfpb.PredictRequest{Inputs: map[string]*tfpb.TensorProto{"input": {
			Dtype: tfpb.DataType_DT_INT64, TensorShape: shape(rows1K, cols1K), Int64Val: v}}}, nil
	case "v2/grpc":
		return nil, &v2pb.ModelInferRequest{Inputs: []*v2pb.ModelInferRequest_InferInputTensor{{
			Name: "input-0", Datatype: "INT64", Shape: []int64{rows1K, cols1K},
			Contents: &v2pb.InferTensorContents{Int64Contents: v}}}}, nil
	}
	return nil, nil, fmt.Errorf("no 1k request for %s over %s", protocol, transport)
}

// appendRows appends v as a JSON array of rows of n numbers.
func appendRows(b []byte, v []int64, n int) []byte {
	b = append(b, '[')
	for r := 0; r < len(v); r += n {
		if r > 0 {
			b = append(b, ',')
		}
		b = appendNumbers(b, v[r:r+n])
	}
	return append(b, ']')
}

// appendNumbers appends v as a JSON array of numbers.
func appendNumbers(b []byte, v []int64) []byte {
	b = append(b, '[')
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, x, 10)
	}
	return append(b, ']')
}

func requestImage(protocol, transport string, v []float64) ([]byte, proto.Message, error) {
	switch protocol + "/" + transport {
	case "tensorflow/rest":
		// {"instances":[image]}, the image nested height, width, channel.
		b := []byte(`{"instances":[[`)
		for y := range imageSide {
			if y > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			for x := range imageSide {
				if x > 0 {
					b = append(b, ',')
				}
				b = append(b, '[')
				for c := range imageChannels {
					if c > 0 {
						b = append(b, ',')
					}
					b = strconv.AppendFloat(b, v[(y*imageSide+x)*imageChannels+c], 'g', -1, 64)
				}
				b = append(b, ']')
			}
			b = append(b, ']')
		}
		return append(b, "]]}"...), nil, nil
	case "tensorflow/grpc":
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		return nil, &tfpb.PredictRequest{Inputs: map[string]*tfpb.TensorProto{"input": {
			Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(1, imageSide, imageSide, imageChannels), FloatVal: f}}}, nil
	}
	return nil, nil, fmt.Errorf("no cifar10 request for %s over %s", protocol, transport)
}

func shape(dims ...int64) *tfpb.TensorShapeProto {
	s := &tfpb.TensorShapeProto{}
	for _, d := range dims {
		s.Dim = append(s.Dim, &tfpb.TensorShapeProto_Dim{Size: d})
	}
	return s
}
