package batch

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/rest"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
)

// What batching costs the sidecar per record, apart from the model: reading each request, merging the
// batch and cutting the answer back. Run with
//
//	go test -run '^$' -bench . ./executor/batch/
//
// and read cpu-ns/record: the process's CPU time (user and system, garbage collection included) per
// record, which a machine busy with other work changes less than the wall-clock ns/op.
func BenchmarkBatchOf32(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	row := func(n int) string {
		vs := make([]string, n)
		for i := range vs {
			vs[i] = fmt.Sprint(100000 + r.IntN(900000))
		}
		return "[" + strings.Join(vs, ",") + "]"
	}
	// About 1 KB: an ndarray of six-digit integers, as in issue 10's measurements (rows of 4, so that
	// the test model's row products stay finite).
	seldon1KB := func() string {
		rows := make([]string, 35)
		for i := range rows {
			rows[i] = row(4)
		}
		return `{"data":{"names":[],"ndarray":[` + strings.Join(rows, ",") + `]}}`
	}
	// A CIFAR10 image: 32×32×3 numbers as nested JSON, about 60 KB.
	cifar := func() string {
		px := make([]string, 32)
		for i := range px {
			cols := make([]string, 32)
			for j := range cols {
				cols[j] = fmt.Sprintf("[%d,%d,%d]", r.IntN(256), r.IntN(256), r.IntN(256))
			}
			px[i] = "[" + strings.Join(cols, ",") + "]"
		}
		return `{"instances":[[` + strings.Join(px, ",") + `]]}`
	}
	// The same image as a PredictRequest of float_val, as a record's value (protobuf).
	cifarProto := func() *protocols.Request {
		vs := make([]float32, 32*32*3)
		for i := range vs {
			vs[i] = float32(r.IntN(256))
		}
		m := &tfpb.PredictRequest{ModelSpec: &tfpb.ModelSpec{Name: "m"}, Inputs: map[string]*tfpb.TensorProto{
			"x": {Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(1, 32, 32, 3), FloatVal: vs}}}
		body, _ := proto.Marshal(m)
		return &protocols.Request{Body: body, Decoded: m, ProtoName: "tensorflow.serving.PredictRequest"}
	}
	jsonBody := func(f func() string) func() *protocols.Request {
		return func() *protocols.Request { return &protocols.Request{Body: []byte(f())} }
	}
	// What every record already costs before any call: the walker's Check (a JSON check over REST,
	// the protobuf decode over gRPC).
	checkJSON := func(req *protocols.Request) error { return rest.CheckObject(req.Body) }
	decodeTF := func(req *protocols.Request) error { return proto.Unmarshal(req.Body, &tfpb.PredictRequest{}) }
	for _, tc := range []struct {
		name    string
		codec   codec
		model   model
		request func() *protocols.Request
		check   func(*protocols.Request) error
	}{
		{"seldon 1KB over REST", seldonREST{}, seldonRESTModel, jsonBody(seldon1KB), checkJSON},
		{"tensorflow CIFAR10 over REST", tensorflowREST{}, tfRESTModel, jsonBody(cifar), checkJSON},
		{"tensorflow CIFAR10 over gRPC", tensorflowGRPC{}, tfGRPCModel, cifarProto, decodeTF},
	} {
		b.Run(tc.name, func(b *testing.B) {
			reqs := make([]*protocols.Request, 32)
			for i := range reqs {
				reqs[i] = tc.request()
			}
			parts := make([]part, len(reqs))
			for i, req := range reqs {
				parts[i], _ = tc.codec.read(req)
			}
			answer, err := tc.model(tc.codec.merge(parts))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(reqs[0].Body)) * int64(len(reqs)))
			b.ResetTimer()
			cpu := cpuTime()
			for range b.N {
				for i, req := range reqs {
					parts[i], _ = tc.codec.read(req)
				}
				_ = tc.codec.merge(parts)
				if _, err := tc.codec.split(answer, parts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N*len(reqs)), "cpu-ns/record")
		})
		// For scale, in the same run: what the record costs already.
		b.Run(tc.name+", the record's check alone", func(b *testing.B) {
			req := tc.request()
			b.SetBytes(int64(len(req.Body)))
			b.ResetTimer()
			cpu := cpuTime()
			for range b.N {
				if err := tc.check(req); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/record")
		})
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
