package tls

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Protocol is Kafka's security.protocol.
type Protocol string

// The security protocols.
const (
	Plaintext     Protocol = "PLAINTEXT"
	SSL           Protocol = "SSL"
	SASLPlaintext Protocol = "SASL_PLAINTEXT"
	SASLSSL       Protocol = "SASL_SSL"
)

// TLS says whether the protocol encrypts the connection.
func (p Protocol) TLS() bool { return p == SSL || p == SASLSSL }

// SASL says whether the protocol authenticates with SASL.
func (p Protocol) SASL() bool { return p == SASLPlaintext || p == SASLSSL }

// Mechanism is a SASL mechanism.
type Mechanism string

// The SASL mechanisms the sidecar supports.
const (
	Plain       Mechanism = "PLAIN"
	ScramSHA256 Mechanism = "SCRAM-SHA-256"
	ScramSHA512 Mechanism = "SCRAM-SHA-512"
	OAuthBearer Mechanism = "OAUTHBEARER"
)

// Source is where one piece of material comes from: the value of an environment variable, or a file
// named by one.
type Source struct {
	Var   string // the variable that sets it (the _FILE one for a file)
	Value Secret // given as a value
	Path  string // given as a file
}

// IsSet says whether the material was given at all.
func (s Source) IsSet() bool { return s.Value.IsSet() || s.Path != "" }

// IsFile says whether the material is read from a file (and so may change while the sidecar runs).
func (s Source) IsFile() bool { return s.Path != "" }

// Read returns the material. A file that cannot be read is an error naming the variable and the path,
// never the content.
func (s Source) Read() ([]byte, error) {
	if s.Path == "" {
		return []byte(s.Value.Reveal()), nil
	}
	b, err := os.ReadFile(s.Path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, errorf(s.Var, fmt.Sprintf("cannot read %s: %v", s.Path, err))
	}
	return b, nil
}

// Describe says where the material comes from, for logs: the variable, and the path of a file.
func (s Source) Describe() string {
	if s.Path != "" {
		return s.Var + "=" + s.Path
	}
	return s.Var
}

// OAuth is SASL/OAUTHBEARER by OIDC client credentials: librdkafka fetches and refreshes the token
// itself (sasl.oauthbearer.method=oidc).
type OAuth struct {
	ClientID   string
	Secret     Source
	TokenURL   string
	Scope      string
	Extensions string // key=value,key=value
}

// Settings is the security configuration, parsed and checked for consistency; the material it points
// to is read and checked by [Load].
type Settings struct {
	Protocol Protocol

	// TLS, with SSL and SASL_SSL. No CA means the system's trust store.
	CA             Source
	ClientCert     Source // certificate, then optionally its chain
	ClientKey      Source
	KeyPassword    Source
	VerifyHostname bool // the broker's certificate must name the host connected to

	// SASL, with SASL_PLAINTEXT and SASL_SSL.
	Mechanism Mechanism
	Username  string
	Password  Source
	OAuth     OAuth
}

// Files returns the material that is read from files: what a change on disk can rotate.
func (s Settings) Files() []Source {
	var out []Source
	for _, src := range []Source{s.CA, s.ClientCert, s.ClientKey, s.KeyPassword, s.Password, s.OAuth.Secret} {
		if src.IsFile() {
			out = append(out, src)
		}
	}
	return out
}

// Parse checks the security variables for consistency: a protocol Kafka knows, TLS material only with a
// TLS protocol, SASL settings only with a SASL protocol and complete for the mechanism, each piece given
// as a value or a file but not both. It reads no file.
func Parse(env Env) (Settings, error) {
	s := Settings{Protocol: Protocol(strings.ToUpper(strings.TrimSpace(env.Protocol)))}
	switch s.Protocol {
	case Plaintext, SSL, SASLPlaintext, SASLSSL:
	case "":
		s.Protocol = Plaintext
	default:
		return s, errorf(VarProtocol, fmt.Sprintf("%q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", env.Protocol))
	}

	var err error
	pick := func(valueVar, value, fileVar, file string) Source {
		if err != nil {
			return Source{}
		}
		var src Source
		src, err = source(valueVar, value, fileVar, file)
		return src
	}
	s.CA = pick(VarCACert, env.CACert, VarCACertFile, env.CACertFile)
	s.ClientCert = pick(VarClientCert, env.ClientCert, VarClientCertFile, env.ClientCertFile)
	s.ClientKey = pick(VarClientKey, env.ClientKey, VarClientKeyFile, env.ClientKeyFile)
	s.KeyPassword = pick(VarClientKeyPass, env.ClientKeyPass, VarClientKeyPassFile, env.ClientKeyPassFile)
	s.Password = pick(VarSASLPassword, env.SASLPassword, VarSASLPasswordFile, env.SASLPasswordFile)
	s.OAuth.Secret = pick(VarOAuthSecret, env.OAuthSecret, VarOAuthSecretFile, env.OAuthSecretFile)
	if err != nil {
		return s, err
	}

	verify := strings.TrimSpace(env.VerifyHostname)
	s.VerifyHostname = true
	if verify != "" {
		v, perr := strconv.ParseBool(verify)
		if perr != nil {
			return s, errorf(VarVerifyHostname, fmt.Sprintf("%q is not true or false", env.VerifyHostname))
		}
		s.VerifyHostname = v
	}

	if err := s.checkTLS(); err != nil {
		return s, err
	}
	if err := s.checkSASL(env); err != nil {
		return s, err
	}
	return s, nil
}

// SourceOf is where a piece of material comes from, given as a value in one variable or a file named
// by another: both set is an error naming them, neither is an unset Source.
func SourceOf(valueVar, value, fileVar, file string) (Source, error) {
	return source(valueVar, value, fileVar, file)
}

func source(valueVar, value, fileVar, file string) (Source, error) {
	hasValue, hasFile := strings.TrimSpace(value) != "", strings.TrimSpace(file) != ""
	switch {
	case hasValue && hasFile:
		return Source{}, errorf(valueVar, "set, and so is "+fileVar+": give the value or the file, not both")
	case hasValue:
		return Source{Var: valueVar, Value: NewSecret(value)}, nil
	case hasFile:
		return Source{Var: fileVar, Path: strings.TrimSpace(file)}, nil
	}
	return Source{Var: valueVar}, nil
}

func (s *Settings) checkTLS() error {
	if !s.Protocol.TLS() {
		for _, src := range []Source{s.CA, s.ClientCert, s.ClientKey, s.KeyPassword} {
			if src.IsSet() {
				return errorf(src.Var, fmt.Sprintf("set, but %s is %s, which does not use TLS: set it to SSL or SASL_SSL, or remove %s",
					VarProtocol, s.Protocol, src.Var))
			}
		}
		return nil
	}
	switch {
	case s.ClientCert.IsSet() && !s.ClientKey.IsSet():
		return errorf(VarClientKey, "required with "+s.ClientCert.Var+": a client certificate needs its private key (or "+VarClientKeyFile+")")
	case s.ClientKey.IsSet() && !s.ClientCert.IsSet():
		return errorf(VarClientCert, "required with "+s.ClientKey.Var+": a private key needs its client certificate (or "+VarClientCertFile+")")
	case s.KeyPassword.IsSet() && !s.ClientKey.IsSet():
		return errorf(s.KeyPassword.Var, "set, but there is no client key ("+VarClientKey+" or "+VarClientKeyFile+")")
	}
	return nil
}

func (s *Settings) checkSASL(env Env) error {
	sasl := []struct{ name, value string }{
		{VarSASLMechanism, env.SASLMechanism}, {VarSASLUsername, env.SASLUsername},
		{s.Password.Var, presence(s.Password)},
		{VarOAuthClientID, env.OAuthClientID}, {s.OAuth.Secret.Var, presence(s.OAuth.Secret)},
		{VarOAuthTokenURL, env.OAuthTokenURL}, {VarOAuthScope, env.OAuthScope}, {VarOAuthExtensions, env.OAuthExtensions},
	}
	if !s.Protocol.SASL() {
		for _, v := range sasl {
			if strings.TrimSpace(v.value) != "" {
				return errorf(v.name, fmt.Sprintf("set, but %s is %s, which does not use SASL: set it to SASL_PLAINTEXT or SASL_SSL, or remove %s",
					VarProtocol, s.Protocol, v.name))
			}
		}
		return nil
	}
	mech := strings.ToUpper(strings.TrimSpace(env.SASLMechanism))
	switch Mechanism(mech) {
	case Plain, ScramSHA256, ScramSHA512, OAuthBearer:
		s.Mechanism = Mechanism(mech)
	case "":
		return errorf(VarSASLMechanism, fmt.Sprintf("required with %s=%s: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", VarProtocol, s.Protocol))
	default:
		return errorf(VarSASLMechanism, fmt.Sprintf("%q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", env.SASLMechanism))
	}

	oauthVars := sasl[3:]
	if s.Mechanism != OAuthBearer {
		s.Username = strings.TrimSpace(env.SASLUsername)
		if s.Username == "" {
			return errorf(VarSASLUsername, "required with "+VarSASLMechanism+"="+mech)
		}
		if !s.Password.IsSet() {
			return errorf(VarSASLPassword, "required with "+VarSASLMechanism+"="+mech+" (or "+VarSASLPasswordFile+" for a mounted secret)")
		}
		for _, v := range oauthVars {
			if strings.TrimSpace(v.value) != "" {
				return errorf(v.name, "set, but "+VarSASLMechanism+" is "+mech+", not OAUTHBEARER")
			}
		}
		return nil
	}

	for _, v := range sasl[1:3] {
		if strings.TrimSpace(v.value) != "" {
			return errorf(v.name, "set, but "+VarSASLMechanism+" is OAUTHBEARER, which authenticates with "+VarOAuthClientID+" and its secret")
		}
	}
	s.OAuth.ClientID = strings.TrimSpace(env.OAuthClientID)
	s.OAuth.TokenURL = strings.TrimSpace(env.OAuthTokenURL)
	s.OAuth.Scope = strings.TrimSpace(env.OAuthScope)
	s.OAuth.Extensions = strings.TrimSpace(env.OAuthExtensions)
	switch {
	case s.OAuth.ClientID == "":
		return errorf(VarOAuthClientID, "required with "+VarSASLMechanism+"=OAUTHBEARER")
	case !s.OAuth.Secret.IsSet():
		return errorf(VarOAuthSecret, "required with "+VarSASLMechanism+"=OAUTHBEARER (or "+VarOAuthSecretFile+" for a mounted secret)")
	case s.OAuth.TokenURL == "":
		return errorf(VarOAuthTokenURL, "required with "+VarSASLMechanism+"=OAUTHBEARER: the identity provider's token endpoint")
	}
	u, err := url.Parse(s.OAuth.TokenURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errorf(VarOAuthTokenURL, "not an http(s) URL")
	}
	if u.User != nil {
		return errorf(VarOAuthTokenURL, "must not carry credentials: the client secret goes in "+VarOAuthSecret)
	}
	if s.OAuth.Extensions != "" {
		for _, kv := range strings.Split(s.OAuth.Extensions, ",") {
			k, _, ok := strings.Cut(kv, "=")
			if !ok || strings.TrimSpace(k) == "" {
				return errorf(VarOAuthExtensions, "want key=value pairs separated by commas, like logicalCluster=lkc-1,identityPoolId=pool-2")
			}
		}
	}
	return nil
}

// presence stands for a source in the "is anything set" checks without revealing it.
func presence(s Source) string {
	if s.IsSet() {
		return "set"
	}
	return ""
}
