package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/seldon-kafka/sidecar/kafka"
	"github.com/seldon-kafka/sidecar/kafka/lag"
	"github.com/seldon-kafka/sidecar/keda/kafkascaler"
	"github.com/seldon-kafka/sidecar/sdep"
)

// lagConfig is what the lag report runs on: the sidecar's connection and group, and the trigger.
type lagConfig struct {
	Settings kafka.Settings
	Topic    string
	Trigger  kafkascaler.Metadata
	Bounds   kafkascaler.Bounds
	Current  int32
	JSON     bool
	Timeout  time.Duration
}

// optInt32 is an int32 flag that knows whether it was given.
type optInt32 struct{ p **int32 }

func (o optInt32) String() string {
	if o.p == nil || *o.p == nil {
		return ""
	}
	return strconv.Itoa(int(**o.p))
}
func (o optInt32) Set(v string) error {
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 {
		return fmt.Errorf("%q: want a whole number, 0 or more", v)
	}
	x := int32(n)
	*o.p = &x
	return nil
}

// parseLag reads the lag report's settings from the sidecar's environment variables and the flags. The
// group is KAFKA_GROUP_ID, or the sidecar's <predictor>.<sdep>.<namespace>.
func parseLag(args []string, stdout, stderr io.Writer, getenv func(string) string) (lagConfig, error) {
	fs := newFlags("lag", "lag [flags]  (connection, topic and group from KAFKA_BROKER, KAFKA_INPUT_TOPIC, KAFKA_GROUP_ID, KAFKA_TOPIC_NAMING, KAFKA_TOPIC_PREFIX and KAFKA_CONSUMER_GROUP_ID_PREFIX as the sidecar reads them)", stdout, stderr)
	var c lagConfig
	props := kv{}
	sdepName := fs.String("sdep", "", "SeldonDeployment name, for the group <predictor>.<sdep>.<namespace> when KAFKA_GROUP_ID is not set")
	namespace := fs.String("namespace", "", "namespace, for the group name")
	predictor := fs.String("predictor", "", "predictor name, for the group name")
	fs.Var(props, "X", "librdkafka property KEY=VALUE for the connection (security settings); repeatable")
	lagThreshold := fs.String("lag-threshold", "", "trigger lagThreshold (KEDA's default 10)")
	activation := fs.String("activation-lag-threshold", "", "trigger activationLagThreshold (default 0)")
	reset := fs.String("offset-reset-policy", "", "trigger offsetResetPolicy: earliest or latest (default: the sidecar's KAFKA_AUTO_OFFSET_RESET, earliest when unset, as seldon-keda generate writes it)")
	allowIdle := fs.Bool("allow-idle-consumers", false, "trigger allowIdleConsumers")
	limitLag := fs.Bool("limit-to-partitions-with-lag", false, "trigger limitToPartitionsWithLag")
	zeroInvalid := fs.Bool("scale-to-zero-on-invalid-offset", false, "trigger scaleToZeroOnInvalidOffset")
	even := fs.Bool("ensure-even-distribution-of-partitions", false, "trigger ensureEvenDistributionOfPartitions")
	partLimit := fs.String("partition-limitation", "", "trigger partitionLimitation, like 0,1,4-7")
	fs.Var(optInt32{&c.Bounds.Min}, "min-replicas", "ScaledObject minReplicaCount (KEDA's default 0)")
	fs.Var(optInt32{&c.Bounds.Max}, "max-replicas", "ScaledObject maxReplicaCount (KEDA's default 100)")
	fs.Var(optInt32{&c.Bounds.Idle}, "idle-replicas", "ScaledObject idleReplicaCount")
	current := fs.Int("current-replicas", 0, "replicas running now, for the HPA's 10% tolerance (0: leave it out)")
	fs.BoolVar(&c.JSON, "json", false, "print JSON instead of a table")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "how long the broker may take to answer")
	if err := fs.parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "seldon-keda lag: unexpected argument %q\n", fs.Arg(0))
		return c, errUsage
	}
	c.Current = int32(*current)

	c.Settings = kafka.Settings{
		Brokers:  strings.TrimSpace(getenv("KAFKA_BROKER")),
		ClientID: "seldon-keda-lag",
		Extra:    props,
	}
	if c.Settings.Brokers == "" {
		return c, fmt.Errorf("KAFKA_BROKER: required, and not set")
	}
	// The topic and the group as the sidecar names them (sdep.Naming): its variables, or the names it
	// makes from the flags. The output and error topics are not wanted here.
	given := [4]sdep.Given{sdep.Output: {Unknown: true}, sdep.Errors: {Unknown: true}}
	for _, r := range []sdep.Role{sdep.Input, sdep.Group} {
		given[r].Value = strings.TrimSpace(getenv(r.Var()))
	}
	if given[sdep.Group].Value == "" && *predictor == "" {
		return c, fmt.Errorf("--predictor: required to name the group <predictor>.<sdep>.<namespace> (or set KAFKA_GROUP_ID)")
	}
	n, err := sdep.NewNaming(getenv(sdep.EnvTopicNaming), getenv(sdep.EnvTopicPrefix), getenv(sdep.EnvGroupPrefix), *sdepName, *namespace, *predictor)
	if err != nil {
		return c, err
	}
	names, err := n.Resolve(given)
	if err != nil {
		return c, err
	}
	c.Topic, c.Settings.GroupID = names[sdep.Input], names[sdep.Group]
	if *reset == "" {
		*reset = strings.ToLower(strings.TrimSpace(getenv("KAFKA_AUTO_OFFSET_RESET")))
		if *reset == "" {
			*reset = "earliest"
		}
	}
	md := map[string]string{
		"bootstrapServers":                   c.Settings.Brokers,
		"consumerGroup":                      c.Settings.GroupID,
		"topic":                              c.Topic,
		"lagThreshold":                       *lagThreshold,
		"activationLagThreshold":             *activation,
		"offsetResetPolicy":                  *reset,
		"allowIdleConsumers":                 strconv.FormatBool(*allowIdle),
		"limitToPartitionsWithLag":           strconv.FormatBool(*limitLag),
		"scaleToZeroOnInvalidOffset":         strconv.FormatBool(*zeroInvalid),
		"ensureEvenDistributionOfPartitions": strconv.FormatBool(*even),
		"partitionLimitation":                *partLimit,
	}
	m, err := kafkascaler.Parse(kafkascaler.TypeKafka, md)
	if err != nil {
		return c, fmt.Errorf("trigger: %v", err)
	}
	c.Trigger = m
	minR := int32(0)
	if c.Bounds.Min != nil {
		minR = *c.Bounds.Min
	}
	if c.Bounds.Max != nil && *c.Bounds.Max < max(minR, 1) {
		return c, fmt.Errorf("--max-replicas %d is below the minimum %d", *c.Bounds.Max, max(minR, 1))
	}
	if c.Timeout <= 0 {
		return c, fmt.Errorf("--timeout: must be positive")
	}
	return c, nil
}

func runLag(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	c, err := parseLag(args, stdout, stderr, getenv)
	if err != nil {
		return err
	}
	if c.Settings.Security, err = securityFromEnv(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	snap, err := lag.Read(ctx, c.Settings, c.Topic)
	if err != nil {
		return err
	}
	rep := newLagReport(c, snap)
	if c.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.writeTable(stdout)
}

// lagReport is the report, as JSON prints it.
type lagReport struct {
	Brokers    string          `json:"brokers"`
	Group      string          `json:"group"`
	GroupState string          `json:"groupState,omitempty"`
	Members    int             `json:"members"`
	Topic      string          `json:"topic"`
	Partitions []partitionLine `json:"partitions"`
	TotalLag   int64           `json:"totalLag"`
	KEDA       kedaLine        `json:"keda"`
}

type partitionLine struct {
	Partition int32  `json:"partition"`
	Committed *int64 `json:"committed"` // null: the group has no offset here
	Start     int64  `json:"start"`
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"` // as KEDA counts it under offsetResetPolicy
	Counted   bool   `json:"counted"`
}

type kedaLine struct {
	LagThreshold               int64   `json:"lagThreshold"`
	ActivationLagThreshold     int64   `json:"activationLagThreshold"`
	OffsetResetPolicy          string  `json:"offsetResetPolicy"`
	AllowIdleConsumers         bool    `json:"allowIdleConsumers"`
	LimitToPartitionsWithLag   bool    `json:"limitToPartitionsWithLag"`
	ScaleToZeroOnInvalidOffset bool    `json:"scaleToZeroOnInvalidOffset"`
	EnsureEvenDistribution     bool    `json:"ensureEvenDistributionOfPartitions"`
	PartitionLimitation        []int32 `json:"partitionLimitation,omitempty"`
	MinReplicaCount            *int32  `json:"minReplicaCount,omitempty"`
	MaxReplicaCount            *int32  `json:"maxReplicaCount,omitempty"`
	IdleReplicaCount           *int32  `json:"idleReplicaCount,omitempty"`
	Metric                     int64   `json:"metric"`
	Active                     bool    `json:"active"`
	Replicas                   int32   `json:"replicas"`
	Reason                     string  `json:"reason"`
}

func newLagReport(c lagConfig, snap lag.Snapshot) lagReport {
	m := c.Trigger
	d := kafkascaler.Replicas(m, snap.Partitions, c.Bounds, c.Current)
	rep := lagReport{
		Brokers: c.Settings.Brokers, Group: snap.Group, GroupState: snap.GroupState, Members: snap.Members,
		Topic: snap.Topic, TotalLag: d.Total.Lag,
		KEDA: kedaLine{
			LagThreshold: m.LagThreshold, ActivationLagThreshold: m.ActivationLagThreshold,
			OffsetResetPolicy: m.OffsetResetPolicy, AllowIdleConsumers: m.AllowIdleConsumers,
			LimitToPartitionsWithLag: m.LimitToPartitionsWithLag, ScaleToZeroOnInvalidOffset: m.ScaleToZeroOnInvalidOffset,
			EnsureEvenDistribution: m.EnsureEvenDistributionOfPartitions, PartitionLimitation: m.PartitionLimitation,
			MinReplicaCount: c.Bounds.Min, MaxReplicaCount: c.Bounds.Max, IdleReplicaCount: c.Bounds.Idle,
			Metric: d.Total.Metric, Active: d.Active, Replicas: d.Replicas, Reason: d.Reason,
		},
	}
	for _, p := range snap.Partitions {
		line := partitionLine{Partition: p.ID, Start: p.Start, End: p.End, Lag: m.Lag(p), Counted: true}
		if p.Committed >= 0 {
			line.Committed = &p.Committed
		}
		if m.PartitionLimitation != nil {
			line.Counted = false
			for _, id := range m.PartitionLimitation {
				line.Counted = line.Counted || id == p.ID
			}
		}
		rep.Partitions = append(rep.Partitions, line)
	}
	return rep
}

func (r lagReport) writeTable(w io.Writer) error {
	state := r.GroupState
	if state == "" {
		state = "unknown"
	}
	fmt.Fprintf(w, "group  %s (%s, %d members)\ntopic  %s (%d partitions) on %s\n\n", r.Group, state, r.Members, r.Topic, len(r.Partitions), r.Brokers)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PARTITION\tCOMMITTED\tSTART\tEND\tLAG\t")
	for _, p := range r.Partitions {
		committed := "-"
		if p.Committed != nil {
			committed = strconv.FormatInt(*p.Committed, 10)
		}
		lagCol := strconv.FormatInt(p.Lag, 10)
		if !p.Counted {
			lagCol = "(" + lagCol + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t\n", p.Partition, committed, p.Start, p.End, lagCol)
	}
	fmt.Fprintf(tw, "TOTAL\t\t\t\t%d\t\n", r.TotalLag)
	if err := tw.Flush(); err != nil {
		return err
	}
	k := r.KEDA
	var opts []string
	for _, o := range []struct {
		on   bool
		name string
	}{{k.AllowIdleConsumers, "allowIdleConsumers"}, {k.LimitToPartitionsWithLag, "limitToPartitionsWithLag"},
		{k.ScaleToZeroOnInvalidOffset, "scaleToZeroOnInvalidOffset"}, {k.EnsureEvenDistribution, "ensureEvenDistributionOfPartitions"}} {
		if o.on {
			opts = append(opts, o.name)
		}
	}
	if len(k.PartitionLimitation) > 0 {
		opts = append(opts, fmt.Sprintf("partitionLimitation %v", k.PartitionLimitation))
	}
	fmt.Fprintf(w, "\nKEDA kafka trigger: lagThreshold %d, activationLagThreshold %d, offsetResetPolicy %s", k.LagThreshold, k.ActivationLagThreshold, k.OffsetResetPolicy)
	if len(opts) > 0 {
		fmt.Fprintf(w, ", %s", strings.Join(opts, ", "))
	}
	fmt.Fprintf(w, "\n  metric    %d\n  active    %t\n  replicas  %d  (%s)\n", k.Metric, k.Active, k.Replicas, k.Reason)
	_, err := fmt.Fprintln(w, "  (lag of a partition without a commit: 1 under latest, end - start under earliest, 0 with scaleToZeroOnInvalidOffset)")
	return err
}
