package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/seldon-kafka/sidecar/executor"
	"github.com/seldon-kafka/sidecar/internal/testkit"
	"github.com/seldon-kafka/sidecar/kafka/topics"
	"github.com/seldon-kafka/sidecar/sdep"
)

// namingSdep is a SeldonDeployment iris in namespace models with one predictor, default, whose one
// model m has a kedaSpec; env items are YAML flow mappings after KAFKA_BROKER.
func namingSdep(broker, name, namespace string, annotations string, env ...string) string {
	var b strings.Builder
	for _, e := range env {
		b.WriteString("\n      - " + e)
	}
	return fmt.Sprintf(`apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata:
  name: %s
  namespace: %s
  annotations: {%s}
spec:
  serverType: kafka
  protocol: v2
  predictors:
  - name: default
    graph: {name: m, type: MODEL}
    componentSpecs:
    - spec:
        containers:
        - name: m
      kedaSpec: {triggers: [{type: kafka, metadata: {}}]}
    svcOrchSpec:
      env:
      - {name: KAFKA_BROKER, value: "%s"}%s
`, name, namespace, annotations, broker, b.String())
}

// TestKedaAndTopicsNameWhatTheSidecarConsumes: for the same SeldonDeployment, the topic and group of
// the kafka trigger seldon-keda generates, the group and topic its lag report reads, and the topics its
// topics command manages are the ones the sidecar's own configuration loader gives the sidecar.
func TestKedaAndTopicsNameWhatTheSidecarConsumes(t *testing.T) {
	cases := []struct {
		name string
		env  []string
	}{
		{"legacy naming", []string{`{name: KAFKA_INPUT_TOPIC, value: requests}`, `{name: KAFKA_OUTPUT_TOPIC, value: answers}`}},
		{"legacy naming, error topic and group prefix", []string{`{name: KAFKA_INPUT_TOPIC, value: requests}`, `{name: KAFKA_OUTPUT_TOPIC, value: answers}`,
			`{name: KAFKA_ERROR_TOPIC, value: failures}`, `{name: KAFKA_CONSUMER_GROUP_ID_PREFIX, value: tenant-a}`}},
		{"core2 naming, Core 2's default prefix", []string{`{name: KAFKA_TOPIC_NAMING, value: core2}`}},
		{"core2 naming with both prefixes", []string{`{name: KAFKA_TOPIC_NAMING, value: core2}`,
			`{name: KAFKA_TOPIC_PREFIX, value: tenant-a}`, `{name: KAFKA_CONSUMER_GROUP_ID_PREFIX, value: tenant-a}`}},
		{"core2 naming, an explicit input topic and group", []string{`{name: KAFKA_TOPIC_NAMING, value: CORE2}`,
			`{name: KAFKA_INPUT_TOPIC, value: " requests "}`, `{name: KAFKA_GROUP_ID, value: mine}`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			manifest := namingSdep("kafka:9092", "iris", "models", "", tc.env...)
			file := filepath.Join(t.TempDir(), "sdep.yaml")
			if err := os.WriteFile(file, []byte(manifest), 0o644); err != nil {
				t.Fatal(err)
			}

			// The sidecar, as the operator starts it with this predictor's svcOrchSpec.env.
			var d sdep.SeldonDeployment
			if err := yaml.Unmarshal([]byte(manifest), &d); err != nil {
				t.Fatal(err)
			}
			sidecarEnv := map[string]string{}
			for _, kv := range os.Environ() {
				if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "KAFKA_") || name == "ENGINE_PREDICTOR" {
					t.Setenv(name, "")
					os.Unsetenv(name)
				}
			}
			for _, v := range d.Spec.Predictors[0].SvcOrchSpec.Env {
				t.Setenv(v.Name, v.Value)
				sidecarEnv[v.Name] = v.Value
			}
			cfg, err := executor.LoadConfig([]string{"--sdep=iris", "--namespace=models", "--predictor=default", "--protocol=v2", "--file=" + file})
			if err != nil {
				t.Fatalf("the sidecar's configuration: %v", err)
			}

			// seldon-keda generate.
			code, out, errs := runCmd(t, nil, "generate", "-f", file)
			if code != 0 {
				t.Fatalf("generate: exit %d: %s", code, errs)
			}
			var md map[string]string
			docs, err := sdep.SplitYAML([]byte(out))
			if err != nil {
				t.Fatal(err)
			}
			for _, doc := range docs {
				var so kedav1alpha1.ScaledObject
				if err := yaml.Unmarshal(doc, &so); err == nil && so.Kind == "ScaledObject" {
					md = so.Spec.Triggers[0].Metadata
				}
			}
			if md["topic"] != cfg.InputTopic || md["consumerGroup"] != cfg.GroupID {
				t.Errorf("the trigger watches topic %q group %q; the sidecar consumes %q in group %q", md["topic"], md["consumerGroup"], cfg.InputTopic, cfg.GroupID)
			}

			// seldon-keda lag, with the sidecar's variables and the operator's flags.
			var quiet bytes.Buffer
			lc, err := parseLag([]string{"--sdep", "iris", "--namespace", "models", "--predictor", "default"}, &quiet, &quiet, func(k string) string { return sidecarEnv[k] })
			if err != nil {
				t.Fatalf("lag: %v", err)
			}
			if lc.Topic != cfg.InputTopic || lc.Settings.GroupID != cfg.GroupID {
				t.Errorf("the lag report reads topic %q group %q; the sidecar consumes %q in group %q", lc.Topic, lc.Settings.GroupID, cfg.InputTopic, cfg.GroupID)
			}

			// seldon-keda topics.
			ts, err := topics.Of(d, "")
			if err != nil {
				t.Fatal(err)
			}
			var managed []string
			for _, x := range ts {
				managed = append(managed, x.Name)
			}
			used := slices.Compact([]string{cfg.InputTopic, cfg.OutputTopic, cfg.ErrorTopic})
			if !slices.Equal(managed, used) {
				t.Errorf("topics manages %q; the sidecar uses %q", managed, used)
			}
		})
	}
}

// TestTopicsCommandWithCore2Naming creates and deletes Core 2's topics for a SeldonDeployment on the
// broker: its model topics go with it when it opts in, and the namespace's error topic, which every
// model of the namespace writes to, stays, as Core 2 keeps it.
func TestTopicsCommandWithCore2Naming(t *testing.T) {
	bootstrap := testkit.Bootstrap(t)
	ns := "ns" + time.Now().Format("150405000000")
	manifest := namingSdep(bootstrap, "iris", ns, `seldon.io/clean-topics-on-delete: "true"`,
		`{name: KAFKA_TOPIC_NAMING, value: core2}`, `{name: KAFKA_TOPIC_PREFIX, value: tenant-a}`)
	file := filepath.Join(t.TempDir(), "sdep.yaml")
	if err := os.WriteFile(file, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	errTopic := "tenant-a." + ns + ".errors.errors"
	testkit.DeleteAtEnd(t, bootstrap, errTopic, "tenant-a."+ns+".model.iris.inputs", "tenant-a."+ns+".model.iris.outputs")

	steps := []struct {
		args []string
		want string
	}{
		{[]string{"create", "--partitions", "1", "--replication-factor", "1"},
			fmt.Sprintf("tenant-a.%[1]s.model.iris.inputs=created tenant-a.%[1]s.model.iris.outputs=created tenant-a.%[1]s.errors.errors=created", ns)},
		{[]string{"delete"},
			fmt.Sprintf("tenant-a.%[1]s.model.iris.inputs=deleted tenant-a.%[1]s.model.iris.outputs=deleted tenant-a.%[1]s.errors.errors=kept/true", ns)},
	}
	for _, s := range steps {
		args := append([]string{"topics", s.args[0], "--json", "-X", "broker.address.family=v4", "-f", file}, s.args[1:]...)
		code, out, errs := runCmd(t, nil, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", s.args, code, errs)
		}
		var st []topics.Status
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("%v: %v\n%s", s.args, err, out)
		}
		var got []string
		for _, x := range st {
			g := x.Topic + "=" + x.Action
			if x.Action == "kept" {
				g += fmt.Sprintf("/%v", x.Exists)
			}
			got = append(got, g)
		}
		if strings.Join(got, " ") != s.want {
			t.Errorf("%v: %s\nwant %s", s.args, strings.Join(got, " "), s.want)
		}
	}
}
