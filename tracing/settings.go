// Package tracing is the sidecar's W3C Trace Context and OpenTelemetry tracing: it reads the standard
// OTEL_* variables (and maps the legacy executor's JAEGER_* ones onto them where they can be), builds a
// tracer provider that exports over OTLP only when an endpoint is set (a no-op one otherwise), and
// carries the trace context between record headers, model calls and the records produced.
package tracing

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/contrib/propagators/autoprop"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// DefaultServiceName is the service.name of the sidecar's spans when neither OTEL_SERVICE_NAME nor the
// legacy JAEGER_SERVICE_NAME says otherwise: the legacy executor's.
const DefaultServiceName = "executor"

// Settings say whether spans are exported, how, and which are sampled. They come from the environment
// (FromEnv) and are checked there.
type Settings struct {
	// Export is true when spans go to an OTLP endpoint: OTEL_EXPORTER_OTLP_ENDPOINT (or its _TRACES_
	// form) is set, OTEL_TRACES_EXPORTER is not none and the SDK is not disabled.
	Export bool
	// Protocol is the OTLP protocol: grpc, http/protobuf (the default) or http/json.
	Protocol string
	// Sampler decides which new traces are recorded; a sampled parent's decision is kept.
	Sampler sdktrace.Sampler
	// SamplerName says which it is, for the start-up log.
	SamplerName string
	// ServiceName is the default service.name; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES still win.
	ServiceName string
	// Attributes are further resource attributes (the legacy JAEGER_TAGS).
	Attributes []attribute.KeyValue
	// Propagator reads and writes the trace context in headers: OTEL_PROPAGATORS, by default W3C Trace
	// Context and Baggage.
	Propagator propagation.TextMapPropagator
	// Notes are legacy settings that do not carry over, for a warning at start.
	Notes []string

	// Provider, when set, is used instead of the one these settings describe: tests give an SDK
	// provider with an in-memory exporter.
	Provider trace.TracerProvider
}

// EnvError is a tracing variable with a value the sidecar cannot use.
type EnvError struct {
	Var string
	Msg string
}

func (e *EnvError) Error() string { return e.Var + ": " + e.Msg }

func bad(name, format string, args ...any) error {
	return &EnvError{Var: name, Msg: fmt.Sprintf(format, args...)}
}

// FromEnv reads the tracing settings from the process environment.
func FromEnv() (Settings, error) { return FromLookup(os.LookupEnv) }

// FromLookup reads the tracing settings through lookup (os.LookupEnv, or a map in tests). The OTEL_*
// variables are those of the OpenTelemetry specification; the exporters read the rest of theirs
// (headers, certificates, timeouts, compression) themselves.
func FromLookup(lookup func(string) (string, bool)) (Settings, error) {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	s := Settings{ServiceName: DefaultServiceName, Protocol: "http/protobuf"}

	disabled, err := boolVar(get, "OTEL_SDK_DISABLED")
	if err != nil {
		return s, err
	}
	legacyOff, err := boolVar(get, "JAEGER_DISABLED")
	if err != nil {
		return s, err
	}
	exporter := strings.ToLower(get("OTEL_TRACES_EXPORTER"))
	switch exporter {
	case "", "otlp", "none":
	default:
		return s, bad("OTEL_TRACES_EXPORTER", "%q: the sidecar exports spans by OTLP only (otlp, or none)", exporter)
	}
	endpointVar := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	endpoint := get(endpointVar)
	if endpoint == "" {
		endpointVar = "OTEL_EXPORTER_OTLP_ENDPOINT"
		endpoint = get(endpointVar)
	}
	if endpoint != "" {
		if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return s, bad(endpointVar, "%q: want a URL like http://collector:4318", endpoint)
		}
	}
	protoVar := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	proto := get(protoVar)
	if proto == "" {
		protoVar = "OTEL_EXPORTER_OTLP_PROTOCOL"
		proto = get(protoVar)
	}
	switch proto {
	case "":
	case "grpc", "http/protobuf", "http/json":
		s.Protocol = proto
	default:
		return s, bad(protoVar, "%q: want grpc, http/protobuf or http/json", proto)
	}
	s.Export = endpoint != "" && exporter != "none" && !disabled && !legacyOff

	if err := s.sampler(get); err != nil {
		return s, err
	}
	if err := s.legacy(get); err != nil {
		return s, err
	}

	names := []string{"tracecontext", "baggage"}
	if v := get("OTEL_PROPAGATORS"); v != "" {
		names = nil
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	if s.Propagator, err = autoprop.TextMapPropagator(names...); err != nil {
		return s, bad("OTEL_PROPAGATORS", "%v (known: tracecontext, baggage, b3, b3multi, jaeger, xray, ottrace, none)", err)
	}
	return s, nil
}

// sampler reads OTEL_TRACES_SAMPLER and its argument; unset, the legacy JAEGER_SAMPLER_* are mapped
// (see legacy), and failing those the specification's default, parentbased_always_on.
func (s *Settings) sampler(get func(string) string) error {
	name := strings.ToLower(get("OTEL_TRACES_SAMPLER"))
	if name == "" {
		s.Sampler, s.SamplerName = sdktrace.ParentBased(sdktrace.AlwaysSample()), "parentbased_always_on"
		return nil
	}
	ratio := func() (float64, error) {
		arg := get("OTEL_TRACES_SAMPLER_ARG")
		if arg == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return 0, bad("OTEL_TRACES_SAMPLER_ARG", "%q: want a ratio from 0 to 1", arg)
		}
		return r, nil
	}
	switch name {
	case "always_on":
		s.Sampler = sdktrace.AlwaysSample()
	case "always_off":
		s.Sampler = sdktrace.NeverSample()
	case "traceidratio":
		r, err := ratio()
		if err != nil {
			return err
		}
		s.Sampler = sdktrace.TraceIDRatioBased(r)
		name += "(" + strconv.FormatFloat(r, 'g', -1, 64) + ")"
	case "parentbased_always_on":
		s.Sampler = sdktrace.ParentBased(sdktrace.AlwaysSample())
	case "parentbased_always_off":
		s.Sampler = sdktrace.ParentBased(sdktrace.NeverSample())
	case "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return err
		}
		s.Sampler = sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r))
		name += "(" + strconv.FormatFloat(r, 'g', -1, 64) + ")"
	default:
		return bad("OTEL_TRACES_SAMPLER", "%q: want always_on, always_off, traceidratio or their parentbased_ forms", name)
	}
	s.SamplerName = name
	return nil
}

// legacy maps the legacy executor's Jaeger client settings (jaeger-client-go's JAEGER_* variables,
// set in svcOrchSpec.env) where OpenTelemetry has an equivalent the OTEL_* variables did not set, and
// notes those it cannot carry over.
func (s *Settings) legacy(get func(string) string) error {
	if v := get("JAEGER_SERVICE_NAME"); v != "" && get("OTEL_SERVICE_NAME") == "" {
		s.ServiceName = v
	}
	if tags := get("JAEGER_TAGS"); tags != "" {
		for _, kv := range strings.Split(tags, ",") {
			k, v, ok := strings.Cut(kv, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return bad("JAEGER_TAGS", "%q: want key=value[,key=value…]", tags)
			}
			s.Attributes = append(s.Attributes, attribute.String(k, expandTag(strings.TrimSpace(v))))
		}
	}
	if typ := strings.ToLower(get("JAEGER_SAMPLER_TYPE")); typ != "" && get("OTEL_TRACES_SAMPLER") == "" {
		param := get("JAEGER_SAMPLER_PARAM")
		p := 1.0
		if param != "" {
			var err error
			if p, err = strconv.ParseFloat(param, 64); err != nil {
				return bad("JAEGER_SAMPLER_PARAM", "%q is not a number", param)
			}
		}
		switch typ {
		case "const":
			if p != 0 && p != 1 {
				return bad("JAEGER_SAMPLER_PARAM", "%q: the const sampler takes 0 or 1", param)
			}
			if p == 0 {
				s.Sampler, s.SamplerName = sdktrace.ParentBased(sdktrace.NeverSample()), "parentbased_always_off (JAEGER_SAMPLER_TYPE=const, 0)"
			} else {
				s.Sampler, s.SamplerName = sdktrace.ParentBased(sdktrace.AlwaysSample()), "parentbased_always_on (JAEGER_SAMPLER_TYPE=const, 1)"
			}
		case "probabilistic":
			if p < 0 || p > 1 {
				return bad("JAEGER_SAMPLER_PARAM", "%q: the probabilistic sampler takes a ratio from 0 to 1", param)
			}
			s.Sampler = sdktrace.ParentBased(sdktrace.TraceIDRatioBased(p))
			s.SamplerName = "parentbased_traceidratio(" + strconv.FormatFloat(p, 'g', -1, 64) + ") (JAEGER_SAMPLER_TYPE=probabilistic)"
		case "ratelimiting", "remote", "lowerbound":
			s.Notes = append(s.Notes, "JAEGER_SAMPLER_TYPE="+typ+" has no OpenTelemetry equivalent here: "+s.SamplerName+" is used; set OTEL_TRACES_SAMPLER")
		default:
			return bad("JAEGER_SAMPLER_TYPE", "%q: want const, probabilistic, ratelimiting or remote", typ)
		}
	}
	for _, v := range []string{"JAEGER_AGENT_HOST", "JAEGER_AGENT_PORT", "JAEGER_ENDPOINT", "JAEGER_USER", "JAEGER_PASSWORD",
		"JAEGER_SAMPLING_ENDPOINT", "JAEGER_SAMPLER_MANAGER_HOST_PORT", "JAEGER_REPORTER_LOG_SPANS", "JAEGER_REPORTER_MAX_QUEUE_SIZE",
		"JAEGER_REPORTER_FLUSH_INTERVAL", "JAEGER_PROPAGATION", "JAEGER_RPC_METRICS"} {
		if get(v) != "" {
			s.Notes = append(s.Notes, v+" is not used: spans are exported by OTLP (set OTEL_EXPORTER_OTLP_ENDPOINT to a collector, or to Jaeger's own OTLP port, 4318) and propagated by OTEL_PROPAGATORS")
		}
	}
	return nil
}

// expandTag reads a JAEGER_TAGS value as jaeger-client-go does: ${VAR:default} is the variable's value,
// or the default when it is unset.
func expandTag(v string) string {
	if !strings.HasPrefix(v, "${") || !strings.HasSuffix(v, "}") {
		return v
	}
	name, def, _ := strings.Cut(v[2:len(v)-1], ":")
	if e, ok := os.LookupEnv(name); ok {
		return e
	}
	return def
}

func boolVar(get func(string) string, name string) (bool, error) {
	v := get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, bad(name, "%q: want true or false", v)
	}
	return b, nil
}
