package keda

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/seldon-kafka/sidecar/sdep"
)

// The sidecar's environment variables (executor/config.go, and the security settings being added to it).
const (
	envBroker      = "KAFKA_BROKER"
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
	Var     string // the variable; "" when the value comes from a rule
	Value   string // the value, when known: after Kubernetes' $(VAR) expansion
	Written string // the inline value as written, when expansion changed it
	Known   bool
	From    string // where a value that is not known here comes from, e.g. `configMapKeyRef kafka/brokers`
	Origin  string // how the value was made, when not from a variable
}

func (s setting) describe() string {
	switch {
	case s.Known && s.Var != "" && s.Written != "":
		return fmt.Sprintf("%q (%s, written %q)", s.Value, s.Var, s.Written)
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
	env     map[string]sdep.ResolvedEnv

	// keyPassword says whether KAFKA_SSL_CLIENT_KEY_PASS becomes keyPassword; set by the generator from
	// Options.KeyPassword.
	keyPassword KeyPasswordMode
}

// lookup returns the variable's setting, its value trimmed as the sidecar trims it, and whether it is
// set at all.
func (s *sidecar) lookup(name string) (setting, bool) {
	st, set := s.lookupRaw(name)
	st.Value = strings.TrimSpace(st.Value)
	return st, set
}

// lookupRaw is lookup without trimming, for the variables the sidecar reads as they are.
func (s *sidecar) lookupRaw(name string) (setting, bool) {
	v, ok := s.env[name]
	switch {
	case !ok:
		return setting{Var: name}, false
	case !v.Known:
		return setting{Var: name, From: v.Needs}, true
	case v.Expanded != v.Value:
		return setting{Var: name, Value: v.Expanded, Written: v.Value, Known: true}, true
	}
	return setting{Var: name, Value: v.Value, Known: true}, true
}

// literalRefs reports the $(VAR) references of the variables the trigger follows that Kubernetes leaves
// as written.
func (s *sidecar) literalRefs(where string, ds *diags) {
	for _, name := range []string{envBroker, sdep.EnvInputTopic, sdep.EnvGroupID, sdep.EnvTopicNaming, sdep.EnvTopicPrefix, sdep.EnvGroupPrefix, envOffsetReset, envProtocol, envSASLMech} {
		v, ok := s.env[name]
		if !ok {
			continue
		}
		for _, ref := range v.Literal {
			ds.warnf(where, "%s: no variable %s comes before it in svcOrchSpec.env, so Kubernetes leaves $(%s) as written (%q) unless %s is one it adds for a Service (enableServiceLinks), which KEDA does not see",
				name, ref, ref, v.Value, ref)
		}
	}
}

// readSidecar works out the sidecar's settings from the predictor's svcOrchSpec.env the way the sidecar
// reads them at start (executor/config.go), reporting what would stop it and what KEDA cannot follow.
func readSidecar(d sdep.SeldonDeployment, p sdep.PredictorSpec, namespace, where string, ds *diags) *sidecar {
	s := &sidecar{env: sdep.ResolveEnv(p.SvcOrchSpec.Env)}
	where += ": svcOrchSpec.env"
	s.literalRefs(where, ds)
	ok := true
	if st, set := s.lookup(envBroker); !set || (st.Known && st.Value == "") {
		ds.errorf(where, "%s is not set: the sidecar will not start", envBroker)
		ok = false
	} else {
		s.Brokers = st
	}
	// The topic and the group come from the function the sidecar names them with.
	pk, err := sdep.KafkaOf(s.env, d.Metadata.Name, namespace, p.Name)
	if err != nil {
		// A naming variable from a Secret or ConfigMap is not known here; anything else the sidecar refuses.
		notHere := false
		if ne := (*sdep.NameError)(nil); errors.As(err, &ne) {
			v, set := s.env[ne.Var]
			notHere = set && !v.Known
		}
		if notHere {
			ds.errorf(where, "%v", err)
		} else {
			ds.errorf(where, "%v: the sidecar will not start", err)
		}
		ok = false
	} else {
		s.Topic = s.named(pk, sdep.Input)
		s.Group = s.named(pk, sdep.Group)
	}

	s.Reset = setting{Var: envOffsetReset, Value: defaultOffsetReset, Known: true}
	if st, set := s.lookupRaw(envOffsetReset); set {
		s.Reset = st
		if st.Known {
			// The sidecar lower-cases the value and takes earliest or latest only: it does not trim it, and
			// an empty value set is not its default (executor/config.go, build).
			s.Reset.Value = strings.ToLower(st.Value)
			if s.Reset.Value != "earliest" && s.Reset.Value != "latest" {
				hint := ""
				if st.Value == "" {
					hint = "; leave it out for the sidecar's default, earliest"
				} else if t := strings.ToLower(strings.TrimSpace(st.Value)); t == "earliest" || t == "latest" {
					hint = "; remove the spaces"
				}
				ds.errorf(where, "%s is %q: the sidecar refuses it and will not start (it takes earliest or latest, in any case, as written)%s", envOffsetReset, st.Value, hint)
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

// named is the setting of a name the sidecar reads from its variable or makes itself (sdep.KafkaOf).
func (s *sidecar) named(pk sdep.PredictorKafka, r sdep.Role) setting {
	if !pk.Derived[r] {
		st, _ := s.lookup(r.Var())
		if st.Known {
			st.Value = pk.Names[r]
		}
		return st
	}
	origin := "the sidecar's group <predictor>.<sdep>.<namespace>"
	switch {
	case r == sdep.Group && pk.Naming.GroupPrefix != "":
		origin = "the sidecar's group " + sdep.EnvGroupPrefix + "-<predictor>.<sdep>.<namespace>"
	case r != sdep.Group:
		origin = "Core 2's name {prefix}.{namespace}.model.{sdep}.inputs, " + sdep.EnvTopicNaming + "=" + sdep.NamingCore2
	}
	return setting{Value: pk.Names[r], Known: true, Origin: origin}
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
					name, refOrValue(f.EnvVar), param, name)
			}
			return false
		}
		switch {
		case v.ValueFrom != nil && v.ValueFrom.SecretKeyRef != nil:
			out = append(out, authParam{Param: param, Secret: v.ValueFrom.SecretKeyRef})
		case v.ValueFrom != nil && v.ValueFrom.ConfigMapKeyRef != nil:
			out = append(out, authParam{Param: param, ConfigMap: v.ValueFrom.ConfigMapKeyRef})
		case v.ValueFrom != nil:
			ds.errorf(where, "%s comes from %s: the trigger gets no %s; give it from a Secret, or give the trigger an authenticationRef", name, v.Source(), param)
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
		if s.keepKeyPassword(where, ds) {
			ref("keyPassword", envKeyPass, false)
		}
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

// keepKeyPassword says whether KAFKA_SSL_CLIENT_KEY_PASS becomes the TriggerAuthentication's keyPassword.
//
// Given any keyPassword, KEDA v2.21's kafka and apache-kafka scalers read the key only as an encrypted
// PKCS#8 key (pkg/util/tls_config.go: NewTLSConfigWithPassword, decryptClientKey). A Strimzi KafkaUser
// Secret holds an unencrypted PKCS#8 user.key and, in user.password, the password of user.p12: mapped,
// it makes KEDA fail with "error decrypt X509Key: pkcs8: only PKCS #5 v2.0 supported", while the sidecar
// only warns that the password is not used.
func (s *sidecar) keepKeyPassword(where string, ds *diags) bool {
	if !s.present(envKeyPass) {
		return false
	}
	if s.keyPassword == KeyPasswordDrop {
		ds.warnf(where, "%s: keyPassword is left out (--key-password=drop): KEDA then reads %s as an unencrypted key, and cannot use an encrypted one", envKeyPass, envClientKey)
		return false
	}
	if _, set := s.env[envKeyPass]; !set {
		return true // only the _FILE form, which ref reports
	}
	secret, strimzi := s.strimziKeyPair()
	switch {
	case strimzi && s.keyPassword == KeyPasswordKeep:
		ds.warnf(where, "%s: keyPassword is kept (--key-password=keep): KEDA decrypts Secret %s key %s with it as an encrypted PKCS#8 key, and fails on the unencrypted key a Strimzi KafkaUser Secret holds", envKeyPass, secret, strimziKeyKey)
		return true
	case strimzi:
		ds.warnf(where, "%s: keyPassword is left out: %s. --key-password=keep maps it anyway", envKeyPass, strimziWhy(secret))
		return false
	}
	return true
}

// strimziKeyPair reports whether the sidecar reads its key and key password from the user.key and
// user.password keys of one Secret, as a Strimzi KafkaUser Secret has them, and names the Secret.
func (s *sidecar) strimziKeyPair() (secret string, ok bool) {
	key, pass := s.env[envClientKey].ValueFrom, s.env[envKeyPass].ValueFrom
	if key == nil || pass == nil || key.SecretKeyRef == nil || pass.SecretKeyRef == nil {
		return "", false
	}
	k, p := key.SecretKeyRef, pass.SecretKeyRef
	return k.Name, k.Key == strimziKeyKey && p.Key == strimziPassKey && k.Name == p.Name
}

// strimziWhy says why KEDA must not get a Strimzi KafkaUser's user.password as keyPassword.
func strimziWhy(secret string) string {
	return fmt.Sprintf("Secret %s keys %s and %s are a Strimzi KafkaUser's, whose %s is an unencrypted key and whose %s is the password of user.p12; given a keyPassword, KEDA v2.21 reads the key only as encrypted PKCS#8 and fails (error decrypt X509Key: pkcs8: only PKCS #5 v2.0 supported)",
		secret, strimziKeyKey, strimziPassKey, strimziKeyKey, strimziPassKey)
}

// The keys of a Strimzi KafkaUser Secret (TLS authentication): the client key, unencrypted PKCS#8, and the
// password of the PKCS#12 keystore user.p12.
const (
	strimziKeyKey  = "user.key"
	strimziPassKey = "user.password"
)

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
	return v.Source()
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
