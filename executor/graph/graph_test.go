package graph

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/sdep"
)

// spec decodes a PredictorSpec written as the operator writes ENGINE_PREDICTOR.
func spec(t *testing.T, js string) sdep.PredictorSpec {
	t.Helper()
	var p sdep.PredictorSpec
	if err := json.Unmarshal([]byte(js), &p); err != nil {
		t.Fatalf("spec %s: %v", js, err)
	}
	return p
}

func TestParseRefusesWhatCannotBeServedNamingTheNode(t *testing.T) {
	ep := `"endpoint":{"service_host":"localhost","httpPort":9000,"grpcPort":9500}`
	tests := []struct {
		name      string
		protocol  protocols.Name
		transport string
		graph     string
		wantNode  string
		wantMsg   string
	}{
		{"no root", protocols.Seldon, "rest", `{}`, "", "no root node"},
		{"unknown type", protocols.Seldon, "rest", `{"name":"a","type":"MODLE",` + ep + `}`, "a", `unknown type "MODLE"`},
		{"unknown method", protocols.Seldon, "rest", `{"name":"a","methods":["PREDICT"],` + ep + `}`, "a", `unknown method "PREDICT"`},
		{"duplicate names", protocols.Seldon, "rest", `{"name":"a","type":"COMBINER",` + ep + `,"children":[{"name":"b",` + ep + `},{"name":"a",` + ep + `}]}`, "a", "two nodes have this name"},
		{"a child without a name", protocols.Seldon, "rest", `{"name":"a","type":"COMBINER",` + ep + `,"children":[{"name":""}]}`, "", "a node has no name"},
		{"router without children", protocols.Seldon, "rest", `{"name":"r","type":"ROUTER",` + ep + `}`, "r", "router needs children"},
		{"combiner without children", protocols.Seldon, "rest", `{"name":"c","type":"COMBINER",` + ep + `}`, "c", "combiner needs children"},
		{"ROUTE method without children", protocols.Seldon, "rest", `{"name":"r","methods":["ROUTE"],` + ep + `}`, "r", "router needs children"},
		{"AB test with one child", protocols.Seldon, "rest", `{"name":"ab","implementation":"RANDOM_ABTEST","children":[{"name":"m",` + ep + `}]}`, "ab", "two children"},
		{"AB test ratio not a number", protocols.Seldon, "rest", `{"name":"ab","implementation":"RANDOM_ABTEST","parameters":[{"name":"ratioA","value":"half","type":"FLOAT"}],"children":[{"name":"m1",` + ep + `},{"name":"m2",` + ep + `}]}`, "ab", "ratioA"},
		{"AB test ratio above one", protocols.Seldon, "rest", `{"name":"ab","implementation":"RANDOM_ABTEST","parameters":[{"name":"ratioA","value":"1.5"}],"children":[{"name":"m1",` + ep + `},{"name":"m2",` + ep + `}]}`, "ab", "ratioA"},
		{"Java engine built-in", protocols.Seldon, "rest", `{"name":"avg","implementation":"AVERAGE_COMBINER","children":[{"name":"m1",` + ep + `},{"name":"m2",` + ep + `}]}`, "avg", "retired Java engine"},
		{"child without endpoint", protocols.Seldon, "rest", `{"name":"t","type":"TRANSFORMER",` + ep + `,"children":[{"name":"m","type":"MODEL"}]}`, "m", "no endpoint"},
		{"gRPC without a gRPC port", protocols.Seldon, "grpc", `{"name":"t","type":"TRANSFORMER",` + ep + `,"children":[{"name":"m","type":"MODEL","endpoint":{"httpPort":9001}}]}`, "m", "endpoint.grpcPort"},
		{"port out of range", protocols.Seldon, "rest", `{"name":"m","endpoint":{"httpPort":70000}}`, "m", "70000 is not a port"},
		{"TF router over gRPC", protocols.Tensorflow, "grpc", `{"name":"r","type":"ROUTER",` + ep + `,"children":[{"name":"m1",` + ep + `},{"name":"m2",` + ep + `}]}`, "r", "no route RPC"},
		{"v2 combiner over gRPC", protocols.V2, "grpc", `{"name":"c","type":"COMBINER",` + ep + `,"children":[{"name":"m1",` + ep + `},{"name":"m2",` + ep + `}]}`, "c", "no aggregate RPC"},
		{"bad logger mode", protocols.Seldon, "rest", `{"name":"m",` + ep + `,"logger":{"mode":"everything"}}`, "m", "logger mode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(spec(t, `{"name":"p","graph":`+tc.graph+`}`), tc.protocol, tc.transport)
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("Parse = %v, want a *SpecError", err)
			}
			if se.Node != tc.wantNode || !strings.Contains(se.Msg, tc.wantMsg) {
				t.Errorf("Parse = node %q: %q; want node %q and a message saying %q", se.Node, se.Msg, tc.wantNode, tc.wantMsg)
			}
		})
	}
}

func TestParseReadsTypesAndMethodsAsTheLegacyExecutor(t *testing.T) {
	ep := `"endpoint":{"httpPort":9000}`
	tests := []struct {
		name  string
		node  string
		calls string // in, route, aggregate, out
	}{
		{"no type, no method: a model (operator default)", `{"name":"n",` + ep + `}`, "predict,all,-,-"},
		{"prepackaged server is a model", `{"name":"n","implementation":"SKLEARN_SERVER",` + ep + `}`, "predict,all,-,-"},
		{"triton", `{"name":"n","implementation":"TRITON_SERVER",` + ep + `}`, "predict,all,-,-"},
		{"transformer", `{"name":"n","type":"TRANSFORMER",` + ep + `}`, "transform-input,all,-,-"},
		{"output transformer", `{"name":"n","type":"OUTPUT_TRANSFORMER",` + ep + `}`, "-,all,-,out"},
		{"router", `{"name":"n","type":"ROUTER",` + ep + `,"children":[{"name":"c",` + ep + `}]}`, "-,call,-,-"},
		{"combiner", `{"name":"n","type":"COMBINER",` + ep + `,"children":[{"name":"c",` + ep + `}]}`, "-,all,aggregate,-"},
		{"methods only", `{"name":"n","methods":["TRANSFORM_INPUT","TRANSFORM_OUTPUT"],` + ep + `}`, "transform-input,all,-,out"},
		{"a model that also transforms output", `{"name":"n","type":"MODEL","methods":["TRANSFORM_OUTPUT"],` + ep + `}`, "predict,all,-,out"},
		{"a MODEL with TRANSFORM_INPUT predicts", `{"name":"n","type":"MODEL","methods":["TRANSFORM_INPUT"],` + ep + `}`, "predict,all,-,-"},
		{"route and aggregate", `{"name":"n","methods":["ROUTE","AGGREGATE"],` + ep + `,"children":[{"name":"c",` + ep + `}]}`, "-,call,aggregate,-"},
		{"AB test", `{"name":"n","implementation":"RANDOM_ABTEST","children":[{"name":"a",` + ep + `},{"name":"b",` + ep + `}]}`, "-,abtest,-,-"},
		{"lower case", `{"name":"n","type":"transformer","methods":["transform_output"],` + ep + `}`, "transform-input,all,-,out"},
		{"UNKNOWN_TYPE with a method", `{"name":"n","type":"UNKNOWN_TYPE","methods":["TRANSFORM_INPUT"],` + ep + `}`, "transform-input,all,-,-"},
	}
	routes := map[routing]string{routeAll: "all", routeCall: "call", routeABTest: "abtest"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Parse(spec(t, `{"name":"p","graph":`+tc.node+`}`), protocols.Seldon, "rest")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			n := g.Root
			in, agg, out := string(n.In), "-", "-"
			if in == "" {
				in = "-"
			}
			if n.Aggregate {
				agg = "aggregate"
			}
			if n.Out {
				out = "out"
			}
			if got := strings.Join([]string{in, routes[n.Route], agg, out}, ","); got != tc.calls {
				t.Errorf("calls = %s, want %s", got, tc.calls)
			}
		})
	}
}

func TestParseFindsEndpointsAsTheOperatorWritesThem(t *testing.T) {
	type want struct {
		host       string
		http, grpc int
	}
	tests := []struct {
		name      string
		transport string
		spec      string
		want      map[string]want
	}{
		{"filled in by the operator", "rest",
			`{"name":"p","graph":{"name":"t","type":"TRANSFORMER","endpoint":{"service_host":"localhost","service_port":9000,"httpPort":9000,"grpcPort":9500,"type":"REST"},
			  "children":[{"name":"m","type":"MODEL","endpoint":{"service_host":"m.ns.svc.cluster.local","service_port":9001,"httpPort":9001,"grpcPort":9501}}]}}`,
			map[string]want{"t": {"localhost", 9000, 9500}, "m": {"m.ns.svc.cluster.local", 9001, 9501}}},
		{"hand-written: the containers of componentSpecs[0] in order", "rest",
			`{"name":"p","componentSpecs":[{"spec":{"containers":[{"name":"m"},{"name":"t"}]}}],
			  "graph":{"name":"t","type":"TRANSFORMER","children":[{"name":"m","type":"MODEL"}]}}`,
			map[string]want{"t": {"localhost", 9001, 9501}, "m": {"localhost", 9000, 9500}}},
		{"service_port is the gRPC port with --transport=grpc", "grpc",
			`{"name":"p","graph":{"name":"m","endpoint":{"service_port":9100}}}`,
			map[string]want{"m": {"localhost", 9000, 9100}}},
		{"service_port of a GRPC endpoint", "rest",
			`{"name":"p","graph":{"name":"m","endpoint":{"service_port":9100,"type":"GRPC"}}}`,
			map[string]want{"m": {"localhost", 9000, 9100}}},
		{"service_port of a REST endpoint", "rest",
			`{"name":"p","graph":{"name":"m","endpoint":{"service_port":9100,"type":"REST"}}}`,
			map[string]want{"m": {"localhost", 9100, 9500}}},
		{"an AB test router needs no endpoint", "rest",
			`{"name":"p","graph":{"name":"ab","implementation":"RANDOM_ABTEST","children":[{"name":"a","endpoint":{"httpPort":9001}},{"name":"b","endpoint":{"httpPort":9002}}]}}`,
			map[string]want{"ab": {"", 0, 0}, "a": {"localhost", 9001, 0}, "b": {"localhost", 9002, 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Parse(spec(t, tc.spec), protocols.Seldon, tc.transport)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for _, n := range g.Nodes {
				w, ok := tc.want[n.Name]
				if !ok {
					t.Fatalf("unexpected node %s", n.Name)
				}
				if got := (want{n.Host, n.HTTPPort, n.GRPCPort}); got != w {
					t.Errorf("node %s at %+v, want %+v", n.Name, got, w)
				}
			}
			if len(g.Nodes) != len(tc.want) {
				t.Errorf("%d nodes, want %d", len(g.Nodes), len(tc.want))
			}
		})
	}
}
