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
	"github.com/seldon-kafka/sidecar/kafka/lag"
	"github.com/seldon-kafka/sidecar/keda/kafkascaler"
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
		{"the Strimzi example's user.password is not KEDA's keyPassword", []string{"generate", "-f", filepath.Join(golden, "legacy-cifar10-generated.yaml")}, 0,
			[]string{"parameter: key\n"}, []string{"keyPassword is left out", "--key-password=keep"}},
		{"--key-password=keep maps it all the same", []string{"generate", "--key-password=keep", "-f", filepath.Join(golden, "legacy-cifar10-generated.yaml")}, 0,
			[]string{"key: user.password", "parameter: keyPassword"}, []string{"keyPassword is kept (--key-password=keep)"}},
		{"--key-password takes auto, keep or drop", []string{"generate", "--key-password=maybe"}, 1, nil, []string{`--key-password: "maybe": want auto, keep or drop`}},
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
			c, err := parseLag(tc.args, &errb, &errb, func(k string) string { return tc.env[k] })
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

// TestHelpPrintsUsageAndExitsZero: asking for help is not a mistake: the usage goes to stdout and the exit
// status is 0, for the command and each subcommand.
func TestHelpPrintsUsageAndExitsZero(t *testing.T) {
	cases := []struct {
		args []string
		want string // in stdout
	}{
		{[]string{"--help"}, "seldon-keda generate"},
		{[]string{"-h"}, "seldon-keda generate"},
		{[]string{"help"}, "seldon-keda generate"},
		{[]string{"help", "topics"}, "usage: seldon-keda topics"},
		{[]string{"generate", "--help"}, "-key-password"},
		{[]string{"generate", "-h"}, "usage: seldon-keda generate"},
		{[]string{"lag", "--help"}, "usage: seldon-keda lag"},
		{[]string{"topics", "--help"}, "-replication-factor"},
		{[]string{"topics", "-h"}, "usage: seldon-keda topics"},
		{[]string{"topics", "create", "--help"}, "-replication-factor"},
		{[]string{"topics", "delete", "-h"}, "-force"},
		{[]string{"topics", "status", "--help"}, "usage: seldon-keda topics"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errs := runCmd(t, nil, tc.args...)
			if code != 0 || !strings.Contains(out, tc.want) || errs != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 0 and %q on stdout only", code, out, errs, tc.want)
			}
		})
	}
	// A mistake still exits 2 with the usage on stderr.
	mistakes := []struct {
		args []string
		want string // in stderr
	}{
		{nil, "seldon-keda generate [-f FILE]"},
		{[]string{"topics"}, "usage: seldon-keda topics"},
		{[]string{"generate", "--no-such-flag"}, "usage: seldon-keda generate"},
	}
	for _, m := range mistakes {
		if code, out, errs := runCmd(t, nil, m.args...); code != 2 || out != "" || !strings.Contains(errs, m.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q on stderr", m.args, code, out, errs, m.want)
		}
	}
}

// TestTopicsSharedByTwoDeploymentsAreHandledOnce runs topics against the test broker for two
// SeldonDeployments sharing their input topic, one opted in to deletion and one not, given as two files or
// as one List: each topic is created, deleted and reported once, and delete keeps a topic another
// SeldonDeployment of the input still uses, saying whether it exists.
func TestTopicsSharedByTwoDeploymentsAreHandledOnce(t *testing.T) {
	bootstrap := testkit.Bootstrap(t)
	suffix := time.Now().Format("150405000000")
	in, outA, outB := "shared-in-"+suffix, "shared-out-a-"+suffix, "shared-out-b-"+suffix
	item := func(name, out string, clean bool) string {
		ann := "{}"
		if clean {
			ann = `{seldon.io/clean-topics-on-delete: "true"}`
		}
		return fmt.Sprintf(`{apiVersion: machinelearning.seldon.io/v1, kind: SeldonDeployment,
  metadata: {name: %s, annotations: %s},
  spec: {serverType: kafka, predictors: [{name: p, graph: {name: m}, svcOrchSpec: {env: [
    {name: KAFKA_BROKER, value: "%s"}, {name: KAFKA_INPUT_TOPIC, value: %s}, {name: KAFKA_OUTPUT_TOPIC, value: %s}]}}]}}`,
			name, ann, bootstrap, in, out)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	a := write("a.yaml", item("shared-a", outA, true))
	b := write("b.yaml", item("shared-b", outB, false))
	list := write("list.yaml", "apiVersion: v1\nkind: List\nitems:\n- "+item("shared-a", outA, true)+"\n- "+item("shared-b", outB, false)+"\n")
	t.Cleanup(func() { runCmd(t, nil, "topics", "delete", "--force", "-X", "broker.address.family=v4", "-f", list) })

	steps := []struct {
		args  []string
		table bool   // read the table instead of --json
		want  string // topic=action/exists, in input order
	}{
		{[]string{"create", "--partitions", "2", "--replication-factor", "1", "-f", a, "-f", b}, false,
			"in=created/true out-a=created/true out-b=created/true"},
		{[]string{"create", "--partitions", "2", "--replication-factor", "1", "-f", list}, false,
			"in=exists/true out-a=exists/true out-b=exists/true"},
		{[]string{"delete", "-f", a, "-f", b}, false, "in=kept/true out-a=deleted/false out-b=kept/true"},
		{[]string{"delete", "-f", list}, true, "in=kept/true out-a=absent/false out-b=kept/true"},
		{[]string{"status", "-f", list}, true, "in=exists/true out-a=absent/false out-b=exists/true"},
		{[]string{"delete", "--force", "-f", a, "-f", b}, false, "in=deleted/false out-a=absent/false out-b=deleted/false"},
		{[]string{"delete", "--force", "-f", list}, true, "in=absent/false out-a=absent/false out-b=absent/false"},
	}
	short := map[string]string{in: "in", outA: "out-a", outB: "out-b"}
	for _, s := range steps {
		args := append([]string{"topics", s.args[0], "-X", "broker.address.family=v4"}, s.args[1:]...)
		if !s.table {
			args = append(args, "--json")
		}
		code, out, errs := runCmd(t, nil, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", s.args, code, errs)
		}
		var got []string
		if s.table {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			for _, l := range lines[1:] {
				f := strings.Fields(l)
				got = append(got, short[f[0]]+"="+f[1]+"/"+f[2])
			}
		} else {
			var st []struct {
				Topic, Action string
				Exists        bool
			}
			if err := json.Unmarshal([]byte(out), &st); err != nil {
				t.Fatalf("%v: %v\n%s", s.args, err, out)
			}
			for _, x := range st {
				got = append(got, fmt.Sprintf("%s=%s/%t", short[x.Topic], x.Action, x.Exists))
			}
		}
		if strings.Join(got, " ") != s.want {
			t.Fatalf("%v:\n got %s\nwant %s\n%s", s.args, strings.Join(got, " "), s.want, out)
		}
	}
}

// TestLagReportGivesTheHPAWhatKEDAGives: a committed offset past the end makes the summed lag negative;
// the report's metric is what KEDA gives the HPA then, 0.
func TestLagReportGivesTheHPAWhatKEDAGives(t *testing.T) {
	cases := []struct {
		name       string
		parts      []kafkascaler.Partition
		wantLag    int64
		wantMetric int64
	}{
		{"a committed offset past the end: lag -7, metric 0",
			[]kafkascaler.Partition{{ID: 0, Committed: 10, Start: 0, End: 3}}, -7, 0},
		{"past the end on one partition, behind on the other: the sum",
			[]kafkascaler.Partition{{ID: 0, Committed: 10, Start: 0, End: 3}, {ID: 1, Committed: 0, Start: 0, End: 9}}, 2, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var errb bytes.Buffer
			c, err := parseLag([]string{"--lag-threshold", "4"}, &errb, &errb, func(k string) string {
				return map[string]string{"KAFKA_BROKER": "k:9092", "KAFKA_INPUT_TOPIC": "in", "KAFKA_GROUP_ID": "g"}[k]
			})
			if err != nil {
				t.Fatal(err)
			}
			rep := newLagReport(c, lag.Snapshot{Group: "g", Topic: "in", Partitions: tc.parts})
			var table bytes.Buffer
			if err := rep.writeTable(&table); err != nil {
				t.Fatal(err)
			}
			if rep.TotalLag != tc.wantLag || rep.KEDA.Metric != tc.wantMetric || !strings.Contains(table.String(), fmt.Sprintf("metric    %d\n", tc.wantMetric)) {
				t.Errorf("total lag %d, metric %d, want %d and %d:\n%s", rep.TotalLag, rep.KEDA.Metric, tc.wantLag, tc.wantMetric, table.String())
			}
		})
	}
}
