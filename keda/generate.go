// Package keda turns the kedaSpec of a SeldonDeployment's componentSpecs into KEDA objects whose kafka
// triggers watch exactly what the sidecar consumes: the broker, the topic and the consumer group are taken
// from the predictor's svcOrchSpec.env and the sidecar's group rule, the offset reset policy from the
// sidecar's, and the credentials from the same Secrets the sidecar reads.
//
// This package imports KEDA's API types (github.com/kedacore/keda/v2/apis/keda/v1alpha1); only the
// generator command may import it. The replica rule lives in keda/kafkascaler, which imports nothing of
// KEDA.
package keda

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/seldon-kafka/sidecar/keda/kafkascaler"
	"github.com/seldon-kafka/sidecar/sdep"
)

// Options are the generator's settings.
type Options struct {
	// Namespace is used for SeldonDeployments without metadata.namespace (as kubectl apply -n would);
	// the consumer group name depends on it.
	Namespace string
	// WarnOnMismatch makes a trigger field that differs from what the sidecar consumes a warning instead
	// of an error. Either way the generated trigger carries the sidecar's value.
	WarnOnMismatch bool
	// Partitions are the partition counts of topics, for the warnings about replica bounds; KafkaTopic
	// documents in the input add to them.
	Partitions map[string]int32
	// DefaultPartitions applies to topics not in Partitions; 0 is unknown.
	DefaultPartitions int32
	// DeploymentNameAsPrefix mirrors the operator's DEPLOYMENT_NAME_AS_PREFIX=true.
	DeploymentNameAsPrefix bool
	// LagThreshold is written into kafka triggers that have none; 0 is KEDA's default, 10.
	LagThreshold int64
	// Generator names the tool in the objects' labels; "" is seldon-keda.
	Generator string
	// KeyPassword says whether KAFKA_SSL_CLIENT_KEY_PASS becomes the TriggerAuthentication's keyPassword;
	// the zero value leaves it out for a Strimzi KafkaUser Secret's user.key and user.password.
	KeyPassword KeyPasswordMode
}

// KeyPasswordMode says whether the sidecar's key password is given to KEDA, which, given one, reads the
// client key only as an encrypted PKCS#8 key.
type KeyPasswordMode int

const (
	KeyPasswordAuto KeyPasswordMode = iota // left out for a Strimzi KafkaUser Secret's pair, kept otherwise
	KeyPasswordKeep                        // always mapped to keyPassword
	KeyPasswordDrop                        // never mapped: KEDA reads the key as unencrypted
)

// ParseKeyPasswordMode reads auto, keep or drop.
func ParseKeyPasswordMode(s string) (KeyPasswordMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto":
		return KeyPasswordAuto, nil
	case "keep":
		return KeyPasswordKeep, nil
	case "drop":
		return KeyPasswordDrop, nil
	}
	return 0, fmt.Errorf("%q: want auto, keep or drop", s)
}

// Object is one generated KEDA object.
type Object struct {
	Kind      string
	Namespace string
	Name      string
	Value     any // *kedav1alpha1.ScaledObject or *kedav1alpha1.TriggerAuthentication
}

// Result is the generator's output: the objects in order, and what the user must know.
type Result struct {
	Objects     []Object
	Diagnostics []Diagnostic
}

// HasErrors reports whether any diagnostic is an error.
func (r Result) HasErrors() bool {
	return slices.ContainsFunc(r.Diagnostics, func(d Diagnostic) bool { return d.Severity == Error })
}

// kedaSpec is a componentSpec's kedaSpec, decoded strictly: an unknown field is an error. It has the
// fields of the operator's SeldonScaledObjectSpec and the ScaledObjectSpec fields it lacks.
type kedaSpec struct {
	PollingInterval       *int32                       `json:"pollingInterval,omitempty"`
	InitialCooldownPeriod *int32                       `json:"initialCooldownPeriod,omitempty"`
	CooldownPeriod        *int32                       `json:"cooldownPeriod,omitempty"`
	IdleReplicaCount      *int32                       `json:"idleReplicaCount,omitempty"`
	MinReplicaCount       *int32                       `json:"minReplicaCount,omitempty"`
	MaxReplicaCount       *int32                       `json:"maxReplicaCount,omitempty"`
	Advanced              *kedav1alpha1.AdvancedConfig `json:"advanced,omitempty"`
	Fallback              *kedav1alpha1.Fallback       `json:"fallback,omitempty"`
	Triggers              []kedav1alpha1.ScaleTriggers `json:"triggers"`
}

func decodeKedaSpec(raw json.RawMessage) (kedaSpec, error) {
	var ks kedaSpec
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ks); err != nil {
		return ks, err
	}
	return ks, nil
}

func hasKeda(cs sdep.ComponentSpec) bool {
	s := strings.TrimSpace(string(cs.KedaSpec))
	return s != "" && s != "null"
}

// maxLabelValue is KEDA's limit on a ScaledObject's name and its HPA's (scaledobject_webhook.go, verifyName).
const maxLabelValue = 63

// Generate makes the KEDA objects for every componentSpec with a kedaSpec in the input.
func Generate(in Input, opts Options) Result {
	g := &generator{opts: opts, partitions: map[string]int32{}}
	if g.opts.LagThreshold == 0 {
		g.opts.LagThreshold = kafkascaler.DefaultLagThreshold
	}
	if g.opts.Generator == "" {
		g.opts.Generator = "seldon-keda"
	}
	maps.Copy(g.partitions, in.Partitions)
	maps.Copy(g.partitions, opts.Partitions) // flags win over KafkaTopic documents
	if len(in.Deployments) == 0 {
		g.ds.errorf("input", "no SeldonDeployment (machinelearning.seldon.io) found")
	}
	for _, d := range in.Deployments {
		g.deployment(d)
	}
	return Result{Objects: g.objs, Diagnostics: g.ds}
}

func (g *generator) mismatch() Severity {
	if g.opts.WarnOnMismatch {
		return Warning
	}
	return Error
}

type generator struct {
	opts       Options
	partitions map[string]int32
	objs       []Object
	ds         diags
}

func (g *generator) deployment(l Located) {
	d := l.SeldonDeployment
	ns := d.Metadata.Namespace
	where := fmt.Sprintf("%s: SeldonDeployment %s", l.Source, d.Metadata.Name)
	switch {
	case ns == "" && g.opts.Namespace == "":
		g.ds.errorf(where, "no metadata.namespace: give --namespace (the consumer group <predictor>.<sdep>.<namespace> depends on it)")
		return
	case ns == "":
		ns = g.opts.Namespace
	case g.opts.Namespace != "" && g.opts.Namespace != ns:
		g.ds.errorf(where, "metadata.namespace is %q but --namespace is %q", ns, g.opts.Namespace)
		return
	}
	where = fmt.Sprintf("%s: SeldonDeployment %s/%s", l.Source, ns, d.Metadata.Name)

	anyKeda := false
	for _, p := range d.Spec.Predictors {
		anyKeda = anyKeda || slices.ContainsFunc(p.ComponentSpecs, hasKeda)
	}
	if !anyKeda {
		return
	}
	if st := d.Spec.ServerType; !strings.EqualFold(st, "kafka") {
		if st == "" {
			st = "rpc (the default)"
		}
		g.ds.warnf(where, "spec.serverType is %s, not kafka: its predictors do not consume from Kafka, so nothing is generated for it", st)
		return
	}
	for i, p := range d.Spec.Predictors {
		g.predictor(d, ns, p, fmt.Sprintf("%s: predictors[%d] %q", where, i, p.Name))
	}
}

func (g *generator) predictor(d sdep.SeldonDeployment, ns string, p sdep.PredictorSpec, where string) {
	if !slices.ContainsFunc(p.ComponentSpecs, hasKeda) {
		return
	}
	sc := readSidecar(d, p, ns, where, &g.ds)
	if sc != nil {
		sc.keyPassword = g.opts.KeyPassword
	}
	containers := p.DefaultedContainers()
	engine, separate := d.EngineComponent(p)
	// engineAt says where the operator puts the sidecar container, for the componentSpecs it is not in.
	var engineAt string
	switch {
	case separate:
		engineAt = fmt.Sprintf("it runs in Deployment %s (%s)", sdep.ServiceOrchestratorName(d.Metadata.Name, p.Name), sdep.AnnotationSeparateEngine)
	case engine < 0:
		engineAt = fmt.Sprintf("no sidecar runs in this predictor (%s, or no graph node in componentSpecs[0])", sdep.AnnotationNoEngine)
	default:
		engineAt = fmt.Sprintf("it runs in componentSpecs[%d]'s Deployment %s", engine,
			sdep.DeploymentName(d.Metadata.Name, p.Name, engine, p.ComponentSpecs[engine].Metadata.Name, containers[engine], g.opts.DeploymentNameAsPrefix))
	}

	var auth *kedav1alpha1.TriggerAuthentication
	authName := sdep.PredictorKey(d.Metadata.Name, p.Name) + "-kafka-auth"
	var scaled []Object
	for j, cs := range p.ComponentSpecs {
		if !hasKeda(cs) {
			continue
		}
		csWhere := fmt.Sprintf("%s: componentSpecs[%d]", where, j)
		ks, err := decodeKedaSpec(cs.KedaSpec)
		if err != nil {
			g.ds.errorf(csWhere+".kedaSpec", "%v", err)
			continue
		}
		g.seldonCRDLacks(ks, csWhere+".kedaSpec")
		if len(containers[j]) == 0 {
			g.ds.errorf(csWhere, "has no containers: the operator makes no Deployment for it, so its kedaSpec has nothing to scale")
			continue
		}
		name := sdep.DeploymentName(d.Metadata.Name, p.Name, j, cs.Metadata.Name, containers[j], g.opts.DeploymentNameAsPrefix)
		switch {
		case separate:
			g.ds.warnf(csWhere, "the sidecar runs in its own Deployment %s (%s): scaling %s adds model replicas, not consumers",
				sdep.ServiceOrchestratorName(d.Metadata.Name, p.Name), sdep.AnnotationSeparateEngine, name)
		case engine < 0:
			g.ds.warnf(csWhere, "no sidecar runs in this predictor (%s, or no graph node in componentSpecs[0]): the lag of its group does not follow these replicas", sdep.AnnotationNoEngine)
		case engine != j:
			g.ds.warnf(csWhere, "the sidecar runs in componentSpecs[%d]'s Deployment, not in %s: scaling it on lag adds model replicas, not consumers", engine, name)
		}
		// KEDA reads <field>FromEnv and a TriggerAuthentication's env only from the containers of the
		// Deployment it scales (resolver.ResolveContainerEnv), so only where the operator put the sidecar.
		engineHere := !separate && engine == j
		so := g.scaledObject(d, ns, p, j, name, ks)
		for ti := range so.Spec.Triggers {
			t := &so.Spec.Triggers[ti]
			if t.Type != kafkascaler.TypeKafka && t.Type != kafkascaler.TypeApacheKafka {
				continue
			}
			tWhere := fmt.Sprintf("%s.kedaSpec.triggers[%d] (%s)", csWhere, ti, t.Type)
			if sc == nil {
				g.ds.errorf(tWhere, "cannot be filled in: the sidecar's settings above are not usable")
				continue
			}
			md := g.kafkaTrigger(t, sc, tWhere, so, engineHere, engineAt)
			if md == nil {
				continue
			}
			if t.AuthenticationRef != nil && (sc.TLS || sc.SASL != "") {
				var quiet diags
				var uses []string
				for _, a := range sc.authParams(where, &quiet) {
					switch {
					case a.Secret != nil:
						uses = append(uses, fmt.Sprintf("%s from Secret %s key %s", a.Param, a.Secret.Name, a.Secret.Key))
					case a.ConfigMap != nil:
						uses = append(uses, fmt.Sprintf("%s from ConfigMap %s key %s", a.Param, a.ConfigMap.Name, a.ConfigMap.Key))
					default:
						uses = append(uses, fmt.Sprintf("%s from %s", a.Param, a.EnvVar))
					}
				}
				if secret, ok := sc.strimziKeyPair(); ok && g.opts.KeyPassword == KeyPasswordAuto {
					uses = append(uses, "and no keyPassword ("+strimziWhy(secret)+")")
				}
				if len(uses) > 0 {
					g.ds.warnf(tWhere, "authenticationRef %s is kept and not checked: it should give what the sidecar uses: %s", t.AuthenticationRef.Name, strings.Join(uses, ", "))
				}
			}
			if t.AuthenticationRef == nil && (sc.TLS || sc.SASL != "") {
				if sc.SASL == "oauthbearer" && t.Type == kafkascaler.TypeApacheKafka {
					g.ds.errorf(tWhere, "the sidecar uses SASL OAUTHBEARER, which KEDA's apache-kafka scaler does not offer: use type kafka")
					continue
				}
				if auth == nil {
					auth = g.triggerAuth(d, ns, p, authName, sc, where)
				}
				if auth != nil && len(auth.Spec.Env) > 0 && !engineHere {
					var vars []string
					for _, e := range auth.Spec.Env {
						vars = append(vars, e.Name)
					}
					g.ds.errorf(tWhere, "TriggerAuthentication %s reads %s from the environment of container %s, which KEDA looks for in the Deployment it scales, %s; the sidecar is not there: %s. Give %s from a Secret or ConfigMap (valueFrom), which KEDA reads directly",
						authName, strings.Join(vars, ", "), sdep.EngineContainerName, name, engineAt, strings.Join(vars, ", "))
				} else if auth != nil {
					t.AuthenticationRef = &kedav1alpha1.AuthenticationRef{Name: authName}
				}
			}
			g.replicaWarnings(so, md, tWhere)
		}
		g.kedaChecks(so, csWhere+".kedaSpec")
		scaled = append(scaled, Object{Kind: "ScaledObject", Namespace: ns, Name: so.Name, Value: so})
	}
	if auth != nil {
		g.objs = append(g.objs, Object{Kind: "TriggerAuthentication", Namespace: ns, Name: auth.Name, Value: auth})
	}
	g.objs = append(g.objs, scaled...)
}

func (g *generator) meta(d sdep.SeldonDeployment, ns, name string, p sdep.PredictorSpec) metav1.ObjectMeta {
	m := metav1.ObjectMeta{
		Name:      name,
		Namespace: ns,
		Labels: map[string]string{
			sdep.LabelSeldonID:             sdep.SeldonID(d.Metadata.Name),
			"app.kubernetes.io/managed-by": g.opts.Generator,
		},
		Annotations: map[string]string{
			"seldon.io/seldon-deployment": d.Metadata.Name,
			"seldon.io/predictor":         p.Name,
		},
	}
	if d.Metadata.UID != "" {
		// With the SeldonDeployment's uid (from `kubectl get -o yaml`), the objects go when it goes.
		m.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: d.APIVersion, Kind: "SeldonDeployment", Name: d.Metadata.Name, UID: types.UID(d.Metadata.UID),
		}}
	}
	return m
}

func (g *generator) scaledObject(d sdep.SeldonDeployment, ns string, p sdep.PredictorSpec, j int, name string, ks kedaSpec) *kedav1alpha1.ScaledObject {
	so := &kedav1alpha1.ScaledObject{
		TypeMeta:   metav1.TypeMeta{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject"},
		ObjectMeta: g.meta(d, ns, name, p),
		Spec: kedav1alpha1.ScaledObjectSpec{
			// The operator's createKeda: the ScaledObject has the Deployment's name and scales it.
			ScaleTargetRef:        &kedav1alpha1.ScaleTarget{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			PollingInterval:       ks.PollingInterval,
			InitialCooldownPeriod: ks.InitialCooldownPeriod,
			CooldownPeriod:        ks.CooldownPeriod,
			IdleReplicaCount:      ks.IdleReplicaCount,
			MinReplicaCount:       ks.MinReplicaCount,
			MaxReplicaCount:       ks.MaxReplicaCount,
			Advanced:              ks.Advanced,
			Fallback:              ks.Fallback,
			Triggers:              ks.Triggers,
		},
	}
	so.Annotations["seldon.io/component-spec"] = strconv.Itoa(j)
	return so
}

// kafkaTrigger fills in and checks one kafka trigger. It returns the parsed metadata, or nil when the
// trigger is not valid for KEDA.
//
// engineHere says whether the sidecar container is in the scaled Deployment, where KEDA resolves
// <field>FromEnv; engineAt says where it is otherwise.
func (g *generator) kafkaTrigger(t *kedav1alpha1.ScaleTriggers, sc *sidecar, where string, so *kedav1alpha1.ScaledObject, engineHere bool, engineAt string) *kafkascaler.Metadata {
	if t.Metadata == nil {
		t.Metadata = map[string]string{}
	}
	md := t.Metadata
	var fromEnv []string // the <field>FromEnv the trigger reads, with their variables
	match := func(field string, want setting, same func(a, b string) bool) {
		lit := strings.TrimSpace(md[field])
		envName := strings.TrimSpace(md[field+"FromEnv"])
		apply := func() {
			if want.Known {
				md[field] = want.Value
				delete(md, field+"FromEnv")
			} else {
				delete(md, field)
				md[field+"FromEnv"] = want.Var
				fromEnv = append(fromEnv, field+"FromEnv "+want.Var)
			}
		}
		switch {
		case lit != "" && want.Known:
			if !same(lit, want.Value) {
				g.ds.add(g.mismatch(), where, "%s: the trigger has %q, but the sidecar uses %s", field, lit, want.describe())
			}
			apply()
		case lit != "":
			g.ds.add(g.mismatch(), where, "%s: the trigger has %q, but the sidecar reads %s, which cannot be compared here; the trigger now reads it too (%sFromEnv)", field, lit, want.describe(), field)
			apply()
		case envName != "":
			if want.Var != "" && envName == want.Var {
				fromEnv = append(fromEnv, field+"FromEnv "+want.Var) // reads the sidecar's own variable
				return
			}
			g.ds.add(g.mismatch(), where, "%sFromEnv: the trigger reads %s, but the sidecar uses %s", field, envName, want.describe())
			apply()
		default:
			apply()
		}
	}
	same := func(a, b string) bool { return a == b }
	match("bootstrapServers", sc.Brokers, sameServers)
	match("topic", sc.Topic, func(a, b string) bool {
		if t.Type == kafkascaler.TypeApacheKafka {
			return sameServers(a, b) // a list of one
		}
		return a == b
	})
	match("consumerGroup", sc.Group, same)
	if len(fromEnv) > 0 && !engineHere {
		g.ds.errorf(where, "KEDA resolves %s from a container of the Deployment it scales, %s, and the sidecar container %s is not there: %s. Write the value inline in svcOrchSpec.env so the trigger carries it",
			strings.Join(fromEnv, ", "), so.Spec.ScaleTargetRef.Name, sdep.EngineContainerName, engineAt)
		return nil
	}
	if len(fromEnv) > 0 {
		// KEDA resolves <field>FromEnv in the scale target's first container unless told which.
		so.Spec.ScaleTargetRef.EnvSourceContainerName = sdep.EngineContainerName
	}

	// offsetResetPolicy has no FromEnv form in KEDA: it must be written out.
	if lit := strings.TrimSpace(md["offsetResetPolicy"]); !sc.Reset.Known {
		if lit == "" {
			g.ds.errorf(where, "offsetResetPolicy: the sidecar reads %s, which cannot be resolved here, and KEDA needs it written out (its default, latest, differs from the sidecar's, earliest); set %s inline", sc.Reset.describe(), envOffsetReset)
			return nil
		}
		g.ds.warnf(where, "offsetResetPolicy: %q is kept, but the sidecar reads %s, which cannot be compared here", lit, sc.Reset.describe())
	} else {
		if lit != "" && lit != sc.Reset.Value {
			g.ds.add(g.mismatch(), where, "offsetResetPolicy: the trigger has %q, but the sidecar starts a new group from %q (%s)", lit, sc.Reset.Value, envOffsetReset)
		}
		md["offsetResetPolicy"] = sc.Reset.Value
	}

	wantTLS := map[bool]string{true: "enable", false: "disable"}[sc.TLS]
	if lit := strings.TrimSpace(md["tls"]); lit != "" && lit != wantTLS {
		g.ds.add(g.mismatch(), where, "tls: the trigger has %q, but the sidecar's %s %s TLS", lit, envProtocol, map[bool]string{true: "uses", false: "does not use"}[sc.TLS])
	}
	if sc.TLS {
		md["tls"] = "enable"
	} else {
		delete(md, "tls")
	}
	wantSASL := sc.SASL
	if wantSASL == "" {
		wantSASL = "none"
	}
	if lit := strings.TrimSpace(md["sasl"]); lit != "" && lit != wantSASL {
		g.ds.add(g.mismatch(), where, "sasl: the trigger has %q, but the sidecar's is %q (%s, %s)", lit, wantSASL, envProtocol, envSASLMech)
	}
	if sc.SASL != "" {
		md["sasl"] = sc.SASL
	} else if strings.TrimSpace(md["sasl"]) != "none" {
		delete(md, "sasl")
	}

	if strings.TrimSpace(md["lagThreshold"]) == "" {
		md["lagThreshold"] = strconv.FormatInt(g.opts.LagThreshold, 10)
	}
	switch t.MetricType {
	case "", "AverageValue":
	case "Value":
		g.ds.warnf(where, "metricType Value: the HPA then compares the whole lag with lagThreshold instead of lagThreshold per replica")
	default:
		g.ds.errorf(where, "metricType %q: a kafka trigger takes AverageValue (the default) or Value", t.MetricType)
	}

	// Parse with the sidecar's topic even when KEDA will read it from the environment.
	check := maps.Clone(md)
	if sc.Topic.Known {
		check["topic"] = sc.Topic.Value
	} else {
		check["topic"] = sc.Topic.Var
	}
	m, err := kafkascaler.Parse(t.Type, check)
	if err != nil {
		g.ds.errorf(where, "metadata.%v", err)
		return nil
	}
	if sc.Topic.Known {
		m.Topic = sc.Topic.Value
	} else {
		m.Topic = ""
	}
	return &m
}

// seldonCRDLacks warns of the kedaSpec fields that Seldon Core v1.18.2's SeldonDeployment CRD does not
// have: the operator's SeldonScaledObjectSpec predates them, and with kubectl's default strict field
// validation the SeldonDeployment itself is refused.
func (g *generator) seldonCRDLacks(ks kedaSpec, where string) {
	var lacks []string
	if ks.InitialCooldownPeriod != nil {
		lacks = append(lacks, "initialCooldownPeriod")
	}
	if a := ks.Advanced; a != nil && a.HorizontalPodAutoscalerConfig != nil && a.HorizontalPodAutoscalerConfig.Name != "" {
		lacks = append(lacks, "advanced.horizontalPodAutoscalerConfig.name")
	}
	for _, f := range lacks {
		g.ds.warnf(where, "%s is not in Seldon Core v1.18.2's SeldonDeployment CRD: kubectl apply of the SeldonDeployment fails on it under strict field validation (kubectl's default) and the API server drops it otherwise; the ScaledObject written here has it, so keep it out of the kedaSpec you apply and set it on the ScaledObject", f)
	}
}

// replicaWarnings says when the replica bounds cannot do what they seem to.
func (g *generator) replicaWarnings(so *kedav1alpha1.ScaledObject, m *kafkascaler.Metadata, where string) {
	parts, known := g.partitions[m.Topic]
	if !known && m.Topic != "" {
		parts, known = g.opts.DefaultPartitions, g.opts.DefaultPartitions > 0
	}
	if !known {
		return
	}
	if len(m.PartitionLimitation) > 0 {
		parts = int32(len(m.PartitionLimitation))
	}
	maxR, def := int32(100), " (KEDA's default)"
	if so.Spec.MaxReplicaCount != nil {
		maxR, def = *so.Spec.MaxReplicaCount, ""
	}
	if maxR > parts && !m.AllowIdleConsumers {
		g.ds.warnf(where, "maxReplicaCount %d%s is above the %d partitions of %s: a group has at most %d busy consumers, and without allowIdleConsumers KEDA caps its metric at about %d replicas (%d at most: its cap rounds down)",
			maxR, def, parts, m.Topic, parts, parts, parts+1)
	}
	if so.Spec.MinReplicaCount != nil && *so.Spec.MinReplicaCount > parts {
		g.ds.warnf(where, "minReplicaCount %d is above the %d partitions of %s: %d replicas will always be idle",
			*so.Spec.MinReplicaCount, parts, m.Topic, *so.Spec.MinReplicaCount-parts)
	}
}

// kedaChecks applies KEDA's admission checks that need no cluster (scaledobject_webhook.go:
// verifyReplicaCount, verifyFallback, verifyTriggers, verifyName), after saying plainly what the
// replica settings do.
func (g *generator) kedaChecks(so *kedav1alpha1.ScaledObject, where string) {
	s := &so.Spec
	replicasOK := true
	if s.IdleReplicaCount != nil {
		switch {
		case s.MinReplicaCount == nil:
			g.ds.errorf(where, "idleReplicaCount %d without minReplicaCount: KEDA wants idleReplicaCount below minReplicaCount", *s.IdleReplicaCount)
			replicasOK = false
		case *s.MinReplicaCount == 0 && *s.IdleReplicaCount == 0:
			g.ds.warnf(where, "minReplicaCount 0 with idleReplicaCount 0: the idle count changes nothing, KEDA already scales to 0 when the lag is gone; drop idleReplicaCount, or raise minReplicaCount to keep replicas while there is lag")
		case *s.MinReplicaCount == 0:
			g.ds.errorf(where, "minReplicaCount 0 with idleReplicaCount %d: KEDA refuses an idle count at or above the minimum (it takes minReplicaCount 0 as 1)", *s.IdleReplicaCount)
			replicasOK = false
		}
	}
	if replicasOK {
		if err := kedav1alpha1.CheckReplicaCountBoundsAreValid(so); err != nil {
			g.ds.errorf(where, "%v", err)
		}
	}
	if err := kedav1alpha1.CheckFallbackValid(so); err != nil {
		g.ds.errorf(where, "fallback: %v", err)
	}
	if err := kedav1alpha1.ValidateTriggers(s.Triggers); err != nil {
		g.ds.errorf(where, "triggers: %v", err)
	}
	if len(so.Name) > maxLabelValue {
		g.ds.errorf(where, "ScaledObject name %q is longer than %d characters", so.Name, maxLabelValue)
	}
	hpaSet := s.Advanced != nil && s.Advanced.HorizontalPodAutoscalerConfig != nil && s.Advanced.HorizontalPodAutoscalerConfig.Name != ""
	if hpa := "keda-hpa-" + so.Name; !hpaSet && len(hpa) > maxLabelValue {
		if s.Advanced == nil {
			s.Advanced = &kedav1alpha1.AdvancedConfig{}
		}
		if s.Advanced.HorizontalPodAutoscalerConfig == nil {
			s.Advanced.HorizontalPodAutoscalerConfig = &kedav1alpha1.HorizontalPodAutoscalerConfig{}
		}
		s.Advanced.HorizontalPodAutoscalerConfig.Name = so.Name
		g.ds.warnf(where, "KEDA's HPA name %q would be %d characters, over %d: advanced.horizontalPodAutoscalerConfig.name is set to %q", hpa, len(hpa), maxLabelValue, so.Name)
	}
}

// triggerAuth makes the predictor's TriggerAuthentication, or nil when nothing can be referenced.
func (g *generator) triggerAuth(d sdep.SeldonDeployment, ns string, p sdep.PredictorSpec, name string, sc *sidecar, where string) *kedav1alpha1.TriggerAuthentication {
	params := sc.authParams(where, &g.ds)
	if len(params) == 0 {
		return nil
	}
	ta := &kedav1alpha1.TriggerAuthentication{
		TypeMeta:   metav1.TypeMeta{APIVersion: "keda.sh/v1alpha1", Kind: "TriggerAuthentication"},
		ObjectMeta: g.meta(d, ns, name, p),
	}
	for _, a := range params {
		switch {
		case a.Secret != nil:
			ta.Spec.SecretTargetRef = append(ta.Spec.SecretTargetRef, kedav1alpha1.AuthSecretTargetRef{Parameter: a.Param, Name: a.Secret.Name, Key: a.Secret.Key})
		case a.ConfigMap != nil:
			ta.Spec.ConfigMapTargetRef = append(ta.Spec.ConfigMapTargetRef, kedav1alpha1.AuthConfigMapTargetRef{Parameter: a.Param, Name: a.ConfigMap.Name, Key: a.ConfigMap.Key})
		default:
			ta.Spec.Env = append(ta.Spec.Env, kedav1alpha1.AuthEnvironment{Parameter: a.Param, Name: a.EnvVar, ContainerName: sdep.EngineContainerName})
		}
	}
	return ta
}
