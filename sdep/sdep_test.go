package sdep_test

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/seldon-kafka/sidecar/sdep"
)

// operatorPredictor is an ENGINE_PREDICTOR value's JSON as the Seldon operator writes it: the
// PredictorSpec after defaulting, with replicas and traffic zeroed and fields the sidecar does not read.
const operatorPredictor = `{
  "name": "default",
  "graph": {
    "name": "classifier",
    "type": "MODEL",
    "implementation": "UNKNOWN_IMPLEMENTATION",
    "endpoint": {"service_host": "localhost", "service_port": 9000, "type": "REST", "httpPort": 9000, "grpcPort": 9500},
    "children": [],
    "logger": {"mode": "all"}
  },
  "componentSpecs": [{
    "metadata": {"creationTimestamp": null},
    "spec": {"containers": [{"name": "classifier", "image": "seldonio/mock_classifier:1.15.0", "resources": {}}]},
    "hpaSpec": {"maxReplicas": 3},
    "kedaSpec": {"triggers": [{"type": "kafka", "metadata": {"topic": "in"}}]}
  }],
  "replicas": 0,
  "engineResources": {},
  "labels": {"version": "default"},
  "svcOrchSpec": {"env": [
    {"name": "KAFKA_BROKER", "value": "kafka:9092"},
    {"name": "KAFKA_SASL_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "kafka", "key": "password"}}}
  ]}
}`

func TestDecodePredictorReadsTheOperatorsValue(t *testing.T) {
	enc := base64.StdEncoding.EncodeToString([]byte(operatorPredictor))
	for name, value := range map[string]string{
		"as written":               enc,
		"with a trailing newline":  enc + "\n",
		"with surrounding spaces":  "  " + enc + " ",
		"of compact JSON, no keys": base64.StdEncoding.EncodeToString([]byte(`{"name":"default","graph":{"name":"classifier"}}`)),
	} {
		t.Run(name, func(t *testing.T) {
			p, err := sdep.DecodePredictor(value)
			if err != nil {
				t.Fatalf("DecodePredictor: %v", err)
			}
			if p.Name != "default" || p.Graph.Name != "classifier" {
				t.Fatalf("decoded %+v", p)
			}
		})
	}

	p, err := sdep.DecodePredictor(enc)
	if err != nil {
		t.Fatal(err)
	}
	if ep := p.Graph.Endpoint; ep == nil || ep.ServiceHost != "localhost" || ep.ServicePort != 9000 || ep.HTTPPort != 9000 || ep.GRPCPort != 9500 || ep.Type != "REST" {
		t.Errorf("endpoint = %+v", p.Graph.Endpoint)
	}
	if p.Replicas == nil || *p.Replicas != 0 {
		t.Errorf("replicas = %v, want a pointer to 0", p.Replicas)
	}
	if len(p.ComponentSpecs) != 1 || len(p.ComponentSpecs[0].Spec.Containers) != 1 || p.ComponentSpecs[0].Spec.Containers[0].Name != "classifier" {
		t.Errorf("componentSpecs = %+v", p.ComponentSpecs)
	}
	if !strings.Contains(string(p.ComponentSpecs[0].KedaSpec), `"topic":"in"`) && !strings.Contains(string(p.ComponentSpecs[0].KedaSpec), `"topic": "in"`) {
		t.Errorf("kedaSpec not kept raw: %s", p.ComponentSpecs[0].KedaSpec)
	}
	env := p.SvcOrchSpec.Env
	if len(env) != 2 || env[0].Value != "kafka:9092" || env[1].ValueFrom == nil || env[1].ValueFrom.SecretKeyRef == nil ||
		env[1].ValueFrom.SecretKeyRef.Key != "password" {
		t.Errorf("svcOrchSpec.env = %+v", env)
	}
}

func TestDecodePredictorRejectsBadValues(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{"not base64", "{plain json}", "not base64"},
		{"URL-safe alphabet", base64.URLEncoding.EncodeToString([]byte(`{"name":"a?>>"}`)) + "_-", "not base64"},
		{"base64 of YAML", base64.StdEncoding.EncodeToString([]byte("name: default\n")), "not a PredictorSpec JSON"},
		{"base64 of an array", base64.StdEncoding.EncodeToString([]byte(`[{"name":"default"}]`)), "not a PredictorSpec JSON"},
		{"base64 of truncated JSON", base64.StdEncoding.EncodeToString([]byte(`{"name":"default","graph":{`)), "not a PredictorSpec JSON"},
	}
	for _, tc := range tests {
		_, err := sdep.DecodePredictor(tc.value)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: DecodePredictor = %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

func TestPredictorFromFile(t *testing.T) {
	tests := []struct {
		file, predictor string
		wantGraph       string
	}{
		{"multi.yaml", "default", "classifier"},
		{"multi.yaml", "canary", "classifier-v2"},
		{"multi.yaml", "main", "mnist-model"}, // in the second SeldonDeployment
		{"sdep.json", "shadow", "classifier-shadow"},
		{"sdep.json", "default", "classifier"},
		{"predictor.json", "default", "tf-model"},
		{"predictor.yaml", "default", "classifier"},
	}
	for _, tc := range tests {
		t.Run(tc.file+" "+tc.predictor, func(t *testing.T) {
			p, err := sdep.PredictorFromFile(filepath.Join("testdata", tc.file), tc.predictor)
			if err != nil {
				t.Fatalf("PredictorFromFile: %v", err)
			}
			if p.Name != tc.predictor || p.Graph.Name != tc.wantGraph {
				t.Fatalf("predictor %q with graph %q, want %q with %q", p.Name, p.Graph.Name, tc.predictor, tc.wantGraph)
			}
		})
	}

	t.Run("the fields of the predictor found", func(t *testing.T) {
		p, err := sdep.PredictorFromFile(filepath.Join("testdata", "multi.yaml"), "default")
		if err != nil {
			t.Fatal(err)
		}
		if p.Replicas == nil || *p.Replicas != 2 || p.Graph.Endpoint == nil || p.Graph.Endpoint.ServicePort != 9001 ||
			len(p.SvcOrchSpec.Env) != 2 || p.SvcOrchSpec.Env[1].Value != "iris-in" {
			t.Fatalf("decoded %+v", p)
		}
	})
}

func TestPredictorFromFileErrors(t *testing.T) {
	t.Run("no such predictor names those there are", func(t *testing.T) {
		_, err := sdep.PredictorFromFile(filepath.Join("testdata", "multi.yaml"), "blue")
		if err == nil {
			t.Fatal("found a predictor named blue")
		}
		for _, want := range []string{`"blue"`, "default, canary, main", "multi.yaml"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %s", err, want)
			}
		}
	})
	t.Run("no SeldonDeployment", func(t *testing.T) {
		_, err := sdep.PredictorFromFile(filepath.Join("testdata", "other-kinds.yaml"), "default")
		if err == nil || !strings.Contains(err.Error(), "neither a SeldonDeployment nor a PredictorSpec") {
			t.Fatalf("PredictorFromFile = %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := sdep.PredictorFromFile(filepath.Join("testdata", "nope.yaml"), "default")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("PredictorFromFile = %v, want fs.ErrNotExist", err)
		}
	})
	for name, content := range map[string]string{
		"empty file":           "",
		"only comments":        "# nothing\n---\n# here\n",
		"broken YAML":          "kind: SeldonDeployment\nspec: [unclosed\n",
		"SDep of a wrong type": "kind: SeldonDeployment\nspec:\n  predictors: 3\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.yaml")
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			if p, err := sdep.PredictorFromFile(path, "default"); err == nil {
				t.Fatalf("PredictorFromFile = %+v, want an error", p)
			}
		})
	}
}

func TestReadDeploymentsSkipsOtherKinds(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "multi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := sdep.ReadDeployments(data)
	if err != nil {
		t.Fatalf("ReadDeployments: %v", err)
	}
	var names []string
	for _, d := range ds {
		names = append(names, d.Metadata.Namespace+"/"+d.Metadata.Name)
	}
	if want := []string{"models/iris", "models/mnist"}; !slices.Equal(names, want) {
		t.Fatalf("deployments %v, want %v", names, want)
	}
	if ds[0].Spec.ServerType != "kafka" || len(ds[0].Spec.Predictors) != 2 || ds[1].Spec.Protocol != "tensorflow" {
		t.Errorf("specs not decoded: %+v", ds)
	}

	json, err := os.ReadFile(filepath.Join("testdata", "sdep.json"))
	if err != nil {
		t.Fatal(err)
	}
	if ds, err := sdep.ReadDeployments(json); err != nil || len(ds) != 1 || ds[0].Spec.Protocol != "v2" {
		t.Errorf("ReadDeployments(JSON) = %+v, %v", ds, err)
	}

	other, err := os.ReadFile(filepath.Join("testdata", "other-kinds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if ds, err := sdep.ReadDeployments(other); err != nil || len(ds) != 0 {
		t.Errorf("ReadDeployments(other kinds) = %+v, %v, want none and no error", ds, err)
	}

	if _, err := sdep.ReadDeployments([]byte("kind: SeldonDeployment\n---\nkind: [\n")); err == nil || !strings.Contains(err.Error(), "document 2") {
		t.Errorf("ReadDeployments(broken second document) = %v, want an error naming document 2", err)
	}
	if _, err := sdep.ReadDeployments(nil); err == nil {
		t.Error("ReadDeployments(nothing) succeeded")
	}
}

func TestSplitYAML(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"one document", "a: 1\n", []string{"a: 1"}},
		{"leading separator", "---\na: 1\n", []string{"a: 1"}},
		{"separators with trailing spaces and CRLF", "a: 1\r\n--- \r\nb: 2\r\n---\t\nc: 3", []string{"a: 1", "b: 2", "c: 3"}},
		{"empty and comment-only documents dropped", "---\n---\n# c\n---\na: 1\n---\n\n", []string{"a: 1"}},
		{"--- inside a value is not a separator", "a: |\n  ---\n  x\nb: '---'\n", []string{"a: |\n  ---\n  x\nb: '---'"}},
	}
	for _, tc := range tests {
		docs, err := sdep.SplitYAML([]byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var got []string
		for _, d := range docs {
			got = append(got, strings.ReplaceAll(string(d), "\r", ""))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: SplitYAML = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func names(units []sdep.PredictiveUnit) []string {
	out := []string{}
	for _, u := range units {
		out = append(out, u.Name)
	}
	return out
}

func TestModelsWalksNestedGraphs(t *testing.T) {
	graph := sdep.PredictiveUnit{
		Name: "combiner", Type: "COMBINER",
		Children: []sdep.PredictiveUnit{
			{Name: "a", Type: "MODEL"},
			{Name: "transformer", Type: "TRANSFORMER", Children: []sdep.PredictiveUnit{
				{Name: "b"}, // no type, no implementation: a MODEL
				{Name: "router", Type: "ROUTER", Children: []sdep.PredictiveUnit{
					{Name: "c", Type: "model"},
					{Name: "output", Type: "OUTPUT_TRANSFORMER"},
				}},
			}},
			{Name: "d", Type: "MODEL", Implementation: "UNKNOWN_IMPLEMENTATION"},
			{Name: "abtest", Implementation: "RANDOM_ABTEST", Children: []sdep.PredictiveUnit{{Name: "e", Type: "MODEL"}}},
		},
	}
	if got, want := names(graph.Models()), []string{"a", "b", "c", "d", "e"}; !slices.Equal(got, want) {
		t.Errorf("Models() = %v, want %v (depth first)", got, want)
	}
	if got := names(sdep.PredictiveUnit{Name: "solo"}.Models()); !slices.Equal(got, []string{"solo"}) {
		t.Errorf("Models() of a single untyped node = %v", got)
	}
	if got := names(sdep.PredictiveUnit{Name: "r", Type: "ROUTER"}.Models()); len(got) != 0 {
		t.Errorf("Models() of a lone router = %v", got)
	}
}

// The operator types a prepackaged server's node MODEL when the manifest leaves the type out
// (addDefaultsToGraph: IsPrepack(pu) → Type = MODEL), so a manifest read before defaulting must count it.
func TestModelsCountsPrepackagedServersAsModels(t *testing.T) {
	p, err := sdep.PredictorFromFile(filepath.Join("testdata", "multi.yaml"), "canary")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(p.Graph.Models()); !slices.Equal(got, []string{"classifier-v2"}) {
		t.Errorf("Models() of a SKLEARN_SERVER node without a type = %v, want [classifier-v2]", got)
	}
}

func TestContainerPortsCountAcrossPredictorsAsTheOperatorDoes(t *testing.T) {
	pod := func(names ...string) sdep.ComponentSpec {
		var cs sdep.ComponentSpec
		for _, n := range names {
			cs.Spec.Containers = append(cs.Spec.Containers, sdep.Container{Name: n})
		}
		return cs
	}
	predictors := []sdep.PredictorSpec{
		{Name: "main", ComponentSpecs: []sdep.ComponentSpec{pod("a", "b")}, Graph: sdep.PredictiveUnit{Name: "a"}},
		{Name: "canary", ComponentSpecs: []sdep.ComponentSpec{pod("b", "c"), pod("d")},
			Graph: sdep.PredictiveUnit{Name: "b", Children: []sdep.PredictiveUnit{{Name: "sk", Implementation: "SKLEARN_SERVER"}}}},
	}
	tests := []struct {
		predictor string
		want      map[string][2]int
	}{
		{"main", map[string][2]int{"a": {9000, 9500}, "b": {9001, 9501}}},
		// b keeps the number it got in main; d (componentSpecs[1]) is not in the pod; the prepackaged
		// node without a container comes last.
		{"canary", map[string][2]int{"b": {9001, 9501}, "c": {9002, 9502}, "sk": {9004, 9504}}},
	}
	for _, tc := range tests {
		t.Run(tc.predictor, func(t *testing.T) {
			got := sdep.ContainerPorts(predictors, tc.predictor)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("sdep.ContainerPorts = %v, want %v", got, tc.want)
			}
		})
	}
}
