// Package topics creates and deletes the topics of a SeldonDeployment's Kafka predictors (their
// KAFKA_INPUT_TOPIC, KAFKA_OUTPUT_TOPIC and KAFKA_ERROR_TOPIC) as Seldon Core 2 does for its models:
// created when the deployment is, and removed with it only when asked (cleanTopicsOnDelete). Both are
// idempotent and report what exists.
package topics

import (
	"context"
	"fmt"
	"strings"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seldon-kafka/sidecar/kafka"
	"github.com/seldon-kafka/sidecar/sdep"
)

// AnnotationCleanOnDelete opts a SeldonDeployment into having its topics deleted with it, as a Seldon
// Core 2 Model's spec.dataflow.cleanTopicsOnDelete does. Without it, delete keeps the topics.
const AnnotationCleanOnDelete = "seldon.io/clean-topics-on-delete"

// Topic is one topic of a SeldonDeployment and why it exists.
type Topic struct {
	Name      string
	Role      string // input, output or error
	Predictor string
	Broker    string // the predictor's KAFKA_BROKER; "" when it comes from a Secret or ConfigMap
	// Shared says the topic is not the SeldonDeployment's own: Core 2's error topic,
	// {prefix}.{namespace}.errors.errors, which every model of the namespace writes to. Delete keeps it,
	// as Core 2 does.
	Shared bool
}

// Of returns the topics a SeldonDeployment's sidecars use, in predictor order, each once, named as the
// sidecar names them (sdep.KafkaOf: the variables, or KAFKA_TOPIC_NAMING=core2's names). namespace is
// used when the SeldonDeployment has no metadata.namespace. A topic name that is not written inline
// cannot be known here and is an error.
func Of(d sdep.SeldonDeployment, namespace string) ([]Topic, error) {
	var out []Topic
	seen := map[string]bool{}
	if d.Metadata.Namespace != "" {
		namespace = d.Metadata.Namespace
	}
	for i, p := range d.Spec.Predictors {
		where := fmt.Sprintf("SeldonDeployment %s: predictors[%d] %q", d.Metadata.Name, i, p.Name)
		env := sdep.ResolveEnv(p.SvcOrchSpec.Env)
		broker := ""
		if v, ok := env["KAFKA_BROKER"]; ok && v.Known {
			broker = strings.TrimSpace(v.Expanded)
		}
		// No predictor: the topics are wanted, not the group.
		pk, err := sdep.KafkaOf(env, d.Metadata.Name, namespace, "")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		for _, r := range []struct {
			role sdep.Role
			name string
		}{{sdep.Input, "input"}, {sdep.Output, "output"}, {sdep.Errors, "error"}} {
			if pk.Given[r.role].Unknown {
				return nil, fmt.Errorf("%s: %s comes from %s, so its topic name is not known here", where, r.role.Var(), pk.From[r.role])
			}
			name := pk.Names[r.role]
			if name == "" || seen[name] {
				continue
			}
			seen[name] = true
			out = append(out, Topic{Name: name, Role: r.name, Predictor: p.Name, Broker: broker,
				Shared: r.role == sdep.Errors && pk.Derived[r.role] && pk.Naming.Scheme == sdep.NamingCore2})
		}
	}
	return out, nil
}

// Status is what a topic is after an operation.
type Status struct {
	Topic             string `json:"topic"`
	Action            string `json:"action"` // created, exists, deleted, absent, kept
	Exists            bool   `json:"exists"`
	Partitions        int    `json:"partitions,omitempty"`
	ReplicationFactor int    `json:"replicationFactor,omitempty"`
	Note              string `json:"note,omitempty"`
}

// Admin creates, deletes and describes topics with the sidecar's client settings.
type Admin struct {
	a *ckafka.AdminClient
}

// New connects an admin client built from s (kafka.AdminConfig).
func New(s kafka.Settings) (*Admin, error) {
	cm, err := kafka.AdminConfig(s)
	if err != nil {
		return nil, err
	}
	a, err := ckafka.NewAdminClient(cm)
	if err != nil {
		return nil, fmt.Errorf("topics: admin client for %s: %w", s.Brokers, err)
	}
	return &Admin{a: a}, nil
}

// Close closes the client.
func (a *Admin) Close() { a.a.Close() }

// Create makes each topic that does not exist with the given partitions and replication factor
// (-1: the broker's default), waits until their partitions have leaders, and reports every topic. A
// topic that exists is left as it is, and a difference in partitions or replication is noted.
func (a *Admin) Create(ctx context.Context, names []string, partitions, replicationFactor int) ([]Status, error) {
	if partitions < 1 {
		return nil, fmt.Errorf("topics: %d partitions: at least 1", partitions)
	}
	if replicationFactor == 0 || replicationFactor < -1 {
		return nil, fmt.Errorf("topics: replication factor %d: at least 1, or -1 for the broker's default", replicationFactor)
	}
	specs := make([]ckafka.TopicSpecification, len(names))
	for i, n := range names {
		specs[i] = ckafka.TopicSpecification{Topic: n, NumPartitions: partitions, ReplicationFactor: replicationFactor}
	}
	res, err := a.a.CreateTopics(ctx, specs, ckafka.SetAdminOperationTimeout(opTimeout(ctx)))
	if err != nil {
		return nil, fmt.Errorf("topics: creating %s: %w", strings.Join(names, ", "), err)
	}
	action := map[string]string{}
	for _, r := range res {
		switch r.Error.Code() {
		case ckafka.ErrNoError:
			action[r.Topic] = "created"
		case ckafka.ErrTopicAlreadyExists:
			action[r.Topic] = "exists"
		default:
			return nil, fmt.Errorf("topics: creating %q: %w", r.Topic, r.Error)
		}
	}
	out := make([]Status, len(names))
	for i, n := range names {
		st, err := a.waitDescribed(ctx, n, true)
		if err != nil {
			return nil, err
		}
		st.Action = action[n]
		if st.Action == "exists" {
			var diff []string
			if st.Partitions != partitions {
				diff = append(diff, fmt.Sprintf("%d partitions, not %d", st.Partitions, partitions))
			}
			if replicationFactor > 0 && st.ReplicationFactor != replicationFactor {
				diff = append(diff, fmt.Sprintf("replication factor %d, not %d", st.ReplicationFactor, replicationFactor))
			}
			if len(diff) > 0 {
				st.Note = "has " + strings.Join(diff, " and ") + ": left as it is"
			}
		}
		out[i] = st
	}
	return out, nil
}

// Delete removes each topic that exists, waits until the broker no longer lists it, and reports every topic.
func (a *Admin) Delete(ctx context.Context, names []string) ([]Status, error) {
	res, err := a.a.DeleteTopics(ctx, names, ckafka.SetAdminOperationTimeout(opTimeout(ctx)))
	if err != nil {
		return nil, fmt.Errorf("topics: deleting %s: %w", strings.Join(names, ", "), err)
	}
	action := map[string]string{}
	for _, r := range res {
		switch r.Error.Code() {
		case ckafka.ErrNoError:
			action[r.Topic] = "deleted"
		case ckafka.ErrUnknownTopicOrPart, ckafka.ErrUnknownTopicID:
			action[r.Topic] = "absent"
		default:
			return nil, fmt.Errorf("topics: deleting %q: %w", r.Topic, r.Error)
		}
	}
	out := make([]Status, len(names))
	for i, n := range names {
		st, err := a.waitDescribed(ctx, n, false)
		if err != nil {
			return nil, err
		}
		st.Action = action[n]
		out[i] = st
	}
	return out, nil
}

// Describe reports whether each topic exists, with its partitions and replication factor.
func (a *Admin) Describe(ctx context.Context, names []string) ([]Status, error) {
	out := make([]Status, len(names))
	for i, n := range names {
		st, err := a.describe(ctx, n)
		if err != nil {
			return nil, err
		}
		st.Action = map[bool]string{true: "exists", false: "absent"}[st.Exists]
		out[i] = st
	}
	return out, nil
}

func opTimeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return 30 * time.Second
}

func (a *Admin) describe(ctx context.Context, name string) (Status, error) {
	st := Status{Topic: name}
	md, err := a.a.GetMetadata(&name, false, int(opTimeout(ctx).Milliseconds()))
	if err != nil {
		return st, fmt.Errorf("topics: metadata of %q: %w", name, err)
	}
	tm, ok := md.Topics[name]
	switch {
	case !ok, tm.Error.Code() == ckafka.ErrUnknownTopicOrPart, tm.Error.Code() == ckafka.ErrNoError && len(tm.Partitions) == 0:
		return st, nil
	case tm.Error.Code() == ckafka.ErrLeaderNotAvailable:
		st.Exists = true // being created
		return st, nil
	case tm.Error.Code() != ckafka.ErrNoError:
		return st, fmt.Errorf("topics: metadata of %q: %w", name, tm.Error)
	}
	st.Exists = true
	st.Partitions = len(tm.Partitions)
	for _, p := range tm.Partitions {
		st.ReplicationFactor = max(st.ReplicationFactor, len(p.Replicas))
	}
	return st, nil
}

// waitDescribed polls until the topic exists with every partition led (exists true) or is gone (false).
func (a *Admin) waitDescribed(ctx context.Context, name string, exists bool) (Status, error) {
	for {
		st, err := a.describe(ctx, name)
		if err != nil {
			return st, err
		}
		if st.Exists == exists && (!exists || (st.Partitions > 0 && a.led(ctx, name))) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			want := map[bool]string{true: "to have leaders", false: "to be gone"}[exists]
			return st, fmt.Errorf("topics: waiting for %q %s: %w", name, want, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (a *Admin) led(ctx context.Context, name string) bool {
	md, err := a.a.GetMetadata(&name, false, int(opTimeout(ctx).Milliseconds()))
	if err != nil {
		return false
	}
	for _, p := range md.Topics[name].Partitions {
		if p.Error.Code() != ckafka.ErrNoError || p.Leader < 0 {
			return false
		}
	}
	return true
}
