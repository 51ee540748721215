package executor_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seldon-kafka/sidecar/executor"
	"github.com/seldon-kafka/sidecar/internal/testkit"
)

// These tests run the sidecar against the test broker's secured listeners (test/kafka/broker.sh). The
// test's own records go in and come out over PLAINTEXT; only the sidecar uses the listener under test.
// Every run's log is captured at debug level, librdkafka's security and broker debugging included, and
// searched for the secrets of the run.

// logCapture is a sidecar's whole log. It is shown when the test fails.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *logCapture) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(b)
}

func (c *logCapture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// startCaptured runs the sidecar in-process with the harness's environment, logging everything at
// debug level into the returned capture.
func (h *harness) startCaptured() (*sidecar, *logCapture) {
	h.t.Helper()
	e, logs, err := h.newExecutor()
	if err != nil {
		h.t.Fatalf("starting: %v\nlog:\n%s", err, logs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sidecar{health: e.HealthAddr(), cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- e.Run(ctx) }()
	h.t.Cleanup(func() { s.stop(h.t) })
	return s, logs
}

// newExecutor loads the configuration and makes the executor as cmd/executor does, logging into a
// capture; it returns the error of either step.
func (h *harness) newExecutor() (*executor.Executor, *logCapture, error) {
	h.t.Helper()
	logs := &logCapture{}
	h.t.Cleanup(func() {
		if h.t.Failed() || os.Getenv("SIDECAR_TEST_LOG") != "" {
			h.t.Logf("sidecar log:\n%s", logs)
		}
	})
	cfg, err := h.config()
	if err != nil {
		return nil, logs, err
	}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e, err := executor.New(cfg, log)
	return e, logs, err
}

// debugLibrdkafka turns on librdkafka's security, broker and configuration debugging, through the
// override variables, so that the secret search covers librdkafka's own account of the connection.
func (h *harness) debugLibrdkafka() {
	h.env["KAFKA_CONSUMER_DEBUG"] = "security,broker,conf"
	h.env["KAFKA_PRODUCER_DEBUG"] = "security,broker,conf"
}

// assertNoSecrets fails the test if any secret, or any line of a PEM key, is in the log.
func assertNoSecrets(t *testing.T, log string, secrets ...string) {
	t.Helper()
	if log == "" {
		t.Fatal("the log is empty: nothing was searched")
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, piece := range secretPieces(s) {
			if strings.Contains(log, piece) {
				t.Errorf("the log holds a secret (%d characters, starting %.4q)", len(piece), piece)
			}
		}
	}
}

// secretPieces is what to search for: the secret itself, and for PEM each base64 line of it.
func secretPieces(s string) []string {
	if !strings.Contains(s, "-----BEGIN") {
		return []string{s}
	}
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if line != "" && !strings.HasPrefix(line, "-----") && !strings.Contains(line, ":") && len(line) >= 16 {
			out = append(out, line)
		}
	}
	return out
}

// writeFile writes b to dir/name (0600) and returns the path.
func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serveAndCheck writes n records, waits for n answers (no error records, each key once) and for the
// commits to reach the end of the input.
func serveAndCheck(t *testing.T, h *harness, n int) {
	t.Helper()
	testkit.Produce(t, h.bootstrap, h.in, records("seldon", n))
	answers := testkit.Consume(t, h.bootstrap, h.out, n, 60*time.Second)
	seen := map[string]bool{}
	for _, a := range answers {
		if r := a.Headers["Seldon-Error-Reason"]; r != "" {
			t.Fatalf("error record: %s: %s", r, a.Headers["Seldon-Error-Message"])
		}
		if seen[string(a.Key)] {
			t.Fatalf("two answers for key %s", a.Key)
		}
		seen[string(a.Key)] = true
	}
	h.waitAllCommitted(30 * time.Second)
}

func TestRecordsAreAnsweredOverEachSecuredListener(t *testing.T) {
	sec := testkit.Security(t)
	ca := sec.CA(t)
	caPEM, err := os.ReadFile(sec.CACertFile)
	if err != nil {
		t.Fatal(err)
	}
	const keyPass = "k3y-Passw0rd-for-the-test"
	certPEM, keyPEM := ca.Issue(t, "sidecar-mtls", testkit.CertOptions{})
	encKey := testkit.EncryptKeyPKCS8(t, keyPEM, keyPass, "aes-256-cbc")
	legacyKey := testkit.EncryptKeyLegacy(t, keyPEM, keyPass)

	cases := []struct {
		name    string
		env     func(dir string) map[string]string
		secrets []string
	}{
		{"one-way TLS, CA as a PEM value", func(string) map[string]string {
			return map[string]string{"KAFKA_BROKER": sec.SSL, "KAFKA_SECURITY_PROTOCOL": "ssl", "KAFKA_SSL_CA_CERT": string(caPEM)}
		}, nil},
		{"one-way TLS, CA as a file", func(string) map[string]string {
			return map[string]string{"KAFKA_BROKER": sec.SSL, "KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_CERT_FILE": sec.CACertFile}
		}, nil},
		{"mTLS, files", func(dir string) map[string]string {
			return map[string]string{"KAFKA_BROKER": sec.MTLS, "KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_CERT_FILE": sec.CACertFile,
				"KAFKA_SSL_CLIENT_CERT_FILE": writeFile(t, dir, "tls.crt", certPEM), "KAFKA_SSL_CLIENT_KEY_FILE": writeFile(t, dir, "tls.key", keyPEM)}
		}, []string{string(keyPEM)}},
		{"mTLS, PEM values with a PKCS#8 encrypted key", func(string) map[string]string {
			return map[string]string{"KAFKA_BROKER": sec.MTLS, "KAFKA_SECURITY_PROTOCOL": "ssl", "KAFKA_SSL_CA_CERT": string(caPEM),
				"KAFKA_SSL_CLIENT_CERT": string(certPEM), "KAFKA_SSL_CLIENT_KEY": string(encKey), "KAFKA_SSL_CLIENT_KEY_PASS": keyPass}
		}, []string{string(keyPEM), string(encKey), keyPass}},
		{"mTLS, legacy encrypted key and its password in files", func(dir string) map[string]string {
			return map[string]string{"KAFKA_BROKER": sec.MTLS, "KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_CERT_FILE": sec.CACertFile,
				"KAFKA_SSL_CLIENT_CERT_FILE": writeFile(t, dir, "tls.crt", certPEM), "KAFKA_SSL_CLIENT_KEY_FILE": writeFile(t, dir, "tls.key", legacyKey),
				"KAFKA_SSL_CLIENT_KEY_PASS_FILE": writeFile(t, dir, "key.pass", []byte(keyPass+"\n"))}
		}, []string{string(keyPEM), string(legacyKey), keyPass}},
		{"SASL_PLAINTEXT, PLAIN", func(string) map[string]string {
			return map[string]string{"KAFKA_BROKER": sec.SASLPlaintext, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN",
				"KAFKA_SASL_USERNAME": sec.PlainUser, "KAFKA_SASL_PASSWORD": sec.PlainPassword}
		}, []string{sec.PlainPassword}},
		{"SASL_PLAINTEXT, SCRAM-SHA-512 with a password file", func(dir string) map[string]string {
			return map[string]string{"KAFKA_BROKER": sec.SASLPlaintext, "KAFKA_SECURITY_PROTOCOL": "sasl_plaintext", "KAFKA_SASL_MECHANISM": "scram-sha-512",
				"KAFKA_SASL_USERNAME": sec.ScramUser, "KAFKA_SASL_PASSWORD_FILE": writeFile(t, dir, "password", []byte(sec.ScramPassword+"\n"))}
		}, []string{sec.ScramPassword}},
		{"SASL_SSL, SCRAM-SHA-512", func(string) map[string]string {
			return map[string]string{"KAFKA_BROKER": sec.SASLSSL, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SSL_CA_CERT_FILE": sec.CACertFile,
				"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": sec.ScramUser, "KAFKA_SASL_PASSWORD": sec.ScramPassword}
		}, []string{sec.ScramPassword}},
		{"SASL_SSL, PLAIN (the Confluent Cloud and Event Hubs shape)", func(string) map[string]string {
			return map[string]string{"KAFKA_BROKER": sec.SASLSSL, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SSL_CA_CERT": string(caPEM),
				"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": sec.PlainUser, "KAFKA_SASL_PASSWORD": sec.PlainPassword}
		}, []string{sec.PlainPassword}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "seldon", 2)
			h.debugLibrdkafka()
			for k, v := range tc.env(t.TempDir()) {
				h.env[k] = v
			}
			s, logs := h.startCaptured()
			serveAndCheck(t, h, 50)
			s.stop(t)
			log := logs.String()
			if !strings.Contains(log, `"msg":"kafka security"`) {
				t.Error("no start-up line describing the security settings")
			}
			assertNoSecrets(t, log, append(tc.secrets, sec.PlainPassword, sec.ScramPassword)...)
		})
	}
}

// oidcProvider is an OAuth token endpoint for the client credentials grant. It issues unsecured JWTs
// (alg none), which the test broker's default OAUTHBEARER validator accepts.
type oidcProvider struct {
	srv            *httptest.Server
	clientID       string
	secret         string
	issued, denied atomic.Int64
	mu             sync.Mutex
	tokens         []string
}

func newOIDCProvider(t *testing.T, clientID, secret string) *oidcProvider {
	p := &oidcProvider{clientID: clientID, secret: secret}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, sec, ok := r.BasicAuth()
		_ = r.ParseForm()
		if !ok || id != p.clientID || sec != p.secret || r.PostForm.Get("grant_type") != "client_credentials" {
			p.denied.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		now := time.Now().Unix()
		enc := base64.RawURLEncoding.EncodeToString
		tok := enc([]byte(`{"alg":"none"}`)) + "." +
			enc([]byte(fmt.Sprintf(`{"sub":"sidecar-%d","iat":%d,"exp":%d,"scope":%q}`, p.issued.Load(), now, now+3600, r.PostForm.Get("scope")))) + "."
		p.mu.Lock()
		p.tokens = append(p.tokens, tok)
		p.mu.Unlock()
		p.issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": 3600})
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func TestRecordsAreAnsweredOverOAuthBearerWithOIDCClientCredentials(t *testing.T) {
	sec := testkit.Security(t)
	const secret = "oidc-Client-Secret-4711"
	idp := newOIDCProvider(t, "sidecar-client", secret)
	h := newHarness(t, "seldon", 1)
	h.debugLibrdkafka()
	for k, v := range map[string]string{
		"KAFKA_BROKER": sec.SASLPlaintext, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "OAUTHBEARER",
		"KAFKA_SASL_OAUTHBEARER_CLIENT_ID": "sidecar-client", "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET": secret,
		"KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL": idp.srv.URL + "/oauth2/token", "KAFKA_SASL_OAUTHBEARER_SCOPE": "kafka",
	} {
		h.env[k] = v
	}
	s, logs := h.startCaptured()
	serveAndCheck(t, h, 30)
	s.stop(t)
	if idp.issued.Load() == 0 || idp.denied.Load() != 0 {
		t.Fatalf("token endpoint issued %d tokens and denied %d requests; want tokens and no denial", idp.issued.Load(), idp.denied.Load())
	}
	idp.mu.Lock()
	tokens := idp.tokens
	idp.mu.Unlock()
	assertNoSecrets(t, logs.String(), append(tokens, secret)...)
}

// Problems only the broker can see leave the sidecar running but not ready, with the broker's reason
// in its log.
func TestBrokerRefusalsLeaveTheSidecarNotReadyWithTheReasonInItsLog(t *testing.T) {
	sec := testkit.Security(t)
	otherCA := testkit.NewCA(t, "a CA the broker does not know")
	strangerCert, strangerKey := otherCA.Issue(t, "stranger", testkit.CertOptions{})
	cases := []struct {
		name   string
		env    func(dir string) map[string]string
		reason *regexp.Regexp
		secret string
	}{
		{"wrong SCRAM password", func(string) map[string]string {
			return map[string]string{"KAFKA_BROKER": sec.SASLPlaintext, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
				"KAFKA_SASL_USERNAME": sec.ScramUser, "KAFKA_SASL_PASSWORD": "Wrong-Scram-Passw0rd"}
		}, regexp.MustCompile(`Authentication failed.*invalid credentials.*SCRAM-SHA-512`), "Wrong-Scram-Passw0rd"},
		{"unknown PLAIN user over SASL_SSL", func(string) map[string]string {
			return map[string]string{"KAFKA_BROKER": sec.SASLSSL, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SSL_CA_CERT_FILE": sec.CACertFile,
				"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "nobody", "KAFKA_SASL_PASSWORD": "Nobodys-Passw0rd"}
		}, regexp.MustCompile(`Authentication failed: Invalid username or password`), "Nobodys-Passw0rd"},
		{"broker certificate from a CA not trusted", func(dir string) map[string]string {
			return map[string]string{"KAFKA_BROKER": sec.SSL, "KAFKA_SECURITY_PROTOCOL": "SSL",
				"KAFKA_SSL_CA_CERT_FILE": writeFile(t, dir, "ca.crt", otherCA.CertPEM)}
		}, regexp.MustCompile(`certificate verify failed`), ""},
		{"client certificate signed by another CA", func(string) map[string]string {
			return map[string]string{"KAFKA_BROKER": sec.MTLS, "KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_CERT_FILE": sec.CACertFile,
				"KAFKA_SSL_CLIENT_CERT": string(strangerCert), "KAFKA_SSL_CLIENT_KEY": string(strangerKey)}
		}, regexp.MustCompile(`(?i)alert (bad certificate|unknown ca|certificate unknown)`), string(strangerKey)},
		{"mechanism the broker does not enable", func(string) map[string]string {
			return map[string]string{"KAFKA_BROKER": sec.SASLPlaintext, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
				"KAFKA_SASL_USERNAME": sec.ScramUser, "KAFKA_SASL_PASSWORD": sec.ScramPassword}
		}, regexp.MustCompile(`Unsupported SASL mechanism.*supported mechanisms: PLAIN,SCRAM-SHA-512`), sec.ScramPassword},
		{"no client certificate where one is required", func(string) map[string]string {
			return map[string]string{"KAFKA_BROKER": sec.MTLS, "KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_CERT_FILE": sec.CACertFile}
		}, regexp.MustCompile(`(?i)alert (bad certificate|certificate required|handshake failure)`), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "seldon", 1)
			h.debugLibrdkafka()
			for k, v := range tc.env(t.TempDir()) {
				h.env[k] = v
			}
			start := time.Now()
			s, logs := h.startCaptured()
			waitFor(t, "the broker's reason in the log", 30*time.Second, func() bool { return tc.reason.MatchString(logs.String()) })
			if code := getStatus(t, "http://"+s.health+"/ready"); code != http.StatusServiceUnavailable {
				t.Errorf("/ready = %d, want 503", code)
			}
			t.Logf("reason logged after %v", time.Since(start).Round(10*time.Millisecond))
			s.stop(t)
			assertNoSecrets(t, logs.String(), tc.secret, sec.ScramPassword, sec.PlainPassword)
		})
	}
}

// Problems the sidecar can see by itself stop it at start: exit status 2 and one line naming the
// variable, without the secret.
func TestLocalSecurityProblemsExitWithStatus2NamingTheVariable(t *testing.T) {
	sec := testkit.Security(t)
	bin := buildExecutor(t)
	ca := sec.CA(t)
	certPEM, keyPEM := ca.Issue(t, "sidecar", testkit.CertOptions{})
	_, otherKey := ca.Issue(t, "another", testkit.CertOptions{})
	expired, expiredKey := ca.Issue(t, "old", testkit.CertOptions{NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	const keyPass = "Right-Key-Pass-99"
	encKey := testkit.EncryptKeyPKCS8(t, keyPEM, keyPass, "aes-256-cbc")
	dir := t.TempDir()
	certFile := writeFile(t, dir, "tls.crt", certPEM)
	h := newHarness(t, "seldon", 1)
	base := map[string]string{}
	for k, v := range h.env {
		base[k] = v
	}
	base["KAFKA_BROKER"] = sec.MTLS

	cases := []struct {
		name    string
		env     map[string]string
		wantVar string
		secrets []string
	}{
		{"wrong key password", map[string]string{"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CLIENT_CERT_FILE": certFile,
			"KAFKA_SSL_CLIENT_KEY": string(encKey), "KAFKA_SSL_CLIENT_KEY_PASS": "Wrong-Key-Pass-11"}, "KAFKA_SSL_CLIENT_KEY_PASS", []string{"Wrong-Key-Pass-11", string(encKey)}},
		{"encrypted key without password", map[string]string{"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CLIENT_CERT_FILE": certFile,
			"KAFKA_SSL_CLIENT_KEY_FILE": writeFile(t, dir, "enc.key", encKey)}, "KAFKA_SSL_CLIENT_KEY_FILE", []string{string(encKey)}},
		{"key of another certificate", map[string]string{"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CLIENT_CERT_FILE": certFile,
			"KAFKA_SSL_CLIENT_KEY": string(otherKey)}, "KAFKA_SSL_CLIENT_KEY", []string{string(otherKey)}},
		{"expired client certificate", map[string]string{"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CLIENT_CERT": string(expired),
			"KAFKA_SSL_CLIENT_KEY": string(expiredKey)}, "KAFKA_SSL_CLIENT_CERT", []string{string(expiredKey)}},
		{"CA file missing", map[string]string{"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_CERT_FILE": filepath.Join(dir, "missing.crt")}, "KAFKA_SSL_CA_CERT_FILE", nil},
		{"SASL without a mechanism", map[string]string{"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "u",
			"KAFKA_SASL_PASSWORD": "Some-Sasl-Passw0rd"}, "KAFKA_SASL_MECHANISM", []string{"Some-Sasl-Passw0rd"}},
		{"unknown security protocol", map[string]string{"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL", nil},
		{"override of a pinned delivery setting", map[string]string{"KAFKA_CONSUMER_ENABLE_AUTO_COMMIT": "true"}, "KAFKA_CONSUMER_ENABLE_AUTO_COMMIT", nil},
		{"override of a security property", map[string]string{"KAFKA_PRODUCER_SASL_PASSWORD": "Sneaky-Passw0rd"}, "KAFKA_PRODUCER_SASL_PASSWORD", []string{"Sneaky-Passw0rd"}},
		{"pinned setting in the properties file", map[string]string{"KAFKA_PROPERTIES_FILE": writeFile(t, dir, "client.properties", []byte("linger.ms=10\nproducer.acks=1\n"))}, "KAFKA_PROPERTIES_FILE", nil},
		{"override librdkafka does not know", map[string]string{"KAFKA_CONSUMER_NO_SUCH_PROPERTY": "1"}, "KAFKA_CONSUMER_NO_SUCH_PROPERTY", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := []string{"PATH=" + os.Getenv("PATH")}
			for k, v := range base {
				env = append(env, k+"="+v)
			}
			for k, v := range tc.env {
				env = append(env, k+"="+v)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, h.args()...)
			cmd.Env = env
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stderr, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit: %v, want status 2; output:\n%s", err, stderr.String())
			}
			out := stderr.String()
			if !strings.Contains(out, tc.wantVar) {
				t.Errorf("output does not name %s:\n%s", tc.wantVar, out)
			}
			t.Logf("%s", strings.TrimSpace(out))
			assertNoSecrets(t, out, tc.secrets...)
		})
	}
}

// buildExecutor builds cmd/executor into the test's temporary directory.
func buildExecutor(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "executor")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/seldon-kafka/sidecar/cmd/executor")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// secretVolume is a directory laid out the way the kubelet mounts a secret: each file is a symlink
// through ..data, which points at a timestamped directory; an update writes a new directory and swaps
// ..data atomically, so a reader sees all old or all new files.
type secretVolume struct {
	t   *testing.T
	dir string
	gen int
}

func newSecretVolume(t *testing.T, files map[string][]byte) *secretVolume {
	v := &secretVolume{t: t, dir: t.TempDir()}
	v.update(files)
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(v.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

func (v *secretVolume) path(name string) string { return filepath.Join(v.dir, name) }

func (v *secretVolume) update(files map[string][]byte) {
	v.gen++
	gen := fmt.Sprintf("..%d", v.gen)
	if err := os.Mkdir(filepath.Join(v.dir, gen), 0o700); err != nil {
		v.t.Fatal(err)
	}
	for name, b := range files {
		writeFile(v.t, filepath.Join(v.dir, gen), name, b)
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(gen, tmp); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
}

// The client certificate is renewed on disk mid-stream. Afterwards the broker refuses the old
// certificate's principal (an ACL), so records answered after that prove the new certificate is in
// use; every record is answered exactly once. Exactly once, the new producer takes over the
// transactions (InitTransactions) once the old has committed and closed.
func TestCertificateRenewedOnDiskIsUsedWithoutLosingOrRepeatingRecords(t *testing.T) {
	for _, mode := range []string{"at least once", "exactly once"} {
		t.Run(mode, func(t *testing.T) { certificateRenewed(t, mode == "exactly once") })
	}
}

func certificateRenewed(t *testing.T, exactlyOnce bool) {
	sec := testkit.Security(t)
	ca := sec.CA(t)
	oldCert, oldKey := ca.Issue(t, "sidecar-old", testkit.CertOptions{})
	newCert, newKey := ca.Issue(t, "sidecar-new", testkit.CertOptions{})
	vol := newSecretVolume(t, map[string][]byte{"tls.crt": oldCert, "tls.key": oldKey})

	h := newHarness(t, "seldon", 3)
	h.model.SetDelay(2 * time.Millisecond)
	for k, v := range map[string]string{
		"KAFKA_BROKER": sec.MTLS, "KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_CERT_FILE": sec.CACertFile,
		"KAFKA_SSL_CLIENT_CERT_FILE": vol.path("tls.crt"), "KAFKA_SSL_CLIENT_KEY_FILE": vol.path("tls.key"),
		"KAFKA_SECURITY_RELOAD_INTERVAL": "200ms", "KAFKA_COMMIT_INTERVAL": "100ms",
	} {
		h.env[k] = v
	}
	if exactlyOnce {
		h.exactlyOnce("a")
	}
	// Everyone may use the test's topics and group; the old certificate's principal will be denied.
	var acls []ckafka.ACLBinding
	allow := func(typ ckafka.ResourceType, name string, principal string, perm ckafka.ACLPermissionType) {
		acls = append(acls, ckafka.ACLBinding{Type: typ, Name: name, ResourcePatternType: ckafka.ResourcePatternTypeLiteral,
			Principal: principal, Host: "*", Operation: ckafka.ACLOperationAll, PermissionType: perm})
	}
	for _, topic := range []string{h.in, h.out} {
		allow(ckafka.ResourceTopic, topic, "User:*", ckafka.ACLPermissionTypeAllow)
	}
	allow(ckafka.ResourceGroup, h.group, "User:*", ckafka.ACLPermissionTypeAllow)
	testkit.CreateACLs(t, h.bootstrap, acls)

	s, logs := h.startCaptured()
	total := 0
	produce := func(n int) {
		recs := make([]testkit.Record, n)
		for i := range recs {
			recs[i] = testkit.Record{Key: []byte(fmt.Sprintf("key-%d", total+i)), Value: request("seldon", total+i)}
		}
		total += n
		testkit.Produce(t, h.bootstrap, h.in, recs)
	}
	produce(100)
	testkit.Consume(t, h.bootstrap, h.out, 100, 60*time.Second)

	// Records keep coming while the certificate is renewed.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10 {
			produce(30)
			time.Sleep(100 * time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	vol.update(map[string][]byte{"tls.crt": newCert, "tls.key": newKey})
	<-done
	waitFor(t, "the sidecar to reconnect with the new certificate", 60*time.Second, func() bool {
		return strings.Contains(logs.String(), "reconnected with the new security material")
	})

	var deny []ckafka.ACLBinding
	for _, topic := range []string{h.in, h.out} {
		deny = append(deny, ckafka.ACLBinding{Type: ckafka.ResourceTopic, Name: topic, ResourcePatternType: ckafka.ResourcePatternTypeLiteral,
			Principal: "User:CN=sidecar-old", Host: "*", Operation: ckafka.ACLOperationAll, PermissionType: ckafka.ACLPermissionTypeDeny})
	}
	deny = append(deny, ckafka.ACLBinding{Type: ckafka.ResourceGroup, Name: h.group, ResourcePatternType: ckafka.ResourcePatternTypeLiteral,
		Principal: "User:CN=sidecar-old", Host: "*", Operation: ckafka.ACLOperationAll, PermissionType: ckafka.ACLPermissionTypeDeny})
	testkit.CreateACLs(t, h.bootstrap, deny)
	time.Sleep(time.Second) // the ACLs reach the broker's authorizer through the metadata log
	produce(100)

	answers := testkit.Consume(t, h.bootstrap, h.out, total, 90*time.Second)
	seen := map[string]int{}
	for _, a := range answers {
		if r := a.Headers["Seldon-Error-Reason"]; r != "" {
			t.Fatalf("error record: %s: %s", r, a.Headers["Seldon-Error-Message"])
		}
		seen[string(a.Key)]++
	}
	for i := range total {
		if n := seen[fmt.Sprintf("key-%d", i)]; n != 1 {
			t.Errorf("key-%d answered %d times, want once", i, n)
		}
	}
	if extra := testkit.ConsumeAll(t, h.bootstrap, h.out, time.Second); len(extra) != total {
		t.Errorf("%d records in the output topic, want %d: some were answered twice", len(extra), total)
	}
	h.waitAllCommitted(30 * time.Second)
	s.stop(t)
	if n := strings.Count(logs.String(), "reconnected with the new security material"); n != 1 {
		t.Errorf("%d rotations, want 1", n)
	}
	assertNoSecrets(t, logs.String(), string(oldKey), string(newKey))
}

// New material that passes every local check but that the broker refuses — a client certificate from a
// CA the broker does not trust — is not swapped in: the sidecar keeps answering on the old certificate,
// logs and counts the refusal, and takes the next change of the files.
func TestRotationOntoMaterialTheBrokerRefusesKeepsTheOldClients(t *testing.T) {
	sec := testkit.Security(t)
	ca := sec.CA(t)
	goodCert, goodKey := ca.Issue(t, "sidecar-good", testkit.CertOptions{})
	strangerCA := testkit.NewCA(t, "a CA the broker does not know")
	badCert, badKey := strangerCA.Issue(t, "sidecar-stranger", testkit.CertOptions{})
	renewedCert, renewedKey := ca.Issue(t, "sidecar-renewed", testkit.CertOptions{})
	vol := newSecretVolume(t, map[string][]byte{"tls.crt": goodCert, "tls.key": goodKey})

	h := newHarness(t, "seldon", 2)
	for k, v := range map[string]string{
		"KAFKA_BROKER": sec.MTLS, "KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_CERT_FILE": sec.CACertFile,
		"KAFKA_SSL_CLIENT_CERT_FILE": vol.path("tls.crt"), "KAFKA_SSL_CLIENT_KEY_FILE": vol.path("tls.key"),
		"KAFKA_SECURITY_RELOAD_INTERVAL": "200ms",
	} {
		h.env[k] = v
	}
	s, logs := h.startCaptured()
	total := 0
	roundTrip := func(n int) {
		t.Helper()
		recs := make([]testkit.Record, n)
		for i := range recs {
			recs[i] = testkit.Record{Key: []byte(fmt.Sprintf("key-%d", total+i)), Value: request("seldon", total+i)}
		}
		total += n
		testkit.Produce(t, h.bootstrap, h.in, recs)
		testkit.Consume(t, h.bootstrap, h.out, total, 60*time.Second)
	}
	roundTrip(50)

	vol.update(map[string][]byte{"tls.crt": badCert, "tls.key": badKey})
	waitFor(t, "the refusal in the log", 60*time.Second, func() bool {
		return strings.Contains(logs.String(), "the broker does not accept the new security material")
	})
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "the broker does not accept") && !strings.Contains(l, "SSL") {
			t.Errorf("the refusal does not say why (the TLS handshake): %s", l)
		}
	}
	if metric(t, s, "seldon_kafka_security_rotations_refused_total") != 1 {
		t.Error("the refusal is not counted in seldon_kafka_security_rotations_refused_total")
	}
	roundTrip(50) // still answering, on the old certificate
	if strings.Contains(logs.String(), "reconnected with the new security material") {
		t.Fatal("the sidecar swapped in material the broker refuses")
	}
	if getStatus(t, "http://"+s.health+"/ready") != 200 {
		t.Error("/ready is not 200 after a refused rotation")
	}

	// A good renewal afterwards is taken.
	vol.update(map[string][]byte{"tls.crt": renewedCert, "tls.key": renewedKey})
	waitFor(t, "the rotation onto the renewed certificate", 60*time.Second, func() bool {
		return strings.Contains(logs.String(), "reconnected with the new security material")
	})
	roundTrip(50)
	h.waitAllCommitted(30 * time.Second)
	s.stop(t)
	assertNoSecrets(t, logs.String(), string(goodKey), string(badKey), string(renewedKey))
}
