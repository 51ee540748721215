// Package sdep holds the parts of a machinelearning.seldon.io/v1 SeldonDeployment that the sidecar and
// its tools read: the predictors, their inference graphs, componentSpecs and the service orchestrator's
// environment. The types are written here rather than imported from the Seldon operator because that
// module drags in client-go and controller-runtime; the JSON field names are the operator's own, so the
// ENGINE_PREDICTOR value the operator writes and a SeldonDeployment manifest both decode into them.
package sdep

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// SeldonDeployment is a machinelearning.seldon.io/v1 (or v1alpha2/v1alpha3) SeldonDeployment.
type SeldonDeployment struct {
	APIVersion string     `json:"apiVersion,omitempty"`
	Kind       string     `json:"kind,omitempty"`
	Metadata   ObjectMeta `json:"metadata"`
	Spec       Spec       `json:"spec"`
}

// ObjectMeta is the subset of Kubernetes object metadata the tools carry over.
type ObjectMeta struct {
	Name        string            `json:"name,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	UID         string            `json:"uid,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Spec is a SeldonDeployment's spec.
type Spec struct {
	Name        string            `json:"name,omitempty"`
	Protocol    string            `json:"protocol,omitempty"`
	Transport   string            `json:"transport,omitempty"`
	ServerType  string            `json:"serverType,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Predictors  []PredictorSpec   `json:"predictors"`
}

// PredictorSpec is one predictor: what the operator base64-encodes into the executor's ENGINE_PREDICTOR.
type PredictorSpec struct {
	Name           string            `json:"name"`
	Graph          PredictiveUnit    `json:"graph"`
	ComponentSpecs []ComponentSpec   `json:"componentSpecs,omitempty"`
	Replicas       *int32            `json:"replicas,omitempty"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	SvcOrchSpec    SvcOrchSpec       `json:"svcOrchSpec,omitempty"`
	Traffic        int32             `json:"traffic,omitempty"`

	// DefaultPorts are the ports the operator would give the predictor's local containers
	// (ContainerPorts), when the predictor was read from a whole SeldonDeployment, whose other predictors
	// count too; nil otherwise.
	DefaultPorts map[string][2]int `json:"-"`
}

// ComponentSpec is one Deployment the operator makes for a predictor. Spec is kept raw: only container
// names are read from it, and the KEDA spec is carried over as the user wrote it.
type ComponentSpec struct {
	Metadata ObjectMeta      `json:"metadata,omitempty"`
	Spec     PodSpec         `json:"spec,omitempty"`
	Replicas *int32          `json:"replicas,omitempty"`
	KedaSpec json.RawMessage `json:"kedaSpec,omitempty"`
}

// PodSpec is the subset of a pod spec the tools need.
type PodSpec struct {
	Containers []Container `json:"containers,omitempty"`
}

// Container is the subset of a container the tools need.
type Container struct {
	Name  string   `json:"name"`
	Image string   `json:"image,omitempty"`
	Env   []EnvVar `json:"env,omitempty"`
}

// SvcOrchSpec configures the service orchestrator (this sidecar) container.
type SvcOrchSpec struct {
	Env []EnvVar `json:"env,omitempty"`
}

// EnvVar is a Kubernetes container environment variable: a plain value or a reference.
type EnvVar struct {
	Name      string        `json:"name"`
	Value     string        `json:"value,omitempty"`
	ValueFrom *EnvVarSource `json:"valueFrom,omitempty"`
}

// EnvVarSource is where a variable's value comes from when it is not written inline.
type EnvVarSource struct {
	SecretKeyRef    *KeySelector `json:"secretKeyRef,omitempty"`
	ConfigMapKeyRef *KeySelector `json:"configMapKeyRef,omitempty"`
}

// KeySelector names one key of a Secret or ConfigMap.
type KeySelector struct {
	Name     string `json:"name"`
	Key      string `json:"key"`
	Optional *bool  `json:"optional,omitempty"`
}

// PredictiveUnit is a node of the inference graph.
type PredictiveUnit struct {
	Name           string           `json:"name"`
	Type           string           `json:"type,omitempty"`
	Implementation string           `json:"implementation,omitempty"`
	Methods        []string         `json:"methods,omitempty"`
	Endpoint       *Endpoint        `json:"endpoint,omitempty"`
	Children       []PredictiveUnit `json:"children,omitempty"`
	Parameters     []Parameter      `json:"parameters,omitempty"`
	ModelURI       string           `json:"modelUri,omitempty"`
	Logger         *Logger          `json:"logger,omitempty"`
}

// Parameter is a graph node's parameter, passed to its container (and read by the built-in units).
type Parameter struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Type  string `json:"type,omitempty"`
}

// Logger is a graph node's payload logger: where request and response payloads are sent, and which.
type Logger struct {
	URL  *string `json:"url,omitempty"`
	Mode string  `json:"mode,omitempty"` // request | response | all
}

// The graph node types the operator writes (PredictiveUnitType).
const (
	TypeModel             = "MODEL"
	TypeTransformer       = "TRANSFORMER"
	TypeOutputTransformer = "OUTPUT_TRANSFORMER"
	TypeRouter            = "ROUTER"
	TypeCombiner          = "COMBINER"
	TypeUnknown           = "UNKNOWN_TYPE"
)

// The graph node methods (PredictiveUnitMethod): what a node does besides, or instead of, what its type says.
const (
	MethodTransformInput  = "TRANSFORM_INPUT"
	MethodTransformOutput = "TRANSFORM_OUTPUT"
	MethodRoute           = "ROUTE"
	MethodAggregate       = "AGGREGATE"
	MethodSendFeedback    = "SEND_FEEDBACK"
)

// Endpoint is where the operator says a graph node listens. ServiceHost and the ports are filled in by
// the operator before it encodes ENGINE_PREDICTOR; in a hand-written manifest they are usually absent.
type Endpoint struct {
	ServiceHost string `json:"service_host,omitempty"`
	ServicePort int32  `json:"service_port,omitempty"`
	Type        string `json:"type,omitempty"`
	HTTPPort    int32  `json:"httpPort,omitempty"`
	GRPCPort    int32  `json:"grpcPort,omitempty"`
}

// DecodePredictor decodes the base64 PredictorSpec JSON that the operator sets in ENGINE_PREDICTOR.
func DecodePredictor(b64 string) (PredictorSpec, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return PredictorSpec{}, fmt.Errorf("not base64: %w", err)
	}
	var p PredictorSpec
	if err := json.Unmarshal(raw, &p); err != nil {
		return PredictorSpec{}, fmt.Errorf("not a PredictorSpec JSON: %w", err)
	}
	return p, nil
}

// PredictorFromFile reads the predictor named name from a file, as the legacy executor's --file does:
// a SeldonDeployment manifest (YAML or JSON) whose spec.predictors holds it, or a bare PredictorSpec.
// A file that holds several YAML documents is searched in order for a SeldonDeployment.
func PredictorFromFile(path, name string) (PredictorSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return PredictorSpec{}, err
	}
	docs, err := SplitYAML(data)
	if err != nil {
		return PredictorSpec{}, fmt.Errorf("%s: %w", path, err)
	}
	var names []string
	for _, doc := range docs {
		var probe struct {
			Kind  string          `json:"kind"`
			Spec  json.RawMessage `json:"spec"`
			Graph json.RawMessage `json:"graph"`
		}
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			return PredictorSpec{}, fmt.Errorf("%s: %w", path, err)
		}
		switch {
		case probe.Kind == "SeldonDeployment":
			var d SeldonDeployment
			if err := yaml.Unmarshal(doc, &d); err != nil {
				return PredictorSpec{}, fmt.Errorf("%s: SeldonDeployment: %w", path, err)
			}
			for _, p := range d.Spec.Predictors {
				if p.Name == name {
					p.DefaultPorts = ContainerPorts(d.Spec.Predictors, name)
					return p, nil
				}
				names = append(names, p.Name)
			}
		case probe.Kind == "" && probe.Graph != nil:
			var p PredictorSpec
			if err := yaml.Unmarshal(doc, &p); err != nil {
				return PredictorSpec{}, fmt.Errorf("%s: PredictorSpec: %w", path, err)
			}
			return p, nil
		}
	}
	if len(names) > 0 {
		return PredictorSpec{}, fmt.Errorf("%s: no predictor named %q (the file has %s)", path, name, strings.Join(names, ", "))
	}
	return PredictorSpec{}, fmt.Errorf("%s: neither a SeldonDeployment nor a PredictorSpec", path)
}

// ReadDeployments reads every SeldonDeployment in a stream of YAML or JSON documents, skipping other kinds.
func ReadDeployments(data []byte) ([]SeldonDeployment, error) {
	docs, err := SplitYAML(data)
	if err != nil {
		return nil, err
	}
	var out []SeldonDeployment
	for i, doc := range docs {
		var d SeldonDeployment
		if err := yaml.Unmarshal(doc, &d); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if d.Kind == "SeldonDeployment" {
			out = append(out, d)
		}
	}
	return out, nil
}

// SplitYAML splits a YAML stream on document separators, dropping empty documents.
func SplitYAML(data []byte) ([][]byte, error) {
	var docs [][]byte
	var cur []string
	flush := func() {
		doc := strings.TrimSpace(strings.Join(cur, "\n"))
		cur = cur[:0]
		if doc != "" && !onlyComments(doc) {
			docs = append(docs, []byte(doc))
		}
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "---") && strings.TrimSpace(strings.TrimPrefix(line, "---")) == "" {
			flush()
			continue
		}
		cur = append(cur, line)
	}
	flush()
	if len(docs) == 0 {
		return nil, errors.New("no document")
	}
	return docs, nil
}

func onlyComments(doc string) bool {
	for _, l := range strings.Split(doc, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			return false
		}
	}
	return true
}

// Models returns the graph's MODEL nodes in depth-first order. A node with no type counts as a MODEL
// when it has no implementation or a prepackaged server's (SKLEARN_SERVER, …), as the operator types it;
// the built-in units (RANDOM_ABTEST, AVERAGE_COMBINER, …) do not.
func (u PredictiveUnit) Models() []PredictiveUnit {
	var out []PredictiveUnit
	var walk func(PredictiveUnit)
	walk = func(n PredictiveUnit) {
		if strings.EqualFold(n.Type, "MODEL") || (n.Type == "" && (n.Implementation == "" || prepackaged(n.Implementation))) {
			out = append(out, n)
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(u)
	return out
}

// prepackaged reports whether an implementation names one of the operator's prepackaged model servers.
func prepackaged(impl string) bool {
	return strings.HasSuffix(strings.ToUpper(impl), "_SERVER")
}
