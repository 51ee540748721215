package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/seldon-kafka/sidecar/kafka"
	"github.com/seldon-kafka/sidecar/kafka/topics"
	"github.com/seldon-kafka/sidecar/sdep"
)

func runTopics(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	const synopsis = "topics create|delete|status [-f FILE]... [flags]"
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "usage: seldon-keda %s\n", synopsis)
		return errUsage
	}
	op := args[0]
	if op != "create" && op != "delete" && op != "status" {
		fmt.Fprintf(stderr, "seldon-keda topics: %q: want create, delete or status\n", op)
		return errUsage
	}
	fs := newFlags("topics "+op, synopsis, stderr)
	var in files
	props := kv{}
	fs.Var(&in, "f", "SeldonDeployment manifest; repeatable; - or none is stdin")
	broker := fs.String("broker", "", "bootstrap servers (default: the predictors' KAFKA_BROKER, then $KAFKA_BROKER)")
	fs.Var(props, "X", "librdkafka property KEY=VALUE for the connection (security settings); repeatable")
	partitions := fs.Int("partitions", 0, "create: partitions of each topic (required)")
	rf := fs.Int("replication-factor", 0, "create: replication factor of each topic (required; -1 for the broker's default)")
	force := fs.Bool("force", false, "delete: also the topics of SeldonDeployments without the "+topics.AnnotationCleanOnDelete+": \"true\" annotation")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	timeout := fs.Duration("timeout", time.Minute, "how long the broker may take")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "seldon-keda topics: unexpected argument %q (files go with -f)\n", fs.Arg(0))
		return errUsage
	}
	if op == "create" && (*partitions < 1 || *rf == 0 || *rf < -1) {
		return fmt.Errorf("create needs --partitions (1 or more) and --replication-factor (1 or more, or -1)")
	}

	var deps []sdep.SeldonDeployment
	if err := readInputs(in, stdin, func(source string, data []byte) error {
		ds, err := sdep.ReadDeployments(data)
		if err != nil {
			return fmt.Errorf("%s: %w", source, err)
		}
		deps = append(deps, ds...)
		return nil
	}); err != nil {
		return err
	}
	if len(deps) == 0 {
		return fmt.Errorf("no SeldonDeployment in the input")
	}

	// Topics by broker, in input order.
	type batch struct {
		broker string
		names  []string
	}
	var batches []*batch
	byBroker := map[string]*batch{}
	var kept []topics.Status
	for _, d := range deps {
		ts, err := topics.Of(d)
		if err != nil {
			return err
		}
		if op == "delete" && !*force && !strings.EqualFold(d.Metadata.Annotations[topics.AnnotationCleanOnDelete], "true") {
			for _, t := range ts {
				kept = append(kept, topics.Status{Topic: t.Name, Action: "kept",
					Note: fmt.Sprintf("SeldonDeployment %s does not have %s: \"true\" (use --force)", d.Metadata.Name, topics.AnnotationCleanOnDelete)})
			}
			continue
		}
		for _, t := range ts {
			b := firstNonEmpty(*broker, t.Broker, getenv("KAFKA_BROKER"))
			if b == "" {
				return fmt.Errorf("SeldonDeployment %s: predictor %q: no broker: KAFKA_BROKER is not inline; give --broker", d.Metadata.Name, t.Predictor)
			}
			if byBroker[b] == nil {
				byBroker[b] = &batch{broker: b}
				batches = append(batches, byBroker[b])
			}
			byBroker[b].names = append(byBroker[b].names, t.Name)
		}
	}

	security, err := securityFromEnv()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var all []topics.Status
	for _, b := range batches {
		a, err := topics.New(kafka.Settings{Brokers: b.broker, ClientID: "seldon-keda-topics", Security: security, Extra: props})
		if err != nil {
			return err
		}
		var st []topics.Status
		switch op {
		case "create":
			st, err = a.Create(ctx, b.names, *partitions, *rf)
		case "delete":
			st, err = a.Delete(ctx, b.names)
		default:
			st, err = a.Describe(ctx, b.names)
		}
		a.Close()
		if err != nil {
			return err
		}
		all = append(all, st...)
	}
	all = append(all, kept...)
	if *asJSON {
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

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
