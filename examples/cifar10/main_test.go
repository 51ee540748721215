package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/executor"
	"github.com/seldon-kafka/sidecar/internal/cifar10"
	"github.com/seldon-kafka/sidecar/internal/testkit"
	"github.com/seldon-kafka/sidecar/internal/testmodel"
	"github.com/seldon-kafka/sidecar/sdep"
)

// clearEnv empties the sidecar's variables for the rest of the test, then sets env.
func clearEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "KAFKA_") || strings.HasPrefix(name, "MODEL_") || name == "ENGINE_PREDICTOR" {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// TestManifestsAreOnesTheSidecarRuns: each manifest's predictor and svcOrchSpec.env load as the sidecar
// loads them, calling resnet32 at TF Serving's port of the transport.
func TestManifestsAreOnesTheSidecarRuns(t *testing.T) {
	for transport, port := range map[string]string{"rest": "8501", "grpc": "8500"} {
		t.Run(transport, func(t *testing.T) {
			file := "cifar10-" + transport + ".yaml"
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			ds, err := sdep.ReadDeployments(data)
			if err != nil || len(ds) != 1 {
				t.Fatalf("%d SeldonDeployments: %v", len(ds), err)
			}
			d := ds[0]
			env := map[string]string{}
			for _, v := range d.Spec.Predictors[0].SvcOrchSpec.Env {
				env[v.Name] = v.Value
			}
			clearEnv(t, env)
			cfg, err := executor.LoadConfig([]string{"--file=" + file, "--sdep=" + d.Metadata.Name, "--namespace=kafka",
				"--predictor=model", "--protocol=tensorflow", "--transport=" + transport})
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Graph.Root.Address(transport); got != "localhost:"+port || cfg.Graph.Root.Name != cifar10.ModelName {
				t.Errorf("the sidecar calls %s at %s, want resnet32 at localhost:%s", cfg.Graph.Root.Name, got, port)
			}
			if cfg.InputTopic != "cifar10-"+transport+"-input" {
				t.Errorf("input topic %q", cfg.InputTopic)
			}
		})
	}
}

// TestRequestsAreAnsweredAsTheTestModelAnswers: the requests written by "cifar10 requests", sent by
// "cifar10 check" through a sidecar to the test model standing in for resnet32, over REST and gRPC,
// are answered as the test model answers; a model that answers otherwise fails the check.
func TestRequestsAreAnsweredAsTheTestModelAnswers(t *testing.T) {
	bootstrap := testkit.Bootstrap(t)
	dir := t.TempDir()
	jsonFile, protoFile := filepath.Join(dir, "requests.jsonl"), filepath.Join(dir, "requests.data")
	var out, errs bytes.Buffer
	if code := run([]string{"requests", "-n", "3", "-json", jsonFile, "-proto", protoFile}, &out, &errs); code != 0 {
		t.Fatalf("requests: exit %d: %s", code, errs.String())
	}
	cases := []struct {
		transport, file string
		role            testmodel.Role
		wantCode        int
		want            string
	}{
		{"rest", jsonFile, testmodel.RoleModel, 0, "the test model's answer, "},
		{"grpc", protoFile, testmodel.RoleModel, 0, "the test model's answer, a PredictResponse"},
		{"rest", jsonFile, testmodel.RoleTransformer, 1, "is not the test model's"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %s", tc.transport, tc.role), func(t *testing.T) {
			in, outTopic := testkit.Topic(t, bootstrap, 1), testkit.Topic(t, bootstrap, 1)
			startSidecar(t, bootstrap, tc.transport, in, outTopic, tc.role)
			flag := "-json"
			if tc.transport == "grpc" {
				flag = "-proto"
			}
			var out, errs bytes.Buffer
			code := run([]string{"check", "-bootstrap", bootstrap, "-in", in, "-out", outTopic, flag, tc.file, "-timeout", "90s"}, &out, &errs)
			if code != tc.wantCode {
				t.Fatalf("check: exit %d, want %d\n%s%s", code, tc.wantCode, out.String(), errs.String())
			}
			for i := 1; i <= 3; i++ {
				if !strings.Contains(out.String(), fmt.Sprintf("req-%d: ", i)) || strings.Count(out.String(), tc.want) != 3 {
					t.Errorf("check said\n%s\nwant req-1 to req-3: %s…", out.String(), tc.want)
					break
				}
			}
		})
	}
}

// startSidecar runs the sidecar in this process, in front of a test model serving resnet32 in role.
func startSidecar(t *testing.T, bootstrap, transport, in, out string, role testmodel.Role) {
	t.Helper()
	model := testmodel.New(testmodel.Options{ModelName: cifar10.ModelName, Role: role})
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = model.Serve(hl) }()
	go func() { _ = model.ServeGRPC(gl) }()
	t.Cleanup(func() { _ = model.Close() })
	predictor := filepath.Join(t.TempDir(), "predictor.json")
	spec := fmt.Sprintf(`{"name":"model","graph":{"name":%q,"type":"MODEL","endpoint":{"service_host":"127.0.0.1","httpPort":%d,"grpcPort":%d}}}`,
		cifar10.ModelName, hl.Addr().(*net.TCPAddr).Port, gl.Addr().(*net.TCPAddr).Port)
	if err := os.WriteFile(predictor, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	clearEnv(t, map[string]string{"KAFKA_BROKER": bootstrap, "KAFKA_INPUT_TOPIC": in, "KAFKA_OUTPUT_TOPIC": out, "KAFKA_GROUP_ID": "g-" + in})
	cfg, err := executor.LoadConfig([]string{"--file=" + predictor, "--sdep=cifar10", "--namespace=test", "--predictor=model",
		"--protocol=tensorflow", "--transport=" + transport, "--http_port=0", "--grpc_port=0"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := executor.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("sidecar: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("the sidecar did not stop within 60 s")
		}
	})
}

// TestResnet32AnswersNameTheMostLikelyClass: with -model=resnet32 an answer is read as 10 class
// probabilities, REST or gRPC, and anything else is refused.
func TestResnet32AnswersNameTheMostLikelyClass(t *testing.T) {
	probs := []float64{0.01, 0.01, 0.02, 0.05, 0.01, 0.02, 0.8, 0.03, 0.03, 0.02}
	rest := []byte(`{"predictions": [[0.01,0.01,0.02,0.05,0.01,0.02,0.8,0.03,0.03,0.02]]}`)
	got, err := probabilities(rest, false)
	if err != nil || len(got) != 10 || got[6] != 0.8 {
		t.Errorf("REST: %v, %v", got, err)
	}
	if _, err := probabilities([]byte(`{"predictions": [[0.5, 0.5]]}`), false); err == nil {
		t.Error("two values taken for ten classes")
	}
	if Classes[6] != "frog" || len(Classes) != len(probs) {
		t.Errorf("classes %v", Classes)
	}
}
