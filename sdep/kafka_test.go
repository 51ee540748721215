package sdep

import (
	"errors"
	"strings"
	"testing"
)

// TestNamingResolvesAsTheSidecarNamesItsTopicsAndGroup: the names each combination of variables gives,
// for the SeldonDeployment iris in namespace models, predictor default.
func TestNamingResolvesAsTheSidecarNamesItsTopicsAndGroup(t *testing.T) {
	cases := []struct {
		name                    string
		scheme, prefix, gprefix string
		in, out, errs, group    string // the variables; "" not set
		want                    Names
	}{
		{name: "legacy: the variables, errors to the output topic, the legacy group",
			in: "requests", out: "answers", want: Names{"requests", "answers", "answers", "default.iris.models"}},
		{name: "legacy with a group prefix: joined with a dash, as Core 2's consumerGroupIdPrefix",
			gprefix: "tenant-a", in: "requests", out: "answers", want: Names{"requests", "answers", "answers", "tenant-a-default.iris.models"}},
		{name: "legacy: KAFKA_GROUP_ID is taken as written, prefix or not",
			gprefix: "tenant-a", in: "requests", out: "answers", group: "mine", want: Names{"requests", "answers", "answers", "mine"}},
		{name: "core2 without a prefix: Core 2's default topicPrefix, seldon",
			scheme: "core2", want: Names{"seldon.models.model.iris.inputs", "seldon.models.model.iris.outputs", "seldon.models.errors.errors", "default.iris.models"}},
		{name: "core2 with both prefixes",
			scheme: "core2", prefix: "tenant-a", gprefix: "tenant-a",
			want: Names{"tenant-a.models.model.iris.inputs", "tenant-a.models.model.iris.outputs", "tenant-a.models.errors.errors", "tenant-a-default.iris.models"}},
		{name: "core2, any case, explicit variables win",
			scheme: " Core2 ", in: "requests", errs: "failures",
			want: Names{"requests", "seldon.models.model.iris.outputs", "failures", "default.iris.models"}},
		{name: "legacy spelled out", scheme: "LEGACY", in: "a", out: "b", errs: "c", want: Names{"a", "b", "c", "default.iris.models"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := NewNaming(tc.scheme, tc.prefix, tc.gprefix, "iris", "models", "default")
			if err != nil {
				t.Fatal(err)
			}
			got, err := n.Resolve([4]Given{{Value: tc.in}, {Value: tc.out}, {Value: tc.errs}, {Value: tc.group}})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("names\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestNamingRefusesWhatTheSidecarRefuses: each bad setting is a *NameError naming the variable or flag.
func TestNamingRefusesWhatTheSidecarRefuses(t *testing.T) {
	long := strings.Repeat("p", 230)
	cases := []struct {
		name                    string
		scheme, prefix, gprefix string
		sdep, ns                string
		in, out, errs           string
		wantVar, wantMsg        string
	}{
		{name: "unknown scheme", scheme: "core3", in: "a", out: "b", wantVar: EnvTopicNaming, wantMsg: "want legacy"},
		{name: "a topic prefix with the legacy naming names nothing", prefix: "tenant", in: "a", out: "b", wantVar: EnvTopicPrefix, wantMsg: "only with KAFKA_TOPIC_NAMING=core2"},
		{name: "a topic prefix a topic name cannot hold", scheme: "core2", prefix: "ten/ant", wantVar: EnvTopicPrefix},
		{name: "a group prefix with a space", gprefix: "ten ant", in: "a", out: "b", wantVar: EnvGroupPrefix},
		{name: "legacy without an input topic", out: "b", wantVar: EnvInputTopic, wantMsg: "KAFKA_TOPIC_NAMING=core2"},
		{name: "legacy without an output topic", in: "a", wantVar: EnvOutputTopic},
		{name: "core2 without a namespace", scheme: "core2", ns: "-", wantVar: "--namespace"},
		{name: "core2 without a SeldonDeployment", scheme: "core2", sdep: "-", wantVar: "--sdep"},
		{name: "core2 names a topic over 249 characters", scheme: "core2", prefix: long, wantVar: EnvInputTopic, wantMsg: "249"},
		{name: "answers read back as requests", in: "a", out: "a", wantVar: EnvOutputTopic},
		{name: "core2: an explicit input topic that is the derived output", scheme: "core2", in: "seldon.models.model.iris.outputs", wantVar: EnvOutputTopic},
		{name: "errors read back as requests", in: "a", out: "b", errs: "a", wantVar: EnvErrorTopic},
		{name: "an explicit topic that is not one", in: "a b", out: "b", wantVar: EnvInputTopic},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sdepName, ns := "iris", "models"
			if tc.sdep == "-" {
				sdepName = ""
			}
			if tc.ns == "-" {
				ns = ""
			}
			n, err := NewNaming(tc.scheme, tc.prefix, tc.gprefix, sdepName, ns, "default")
			if err == nil {
				_, err = n.Resolve([4]Given{{Value: tc.in}, {Value: tc.out}, {Value: tc.errs}, {Value: "g"}})
			}
			var ne *NameError
			if !errors.As(err, &ne) {
				t.Fatalf("error %v, want a *NameError naming %s", err, tc.wantVar)
			}
			if ne.Var != tc.wantVar || !strings.Contains(ne.Msg, tc.wantMsg) {
				t.Errorf("error %v, want one naming %s saying %q", err, tc.wantVar, tc.wantMsg)
			}
		})
	}
}

// TestKafkaOfReadsTheEnvironmentAsKubernetesGivesIt: $(VAR) is expanded before naming, a name from a
// ConfigMap is set but not known, and a naming variable from one stops the derivation, saying where.
func TestKafkaOfReadsTheEnvironmentAsKubernetesGivesIt(t *testing.T) {
	cm := &EnvVarSource{ConfigMapKeyRef: &KeySelector{Name: "kafka", Key: "k"}}
	pk, err := KafkaOf(ResolveEnv([]EnvVar{
		{Name: "TENANT", Value: "tenant-a"},
		{Name: EnvTopicNaming, Value: "core2"},
		{Name: EnvTopicPrefix, Value: "$(TENANT)"},
		{Name: EnvOutputTopic, ValueFrom: cm},
	}), "iris", "models", "default")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Names{"tenant-a.models.model.iris.inputs", "", "tenant-a.models.errors.errors", "default.iris.models"}); pk.Names != want {
		t.Errorf("names %q, want %q", pk.Names, want)
	}
	if !pk.Given[Output].Unknown || pk.From[Output] != "configMapKeyRef kafka/k" || pk.Derived[Output] {
		t.Errorf("output: given %+v from %q derived %v; want unknown, from the ConfigMap", pk.Given[Output], pk.From[Output], pk.Derived[Output])
	}
	if !pk.Derived[Input] || !pk.Derived[Group] {
		t.Errorf("derived %v, want the input topic and the group derived", pk.Derived)
	}

	_, err = KafkaOf(ResolveEnv([]EnvVar{{Name: EnvTopicPrefix, ValueFrom: cm}, {Name: EnvTopicNaming, Value: "core2"}}), "iris", "models", "default")
	if err == nil || !strings.Contains(err.Error(), "KAFKA_TOPIC_PREFIX: comes from configMapKeyRef kafka/k") {
		t.Errorf("a prefix from a ConfigMap: %v", err)
	}
}
