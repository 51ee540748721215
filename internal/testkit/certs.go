package testkit

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// CA is a certificate authority made for a test: it issues client and server certificates. Keys are
// ECDSA P-256 (fast to make); PEM keys are PKCS#8.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
	key     any
}

// NewCA makes a self-signed CA valid from an hour ago for a day.
func NewCA(t testing.TB, cn string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testkit: CA key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testkit: CA certificate: %v", err)
	}
	c, _ := x509.ParseCertificate(der)
	return &CA{Cert: c, CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: pkcs8PEM(t, key), key: key}
}

// LoadCA reads a CA's certificate and key from PEM files (the test broker's, see SecurityEnv).
func LoadCA(t testing.TB, certFile, keyFile string) *CA {
	t.Helper()
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		t.Fatalf("testkit: %s or %s holds no PEM block", certFile, keyFile)
	}
	c, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatalf("testkit: %s: %v", certFile, err)
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatalf("testkit: %s: %v", keyFile, err)
	}
	return &CA{Cert: c, CertPEM: certPEM, KeyPEM: keyPEM, key: key}
}

// CertOptions shape an issued certificate; the zero value is a client certificate valid from an hour
// ago for a day.
type CertOptions struct {
	NotBefore, NotAfter time.Time
	Server              bool               // serverAuth, for 127.0.0.1 and localhost
	ExtKeyUsage         []x509.ExtKeyUsage // overrides the usage Server implies
}

// Issue makes a key and a certificate for cn signed by the CA. It returns the certificate and the
// PKCS#8 key, both PEM.
func (ca *CA) Issue(t testing.TB, cn string, o CertOptions) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testkit: key: %v", err)
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if o.Server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	if o.ExtKeyUsage != nil {
		tmpl.ExtKeyUsage = o.ExtKeyUsage
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("testkit: certificate: %v", err)
	}
	return pemBlock("CERTIFICATE", der), pkcs8PEM(t, key)
}

// EncryptKeyPKCS8 encrypts a PEM private key with openssl into a PKCS#8 "ENCRYPTED PRIVATE KEY"
// (PBES2: PBKDF2 and the cipher named, like aes-256-cbc or des3).
func EncryptKeyPKCS8(t testing.TB, keyPEM []byte, password, cipher string) []byte {
	t.Helper()
	return openssl(t, keyPEM, password, "pkcs8", "-topk8", "-v2", cipher, "-passout", "env:TESTKIT_KEY_PASS")
}

// EncryptKeyLegacy encrypts a PEM private key with openssl into the legacy PEM form ("Proc-Type:
// 4,ENCRYPTED", traditional EC/RSA structure) with AES-256-CBC.
func EncryptKeyLegacy(t testing.TB, keyPEM []byte, password string) []byte {
	t.Helper()
	return openssl(t, keyPEM, password, "ec", "-aes256", "-passout", "env:TESTKIT_KEY_PASS")
}

func openssl(t testing.TB, in []byte, password string, args ...string) []byte {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("testkit: openssl is needed to make encrypted keys: %v", err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin = bytes.NewReader(in)
	cmd.Env = append(os.Environ(), "TESTKIT_KEY_PASS="+password)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("testkit: openssl %v: %v: %s", args[0], err, stderr.String())
	}
	return out
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("testkit: serial: %v", err)
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8PEM(t testing.TB, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("testkit: marshal key: %v", err)
	}
	return pemBlock("PRIVATE KEY", der)
}

// RunOpenSSL runs openssl with args and in on its standard input, and returns its output.
func RunOpenSSL(t testing.TB, in []byte, args ...string) []byte {
	t.Helper()
	return openssl(t, in, "", args...)
}
