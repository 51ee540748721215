package tls_test

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/internal/testkit"
	"github.com/seldon-kafka/sidecar/tls"
)

const (
	password    = "hunter2-sasl-secret"
	keyPassword = "key-pass-Zq81x"
)

func wantVar(t *testing.T, err error, name string, secrets ...string) {
	t.Helper()
	var te *tls.Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T), want a *tls.Error naming %s", err, err, name)
	}
	if te.Var != name {
		t.Fatalf("error names %s (%q), want %s", te.Var, te.Msg, name)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("error %q reveals a secret", err)
		}
	}
}

func TestParseRefusesInconsistentSettingsNamingTheVariable(t *testing.T) {
	cases := []struct {
		name string
		env  tls.Env
		want string
	}{
		{"unknown protocol", tls.Env{Protocol: "TLS"}, tls.VarProtocol},
		{"CA with PLAINTEXT", tls.Env{Protocol: "plaintext", CACert: "x"}, tls.VarCACert},
		{"client key file with SASL_PLAINTEXT", tls.Env{Protocol: "SASL_PLAINTEXT", ClientKeyFile: "/k", SASLMechanism: "PLAIN", SASLUsername: "u", SASLPassword: password}, tls.VarClientKeyFile},
		{"CA as value and file", tls.Env{Protocol: "SSL", CACert: "x", CACertFile: "/ca"}, tls.VarCACert},
		{"password as value and file", tls.Env{Protocol: "SASL_SSL", SASLMechanism: "PLAIN", SASLUsername: "u", SASLPassword: password, SASLPasswordFile: "/p"}, tls.VarSASLPassword},
		{"certificate without key", tls.Env{Protocol: "SSL", ClientCertFile: "/c"}, tls.VarClientKey},
		{"key without certificate", tls.Env{Protocol: "SSL", ClientKey: "k"}, tls.VarClientCert},
		{"key password without key", tls.Env{Protocol: "SSL", ClientKeyPass: keyPassword}, tls.VarClientKeyPass},
		{"hostname verification not a bool", tls.Env{Protocol: "SSL", VerifyHostname: "sometimes"}, tls.VarVerifyHostname},
		{"SASL without mechanism", tls.Env{Protocol: "SASL_SSL", SASLUsername: "u", SASLPassword: password}, tls.VarSASLMechanism},
		{"GSSAPI", tls.Env{Protocol: "SASL_SSL", SASLMechanism: "GSSAPI"}, tls.VarSASLMechanism},
		{"PLAIN without username", tls.Env{Protocol: "SASL_SSL", SASLMechanism: "PLAIN", SASLPassword: password}, tls.VarSASLUsername},
		{"SCRAM without password", tls.Env{Protocol: "SASL_PLAINTEXT", SASLMechanism: "SCRAM-SHA-512", SASLUsername: "u"}, tls.VarSASLPassword},
		{"SASL username with SSL", tls.Env{Protocol: "SSL", SASLUsername: "u"}, tls.VarSASLUsername},
		{"SASL password with PLAINTEXT", tls.Env{SASLPassword: password}, tls.VarSASLPassword},
		{"OAuth client id with SCRAM", tls.Env{Protocol: "SASL_SSL", SASLMechanism: "SCRAM-SHA-256", SASLUsername: "u", SASLPassword: password, OAuthClientID: "c"}, tls.VarOAuthClientID},
		{"OAUTHBEARER without token endpoint", tls.Env{Protocol: "SASL_SSL", SASLMechanism: "OAUTHBEARER", OAuthClientID: "c", OAuthSecret: password}, tls.VarOAuthTokenURL},
		{"OAUTHBEARER without secret", tls.Env{Protocol: "SASL_SSL", SASLMechanism: "OAUTHBEARER", OAuthClientID: "c", OAuthTokenURL: "https://idp/token"}, tls.VarOAuthSecret},
		{"OAUTHBEARER with a username", tls.Env{Protocol: "SASL_SSL", SASLMechanism: "oauthbearer", SASLUsername: "u", OAuthClientID: "c", OAuthSecret: password, OAuthTokenURL: "https://idp/token"}, tls.VarSASLUsername},
		{"OAUTHBEARER token endpoint not a URL", tls.Env{Protocol: "SASL_SSL", SASLMechanism: "OAUTHBEARER", OAuthClientID: "c", OAuthSecret: password, OAuthTokenURL: "idp/token"}, tls.VarOAuthTokenURL},
		{"OAUTHBEARER token endpoint with credentials", tls.Env{Protocol: "SASL_SSL", SASLMechanism: "OAUTHBEARER", OAuthClientID: "c", OAuthSecret: password, OAuthTokenURL: "https://c:" + password + "@idp/token"}, tls.VarOAuthTokenURL},
		{"OAUTHBEARER extensions malformed", tls.Env{Protocol: "SASL_SSL", SASLMechanism: "OAUTHBEARER", OAuthClientID: "c", OAuthSecret: password, OAuthTokenURL: "https://idp/token", OAuthExtensions: "logicalCluster"}, tls.VarOAuthExtensions},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tls.Parse(tc.env)
			wantVar(t, err, tc.want, password, keyPassword)
		})
	}
}

func TestParseAcceptsEveryProtocolInAnyCase(t *testing.T) {
	cases := []struct {
		env  tls.Env
		want tls.Protocol
	}{
		{tls.Env{}, tls.Plaintext},
		{tls.Env{Protocol: " plaintext "}, tls.Plaintext},
		{tls.Env{Protocol: "ssl"}, tls.SSL},
		{tls.Env{Protocol: "Sasl_Plaintext", SASLMechanism: "plain", SASLUsername: "u", SASLPassword: password}, tls.SASLPlaintext},
		{tls.Env{Protocol: "sasl_ssl", SASLMechanism: "scram-sha-512", SASLUsername: "u", SASLPasswordFile: "/p"}, tls.SASLSSL},
	}
	for _, tc := range cases {
		s, err := tls.Parse(tc.env)
		if err != nil {
			t.Fatalf("%+v: %v", tc.env.Protocol, err)
		}
		if s.Protocol != tc.want {
			t.Errorf("%q parsed as %s, want %s", tc.env.Protocol, s.Protocol, tc.want)
		}
		if !s.VerifyHostname {
			t.Errorf("%q: hostname verification off by default", tc.env.Protocol)
		}
	}
}

// material is a CA, a client certificate and key, written to files in a temporary directory.
type material struct {
	dir                 string
	ca                  *testkit.CA
	certPEM, keyPEM     []byte
	caFile, certFile    string
	keyFile, passFile   string
	saslFile, otherCert string
}

func newMaterial(t *testing.T) *material {
	t.Helper()
	m := &material{dir: t.TempDir(), ca: testkit.NewCA(t, "test CA")}
	m.certPEM, m.keyPEM = m.ca.Issue(t, "sidecar", testkit.CertOptions{})
	m.caFile = m.write(t, "ca.crt", m.ca.CertPEM)
	m.certFile = m.write(t, "tls.crt", m.certPEM)
	m.keyFile = m.write(t, "tls.key", m.keyPEM)
	m.passFile = m.write(t, "key.pass", []byte(keyPassword+"\n"))
	m.saslFile = m.write(t, "password", []byte(password+"\n"))
	return m
}

func (m *material) write(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(m.dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, env tls.Env, now time.Time) (*tls.Material, error) {
	t.Helper()
	s, err := tls.Parse(env)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return tls.Load(s, now)
}

func TestLoadBuildsLibrdkafkaPropertiesForEachKindOfSecurity(t *testing.T) {
	m := newMaterial(t)
	encPKCS8 := m.write(t, "enc-pkcs8.key", testkit.EncryptKeyPKCS8(t, m.keyPEM, keyPassword, "aes-256-cbc"))
	enc3DES := m.write(t, "enc-3des.key", testkit.EncryptKeyPKCS8(t, m.keyPEM, keyPassword, "des3"))
	encLegacy := m.write(t, "enc-legacy.key", testkit.EncryptKeyLegacy(t, m.keyPEM, keyPassword))
	combined := m.write(t, "combined.pem", append(append([]byte{}, m.keyPEM...), m.certPEM...))

	cases := []struct {
		name   string
		env    tls.Env
		want   map[string]string // "*" is any non-empty value
		absent []string
	}{
		{"plaintext", tls.Env{}, map[string]string{"security.protocol": "plaintext"}, []string{"ssl.ca.pem", "sasl.mechanism"}},
		{"one-way TLS, CA as a value", tls.Env{Protocol: "SSL", CACert: string(m.ca.CertPEM)},
			map[string]string{"security.protocol": "ssl", "ssl.ca.pem": string(m.ca.CertPEM), "ssl.endpoint.identification.algorithm": "https"},
			[]string{"ssl.certificate.pem", "ssl.key.pem", "ssl.ca.location"}},
		{"one-way TLS, system trust store", tls.Env{Protocol: "SSL"},
			map[string]string{"ssl.ca.location": "probe", "ssl.endpoint.identification.algorithm": "https"}, []string{"ssl.ca.pem"}},
		{"hostname verification turned off", tls.Env{Protocol: "SSL", CACertFile: m.caFile, VerifyHostname: "false"},
			map[string]string{"ssl.endpoint.identification.algorithm": "none"}, nil},
		{"mTLS from files", tls.Env{Protocol: "SSL", CACertFile: m.caFile, ClientCertFile: m.certFile, ClientKeyFile: m.keyFile},
			map[string]string{"ssl.certificate.pem": string(m.certPEM), "ssl.key.pem": string(m.keyPEM)}, []string{"ssl.key.password"}},
		{"mTLS from one combined file", tls.Env{Protocol: "SSL", ClientCertFile: combined, ClientKeyFile: combined},
			map[string]string{"ssl.certificate.pem": string(m.certPEM), "ssl.key.pem": string(m.keyPEM)}, nil},
		{"mTLS, PKCS#8 key with AES-256", tls.Env{Protocol: "SSL", ClientCert: string(m.certPEM), ClientKeyFile: encPKCS8, ClientKeyPass: keyPassword},
			map[string]string{"ssl.key.password": keyPassword, "ssl.key.pem": "*"}, nil},
		{"mTLS, PKCS#8 key with 3DES, password from a file", tls.Env{Protocol: "SSL", ClientCertFile: m.certFile, ClientKeyFile: enc3DES, ClientKeyPassFile: m.passFile},
			map[string]string{"ssl.key.password": keyPassword}, nil},
		{"mTLS, legacy encrypted PEM key", tls.Env{Protocol: "SASL_SSL", ClientCertFile: m.certFile, ClientKeyFile: encLegacy, ClientKeyPass: keyPassword,
			SASLMechanism: "PLAIN", SASLUsername: "u", SASLPassword: password},
			map[string]string{"ssl.key.password": keyPassword, "sasl.mechanism": "PLAIN", "sasl.password": password}, nil},
		{"SCRAM, password file's line end dropped", tls.Env{Protocol: "SASL_PLAINTEXT", SASLMechanism: "SCRAM-SHA-512", SASLUsername: "alice", SASLPasswordFile: m.saslFile},
			map[string]string{"security.protocol": "sasl_plaintext", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "alice", "sasl.password": password},
			[]string{"ssl.ca.location", "ssl.ca.pem"}},
		{"OAUTHBEARER by OIDC", tls.Env{Protocol: "SASL_SSL", SASLMechanism: "OAUTHBEARER", OAuthClientID: "sidecar", OAuthSecretFile: m.saslFile,
			OAuthTokenURL: "https://idp.example/token", OAuthScope: "kafka", OAuthExtensions: "logicalCluster=lkc-1,identityPoolId=pool-2"},
			map[string]string{"sasl.oauthbearer.method": "oidc", "sasl.oauthbearer.client.id": "sidecar", "sasl.oauthbearer.client.secret": password,
				"sasl.oauthbearer.token.endpoint.url": "https://idp.example/token", "sasl.oauthbearer.scope": "kafka",
				"sasl.oauthbearer.extensions": "logicalCluster=lkc-1,identityPoolId=pool-2"},
			[]string{"sasl.username", "sasl.password"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mat, err := load(t, tc.env, time.Now())
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			props := mat.Properties()
			for k, v := range tc.want {
				got, ok := props[k]
				if !ok || (v == "*" && got == "") || (v != "*" && got != v) {
					t.Errorf("%s = %q (set %v), want %q", k, got, ok, v)
				}
			}
			for _, k := range tc.absent {
				if _, ok := props[k]; ok {
					t.Errorf("%s is set, want it absent", k)
				}
			}
			for k := range props {
				if !tls.ManagedProperties[k] {
					t.Errorf("%s is set but not in ManagedProperties: an override could replace it", k)
				}
			}
		})
	}
}

func TestLoadStopsOnBadMaterialNamingTheVariableNotTheSecret(t *testing.T) {
	m := newMaterial(t)
	now := time.Now()
	other := testkit.NewCA(t, "other CA")
	_, otherKey := other.Issue(t, "someone else", testkit.CertOptions{})
	expired, expiredKey := m.ca.Issue(t, "old", testkit.CertOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	future, futureKey := m.ca.Issue(t, "later", testkit.CertOptions{NotBefore: now.Add(time.Hour), NotAfter: now.Add(48 * time.Hour)})
	encPKCS8 := m.write(t, "enc.key", testkit.EncryptKeyPKCS8(t, m.keyPEM, keyPassword, "aes-256-cbc"))
	encLegacy := m.write(t, "legacy.key", testkit.EncryptKeyLegacy(t, m.keyPEM, keyPassword))
	keyBody := strings.Split(string(m.keyPEM), "\n")[1]

	cases := []struct {
		name string
		env  tls.Env
		want string
	}{
		{"CA file missing", tls.Env{Protocol: "SSL", CACertFile: filepath.Join(m.dir, "nope.crt")}, tls.VarCACertFile},
		{"CA value not PEM", tls.Env{Protocol: "SSL", CACert: "not a certificate"}, tls.VarCACert},
		{"CA value is a key", tls.Env{Protocol: "SSL", CACert: string(m.keyPEM)}, tls.VarCACert},
		{"every CA certificate expired", tls.Env{Protocol: "SSL", CACert: string(expired)}, tls.VarCACert},
		{"client certificate not PEM", tls.Env{Protocol: "SSL", ClientCert: "junk", ClientKey: string(m.keyPEM)}, tls.VarClientCert},
		{"client key not PEM", tls.Env{Protocol: "SSL", ClientCert: string(m.certPEM), ClientKey: "junk"}, tls.VarClientKey},
		{"key of another certificate", tls.Env{Protocol: "SSL", ClientCertFile: m.certFile, ClientKey: string(otherKey)}, tls.VarClientKey},
		{"expired client certificate", tls.Env{Protocol: "SSL", ClientCert: string(expired), ClientKey: string(expiredKey)}, tls.VarClientCert},
		{"client certificate not yet valid", tls.Env{Protocol: "SSL", ClientCert: string(future), ClientKey: string(futureKey)}, tls.VarClientCert},
		{"encrypted key without a password", tls.Env{Protocol: "SSL", ClientCertFile: m.certFile, ClientKeyFile: encPKCS8}, tls.VarClientKeyFile},
		{"PKCS#8 key, wrong password", tls.Env{Protocol: "SSL", ClientCertFile: m.certFile, ClientKeyFile: encPKCS8, ClientKeyPass: "wrong-pass-Yy7"}, tls.VarClientKeyPass},
		{"legacy key, wrong password from a file", tls.Env{Protocol: "SSL", ClientCertFile: m.certFile, ClientKeyFile: encLegacy, ClientKeyPassFile: m.write(t, "bad.pass", []byte("wrong-pass-Yy7"))}, tls.VarClientKeyPassFile},
		{"empty password file", tls.Env{Protocol: "SASL_SSL", SASLMechanism: "PLAIN", SASLUsername: "u", SASLPasswordFile: m.write(t, "empty", []byte("\n"))}, tls.VarSASLPasswordFile},
		{"password file missing", tls.Env{Protocol: "SASL_SSL", SASLMechanism: "PLAIN", SASLUsername: "u", SASLPasswordFile: filepath.Join(m.dir, "nope")}, tls.VarSASLPasswordFile},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.env, now)
			wantVar(t, err, tc.want, keyPassword, "wrong-pass-Yy7", keyBody, password)
		})
	}
}

func TestLoadWarnsWithoutStopping(t *testing.T) {
	m := newMaterial(t)
	now := time.Now()
	soon, soonKey := m.ca.Issue(t, "soon", testkit.CertOptions{NotAfter: now.Add(3 * 24 * time.Hour)})
	serverOnly, serverKey := m.ca.Issue(t, "server", testkit.CertOptions{Server: true})
	expiredCA := testkit.NewCA(t, "old CA")
	old, _ := expiredCA.Issue(t, "x", testkit.CertOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	cases := []struct {
		name string
		env  tls.Env
		want string
	}{
		{"client certificate expires within 14 days", tls.Env{Protocol: "SSL", ClientCert: string(soon), ClientKey: string(soonKey)}, tls.VarClientCert + ": the client certificate (CN=soon) expires on"},
		{"password for a key that has none (Strimzi's user.password)", tls.Env{Protocol: "SSL", ClientCertFile: m.certFile, ClientKeyFile: m.keyFile, ClientKeyPass: keyPassword}, tls.VarClientKeyPass + ": set, but the private key"},
		{"certificate not for client authentication", tls.Env{Protocol: "SSL", ClientCert: string(serverOnly), ClientKey: string(serverKey)}, "not for client authentication"},
		{"an expired CA among live ones", tls.Env{Protocol: "SSL", CACert: string(old) + string(m.ca.CertPEM)}, "CA certificate 1 of 2 (CN=x) expired"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mat, err := load(t, tc.env, now)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !strings.Contains(strings.Join(mat.Warnings, "\n"), tc.want) {
				t.Fatalf("warnings %q, want one containing %q", mat.Warnings, tc.want)
			}
			if _, ok := mat.Properties()["ssl.key.password"]; ok && strings.Contains(tc.name, "has none") {
				t.Errorf("ssl.key.password passed for an unencrypted key")
			}
		})
	}
}

func TestKeyEncryptionTheSidecarCannotOpenIsLeftToLibrdkafka(t *testing.T) {
	m := newMaterial(t)
	// PBES1 (PKCS#12 PBE with SHA-1 and 3DES), as old keytool exports write it.
	pbes1 := m.write(t, "pbes1.key", openssl(t, m.keyPEM, "pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES", "-passout", "pass:"+keyPassword))
	mat, err := load(t, tls.Env{Protocol: "SSL", ClientCertFile: m.certFile, ClientKeyFile: pbes1, ClientKeyPass: keyPassword}, time.Now())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !strings.Contains(strings.Join(mat.Warnings, "\n"), "checked by librdkafka") {
		t.Errorf("warnings %q, want one saying librdkafka checks the key", mat.Warnings)
	}
	if mat.Properties()["ssl.key.password"] != keyPassword {
		t.Errorf("ssl.key.password not passed on for librdkafka to open the key")
	}
}

func openssl(t *testing.T, in []byte, args ...string) []byte {
	t.Helper()
	return testkit.RunOpenSSL(t, in, args...)
}

func TestSecretsDoNotPrintInAnyFormat(t *testing.T) {
	m := newMaterial(t)
	mat, err := load(t, tls.Env{Protocol: "SASL_SSL", CACertFile: m.caFile, ClientCertFile: m.certFile, ClientKey: string(m.keyPEM),
		ClientKeyPass: keyPassword, SASLMechanism: "PLAIN", SASLUsername: "u", SASLPassword: password}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keyBody := strings.Split(string(m.keyPEM), "\n")[1]
	var out bytes.Buffer
	fmt.Fprintf(&out, "%v %+v %#v %v %+v\n", mat, mat, mat, mat.Settings, mat.Settings)
	fmt.Fprintf(&out, "%v %+v %#v %s %q\n", *mat, *mat, mat.Settings.Password, mat.Settings.Password, mat.Settings.ClientKey)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("x", "material", mat, "settings", mat.Settings, "summary", mat.Summary())
	slog.New(slog.NewTextHandler(&out, nil)).Info("x", append(mat.Summary(), "password", mat.Settings.Password)...)
	if b, err := json.Marshal(mat.Settings); err == nil {
		out.Write(b)
	}
	for _, s := range []string{password, keyBody} {
		if strings.Contains(out.String(), s) {
			t.Fatalf("a secret printed:\n%s", out.String())
		}
	}
}

func TestWatcherOffersChangedMaterialOnceItPassesTheChecks(t *testing.T) {
	m := newMaterial(t)
	mat, err := load(t, tls.Env{Protocol: "SSL", CACertFile: m.caFile, ClientCertFile: m.certFile, ClientKeyFile: m.keyFile}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	w := tls.NewWatcher(mat)
	if !w.Watching() {
		t.Fatal("not watching file-based material")
	}
	if next, err := w.Poll(time.Now()); next != nil || err != nil {
		t.Fatalf("unchanged files: Poll = %v, %v; want nothing", next, err)
	}

	// A renewal half written: the new certificate, the old key.
	newCert, newKey := m.ca.Issue(t, "renewed", testkit.CertOptions{})
	m.write(t, "tls.crt", newCert)
	next, err := w.Poll(time.Now())
	if next != nil {
		t.Fatal("mismatched key and certificate offered")
	}
	wantVar(t, err, tls.VarClientKeyFile)
	if next, err := w.Poll(time.Now()); next != nil || err != nil {
		t.Fatalf("the same refused content again: Poll = %v, %v; want it reported once", next, err)
	}

	m.write(t, "tls.key", newKey)
	next, err = w.Poll(time.Now())
	if err != nil || next == nil {
		t.Fatalf("completed renewal: Poll = %v, %v; want the new material", next, err)
	}
	if cn := next.ClientCertificate().Subject.CommonName; cn != "renewed" {
		t.Fatalf("offered certificate %s, want renewed", cn)
	}
	w.Refuse(next)
	if again, err := w.Poll(time.Now()); again != nil || err != nil {
		t.Fatalf("refused material offered again: %v, %v", again, err)
	}
	w.Accept(next)
	if again, err := w.Poll(time.Now()); again != nil || err != nil {
		t.Fatalf("accepted material offered again: %v, %v", again, err)
	}
	if w.Current() != next {
		t.Fatal("Current is not the accepted material")
	}

	if err := os.Remove(m.keyFile); err != nil {
		t.Fatal(err)
	}
	_, err = w.Poll(time.Now())
	wantVar(t, err, tls.VarClientKeyFile)
}

func TestWatcherSeesARotatedPasswordFile(t *testing.T) {
	m := newMaterial(t)
	mat, err := load(t, tls.Env{Protocol: "SASL_PLAINTEXT", SASLMechanism: "SCRAM-SHA-512", SASLUsername: "u", SASLPasswordFile: m.saslFile}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	w := tls.NewWatcher(mat)
	m.write(t, "password", []byte("rotated-password\n"))
	next, err := w.Poll(time.Now())
	if err != nil || next == nil {
		t.Fatalf("Poll = %v, %v; want the new password", next, err)
	}
	if got := next.Properties()["sasl.password"]; got != "rotated-password" {
		t.Fatal("the new material does not carry the rotated password")
	}
	if w2 := tls.NewWatcher(mat); tls.NewWatcher(mustLoad(t, tls.Env{})).Watching() || !w2.Watching() {
		t.Fatal("Watching wrong: value-only material has nothing to watch, a password file has")
	}
}

func mustLoad(t *testing.T, env tls.Env) *tls.Material {
	t.Helper()
	m, err := load(t, env, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestClientTLSCarriesTheCAAndTheOpenedKey(t *testing.T) {
	m := newMaterial(t)
	pkcs8 := m.write(t, "enc-pkcs8.key", testkit.EncryptKeyPKCS8(t, m.keyPEM, keyPassword, "aes-256-cbc"))
	legacy := m.write(t, "enc-legacy.key", testkit.EncryptKeyLegacy(t, m.keyPEM, keyPassword))
	for _, tc := range []struct {
		name string
		env  tls.Env
	}{
		{"plain key", tls.Env{Protocol: "SSL", CACertFile: m.caFile, ClientCertFile: m.certFile, ClientKeyFile: m.keyFile}},
		{"PKCS#8 encrypted key", tls.Env{Protocol: "SSL", CACertFile: m.caFile, ClientCertFile: m.certFile, ClientKeyFile: pkcs8, ClientKeyPass: keyPassword}},
		{"legacy PEM encrypted key", tls.Env{Protocol: "SSL", CACertFile: m.caFile, ClientCert: string(m.certPEM), ClientKeyFile: legacy, ClientKeyPassFile: m.passFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := mustLoad(t, tc.env).ClientTLS()
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Certificates) != 1 || c.Certificates[0].Leaf == nil {
				t.Fatalf("%d client certificates", len(c.Certificates))
			}
			pair := c.Certificates[0]
			signer, ok := pair.PrivateKey.(crypto.Signer)
			if !ok || !pair.Leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(signer.Public()) {
				t.Fatal("the key is not the certificate's")
			}
			if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: c.RootCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("the client certificate does not verify against the roots: %v", err)
			}
		})
	}

	c, err := mustLoad(t, tls.Env{Protocol: "SSL"}).ClientTLS()
	if err != nil || c.RootCAs != nil || len(c.Certificates) != 0 {
		t.Errorf("without material: roots %v, %d certificates, %v; want the system's roots and none", c.RootCAs, len(c.Certificates), err)
	}
	pbes1 := m.write(t, "pbes1.key", openssl(t, m.keyPEM, "pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES", "-passout", "pass:"+keyPassword))
	_, err = mustLoad(t, tls.Env{Protocol: "SSL", ClientCertFile: m.certFile, ClientKeyFile: pbes1, ClientKeyPass: keyPassword}).ClientTLS()
	wantVar(t, err, tls.VarClientKeyFile, keyPassword)
}
