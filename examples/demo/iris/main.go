// Command iris is the demo's model container: a classifier of iris flowers fitted by scikit-learn
// (model.json, written by fit.py), served as a Seldon Core v1 model is served — over REST, POST
// /predict (and /api/v1.0/predictions) with a SeldonMessage, GET /health/ping; over gRPC,
// seldon.protos.Model/Predict and the standard health service. Each row of four measurements in cm
// (sepal length, sepal width, petal length, petal width), as data.ndarray or data.tensor, is answered
// with the probability of each species, as scikit-learn's predict_proba gives it, in the same form.
//
//	iris [--host=127.0.0.1] [--http_port=9000] [--grpc_port=9500]
//
// Once it listens it prints "listening http=HOST:PORT grpc=HOST:PORT" (0 picks a free port).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "iris: %v (iris --help lists the flags)\n", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "iris:", err)
		os.Exit(1)
	}
}

// usageError is a bad command line: exit 2, one line naming it.
type usageError struct{ error }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("iris", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	host := fs.String("host", "", "address to listen on: empty for every interface, 127.0.0.1 for loopback only")
	httpPort := fs.Int("http_port", 9000, "HTTP port (0 picks a free one)")
	grpcPort := fs.Int("grpc_port", 9500, "gRPC port (0 picks a free one)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: iris [flags]\n\nServes the demo's iris classifier as a Seldon model (REST and gRPC) and prints\n"+
			"\"listening http=<host:port> grpc=<host:port>\" once it listens.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr) // stdout carries only the listening line
			fs.Usage()
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	m, err := loadModel()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*httpPort)))
	if err != nil {
		return err
	}
	gln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*grpcPort)))
	if err != nil {
		ln.Close()
		return err
	}
	s := &server{m: m}
	hs := &http.Server{Handler: s.routes(), ReadHeaderTimeout: 5 * time.Second}
	gs := grpc.NewServer()
	seldonpb.RegisterModelServer(gs, s)
	healthpb.RegisterHealthServer(gs, health.NewServer()) // SERVING
	go func() { _ = hs.Serve(ln) }()
	go func() { _ = gs.Serve(gln) }()
	fmt.Fprintf(stdout, "listening http=%s grpc=%s\n", ln.Addr(), gln.Addr())
	log.Info("iris model", "about", m.About)
	<-ctx.Done()
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(shut)
	gs.GracefulStop()
	return nil
}

type server struct {
	seldonpb.UnimplementedModelServer
	m *Model
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/ping", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "pong") })
	mux.HandleFunc("GET /health/status", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "{}") })
	mux.HandleFunc("POST /predict", s.handlePredict)
	mux.HandleFunc("POST /api/v1.0/predictions", s.handlePredict)
	return mux
}

// handlePredict answers a SeldonMessage in JSON, or with an error as Seldon's Python wrapper writes one.
func (s *server) handlePredict(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	var in seldonpb.SeldonMessage
	if err == nil {
		err = protojson.Unmarshal(body, &in)
	}
	var out *seldonpb.SeldonMessage
	if err == nil {
		out, err = s.predict(&in)
	}
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		out = &seldonpb.SeldonMessage{Status: &seldonpb.Status{Code: 400, Info: err.Error(), Status: seldonpb.Status_FAILURE}}
	}
	b, _ := protojson.Marshal(out)
	// protojson varies its spacing on purpose; the answer is compacted so it reads the same every time.
	var compact bytes.Buffer
	_ = json.Compact(&compact, b)
	_, _ = w.Write(compact.Bytes())
}

// Predict is the gRPC form of the same answer.
func (s *server) Predict(_ context.Context, in *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error) {
	out, err := s.predict(in)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return out, nil
}

// predict answers every row of data.ndarray or data.tensor with the classes' probabilities, in the
// same form, the classes as data.names.
func (s *server) predict(in *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error) {
	d := in.GetData()
	if d == nil {
		return nil, errors.New("want data.ndarray or data.tensor: rows of " + strconv.Itoa(len(s.m.Features)) + " measurements")
	}
	out := &seldonpb.DefaultData{Names: s.m.Classes}
	switch {
	case d.GetNdarray() != nil:
		rows := &structpb.ListValue{}
		for i, rv := range d.GetNdarray().GetValues() {
			var x []float64
			for _, v := range rv.GetListValue().GetValues() {
				n, ok := v.GetKind().(*structpb.Value_NumberValue)
				if !ok {
					return nil, fmt.Errorf("row %d: want numbers", i)
				}
				x = append(x, n.NumberValue)
			}
			p, err := s.m.Proba(x)
			if err != nil {
				return nil, fmt.Errorf("row %d: %w", i, err)
			}
			row, _ := structpb.NewList(toAny(p))
			rows.Values = append(rows.Values, structpb.NewListValue(row))
		}
		out.DataOneof = &seldonpb.DefaultData_Ndarray{Ndarray: rows}
	case d.GetTensor() != nil:
		t := d.GetTensor()
		width := len(s.m.Features)
		if len(t.GetShape()) != 2 || int(t.GetShape()[1]) != width || int(t.GetShape()[0])*width != len(t.GetValues()) {
			return nil, fmt.Errorf("tensor of shape %v with %d values: want [rows, %d]", t.GetShape(), len(t.GetValues()), width)
		}
		res := &seldonpb.Tensor{Shape: []int32{t.GetShape()[0], int32(len(s.m.Classes))}}
		for i := 0; i < len(t.GetValues()); i += width {
			p, err := s.m.Proba(t.GetValues()[i : i+width])
			if err != nil {
				return nil, fmt.Errorf("row %d: %w", i/width, err)
			}
			res.Values = append(res.Values, p...)
		}
		out.DataOneof = &seldonpb.DefaultData_Tensor{Tensor: res}
	default:
		return nil, errors.New("want data.ndarray or data.tensor")
	}
	return &seldonpb.SeldonMessage{DataOneof: &seldonpb.SeldonMessage_Data{Data: out}, Meta: &seldonpb.Meta{}}, nil
}

func toAny(fs []float64) []any {
	out := make([]any, len(fs))
	for i, f := range fs {
		out[i] = f
	}
	return out
}
