package topics

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/internal/testkit"
	"github.com/seldon-kafka/sidecar/kafka"
	"github.com/seldon-kafka/sidecar/sdep"
)

func newAdmin(t *testing.T) *Admin {
	t.Helper()
	a, err := New(kafka.Settings{Brokers: testkit.Bootstrap(t), ClientID: "topics-test",
		Extra: map[string]string{"broker.address.family": "v4"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

func actions(st []Status) string {
	var out []string
	for _, s := range st {
		out = append(out, s.Topic[strings.LastIndex(s.Topic, ".")+1:]+"="+s.Action)
	}
	return strings.Join(out, " ")
}

// TestCreateAndDeleteAreIdempotent creates a SeldonDeployment's three topics twice and deletes them
// twice against the broker: the second run of each finds the work done and says so.
func TestCreateAndDeleteAreIdempotent(t *testing.T) {
	a := newAdmin(t)
	prefix := strings.ReplaceAll(t.Name(), "/", "-") + "-" + time.Now().Format("150405.000000")
	names := []string{prefix + ".input", prefix + ".output", prefix + ".error"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = a.Delete(ctx, names)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	steps := []struct {
		name string
		run  func() ([]Status, error)
		want string
	}{
		{"status before", func() ([]Status, error) { return a.Describe(ctx, names) }, "input=absent output=absent error=absent"},
		{"create", func() ([]Status, error) { return a.Create(ctx, names, 3, 1) }, "input=created output=created error=created"},
		{"create again", func() ([]Status, error) { return a.Create(ctx, names, 3, 1) }, "input=exists output=exists error=exists"},
		{"status after create", func() ([]Status, error) { return a.Describe(ctx, names) }, "input=exists output=exists error=exists"},
		{"delete", func() ([]Status, error) { return a.Delete(ctx, names) }, "input=deleted output=deleted error=deleted"},
		{"delete again", func() ([]Status, error) { return a.Delete(ctx, names) }, "input=absent output=absent error=absent"},
	}
	for _, s := range steps {
		st, err := s.run()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := actions(st); got != s.want {
			t.Fatalf("%s: %s, want %s", s.name, got, s.want)
		}
		for _, x := range st {
			created := x.Action == "created" || x.Action == "exists"
			if x.Exists != created || created && (x.Partitions != 3 || x.ReplicationFactor != 1) {
				t.Errorf("%s: %+v, want exists=%v with 3 partitions and replication 1", s.name, x, created)
			}
		}
	}
}

func TestCreateLeavesAnExistingTopicAsItIsAndSaysHow(t *testing.T) {
	a := newAdmin(t)
	topic := testkit.Topic(t, testkit.Bootstrap(t), 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := a.Create(ctx, []string{topic}, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Action != "exists" || st[0].Partitions != 2 || !strings.Contains(st[0].Note, "2 partitions, not 4") {
		t.Errorf("%+v, want exists with 2 partitions and a note", st[0])
	}
}

func TestOfListsEachTopicOnceInPredictorOrder(t *testing.T) {
	env := func(kv ...string) []sdep.EnvVar {
		var out []sdep.EnvVar
		for i := 0; i < len(kv); i += 2 {
			out = append(out, sdep.EnvVar{Name: kv[i], Value: kv[i+1]})
		}
		return out
	}
	d := sdep.SeldonDeployment{Metadata: sdep.ObjectMeta{Name: "d"}, Spec: sdep.Spec{Predictors: []sdep.PredictorSpec{
		{Name: "a", SvcOrchSpec: sdep.SvcOrchSpec{Env: env("KAFKA_BROKER", "k:9092", "KAFKA_INPUT_TOPIC", "in", "KAFKA_OUTPUT_TOPIC", "out", "KAFKA_ERROR_TOPIC", "err")}},
		{Name: "b", SvcOrchSpec: sdep.SvcOrchSpec{Env: env("KAFKA_BROKER", "k:9092", "KAFKA_INPUT_TOPIC", "in", "KAFKA_OUTPUT_TOPIC", "out-b")}},
	}}}
	ts, err := Of(d, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range ts {
		got = append(got, x.Predictor+":"+x.Role+":"+x.Name)
	}
	if want := "a:input:in a:output:out a:error:err b:output:out-b"; strings.Join(got, " ") != want {
		t.Errorf("Of = %q, want %q", strings.Join(got, " "), want)
	}

	secretTopic := d
	secretTopic.Spec.Predictors = []sdep.PredictorSpec{{Name: "c", SvcOrchSpec: sdep.SvcOrchSpec{Env: []sdep.EnvVar{
		{Name: "KAFKA_INPUT_TOPIC", ValueFrom: &sdep.EnvVarSource{ConfigMapKeyRef: &sdep.KeySelector{Name: "cm", Key: "in"}}},
		{Name: "KAFKA_OUTPUT_TOPIC", Value: "out"},
	}}}}
	if _, err := Of(secretTopic, ""); err == nil || !strings.Contains(err.Error(), "KAFKA_INPUT_TOPIC comes from configMapKeyRef cm/in") {
		t.Errorf("Of with a topic from a ConfigMap: %v", err)
	}
}
