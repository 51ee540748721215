package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/internal/testkit"
)

func runCmd(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

// The sidecar binary must not link KEDA's API types: only this command may.
func TestExecutorDoesNotLinkKEDA(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/seldon-kafka/sidecar/cmd/executor").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "github.com/kedacore/keda") {
		t.Errorf("cmd/executor depends on KEDA:\n%s", out)
	}
}

func TestGenerateCommand(t *testing.T) {
	golden := filepath.Join("..", "..", "keda", "testdata", "golden")
	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    []string
		wantStderr []string
	}{
		{"writes the KEDA objects", []string{"generate", "-f", filepath.Join(golden, "legacy-cifar10-generated.yaml")}, 0,
			[]string{"kind: TriggerAuthentication", "kind: ScaledObject", "consumerGroup: model.tfserving-cifar10.kafka", "offsetResetPolicy: earliest"}, nil},
		{"a wrong group stops the output", []string{"generate", "-f", filepath.Join(golden, "wrong-group.yaml")}, 1,
			nil, []string{`consumerGroup: the trigger has "model.tfserving-cifar10.kafka", but the sidecar uses "model.tfserving-cifar10.seldon"`, "nothing written"}},
		{"--on-mismatch=warn writes the sidecar's group", []string{"generate", "--on-mismatch=warn", "-f", filepath.Join(golden, "wrong-group.yaml")}, 0,
			[]string{"consumerGroup: model.tfserving-cifar10.seldon"}, []string{"warning:"}},
		{"--partitions feeds the replica warnings", []string{"generate", "--partitions", "cifar10-rest-input=1", "-f", filepath.Join(golden, "legacy-cifar10-generated.yaml")}, 0,
			[]string{"kind: ScaledObject"}, []string{"maxReplicaCount 2 is above the 1 partitions of cifar10-rest-input"}},
		{"a bad flag value is a usage error", []string{"generate", "--on-mismatch=ignore"}, 1, nil, []string{"--on-mismatch"}},
		{"an unknown command", []string{"scale"}, 2, nil, []string{`unknown command "scale"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCmd(t, nil, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.wantCode, errs)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.wantStderr {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
		})
	}
}

func TestParseLagNamesTheGroupAsTheSidecarDoes(t *testing.T) {
	base := map[string]string{"KAFKA_BROKER": "k:9092", "KAFKA_INPUT_TOPIC": "in"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name      string
		env       map[string]string
		args      []string
		wantGroup string
		wantReset string
		wantErr   string
	}{
		{"the sidecar's rule", base, []string{"--sdep", "cifar", "--namespace", "kafka", "--predictor", "model"}, "model.cifar.kafka", "earliest", ""},
		{"KAFKA_GROUP_ID wins", with(map[string]string{"KAFKA_GROUP_ID": "g"}), nil, "g", "earliest", ""},
		{"the policy follows KAFKA_AUTO_OFFSET_RESET", with(map[string]string{"KAFKA_GROUP_ID": "g", "KAFKA_AUTO_OFFSET_RESET": "LATEST"}), nil, "g", "latest", ""},
		{"--offset-reset-policy wins", with(map[string]string{"KAFKA_GROUP_ID": "g"}), []string{"--offset-reset-policy", "latest"}, "g", "latest", ""},
		{"no group and no rule", base, []string{"--sdep", "cifar"}, "", "", "--predictor: required"},
		{"no broker", map[string]string{"KAFKA_INPUT_TOPIC": "in"}, nil, "", "", "KAFKA_BROKER: required"},
		{"a trigger KEDA refuses", with(map[string]string{"KAFKA_GROUP_ID": "g"}), []string{"--allow-idle-consumers", "--limit-to-partitions-with-lag"}, "", "", "limitToPartitionsWithLag"},
		{"max below the minimum", with(map[string]string{"KAFKA_GROUP_ID": "g"}), []string{"--min-replicas", "3", "--max-replicas", "2"}, "", "", "--max-replicas 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var errb bytes.Buffer
			c, err := parseLag(tc.args, &errb, func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Settings.GroupID != tc.wantGroup || c.Trigger.OffsetResetPolicy != tc.wantReset {
				t.Errorf("group %q policy %q, want %q %q", c.Settings.GroupID, c.Trigger.OffsetResetPolicy, tc.wantGroup, tc.wantReset)
			}
		})
	}
}

// TestLagCommandReportsTheBrokersNumbers runs the lag report against the test broker for a group that
// read 3 of 8 records on partition 0 and nothing on partition 1 (5 retained), in JSON and as a table.
func TestLagCommandReportsTheBrokersNumbers(t *testing.T) {
	bootstrap := testkit.Bootstrap(t)
	topic := testkit.Topic(t, bootstrap, 2)
	var recs []testkit.Record
	for i := range 13 {
		p := int32(0)
		if i >= 8 {
			p = 1
		}
		recs = append(recs, testkit.Record{Key: fmt.Appendf(nil, "%d", i), Value: []byte("x"), ToPartition: &p})
	}
	testkit.Produce(t, bootstrap, topic, recs)
	group := "cmd-lag-" + topic
	testkit.Commit(t, bootstrap, group, topic, map[int32]int64{0: 3})

	env := map[string]string{"KAFKA_BROKER": bootstrap, "KAFKA_INPUT_TOPIC": topic, "KAFKA_GROUP_ID": group}
	code, out, errs := runCmd(t, env, "lag", "--json", "--lag-threshold", "4", "-X", "broker.address.family=v4")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep lagReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// Partition 0: 8 - 3 = 5. Partition 1: no commit, earliest: 5 - 0 = 5. Total 10 at threshold 4. KEDA
	// caps the metric only when the whole multiple 10 / 4 = 2 is above the 2 partitions, which it is not,
	// so the HPA gets 10 and asks for ceil(2.5) = 3 replicas: one more than the partitions.
	if len(rep.Partitions) != 2 || rep.Partitions[0].Committed == nil || *rep.Partitions[0].Committed != 3 ||
		rep.Partitions[0].End != 8 || rep.Partitions[1].Committed != nil || rep.Partitions[1].End != 5 {
		t.Errorf("partitions %+v", rep.Partitions)
	}
	if rep.TotalLag != 10 || rep.KEDA.Metric != 10 || rep.KEDA.Replicas != 3 || !rep.KEDA.Active {
		t.Errorf("total %d, KEDA %+v; want total 10, metric 10, 3 replicas, active", rep.TotalLag, rep.KEDA)
	}

	code, out, errs = runCmd(t, env, "lag", "--lag-threshold", "4", "-X", "broker.address.family=v4")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, w := range []string{"PARTITION", "TOTAL", "replicas  3", group} {
		if !strings.Contains(out, w) {
			t.Errorf("table lacks %q:\n%s", w, out)
		}
	}
}

// TestTopicsCommandRunTwice creates and deletes a SeldonDeployment's topics through the command, each
// twice; delete keeps the topics of a SeldonDeployment that did not opt in.
func TestTopicsCommandRunTwice(t *testing.T) {
	bootstrap := testkit.Bootstrap(t)
	suffix := time.Now().Format("150405000000")
	manifest := func(clean bool) string {
		ann := ""
		if clean {
			ann = "\n  annotations:\n    seldon.io/clean-topics-on-delete: \"true\""
		}
		return fmt.Sprintf(`apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata:
  name: cmd-topics%s
spec:
  serverType: kafka
  predictors:
  - name: p
    graph: {name: m}
    svcOrchSpec:
      env:
      - {name: KAFKA_BROKER, value: "%s"}
      - {name: KAFKA_INPUT_TOPIC, value: cmd-topics-in-%s}
      - {name: KAFKA_OUTPUT_TOPIC, value: cmd-topics-out-%s}
      - {name: KAFKA_ERROR_TOPIC, value: cmd-topics-err-%s}
`, ann, bootstrap, suffix, suffix, suffix)
	}
	dir := t.TempDir()
	keep := filepath.Join(dir, "keep.yaml")
	clean := filepath.Join(dir, "clean.yaml")
	if err := os.WriteFile(keep, []byte(manifest(false)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(clean, []byte(manifest(true)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runCmd(t, nil, "topics", "delete", "--force", "-X", "broker.address.family=v4", "-f", keep) })

	steps := []struct {
		args []string
		want string // the actions of in, out, err
	}{
		{[]string{"create", "--partitions", "2", "--replication-factor", "1", "-f", keep}, "created created created"},
		{[]string{"create", "--partitions", "2", "--replication-factor", "1", "-f", keep}, "exists exists exists"},
		{[]string{"delete", "-f", keep}, "kept kept kept"},
		{[]string{"status", "-f", keep}, "exists exists exists"},
		{[]string{"delete", "-f", clean}, "deleted deleted deleted"},
		{[]string{"delete", "-f", clean}, "absent absent absent"},
	}
	for _, s := range steps {
		args := append([]string{"topics", s.args[0], "--json", "-X", "broker.address.family=v4"}, s.args[1:]...)
		code, out, errs := runCmd(t, nil, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", s.args, code, errs)
		}
		var st []struct{ Topic, Action string }
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("%v: %v\n%s", s.args, err, out)
		}
		var got []string
		for _, x := range st {
			got = append(got, x.Action)
		}
		if strings.Join(got, " ") != s.want {
			t.Fatalf("%v: %v, want %s", s.args, st, s.want)
		}
	}
}

// The example's generated YAML is what the generator writes today.
func TestExampleIsUpToDate(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "keda")
	code, out, errs := runCmd(t, nil, "generate", "-f", filepath.Join(dir, "cifar10.yaml"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want, err := os.ReadFile(filepath.Join(dir, "cifar10-keda.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	body := func(s string) string { _, rest, _ := strings.Cut(s, "\n"); return rest } // past the header naming the path
	if body(out) != body(string(want)) {
		t.Errorf("examples/keda/cifar10-keda.yaml is stale: run go run ./cmd/seldon-keda generate -f examples/keda/cifar10.yaml > examples/keda/cifar10-keda.yaml\n%s", out)
	}
}
