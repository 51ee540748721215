package keda

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"

	"github.com/seldon-kafka/sidecar/internal/testkit"
)

// kedaTLSDir is the module whose program loads TLS material with KEDA's own code.
var kedaTLSDir = filepath.Join("testdata", "kedatls")

// kedaTLSCase is the input of testdata/kedatls: the parameters KEDA resolves from a TriggerAuthentication.
type kedaTLSCase struct {
	Name        string `json:"name"`
	CA          string `json:"ca"`
	Cert        string `json:"cert"`
	Key         string `json:"key"`
	KeyPassword string `json:"keyPassword"`
}

// TestKEDALoadsTheKeyTheTriggerAuthenticationGives generates the KEDA objects for the Strimzi example
// (examples/keda/cifar10.yaml) and for a key password outside a Strimzi Secret, fills the Secrets the
// TriggerAuthentication names with keys made here, as Strimzi (or a user) fills them, and has KEDA
// v2.21's own code load the client key from what the TriggerAuthentication gives it: the call its kafka
// scalers make, kedautil.NewTLSConfigWithPassword (run by testdata/kedatls).
func TestKEDALoadsTheKeyTheTriggerAuthenticationGives(t *testing.T) {
	ca := testkit.NewCA(t, "clients-ca")
	certEC, keyPKCS8 := ca.Issue(t, "seldon-user", testkit.CertOptions{})
	certRSA, keyPKCS1, keyRSAPKCS8 := issueRSA(t, ca, "seldon-user-rsa")
	const p12Pass = "p12-pass-Qx7"   // Strimzi's user.password: the password of user.p12, not of user.key
	const keyPass = "key-pass-Zq81x" // the password of an encrypted key
	encPKCS8 := testkit.EncryptKeyPKCS8(t, keyPKCS8, keyPass, "aes-256-cbc")

	example, err := os.ReadFile(filepath.Join("..", "examples", "keda", "cifar10.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	strimzi := string(example)
	// The same example with the key password under another key of the Secret: not Strimzi's pair.
	ownSecret := strings.Replace(strimzi, "key: user.password", "key: key-password", 1)
	if ownSecret == strimzi {
		t.Fatal("the example no longer reads KAFKA_SSL_CLIENT_KEY_PASS from key user.password")
	}

	cases := []struct {
		name         string
		manifest     string
		mode         KeyPasswordMode
		cert, key    []byte
		password     string // what the Secret holds under the password key
		wantPassword bool   // whether the TriggerAuthentication gives keyPassword
		wantKEDA     string // "" when KEDA loads the key, or part of its error
	}{
		{name: "Strimzi example with its unencrypted PKCS#8 key: keyPassword left out, KEDA loads the key",
			manifest: strimzi, cert: certEC, key: keyPKCS8, password: p12Pass},
		{name: "Strimzi example with an unencrypted PKCS#1 RSA key: keyPassword left out, KEDA loads the key",
			manifest: strimzi, cert: certRSA, key: keyPKCS1, password: p12Pass},
		{name: "Strimzi example with an unencrypted PKCS#8 RSA key: keyPassword left out, KEDA loads the key",
			manifest: strimzi, cert: certRSA, key: keyRSAPKCS8, password: p12Pass},
		{name: "Strimzi example kept with --key-password=keep, encrypted PKCS#8 key: KEDA decrypts it",
			manifest: strimzi, mode: KeyPasswordKeep, cert: certEC, key: encPKCS8, password: keyPass, wantPassword: true},
		{name: "Strimzi example kept with --key-password=keep, unencrypted key: what KEDA refuses",
			manifest: strimzi, mode: KeyPasswordKeep, cert: certEC, key: keyPKCS8, password: p12Pass, wantPassword: true,
			wantKEDA: "pkcs8: only PKCS #5 v2.0 supported"},
		{name: "a key password outside Strimzi's pair is kept: KEDA decrypts the encrypted PKCS#8 key",
			manifest: ownSecret, cert: certEC, key: encPKCS8, password: keyPass, wantPassword: true},
		{name: "--key-password=drop leaves it out: KEDA loads an unencrypted key",
			manifest: ownSecret, mode: KeyPasswordDrop, cert: certEC, key: keyPKCS8, password: keyPass},
	}

	var in []kedaTLSCase
	for _, tc := range cases {
		var input Input
		if err := input.Read("cifar10.yaml", []byte(tc.manifest)); err != nil {
			t.Fatal(err)
		}
		res := Generate(input, Options{KeyPassword: tc.mode})
		if res.HasErrors() {
			t.Fatalf("%s: generate:\n%s", tc.name, diagText(res))
		}
		if tc.mode == KeyPasswordAuto && !tc.wantPassword && !strings.Contains(diagText(res), "Strimzi KafkaUser") {
			t.Errorf("%s: no diagnostic says why keyPassword is left out:\n%s", tc.name, diagText(res))
		}
		secrets := map[string]map[string]string{
			"seldon-cluster-ca-cert": {"ca.crt": string(ca.CertPEM)},
			"seldon-user": {"user.crt": string(tc.cert), "user.key": string(tc.key),
				"user.password": tc.password, "key-password": tc.password},
		}
		params := authParamsOf(t, res, secrets)
		if _, got := params["keyPassword"]; got != tc.wantPassword {
			t.Errorf("%s: the TriggerAuthentication gives keyPassword: %v, want %v", tc.name, got, tc.wantPassword)
		}
		in = append(in, kedaTLSCase{Name: tc.name, CA: params["ca"], Cert: params["cert"], Key: params["key"], KeyPassword: params["keyPassword"]})
	}

	got := runKEDATLS(t, in)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg, ok := got[tc.name]
			switch {
			case !ok:
				t.Fatalf("no answer from KEDA's code")
			case tc.wantKEDA == "" && msg != "":
				t.Errorf("KEDA cannot load the key the TriggerAuthentication gives: %s", msg)
			case tc.wantKEDA != "" && !strings.Contains(msg, tc.wantKEDA):
				t.Errorf("KEDA says %q, want an error containing %q", msg, tc.wantKEDA)
			}
		})
	}
}

// TestKEDATLSHelperUsesTheGeneratorsKEDA checks that testdata/kedatls builds with the KEDA release this
// module builds against, so the key test above proves what the generated objects meet.
func TestKEDATLSHelperUsesTheGeneratorsKEDA(t *testing.T) {
	const mod = "github.com/kedacore/keda/v2"
	version := func(dir string) string {
		cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", mod)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list -m %s in %s: %v\n%s", mod, dir, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got, want := version(kedaTLSDir), version("."); got != want {
		t.Errorf("%s builds with %s %s, and this module with %s: make them agree (then go mod tidy there)", kedaTLSDir, mod, got, want)
	}
}

// authParamsOf resolves the TriggerAuthentication's secretTargetRefs as KEDA does, from the Secrets given.
func authParamsOf(t *testing.T, res Result, secrets map[string]map[string]string) map[string]string {
	t.Helper()
	params := map[string]string{}
	for _, o := range res.Objects {
		ta, ok := o.Value.(*kedav1alpha1.TriggerAuthentication)
		if !ok {
			continue
		}
		for _, r := range ta.Spec.SecretTargetRef {
			v, ok := secrets[r.Name][r.Key]
			if !ok {
				t.Fatalf("TriggerAuthentication %s: Secret %s has no key %s in this test", ta.Name, r.Name, r.Key)
			}
			params[r.Parameter] = v
		}
		if len(ta.Spec.ConfigMapTargetRef) > 0 || len(ta.Spec.Env) > 0 {
			t.Fatalf("TriggerAuthentication %s: only secretTargetRef is resolved here", ta.Name)
		}
	}
	if len(params) == 0 {
		t.Fatal("no TriggerAuthentication generated")
	}
	return params
}

// runKEDATLS runs testdata/kedatls on the cases and returns KEDA's error for each by name.
func runKEDATLS(t *testing.T, in []kedaTLSCase) map[string]string {
	t.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", ".")
	cmd.Dir = kedaTLSDir
	// Its own go.mod and go.sum, whatever the caller's workspace or flags.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	cmd.Stdin = bytes.NewReader(body)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go run in %s (KEDA's pkg/util: its first run downloads and builds KEDA's dependencies): %v after %s\n%s",
			kedaTLSDir, err, time.Since(start).Round(time.Second), stderr.String())
	}
	var results []struct{ Name, Error string }
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("%s answered %q: %v", kedaTLSDir, out, err)
	}
	got := map[string]string{}
	for _, r := range results {
		got[r.Name] = r.Error
	}
	return got
}

// issueRSA makes an RSA key and a client certificate for it signed by ca, and returns the certificate
// and the key as PKCS#1 and as PKCS#8, all PEM.
func issueRSA(t *testing.T, ca *testkit.CA, cn string) (certPEM, pkcs1PEM, pkcs8PEM []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(ca.KeyPEM)
	if block == nil {
		t.Fatal("the CA's key is not PEM")
	}
	caKey, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})
}
