package testkit

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/internal/testmodel"
	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
)

// TestStartModelProcessServesOnTheAnnouncedPorts proves the listening line and the ports: a transformer
// node started as a process answers over HTTP and gRPC what the pure functions compute, and stops
// cleanly on SIGTERM.
func TestStartModelProcessServesOnTheAnnouncedPorts(t *testing.T) {
	p := StartModelProcess(t, "--role=transformer", "--model_name=t")
	if p.HTTPPort <= 0 || p.GRPCPort <= 0 || p.HTTPPort == p.GRPCPort {
		t.Fatalf("ports http %d grpc %d", p.HTTPPort, p.GRPCPort)
	}
	if p.HTTPAddr != "127.0.0.1:"+strconv.Itoa(p.HTTPPort) || p.GRPCAddr != "127.0.0.1:"+strconv.Itoa(p.GRPCPort) {
		t.Errorf("addresses %s, %s do not dial the loopback at the ports %d, %d", p.HTTPAddr, p.GRPCAddr, p.HTTPPort, p.GRPCPort)
	}

	const body = `{"meta":{"puid":"p-1"},"data":{"names":["a","b"],"ndarray":[[1,2],[3,4]]}}`
	want, err := testmodel.SeldonTransformInput("t", testmodel.DefaultImage, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, path, want string }{
		{"seldon transform-input", "/transform-input", string(want)},
		// The role reached the process: a transformer adds 1 on the tensorflow infer route.
		{"tensorflow predict as a transformer", "/v1/models/t:predict", `{"predictions":[[2,3]]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := body
			if strings.HasPrefix(tt.path, "/v1/") {
				req = `{"instances":[[1,2]]}`
			}
			resp, err := http.Post("http://"+p.HTTPAddr+tt.path, "application/json", strings.NewReader(req))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK || string(got) != tt.want {
				t.Errorf("POST %s = %d %s\nwant 200 %s", tt.path, resp.StatusCode, got, tt.want)
			}
		})
	}

	t.Run("gRPC transform-input", func(t *testing.T) {
		cc, err := grpc.NewClient(p.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		var msg seldonpb.SeldonMessage
		if err := protojson.Unmarshal([]byte(body), &msg); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, err := seldonpb.NewTransformerClient(cc).TransformInput(ctx, &msg)
		if err != nil {
			t.Fatal(err)
		}
		want, err := testmodel.SeldonTransformInputProto("t", testmodel.DefaultImage, &msg)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("got %v\nwant %v", got, want)
		}
	})

	if err := p.Stop(); err != nil {
		t.Errorf("Stop: %v, want a clean exit on SIGTERM", err)
	}
	if conn, err := net.DialTimeout("tcp", p.HTTPAddr, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after Stop", p.HTTPAddr)
	}
}

func TestKillStopsTheProcessAndMayBeRepeated(t *testing.T) {
	p := StartModelProcess(t, "--grpc_port=-1")
	if p.GRPCAddr != "" || p.GRPCPort != 0 {
		t.Errorf("gRPC at %q port %d although it is off", p.GRPCAddr, p.GRPCPort)
	}
	p.Kill()
	p.Kill()
	if conn, err := net.DialTimeout("tcp", p.HTTPAddr, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after Kill", p.HTTPAddr)
	}
	if err := p.Stop(); err == nil {
		t.Error("Stop after Kill reports a clean exit")
	}
}

// fatalRecorder records the failure of a helper instead of failing the test, to test the failure itself.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestStartModelProcessFailsWithTheProcessStderr(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		StartModelProcess(rec, "--role=router")
	}()
	<-done
	for _, want := range []string{"exited before listening", `invalid value "router" for flag -role`} {
		if !strings.Contains(rec.msg, want) {
			t.Errorf("failure %q does not say %q", rec.msg, want)
		}
	}
}

func TestLoopbackMakesListenAddressesDialable(t *testing.T) {
	tests := []struct {
		addr, want string
		port       int
		wantErr    bool
	}{
		{"[::]:9000", "127.0.0.1:9000", 9000, false},
		{"0.0.0.0:81", "127.0.0.1:81", 81, false},
		{":7", "127.0.0.1:7", 7, false},
		{"127.0.0.1:5", "127.0.0.1:5", 5, false},
		{"[::1]:5", "[::1]:5", 5, false},
		{"localhost", "", 0, true},
		{"[::]:0", "", 0, true},
		{"[::]:http", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got, port, err := loopback(tt.addr)
			if got != tt.want || port != tt.port || (err != nil) != tt.wantErr {
				t.Errorf("loopback(%q) = %q, %d, %v; want %q, %d, error %v", tt.addr, got, port, err, tt.want, tt.port, tt.wantErr)
			}
		})
	}
}
