package sdep

import (
	"fmt"
	"strings"
)

// The names of a sidecar's topics and consumer group, worked out in one place for the sidecar
// (executor/config.go) and for seldon-keda (its triggers and its topics commands), so that what KEDA
// watches and the topics it creates or deletes are the ones the sidecar consumes and answers on.

// The sidecar's variables that name its topics and group.
const (
	EnvInputTopic  = "KAFKA_INPUT_TOPIC"
	EnvOutputTopic = "KAFKA_OUTPUT_TOPIC"
	EnvErrorTopic  = "KAFKA_ERROR_TOPIC"
	EnvGroupID     = "KAFKA_GROUP_ID"
	EnvTopicNaming = "KAFKA_TOPIC_NAMING"
	EnvTopicPrefix = "KAFKA_TOPIC_PREFIX"
	EnvGroupPrefix = "KAFKA_CONSUMER_GROUP_ID_PREFIX"
)

// The topic naming schemes of KAFKA_TOPIC_NAMING. Unset is legacy.
const (
	// NamingLegacy takes the topics from KAFKA_INPUT_TOPIC and KAFKA_OUTPUT_TOPIC (required), and
	// KAFKA_ERROR_TOPIC (the output topic when not set), as the legacy executor did.
	NamingLegacy = "legacy"
	// NamingCore2 names the topics that are not set as Seldon Core 2 names a model's:
	// {prefix}.{namespace}.model.{name}.inputs and .outputs, and {prefix}.{namespace}.errors.errors.
	NamingCore2 = "core2"
	// Core2TopicPrefix is Core 2's topicPrefix when none is configured.
	Core2TopicPrefix = "seldon"
)

// Role is what a name is for.
type Role int

// The roles, in the order Names holds them.
const (
	Input Role = iota
	Output
	Errors
	Group
)

// Var is the variable that names the role explicitly.
func (r Role) Var() string {
	return [...]string{EnvInputTopic, EnvOutputTopic, EnvErrorTopic, EnvGroupID}[r]
}

// Names are a sidecar's input, output and error topics and its consumer group, indexed by Role.
type Names [4]string

// Given is one of KAFKA_INPUT_TOPIC, KAFKA_OUTPUT_TOPIC, KAFKA_ERROR_TOPIC and KAFKA_GROUP_ID as the
// sidecar's environment has it.
type Given struct {
	// Value is the value, trimmed; "" is not set (a blank value is not a name).
	Value string
	// Unknown says the name is not known to the caller — a tool reading a manifest whose variable comes
	// from a Secret or ConfigMap, or one that has no use for it: it is taken as set, and not checked.
	Unknown bool
}

// NameError is a naming setting the sidecar refuses; Var names the variable or flag to fix.
type NameError struct {
	Var string
	Msg string
}

func (e *NameError) Error() string { return e.Var + ": " + e.Msg }

func nameErr(v, format string, args ...any) error {
	return &NameError{Var: v, Msg: fmt.Sprintf(format, args...)}
}

// Naming is how a sidecar names what its variables leave unnamed.
type Naming struct {
	Scheme      string // NamingLegacy or NamingCore2
	TopicPrefix string // Core 2's {prefix}: KAFKA_TOPIC_PREFIX, or Core2TopicPrefix; "" with the legacy naming
	GroupPrefix string // KAFKA_CONSUMER_GROUP_ID_PREFIX; "" for none

	// The SeldonDeployment (Core 2's model name), its namespace and the predictor: the operator's --sdep,
	// --namespace and --predictor. Without a Predictor only the topics are named: the group is left "".
	Deployment, Namespace, Predictor string
}

// NewNaming checks the naming settings as the sidecar reads them: scheme is KAFKA_TOPIC_NAMING (unset or
// empty is legacy; any case), topicPrefix KAFKA_TOPIC_PREFIX and groupPrefix
// KAFKA_CONSUMER_GROUP_ID_PREFIX, each trimmed.
func NewNaming(scheme, topicPrefix, groupPrefix, deployment, namespace, predictor string) (Naming, error) {
	n := Naming{
		Scheme:      strings.ToLower(strings.TrimSpace(scheme)),
		TopicPrefix: strings.TrimSpace(topicPrefix),
		GroupPrefix: strings.TrimSpace(groupPrefix),
		Deployment:  deployment, Namespace: namespace, Predictor: predictor,
	}
	switch n.Scheme {
	case "", NamingLegacy:
		n.Scheme = NamingLegacy
		if n.TopicPrefix != "" {
			// Refused rather than ignored: a prefix set for tenant isolation that names nothing would
			// leave the tenant's topics unprefixed without a word.
			return n, nameErr(EnvTopicPrefix, "names topics only with %s=%s; with the legacy naming the topics are %s, %s and %s as written",
				EnvTopicNaming, NamingCore2, EnvInputTopic, EnvOutputTopic, EnvErrorTopic)
		}
	case NamingCore2:
		if n.TopicPrefix == "" {
			n.TopicPrefix = Core2TopicPrefix
		}
		if err := ValidTopic(n.TopicPrefix); err != nil {
			return n, nameErr(EnvTopicPrefix, "%q: %v", n.TopicPrefix, err)
		}
	default:
		return n, nameErr(EnvTopicNaming, "%q: want %s (the default: the topics as the variables name them) or %s (Seldon Core 2's names)", scheme, NamingLegacy, NamingCore2)
	}
	if strings.ContainsFunc(n.GroupPrefix, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return n, nameErr(EnvGroupPrefix, "%q: a consumer group prefix has no spaces or control characters", n.GroupPrefix)
	}
	return n, nil
}

// Derived is the name the sidecar makes for a role whose variable is not set: with the core2 naming
// Core 2's topic name, with the legacy naming "" for the input and output topics (they are required)
// and the output topic's name for the error topic; and for the group, the legacy executor's
// <predictor>.<sdep>.<namespace>, after GroupPrefix and "-" (Core 2's consumerGroupIdPrefix joins so).
// It is "" when a name it is made of is missing.
func (n Naming) Derived(r Role, output string) string {
	if r == Group {
		if n.Predictor == "" || n.Deployment == "" || n.Namespace == "" {
			return ""
		}
		g := n.Predictor + "." + n.Deployment + "." + n.Namespace
		if n.GroupPrefix != "" {
			g = n.GroupPrefix + "-" + g
		}
		return g
	}
	if n.Scheme != NamingCore2 {
		if r == Errors {
			return output
		}
		return ""
	}
	if n.Deployment == "" || n.Namespace == "" {
		return ""
	}
	switch r {
	case Input:
		return strings.Join([]string{n.TopicPrefix, n.Namespace, "model", n.Deployment, "inputs"}, ".")
	case Output:
		return strings.Join([]string{n.TopicPrefix, n.Namespace, "model", n.Deployment, "outputs"}, ".")
	}
	return strings.Join([]string{n.TopicPrefix, n.Namespace, "errors", "errors"}, ".")
}

// Resolve names every role: the given value when set, else the derived one; and checks the result as
// the sidecar does at start (a valid topic name, answers never read back as requests). A role given
// Unknown gets "" and is not checked.
func (n Naming) Resolve(given [4]Given) (Names, error) {
	var out Names
	for _, r := range []Role{Input, Output, Errors, Group} {
		g := given[r]
		switch {
		case g.Unknown:
			continue
		case g.Value != "":
			out[r] = g.Value
			if r != Group {
				if err := ValidTopic(g.Value); err != nil {
					return out, nameErr(r.Var(), "%v", err)
				}
			}
			continue
		}
		if r == Errors && given[Output].Unknown && n.Scheme != NamingCore2 {
			continue // the output topic's, which is not known here
		}
		out[r] = n.Derived(r, out[Output])
		if out[r] != "" {
			if r != Group {
				if err := ValidTopic(out[r]); err != nil {
					return out, nameErr(r.Var(), "not set, and the name %s=%s makes for it, %q, is not one: %v", EnvTopicNaming, NamingCore2, out[r], err)
				}
			}
			continue
		}
		switch {
		case r == Group && n.Predictor == "":
			// Only the topics are wanted.
		case r == Group:
			for _, req := range []struct{ flag, v string }{{"--sdep", n.Deployment}, {"--namespace", n.Namespace}} {
				if req.v == "" {
					return out, nameErr(req.flag, "required to name the consumer group <predictor>.<sdep>.<namespace> (or set %s)", EnvGroupID)
				}
			}
		case n.Scheme == NamingCore2:
			for _, req := range []struct{ flag, v string }{{"--sdep", n.Deployment}, {"--namespace", n.Namespace}} {
				if req.v == "" {
					return out, nameErr(req.flag, "required to name %s as Core 2 does, {prefix}.{namespace}.model.{sdep}.… (or set %s)", r.Var(), r.Var())
				}
			}
		default:
			return out, nameErr(r.Var(), "required, and not set (or set %s=%s to name it as Seldon Core 2 does)", EnvTopicNaming, NamingCore2)
		}
	}
	in, outT, errT := out[Input], out[Output], out[Errors]
	if in != "" && in == outT {
		return out, nameErr(EnvOutputTopic, "%q: the answers would be read back as requests: it must differ from %s", outT, EnvInputTopic)
	}
	if in != "" && in == errT {
		return out, nameErr(EnvErrorTopic, "%q: error records would be read back as requests: it must differ from %s", errT, EnvInputTopic)
	}
	return out, nil
}

// ValidTopic checks a topic name as the broker does: at most 249 characters of letters, digits, '.', '_'
// and '-', and not "." or "..".
func ValidTopic(topic string) error {
	if len(topic) > 249 {
		return fmt.Errorf("a topic name has at most 249 characters, %q has %d", topic[:20]+"…", len(topic))
	}
	if topic == "." || topic == ".." {
		return fmt.Errorf("%q is not a valid topic name", topic)
	}
	for _, r := range topic {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%q: a topic name has only letters, digits, '.', '_' and '-'", topic)
		}
	}
	return nil
}

// PredictorKafka is what a predictor's svcOrchSpec.env says about the sidecar's topics and group, read
// as the sidecar reads its environment.
type PredictorKafka struct {
	Names Names
	// Given are the four variables as set; an Unknown one names a Secret or ConfigMap in From.
	Given [4]Given
	From  [4]string
	// Derived says which names the sidecar makes rather than reads.
	Derived [4]bool
	Naming  Naming
}

// KafkaOf works out a predictor's topics and group from its resolved svcOrchSpec.env (ResolveEnv) as
// the sidecar does at start, for the SeldonDeployment sdepName in namespace. The naming variables
// themselves must be known here: an error says which is not.
func KafkaOf(env map[string]ResolvedEnv, sdepName, namespace, predictor string) (PredictorKafka, error) {
	var pk PredictorKafka
	known := func(name string) (string, error) {
		v, ok := env[name]
		switch {
		case !ok:
			return "", nil
		case !v.Known:
			return "", nameErr(name, "comes from %s: the topic and group names cannot be worked out here; set it inline", v.Needs)
		}
		return v.Expanded, nil
	}
	var vals [3]string
	for i, name := range []string{EnvTopicNaming, EnvTopicPrefix, EnvGroupPrefix} {
		v, err := known(name)
		if err != nil {
			return pk, err
		}
		vals[i] = v
	}
	n, err := NewNaming(vals[0], vals[1], vals[2], sdepName, namespace, predictor)
	if err != nil {
		return pk, err
	}
	pk.Naming = n
	for _, r := range []Role{Input, Output, Errors, Group} {
		v, ok := env[r.Var()]
		switch {
		case !ok:
		case !v.Known:
			pk.Given[r] = Given{Unknown: true}
			pk.From[r] = v.Needs
		default:
			pk.Given[r] = Given{Value: strings.TrimSpace(v.Expanded)}
		}
		pk.Derived[r] = !pk.Given[r].Unknown && pk.Given[r].Value == ""
	}
	pk.Names, err = n.Resolve(pk.Given)
	return pk, err
}
