package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/seldon-kafka/sidecar/kafka"
	"github.com/seldon-kafka/sidecar/kafka/topics"
	"github.com/seldon-kafka/sidecar/keda"
)

// plannedTopic is one topic of the input on one broker, however many SeldonDeployments name it.
type plannedTopic struct {
	broker, name string
	users        []string // the SeldonDeployments that use it, in input order
	keptBy       []string // of those, the ones whose topics delete keeps (no opt-in, no --force)
	shared       bool     // Core 2's error topic of a namespace: not any one SeldonDeployment's
}

func runTopics(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	const synopsis = "topics create|delete|status [-f FILE]... [flags]"
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		// The flags are the same for the three operations: show them with the synopsis.
		fs := topicsFlags("create|delete|status", synopsis, stdout, stderr)
		if len(args) > 0 && isHelp(args[0]) {
			return fs.parse(args[:1]) // prints the usage to stdout
		}
		fs.Usage()
		_, _ = stderr.Write(fs.out.Bytes())
		return errUsage
	}
	op := args[0]
	if op != "create" && op != "delete" && op != "status" {
		fmt.Fprintf(stderr, "seldon-keda topics: %q: want create, delete or status\n", op)
		return errUsage
	}
	fs := topicsFlags(op, synopsis, stdout, stderr)
	if err := fs.parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "seldon-keda topics: unexpected argument %q (files go with -f)\n", fs.Arg(0))
		return errUsage
	}
	if op == "create" && (*fs.partitions < 1 || *fs.rf == 0 || *fs.rf < -1) {
		return fmt.Errorf("create needs --partitions (1 or more) and --replication-factor (1 or more, or -1)")
	}

	// The input is read as generate reads it: SeldonDeployments alone or in a List.
	var input keda.Input
	if err := readInputs(fs.in, stdin, input.Read); err != nil {
		return err
	}
	if len(input.Deployments) == 0 {
		return fmt.Errorf("no SeldonDeployment (machinelearning.seldon.io) in the input")
	}

	// Each topic once per broker, in the order the input first names it: two SeldonDeployments may share
	// a topic, and one admin request must not name a topic twice.
	var plan []*plannedTopic
	byKey := map[[2]string]*plannedTopic{}
	for _, l := range input.Deployments {
		d := l.SeldonDeployment
		ts, err := topics.Of(d, *fs.namespace)
		if err != nil {
			return fmt.Errorf("%s: %w", l.Source, err)
		}
		name := d.Metadata.Name
		if d.Metadata.Namespace != "" {
			name = d.Metadata.Namespace + "/" + name
		}
		keeps := op == "delete" && !*fs.force && !strings.EqualFold(d.Metadata.Annotations[topics.AnnotationCleanOnDelete], "true")
		for _, t := range ts {
			b := firstNonEmpty(*fs.broker, t.Broker, getenv("KAFKA_BROKER"))
			if b == "" {
				return fmt.Errorf("%s: SeldonDeployment %s: predictor %q: no broker: KAFKA_BROKER is not inline; give --broker", l.Source, name, t.Predictor)
			}
			key := [2]string{b, t.Name}
			p := byKey[key]
			if p == nil {
				p = &plannedTopic{broker: b, name: t.Name}
				byKey[key] = p
				plan = append(plan, p)
			}
			p.shared = p.shared || t.Shared
			if !slices.Contains(p.users, name) {
				p.users = append(p.users, name)
			}
			if keeps && !slices.Contains(p.keptBy, name) {
				p.keptBy = append(p.keptBy, name)
			}
		}
	}

	security, err := securityFromEnv()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *fs.timeout)
	defer cancel()
	done := map[[2]string]topics.Status{}
	var brokers []string
	for _, p := range plan {
		if !slices.Contains(brokers, p.broker) {
			brokers = append(brokers, p.broker)
		}
	}
	for _, b := range brokers {
		var work, kept []string // kept: named by a SeldonDeployment whose topics delete keeps
		for _, p := range plan {
			switch {
			case p.broker != b:
			case len(p.keptBy) > 0, op == "delete" && p.shared:
				kept = append(kept, p.name)
			default:
				work = append(work, p.name)
			}
		}
		st, err := topicsOn(ctx, b, op, work, kept, *fs.partitions, *fs.rf, security, fs.props)
		if err != nil {
			return err
		}
		for _, x := range st {
			done[[2]string{b, x.Topic}] = x
		}
	}

	all := make([]topics.Status, 0, len(plan))
	for _, p := range plan {
		st := done[[2]string{p.broker, p.name}]
		switch {
		case op == "delete" && p.shared:
			// Core 2 keeps its namespace's error topic when a model goes; so does this.
			st.Action = "kept"
			st.Note = "the error topic every model of the namespace writes to (KAFKA_TOPIC_NAMING=core2), which Core 2 keeps too"
		case len(p.keptBy) > 0:
			// Described, not deleted: it exists or not as the broker says.
			st.Action = "kept"
			if len(p.keptBy) == len(p.users) {
				st.Note = fmt.Sprintf("SeldonDeployment %s does not have %s: \"true\" (use --force)", strings.Join(p.keptBy, ", "), topics.AnnotationCleanOnDelete)
			} else {
				st.Note = fmt.Sprintf("still used by SeldonDeployment %s, which does not have %s: \"true\" (use --force)", strings.Join(p.keptBy, ", "), topics.AnnotationCleanOnDelete)
			}
		}
		all = append(all, st)
	}
	if *fs.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(all)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tACTION\tEXISTS\tPARTITIONS\tREPLICATION\tNOTE")
	for _, s := range all {
		p, r := "-", "-"
		if s.Exists {
			p, r = fmt.Sprint(s.Partitions), fmt.Sprint(s.ReplicationFactor)
		}
		fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%s\t%s\n", s.Topic, s.Action, s.Exists, p, r, s.Note)
	}
	return tw.Flush()
}

// topicsFlagSet holds the flags of topics create, delete and status.
type topicsFlagSet struct {
	*flagSet
	in             files
	props          kv
	broker         *string
	namespace      *string
	partitions, rf *int
	force, asJSON  *bool
	timeout        *time.Duration
}

func topicsFlags(op, synopsis string, stdout, stderr io.Writer) *topicsFlagSet {
	fs := &topicsFlagSet{flagSet: newFlags("topics "+op, synopsis, stdout, stderr), props: kv{}}
	fs.Var(&fs.in, "f", "SeldonDeployment manifest (YAML or JSON, one or more documents, a List too); repeatable; - or none is stdin")
	fs.broker = fs.String("broker", "", "bootstrap servers (default: the predictors' KAFKA_BROKER, then $KAFKA_BROKER)")
	fs.namespace = fs.String("namespace", "", "namespace of SeldonDeployments without metadata.namespace (KAFKA_TOPIC_NAMING=core2 names topics after it)")
	fs.Var(fs.props, "X", "librdkafka property KEY=VALUE for the connection (security settings); repeatable")
	fs.partitions = fs.Int("partitions", 0, "create: partitions of each topic (required)")
	fs.rf = fs.Int("replication-factor", 0, "create: replication factor of each topic (required; -1 for the broker's default)")
	fs.force = fs.Bool("force", false, "delete: also the topics of SeldonDeployments without the "+topics.AnnotationCleanOnDelete+": \"true\" annotation")
	fs.asJSON = fs.Bool("json", false, "print JSON instead of a table")
	fs.timeout = fs.Duration("timeout", time.Minute, "how long the broker may take")
	return fs
}

// topicsOn runs op on one broker: on work, and, for delete, describes the kept topics instead.
func topicsOn(ctx context.Context, broker, op string, work, kept []string, partitions, rf int, security, props map[string]string) ([]topics.Status, error) {
	a, err := topics.New(kafka.Settings{Brokers: broker, ClientID: "seldon-keda-topics", Security: security, Extra: props})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	var out []topics.Status
	if len(work) > 0 {
		var st []topics.Status
		switch op {
		case "create":
			st, err = a.Create(ctx, work, partitions, rf)
		case "delete":
			st, err = a.Delete(ctx, work)
		default:
			st, err = a.Describe(ctx, work)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st...)
	}
	if len(kept) > 0 {
		st, err := a.Describe(ctx, kept)
		if err != nil {
			return nil, err
		}
		out = append(out, st...)
	}
	return out, nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
