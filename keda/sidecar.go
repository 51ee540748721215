package keda

import (
	"fmt"
	"slices"
	"strings"

	"github.com/seldon-kafka/sidecar/sdep"
)

// The sidecar's environment variables (executor/config.go, and the security settings being added to it).
const (
	envBroker      = "KAFKA_BROKER"
	envInputTopic  = "KAFKA_INPUT_TOPIC"
	envOutputTopic = "KAFKA_OUTPUT_TOPIC"
	envGroupID     = "KAFKA_GROUP_ID"
	envOffsetReset = "KAFKA_AUTO_OFFSET_RESET"
	envProtocol    = "KAFKA_SECURITY_PROTOCOL"
	envSASLMech    = "KAFKA_SASL_MECHANISM"
	envSASLUser    = "KAFKA_SASL_USERNAME"
	envSASLPass    = "KAFKA_SASL_PASSWORD"
	envCACert      = "KAFKA_SSL_CA_CERT"
	envClientCert  = "KAFKA_SSL_CLIENT_CERT"
	envClientKey   = "KAFKA_SSL_CLIENT_KEY"
	envKeyPass     = "KAFKA_SSL_CLIENT_KEY_PASS"
	envVerifyHost  = "KAFKA_SSL_VERIFY_HOSTNAME"
	envOAuthID     = "KAFKA_SASL_OAUTHBEARER_CLIENT_ID"
	envOAuthSecret = "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET"
	envOAuthURL    = "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL"
	envOAuthScope  = "KAFKA_SASL_OAUTHBEARER_SCOPE"
	envOAuthExt    = "KAFKA_SASL_OAUTHBEARER_EXTENSIONS"

	defaultOffsetReset = "earliest" // the sidecar's default; KEDA's is latest
)

// setting is one value the sidecar reads: inline in svcOrchSpec.env, from a Secret or ConfigMap (which
// KEDA can read through <field>FromEnv on the sidecar container), or made by a rule.
type setting struct {
	Var    string // the variable; "" when the value comes from a rule
	Value  string // the value, when known
	Known  bool
	From   string // where a value that is not inline comes from, e.g. `configMapKeyRef kafka/brokers`
	Origin string // how the value was made, when not from a variable
}

func (s setting) describe() string {
	switch {
	case s.Known && s.Var != "":
		return fmt.Sprintf("%q (%s)", s.Value, s.Var)
	case s.Known:
		return fmt.Sprintf("%q (%s)", s.Value, s.Origin)
	}
	return fmt.Sprintf("%s from %s", s.Var, s.From)
}

// sidecar is what the sidecar of one predictor will consume and how it connects.
type sidecar struct {
	Brokers setting
	Topic   setting
	Group   setting
	Reset   setting // earliest or latest
	TLS     bool
	SASL    string // KEDA's name for the mechanism, "" without SASL
	env     map[string]sdep.EnvVar
}

func envMap(vars []sdep.EnvVar) map[string]sdep.EnvVar {
	m := make(map[string]sdep.EnvVar, len(vars))
	for _, v := range vars {
		m[v.Name] = v // Kubernetes takes the last of a repeated name
	}
	return m
}

func refString(v sdep.EnvVar) string {
	switch {
	case v.ValueFrom == nil:
		return "an inline value"
	case v.ValueFrom.SecretKeyRef != nil:
		return fmt.Sprintf("secretKeyRef %s/%s", v.ValueFrom.SecretKeyRef.Name, v.ValueFrom.SecretKeyRef.Key)
	case v.ValueFrom.ConfigMapKeyRef != nil:
		return fmt.Sprintf("configMapKeyRef %s/%s", v.ValueFrom.ConfigMapKeyRef.Name, v.ValueFrom.ConfigMapKeyRef.Key)
	}
	return "a valueFrom this tool cannot follow"
}

// lookup returns the variable's setting and whether it is set at all.
func (s *sidecar) lookup(name string) (setting, bool) {
	v, ok := s.env[name]
	if !ok {
		return setting{Var: name}, false
	}
	if v.ValueFrom == nil {
		return setting{Var: name, Value: strings.TrimSpace(v.Value), Known: true}, true
	}
	return setting{Var: name, From: refString(v)}, true
}

// readSidecar works out the sidecar's settings from the predictor's svcOrchSpec.env the way the sidecar
// reads them at start (executor/config.go), reporting what would stop it and what KEDA cannot follow.
func readSidecar(d sdep.SeldonDeployment, p sdep.PredictorSpec, namespace, where string, ds *diags) *sidecar {
	s := &sidecar{env: envMap(p.SvcOrchSpec.Env)}
	where += ": svcOrchSpec.env"
	ok := true
	for _, req := range []struct {
		name string
		dst  *setting
	}{{envBroker, &s.Brokers}, {envInputTopic, &s.Topic}, {envOutputTopic, nil}} {
		st, set := s.lookup(req.name)
		if !set || (st.Known && st.Value == "") {
			ds.errorf(where, "%s is not set: the sidecar will not start", req.name)
			ok = false
			continue
		}
		if req.dst != nil {
			*req.dst = st
		}
	}

	if st, set := s.lookup(envGroupID); set && (!st.Known || st.Value != "") {
		s.Group = st
	} else {
		s.Group = setting{
			Value: p.Name + "." + d.Metadata.Name + "." + namespace, Known: true,
			Origin: "the sidecar's group <predictor>.<sdep>.<namespace>",
		}
	}

	s.Reset = setting{Var: envOffsetReset, Value: defaultOffsetReset, Known: true}
	if st, set := s.lookup(envOffsetReset); set {
		s.Reset = st
		if st.Known {
			s.Reset.Value = strings.ToLower(st.Value)
			if s.Reset.Value == "" {
				s.Reset.Value = defaultOffsetReset
			}
			if s.Reset.Value != "earliest" && s.Reset.Value != "latest" {
				ds.errorf(where, "%s is %q: the sidecar takes earliest or latest", envOffsetReset, st.Value)
				ok = false
			}
		}
	}

	protocol := "PLAINTEXT"
	if st, set := s.lookup(envProtocol); set {
		if !st.Known {
			ds.errorf(where, "%s comes from %s: the TLS and SASL settings of the trigger cannot be worked out; set it inline", envProtocol, st.From)
			ok = false
		} else if st.Value != "" {
			protocol = strings.ToUpper(st.Value)
		}
	}
	switch protocol {
	case "PLAINTEXT":
	case "SSL":
		s.TLS = true
	case "SASL_PLAINTEXT", "SASL_SSL":
		s.TLS = protocol == "SASL_SSL"
		mech, set := s.lookup(envSASLMech)
		switch {
		case !set || (mech.Known && mech.Value == ""):
			ds.errorf(where, "%s is %s but %s is not set: say which mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) so the trigger uses the same", envProtocol, protocol, envSASLMech)
			ok = false
		case !mech.Known:
			ds.errorf(where, "%s comes from %s: set it inline so the trigger's sasl can follow it", envSASLMech, mech.From)
			ok = false
		default:
			switch strings.ToUpper(mech.Value) {
			case "PLAIN":
				s.SASL = "plaintext"
			case "SCRAM-SHA-256":
				s.SASL = "scram_sha256"
			case "SCRAM-SHA-512":
				s.SASL = "scram_sha512"
			case "OAUTHBEARER":
				s.SASL = "oauthbearer"
			default:
				ds.errorf(where, "%s is %q: the sidecar takes PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", envSASLMech, mech.Value)
				ok = false
			}
		}
	default:
		ds.errorf(where, "%s is %q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", envProtocol, protocol)
		ok = false
	}
	if !ok {
		return nil
	}
	return s
}

// authParam is one parameter of a TriggerAuthentication and where KEDA reads it.
type authParam struct {
	Param     string
	Secret    *sdep.KeySelector // secretTargetRef
	ConfigMap *sdep.KeySelector // configMapTargetRef
	EnvVar    string            // env on the sidecar container
}

// authParams works out the TriggerAuthentication parameters for the sidecar's TLS and SASL settings from
// the same Secret and ConfigMap references the sidecar reads. A value written inline is never copied
// into a manifest, and a *_FILE path is not something KEDA can open: both are reported instead.
func (s *sidecar) authParams(where string, ds *diags) []authParam {
	where += ": svcOrchSpec.env"
	var out []authParam
	ref := func(param, name string, inlineOK bool) bool {
		v, set := s.env[name]
		if !set {
			if f, fset := s.env[name+"_FILE"]; fset {
				ds.errorf(where, "%s_FILE is a path inside the sidecar's pod (%s), which KEDA cannot read: the trigger gets no %s; give %s from a Secret (valueFrom.secretKeyRef) or give the trigger an authenticationRef",
					name, refOrValue(f), param, name)
			}
			return false
		}
		switch {
		case v.ValueFrom != nil && v.ValueFrom.SecretKeyRef != nil:
			out = append(out, authParam{Param: param, Secret: v.ValueFrom.SecretKeyRef})
		case v.ValueFrom != nil && v.ValueFrom.ConfigMapKeyRef != nil:
			out = append(out, authParam{Param: param, ConfigMap: v.ValueFrom.ConfigMapKeyRef})
		case v.ValueFrom != nil:
			ds.errorf(where, "%s comes from %s: the trigger gets no %s; give it from a Secret, or give the trigger an authenticationRef", name, refString(v), param)
			return false
		case inlineOK:
			// Not a secret: KEDA reads it from the sidecar container's own environment.
			out = append(out, authParam{Param: param, EnvVar: name})
		default:
			ds.errorf(where, "%s has its value inline, and a secret is not copied into a manifest: the trigger would get no %s; put it in a Secret and use valueFrom.secretKeyRef (the sidecar reads it the same way), or give the trigger an authenticationRef",
				name, param)
			return false
		}
		return true
	}
	if s.TLS {
		ref("ca", envCACert, false)
		cert := ref("cert", envClientCert, false)
		key := ref("key", envClientKey, false)
		if cert != key && !s.present(map[bool]string{true: envClientKey, false: envClientCert}[cert]) {
			ds.errorf(where, "KEDA needs both cert and key for client TLS, and only the %s can be given (the sidecar's %s and %s)", map[bool]string{true: "cert", false: "key"}[cert], envClientCert, envClientKey)
		}
		ref("keyPassword", envKeyPass, false)
	}
	if s.TLS {
		if v, ok := s.env[envVerifyHost]; ok && v.ValueFrom == nil && strings.EqualFold(strings.TrimSpace(v.Value), "false") {
			ds.warnf(where, "%s is false: KEDA has no such setting (its unsafeSsl skips every certificate check, and is left off), so it checks the broker's host name", envVerifyHost)
		}
	}
	if s.SASL == "oauthbearer" {
		// KEDA's kafka scaler with its default bearer token provider: client credentials at a token
		// endpoint, as the sidecar's librdkafka OIDC method.
		for _, c := range []struct {
			param, name       string
			inlineOK, require bool
		}{
			{"username", envOAuthID, true, true}, {"password", envOAuthSecret, false, true},
			{"oauthTokenEndpointUri", envOAuthURL, true, true}, {"scopes", envOAuthScope, true, false},
			{"oauthExtensions", envOAuthExt, true, false},
		} {
			if !ref(c.param, c.name, c.inlineOK) && c.require && !s.present(c.name) {
				ds.errorf(where, "%s is not set, and KEDA's SASL OAUTHBEARER needs %s", c.name, c.param)
			}
		}
	}
	if s.SASL == "plaintext" || s.SASL == "scram_sha256" || s.SASL == "scram_sha512" {
		for _, c := range []struct {
			param, name string
			inlineOK    bool
		}{{"username", envSASLUser, true}, {"password", envSASLPass, false}} {
			if !ref(c.param, c.name, c.inlineOK) && !s.present(c.name) {
				ds.errorf(where, "%s is not set, and KEDA's SASL needs a %s", c.name, c.param)
			}
		}
	}
	return out
}

// present reports whether the variable or its _FILE form is set.
func (s *sidecar) present(name string) bool {
	_, v := s.env[name]
	_, f := s.env[name+"_FILE"]
	return v || f
}

func refOrValue(v sdep.EnvVar) string {
	if v.ValueFrom == nil {
		return fmt.Sprintf("%q", v.Value)
	}
	return refString(v)
}

// sameServers compares two bootstrap server lists as sets.
func sameServers(a, b string) bool {
	split := func(s string) []string {
		var out []string
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return slices.Equal(split(a), split(b))
}
