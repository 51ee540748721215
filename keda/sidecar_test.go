package keda

import (
	"fmt"
	"strings"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
)

// testSdep is a SeldonDeployment d/ns with predictor p: graph node m in componentSpecs[0] (where the
// operator puts the sidecar) and its child t in componentSpecs[1]. kedaSpec goes on componentSpecs[kedaOn];
// env items are YAML flow mappings.
func testSdep(specAnnotations, predictorAnnotations string, kedaOn int, kedaSpec string, env ...string) string {
	keda := [2]string{}
	keda[kedaOn] = "\n      kedaSpec: " + kedaSpec
	var envYAML strings.Builder
	for _, e := range env {
		envYAML.WriteString("\n      - " + e)
	}
	return fmt.Sprintf(`apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata:
  name: d
  namespace: ns
spec:
  serverType: kafka
  annotations: {%s}
  predictors:
  - name: p
    annotations: {%s}
    graph:
      name: m
      children:
      - name: t
    componentSpecs:
    - spec:
        containers:
        - name: m%s
    - spec:
        containers:
        - name: t%s
    svcOrchSpec:
      env:%s
`, specAnnotations, predictorAnnotations, keda[0], keda[1], envYAML.String())
}

const kafkaTrigger = `{triggers: [{type: kafka, metadata: {}}]}`

var (
	inlineBroker = `{name: KAFKA_BROKER, value: "k:9092"}`
	inlineTopics = []string{`{name: KAFKA_INPUT_TOPIC, value: in}`, `{name: KAFKA_OUTPUT_TOPIC, value: out}`}
	cmBroker     = `{name: KAFKA_BROKER, valueFrom: {configMapKeyRef: {name: kafka, key: bootstrap}}}`
)

func envOf(first string, rest ...string) []string {
	return append(append([]string{first}, inlineTopics...), rest...)
}

func generateFrom(t *testing.T, manifest string, opts Options) Result {
	t.Helper()
	var in Input
	if err := in.Read("test.yaml", []byte(manifest)); err != nil {
		t.Fatalf("%v\n%s", err, manifest)
	}
	return Generate(in, opts)
}

// scaledObject returns the one ScaledObject of the result.
func scaledObject(t *testing.T, res Result) *kedav1alpha1.ScaledObject {
	t.Helper()
	var found []*kedav1alpha1.ScaledObject
	for _, o := range res.Objects {
		if so, ok := o.Value.(*kedav1alpha1.ScaledObject); ok {
			found = append(found, so)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d ScaledObjects, want 1; diagnostics:\n%s", len(found), diagText(res))
	}
	return found[0]
}

func diagsOf(res Result, sev Severity) string {
	var b strings.Builder
	for _, d := range res.Diagnostics {
		if d.Severity == sev {
			b.WriteString(d.String() + "\n")
		}
	}
	return b.String()
}

// TestSidecarEnvIsReadOnlyWhereTheOperatorPutsTheSidecar: KEDA resolves <field>FromEnv and a
// TriggerAuthentication's env in a container of the Deployment it scales, so they may name the sidecar
// container only in the Deployment the operator puts it in; elsewhere the generator refuses and says where
// the sidecar runs.
func TestSidecarEnvIsReadOnlyWhereTheOperatorPutsTheSidecar(t *testing.T) {
	saslEnv := []string{`{name: KAFKA_SECURITY_PROTOCOL, value: SASL_PLAINTEXT}`, `{name: KAFKA_SASL_MECHANISM, value: PLAIN}`,
		`{name: KAFKA_SASL_USERNAME, value: svc}`, `{name: KAFKA_SASL_PASSWORD, valueFrom: {secretKeyRef: {name: s, key: password}}}`}
	const separate = `seldon.io/engine-separate-pod: "true"`
	const noEngine = `seldon.io/no-engine: "true"`
	cases := []struct {
		name          string
		manifest      string
		wantEnvSource string // the ScaledObject's envSourceContainerName
		wantAuthEnv   string // the container of the TriggerAuthentication's env, "" for none
		wantErr       string // part of the error, "" for none
	}{
		{name: "broker from a ConfigMap, kedaSpec where the sidecar runs: read from the sidecar container",
			manifest: testSdep("", "", 0, kafkaTrigger, envOf(cmBroker)...), wantEnvSource: "seldon-container-engine"},
		{name: "broker from a ConfigMap, kedaSpec on the Deployment without the sidecar: refused, naming where it runs",
			manifest: testSdep("", "", 1, kafkaTrigger, envOf(cmBroker)...), wantErr: "componentSpecs[0]'s Deployment d-p-0-m"},
		{name: "broker from a ConfigMap, sidecar in its own Deployment: refused, naming the svc-orch Deployment",
			manifest: testSdep(separate, "", 0, kafkaTrigger, envOf(cmBroker)...), wantErr: "Deployment d-p-svc-orch"},
		{name: "broker from a ConfigMap, no sidecar: refused",
			manifest: testSdep("", noEngine, 0, kafkaTrigger, envOf(cmBroker)...), wantErr: "no sidecar runs in this predictor"},
		{name: "every value inline, kedaSpec on the Deployment without the sidecar: nothing read from a container",
			manifest: testSdep("", "", 1, kafkaTrigger, envOf(inlineBroker)...)},
		{name: "inline SASL username where the sidecar runs: the TriggerAuthentication reads the sidecar container",
			manifest: testSdep("", "", 0, kafkaTrigger, envOf(inlineBroker, saslEnv...)...), wantAuthEnv: "seldon-container-engine"},
		{name: "inline SASL username, kedaSpec on the Deployment without the sidecar: refused",
			manifest: testSdep("", "", 1, kafkaTrigger, envOf(inlineBroker, saslEnv...)...), wantErr: "reads KAFKA_SASL_USERNAME from the environment of container seldon-container-engine"},
		{name: "inline SASL username, sidecar in its own Deployment: refused",
			manifest: testSdep(separate, "", 0, kafkaTrigger, envOf(inlineBroker, saslEnv...)...), wantErr: "Deployment d-p-svc-orch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := generateFrom(t, tc.manifest, Options{})
			errs := diagsOf(res, Error)
			if tc.wantErr != "" {
				if !strings.Contains(errs, tc.wantErr) {
					t.Fatalf("errors lack %q:\n%s", tc.wantErr, diagText(res))
				}
				return
			}
			if errs != "" {
				t.Fatalf("unexpected errors:\n%s", errs)
			}
			if got := scaledObject(t, res).Spec.ScaleTargetRef.EnvSourceContainerName; got != tc.wantEnvSource {
				t.Errorf("envSourceContainerName %q, want %q", got, tc.wantEnvSource)
			}
			var authEnv string
			for _, o := range res.Objects {
				if ta, ok := o.Value.(*kedav1alpha1.TriggerAuthentication); ok {
					for _, e := range ta.Spec.Env {
						authEnv = e.ContainerName
					}
				}
			}
			if authEnv != tc.wantAuthEnv {
				t.Errorf("TriggerAuthentication env container %q, want %q", authEnv, tc.wantAuthEnv)
			}
		})
	}
}

// TestEnvReferencesExpandAsKubernetesExpandsThem: the trigger gets the value the sidecar gets after
// Kubernetes expands $(VAR) from the variables before it; what cannot be expanded here is left to KEDA,
// which expands the sidecar container's variables itself through <field>FromEnv.
func TestEnvReferencesExpandAsKubernetesExpandsThem(t *testing.T) {
	out := `{name: KAFKA_OUTPUT_TOPIC, value: out}`
	cases := []struct {
		name     string
		env      []string
		want     map[string]string // trigger metadata; "" is absent
		wantWarn string
	}{
		{name: "$(VAR) of an earlier inline variable expands",
			env:  []string{`{name: PREFIX, value: team}`, inlineBroker, `{name: KAFKA_INPUT_TOPIC, value: "$(PREFIX)-in"}`, out},
			want: map[string]string{"topic": "team-in", "topicFromEnv": ""}},
		{name: "expansion follows earlier expansions",
			env: []string{`{name: HOST, value: kafka}`, `{name: BROKERS, value: "$(HOST)-0:9092,$(HOST)-1:9092"}`,
				`{name: KAFKA_BROKER, value: "$(BROKERS)"}`, inlineTopics[0], out},
			want: map[string]string{"bootstrapServers": "kafka-0:9092,kafka-1:9092"}},
		{name: "$$(VAR) is an escaped reference: the value keeps $(VAR)",
			env:  []string{`{name: PREFIX, value: team}`, inlineBroker, inlineTopics[0], out, `{name: KAFKA_GROUP_ID, value: "g-$$(PREFIX)"}`},
			want: map[string]string{"consumerGroup": "g-$(PREFIX)"}},
		{name: "$(VAR) of a variable defined later stays as written, with a warning",
			env:  []string{inlineBroker, inlineTopics[0], out, `{name: KAFKA_GROUP_ID, value: "$(TEAM)-g"}`, `{name: TEAM, value: a}`},
			want: map[string]string{"consumerGroup": "$(TEAM)-g"}, wantWarn: "no variable TEAM comes before it"},
		{name: "$(VAR) of an unknown variable stays as written, with a warning",
			env:  []string{inlineBroker, inlineTopics[0], out, `{name: KAFKA_GROUP_ID, value: "$(NOPE)"}`},
			want: map[string]string{"consumerGroup": "$(NOPE)"}, wantWarn: "no variable NOPE comes before it"},
		{name: "$(VAR) of a ConfigMap variable: bootstrapServersFromEnv, which KEDA expands",
			env: []string{`{name: HOST, valueFrom: {configMapKeyRef: {name: kafka, key: host}}}`, `{name: KAFKA_BROKER, value: "$(HOST):9092"}`,
				inlineTopics[0], out},
			want: map[string]string{"bootstrapServers": "", "bootstrapServersFromEnv": "KAFKA_BROKER"}},
		{name: "$(VAR) of a Secret variable in the topic: topicFromEnv",
			env: []string{inlineBroker, `{name: T, valueFrom: {secretKeyRef: {name: s, key: topic}}}`,
				`{name: KAFKA_INPUT_TOPIC, value: "$(T)"}`, out},
			want: map[string]string{"topic": "", "topicFromEnv": "KAFKA_INPUT_TOPIC"}},
		{name: "$(VAR) of the operator's own variable: read through FromEnv",
			env:  []string{inlineBroker, inlineTopics[0], out, `{name: KAFKA_GROUP_ID, value: "$(ENGINE_PREDICTOR)"}`},
			want: map[string]string{"consumerGroup": "", "consumerGroupFromEnv": "KAFKA_GROUP_ID"}},
		{name: "the offset reset policy expands too",
			env:  []string{`{name: RESET, value: Latest}`, inlineBroker, inlineTopics[0], out, `{name: KAFKA_AUTO_OFFSET_RESET, value: "$(RESET)"}`},
			want: map[string]string{"offsetResetPolicy": "latest"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := generateFrom(t, testSdep("", "", 0, kafkaTrigger, tc.env...), Options{})
			if res.HasErrors() {
				t.Fatalf("errors:\n%s", diagText(res))
			}
			md := scaledObject(t, res).Spec.Triggers[0].Metadata
			for k, want := range tc.want {
				if got := md[k]; got != want {
					t.Errorf("metadata %s = %q, want %q (metadata %v)", k, got, want, md)
				}
			}
			warns := diagsOf(res, Warning)
			if tc.wantWarn != "" && !strings.Contains(warns, tc.wantWarn) {
				t.Errorf("warnings lack %q:\n%s", tc.wantWarn, warns)
			}
			if tc.wantWarn == "" && warns != "" {
				t.Errorf("unexpected warnings:\n%s", warns)
			}
		})
	}
}

// TestOffsetResetTheSidecarRefusesIsRefused: the sidecar lower-cases KAFKA_AUTO_OFFSET_RESET and takes
// earliest or latest, neither trimmed nor empty; the generator takes the same and names the variable.
func TestOffsetResetTheSidecarRefusesIsRefused(t *testing.T) {
	cases := []struct {
		name    string
		env     []string // added to the inline broker and topics
		want    string   // offsetResetPolicy, when accepted
		wantErr string
	}{
		{name: "unset: the sidecar's default, earliest", want: "earliest"},
		{name: "LATEST in capitals", env: []string{`{name: KAFKA_AUTO_OFFSET_RESET, value: LATEST}`}, want: "latest"},
		{name: "Earliest", env: []string{`{name: KAFKA_AUTO_OFFSET_RESET, value: Earliest}`}, want: "earliest"},
		{name: "set but empty", env: []string{`{name: KAFKA_AUTO_OFFSET_RESET, value: ""}`}, wantErr: `KAFKA_AUTO_OFFSET_RESET is "": the sidecar refuses it`},
		{name: "a leading space", env: []string{`{name: KAFKA_AUTO_OFFSET_RESET, value: " latest"}`}, wantErr: `KAFKA_AUTO_OFFSET_RESET is " latest": the sidecar refuses it`},
		{name: "a trailing space", env: []string{`{name: KAFKA_AUTO_OFFSET_RESET, value: "earliest "}`}, wantErr: `KAFKA_AUTO_OFFSET_RESET is "earliest ": the sidecar refuses it`},
		{name: "a word the sidecar does not know", env: []string{`{name: KAFKA_AUTO_OFFSET_RESET, value: newest}`}, wantErr: `KAFKA_AUTO_OFFSET_RESET is "newest"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := generateFrom(t, testSdep("", "", 0, kafkaTrigger, envOf(inlineBroker, tc.env...)...), Options{})
			if tc.wantErr != "" {
				if errs := diagsOf(res, Error); !strings.Contains(errs, tc.wantErr) {
					t.Fatalf("errors lack %q:\n%s", tc.wantErr, diagText(res))
				}
				return
			}
			if res.HasErrors() {
				t.Fatalf("errors:\n%s", diagText(res))
			}
			if got := scaledObject(t, res).Spec.Triggers[0].Metadata["offsetResetPolicy"]; got != tc.want {
				t.Errorf("offsetResetPolicy %q, want %q", got, tc.want)
			}
		})
	}
}

// TestKedaSpecFieldsSeldonsCRDLacksAreWarned: fields Seldon Core v1.18.2's SeldonDeployment CRD does not
// have make kubectl apply of the SeldonDeployment fail under strict validation; the generator says so.
func TestKedaSpecFieldsSeldonsCRDLacksAreWarned(t *testing.T) {
	cases := []struct {
		name     string
		kedaSpec string
		wantWarn string // "" for no warning
	}{
		{"initialCooldownPeriod", `{initialCooldownPeriod: 30, triggers: [{type: kafka, metadata: {}}]}`,
			"initialCooldownPeriod is not in Seldon Core v1.18.2's SeldonDeployment CRD"},
		{"advanced.horizontalPodAutoscalerConfig.name", `{advanced: {horizontalPodAutoscalerConfig: {name: my-hpa}}, triggers: [{type: kafka, metadata: {}}]}`,
			"advanced.horizontalPodAutoscalerConfig.name is not in Seldon Core v1.18.2's SeldonDeployment CRD"},
		{"the CRD's own fields pass quietly", `{pollingInterval: 15, cooldownPeriod: 60, minReplicaCount: 1, maxReplicaCount: 2, advanced: {horizontalPodAutoscalerConfig: {behavior: {scaleDown: {stabilizationWindowSeconds: 30}}}}, triggers: [{type: kafka, metadata: {}}]}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := generateFrom(t, testSdep("", "", 0, tc.kedaSpec, envOf(inlineBroker)...), Options{DefaultPartitions: 2})
			if res.HasErrors() {
				t.Fatalf("errors:\n%s", diagText(res))
			}
			warns := diagsOf(res, Warning)
			if tc.wantWarn == "" && warns != "" {
				t.Errorf("unexpected warnings:\n%s", warns)
			}
			if tc.wantWarn != "" && !strings.Contains(warns, tc.wantWarn) {
				t.Errorf("warnings lack %q:\n%s", tc.wantWarn, warns)
			}
		})
	}
}
