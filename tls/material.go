package tls

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	cryptotls "crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ExpiryWarning is how close to its end a certificate's validity must be for a warning.
const ExpiryWarning = 14 * 24 * time.Hour

// Material is the security material, read and checked: what the clients are built from.
type Material struct {
	Settings Settings

	caPEM   []byte // the CA certificates, re-encoded; nil for the system trust store
	caCerts []*x509.Certificate
	certPEM []byte // the client certificate and its chain, re-encoded
	leaf    *x509.Certificate
	key     Secret // the private key block as given (encrypted or not)
	keyPass Secret // set only when the key is encrypted
	// pair is the client certificate with its key opened, for a Go TLS client (see ClientTLS); nil
	// without mTLS, or when the key's encryption is left to librdkafka. A pointer: a printed Material
	// shows an address, not key material.
	pair     *cryptotls.Certificate
	password Secret
	oauth    Secret

	fingerprint [sha256.Size]byte

	// Warnings are problems that do not stop the sidecar: a certificate near its end, a password given
	// for a key that has none. They name variables and never hold secrets.
	Warnings []string
}

// Load reads the material the settings point to and checks it as of now: every PEM parses, the private
// key opens with its password and belongs to the client certificate, and no certificate has expired or
// is not yet valid. Certificates within ExpiryWarning of their end give a warning. Every error is an
// [*Error] naming the variable.
func Load(s Settings, now time.Time) (*Material, error) {
	m := &Material{Settings: s}
	files, fp, err := readFiles(s)
	if err != nil {
		return nil, err
	}
	m.fingerprint = fp
	read := func(src Source) ([]byte, error) {
		if src.IsFile() {
			return files[src.Var], nil
		}
		return src.Read()
	}

	if s.Protocol.TLS() {
		if err := m.loadTLS(read, now); err != nil {
			return nil, err
		}
	}
	if s.Protocol.SASL() {
		var err error
		switch s.Mechanism {
		case OAuthBearer:
			m.oauth, err = readSecret(read, s.OAuth.Secret)
		default:
			m.password, err = readSecret(read, s.Password)
		}
		if err != nil {
			return nil, err
		}
	}
	return m, nil
}

// readFiles reads every file-based piece of material once, and hashes what it read.
func readFiles(s Settings) (map[string][]byte, [sha256.Size]byte, error) {
	out := map[string][]byte{}
	h := sha256.New()
	for _, src := range s.Files() {
		b, err := src.Read()
		if err != nil {
			return nil, [sha256.Size]byte{}, err
		}
		out[src.Var] = b
		fmt.Fprintf(h, "%s\x00%d\x00", src.Var, len(b))
		h.Write(b)
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return out, sum, nil
}

// readSecret reads a password or client secret. A file's one trailing line end is not part of it
// (`echo secret > file` writes one).
func readSecret(read func(Source) ([]byte, error), src Source) (Secret, error) {
	b, err := read(src)
	if err != nil {
		return Secret{}, err
	}
	v := string(b)
	if src.IsFile() {
		v = strings.TrimSuffix(strings.TrimSuffix(v, "\n"), "\r")
	}
	if v == "" {
		if src.IsFile() {
			return Secret{}, errorf(src.Var, src.Path+" is empty")
		}
		return Secret{}, errorf(src.Var, "empty")
	}
	return NewSecret(v), nil
}

func (m *Material) loadTLS(read func(Source) ([]byte, error), now time.Time) error {
	s := m.Settings
	if s.CA.IsSet() {
		b, err := read(s.CA)
		if err != nil {
			return err
		}
		certs, blocks, err := parseCerts(s.CA, b)
		if err != nil {
			return err
		}
		live := 0
		for i, c := range certs {
			switch {
			case now.After(c.NotAfter):
				m.warn(s.CA.Var, fmt.Sprintf("CA certificate %d of %d (%s) expired on %s", i+1, len(certs), subject(c), day(c.NotAfter)))
			case c.NotAfter.Sub(now) < ExpiryWarning:
				m.warn(s.CA.Var, fmt.Sprintf("CA certificate %d of %d (%s) expires on %s", i+1, len(certs), subject(c), day(c.NotAfter)))
				live++
			default:
				live++
			}
		}
		if live == 0 {
			return errorf(s.CA.Var, "every CA certificate has expired: the broker's certificate cannot be verified")
		}
		m.caCerts, m.caPEM = certs, encodeBlocks(blocks)
	}
	if !s.ClientCert.IsSet() {
		return nil
	}

	b, err := read(s.ClientCert)
	if err != nil {
		return err
	}
	certs, blocks, err := parseCerts(s.ClientCert, b)
	if err != nil {
		return err
	}
	leaf := certs[0]
	switch {
	case now.After(leaf.NotAfter):
		return errorf(s.ClientCert.Var, fmt.Sprintf("the client certificate (%s) expired on %s", subject(leaf), stamp(leaf.NotAfter)))
	case now.Before(leaf.NotBefore):
		return errorf(s.ClientCert.Var, fmt.Sprintf("the client certificate (%s) is not valid before %s", subject(leaf), stamp(leaf.NotBefore)))
	case leaf.NotAfter.Sub(now) < ExpiryWarning:
		m.warn(s.ClientCert.Var, fmt.Sprintf("the client certificate (%s) expires on %s", subject(leaf), stamp(leaf.NotAfter)))
	}
	if len(leaf.ExtKeyUsage) > 0 && !hasClientAuth(leaf) {
		m.warn(s.ClientCert.Var, fmt.Sprintf("the client certificate (%s) is not for client authentication (extended key usage): the broker may refuse it", subject(leaf)))
	}
	for i, c := range certs[1:] {
		if now.After(c.NotAfter) {
			m.warn(s.ClientCert.Var, fmt.Sprintf("chain certificate %d (%s) expired on %s", i+2, subject(c), day(c.NotAfter)))
		}
	}
	m.leaf, m.certPEM = leaf, encodeBlocks(blocks)

	keyPEM, err := read(s.ClientKey)
	if err != nil {
		return err
	}
	var pass []byte
	if s.KeyPassword.IsSet() {
		p, err := readSecret(read, s.KeyPassword)
		if err != nil {
			return err
		}
		pass = []byte(p.Reveal())
	}
	return m.loadKey(keyPEM, pass)
}

// loadKey finds the private key, opens it with pass when it is encrypted, and checks that it belongs to
// the client certificate.
func (m *Material) loadKey(data, pass []byte) error {
	s := m.Settings
	block := findKey(data)
	if block == nil {
		return errorf(s.ClientKey.Var, "no PEM private key found (want a PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY or ENCRYPTED PRIVATE KEY block)")
	}
	// The password's variable is the key's with _PASS: KAFKA_SSL_CLIENT_KEY_PASS for the Kafka
	// clients, the same shape for other clients of this package's material.
	keyVar := strings.TrimSuffix(s.ClientKey.Var, "_FILE")
	passVar := s.KeyPassword.Var
	if passVar == "" || !s.KeyPassword.IsSet() {
		passVar = keyVar + "_PASS"
	}
	// x509's legacy PEM encryption functions are deprecated (the format is weak), but "Proc-Type:
	// 4,ENCRYPTED" keys are still what openssl genrsa -aes256 and older tooling write.
	legacy := x509.IsEncryptedPEMBlock(block)
	encrypted := legacy || block.Type == "ENCRYPTED PRIVATE KEY"
	if encrypted && len(pass) == 0 {
		return errorf(s.ClientKey.Var, "the private key is encrypted: set "+keyVar+"_PASS (or "+keyVar+"_PASS_FILE)")
	}
	if !encrypted && len(pass) > 0 {
		m.warn(passVar, "set, but the private key in "+s.ClientKey.Var+" is not encrypted: the password is not used")
	}

	var key any
	var err error
	switch {
	case legacy:
		der, derr := x509.DecryptPEMBlock(block, pass)
		if derr != nil {
			if errors.Is(derr, x509.IncorrectPasswordError) {
				return errorf(passVar, "wrong password for the private key in "+s.ClientKey.Var)
			}
			return errorf(s.ClientKey.Var, "the encrypted private key cannot be read: "+derr.Error())
		}
		key, err = parsePlainKey(block.Type, der)
		if err != nil {
			// DecryptPEMBlock's padding check passes by chance about once in 256 wrong passwords.
			return errorf(passVar, "wrong password for the private key in "+s.ClientKey.Var)
		}
	case block.Type == "ENCRYPTED PRIVATE KEY":
		key, err = decryptPKCS8(block.Bytes, pass)
		switch {
		case errors.Is(err, errWrongPassword):
			return errorf(passVar, "wrong password for the private key in "+s.ClientKey.Var)
		case errors.Is(err, errUnsupportedScheme):
			// OpenSSL (librdkafka) opens more schemes than this package; it checks the key when the clients
			// are made, which still stops the sidecar at start.
			m.warn(s.ClientKey.Var, "the private key's encryption ("+err.Error()+") is checked by librdkafka when the clients are made, not here")
			m.key, m.keyPass = NewSecret(string(pem.EncodeToMemory(block))), NewSecret(string(pass))
			return nil
		case err != nil:
			return errorf(s.ClientKey.Var, "the encrypted private key cannot be read: "+err.Error())
		}
	default:
		key, err = parsePlainKey(block.Type, block.Bytes)
		if err != nil {
			return errorf(s.ClientKey.Var, "the private key does not parse: "+err.Error())
		}
	}
	if !keyMatches(key, m.leaf.PublicKey) {
		return errorf(s.ClientKey.Var, fmt.Sprintf("the private key does not belong to the client certificate in %s (%s)", s.ClientCert.Var, subject(m.leaf)))
	}
	m.key = NewSecret(string(pem.EncodeToMemory(block)))
	m.pair = &cryptotls.Certificate{Certificate: m.chainDER(), PrivateKey: key, Leaf: m.leaf}
	if encrypted {
		m.keyPass = NewSecret(string(pass))
	}
	return nil
}

func findKey(data []byte) *pem.Block {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil
		}
		if strings.HasSuffix(block.Type, "PRIVATE KEY") {
			return block
		}
	}
}

func parsePlainKey(typ string, der []byte) (any, error) {
	switch typ {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(der)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(der)
	case "PRIVATE KEY":
		return x509.ParsePKCS8PrivateKey(der)
	}
	return nil, fmt.Errorf("PEM block %q is not a supported private key", typ)
}

func keyMatches(key any, pub crypto.PublicKey) bool {
	var kp crypto.PublicKey
	switch k := key.(type) {
	case *rsa.PrivateKey:
		kp = k.Public()
	case *ecdsa.PrivateKey:
		kp = k.Public()
	case ed25519.PrivateKey:
		kp = k.Public()
	default:
		return false
	}
	eq, ok := kp.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(pub)
}

// parseCerts returns every CERTIFICATE block of data, parsed; other blocks (a key in a combined file)
// are skipped. No certificate at all is an error.
func parseCerts(src Source, data []byte) ([]*x509.Certificate, []*pem.Block, error) {
	var certs []*x509.Certificate
	var blocks []*pem.Block
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, nil, errorf(src.Var, fmt.Sprintf("certificate %d does not parse: %v", len(certs)+1, err))
		}
		certs = append(certs, c)
		blocks = append(blocks, &pem.Block{Type: block.Type, Bytes: block.Bytes})
	}
	if len(certs) == 0 {
		what := "no PEM certificate found (want -----BEGIN CERTIFICATE-----)"
		if bytes.Contains(data, []byte("PRIVATE KEY")) {
			what = "no PEM certificate found: it holds a private key, not a certificate"
		}
		return nil, nil, errorf(src.Var, what)
	}
	return certs, blocks, nil
}

func encodeBlocks(blocks []*pem.Block) []byte {
	var b bytes.Buffer
	for _, bl := range blocks {
		_ = pem.Encode(&b, bl)
	}
	return b.Bytes()
}

func hasClientAuth(c *x509.Certificate) bool {
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

func subject(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return "CN=" + c.Subject.CommonName
	}
	return c.Subject.String()
}

func day(t time.Time) string   { return t.UTC().Format("2006-01-02") }
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (m *Material) warn(v, msg string) { m.Warnings = append(m.Warnings, v+": "+msg) }

// Fingerprint is a hash of the file-based material as read by Load: a change on disk changes it.
func (m *Material) Fingerprint() [sha256.Size]byte { return m.fingerprint }

// chainDER is the client certificate and its chain, DER, as crypto/tls takes them.
func (m *Material) chainDER() [][]byte {
	var out [][]byte
	for rest := m.certPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return out
		}
		out = append(out, b.Bytes)
	}
}

// ClientTLS is a Go TLS client configuration with the material: its CA certificates as the only
// trusted roots (the system's when there are none) and, with mTLS, the client certificate and its
// opened key. It is for clients other than librdkafka; a key whose encryption only librdkafka reads
// (see Load's warning) is an error naming the key's variable.
func (m *Material) ClientTLS() (*cryptotls.Config, error) {
	c := &cryptotls.Config{MinVersion: cryptotls.VersionTLS12}
	if len(m.caCerts) > 0 {
		c.RootCAs = x509.NewCertPool()
		for _, ca := range m.caCerts {
			c.RootCAs.AddCert(ca)
		}
	}
	if m.leaf != nil {
		if m.pair == nil {
			return nil, errorf(m.Settings.ClientKey.Var, "the private key's encryption cannot be read here: give it unencrypted or as PKCS#8 with PBES2 (openssl pkcs8 -topk8 -v2 aes-256-cbc)")
		}
		c.Certificates = []cryptotls.Certificate{*m.pair}
	}
	return c, nil
}

// ClientCertificate is the client certificate, or nil without mTLS.
func (m *Material) ClientCertificate() *x509.Certificate { return m.leaf }

// Properties are the librdkafka properties for the material, the same for every client. They hold
// secrets: they go to librdkafka and nowhere else.
func (m *Material) Properties() map[string]string {
	s := m.Settings
	p := map[string]string{"security.protocol": strings.ToLower(string(s.Protocol))}
	if s.Protocol.TLS() {
		if m.caPEM != nil {
			p["ssl.ca.pem"] = string(m.caPEM)
		} else {
			// The bundled librdkafka links OpenSSL statically: "probe" finds the system's CA bundle.
			p["ssl.ca.location"] = "probe"
		}
		if s.VerifyHostname {
			p["ssl.endpoint.identification.algorithm"] = "https"
		} else {
			p["ssl.endpoint.identification.algorithm"] = "none"
		}
		if m.certPEM != nil {
			p["ssl.certificate.pem"] = string(m.certPEM)
			p["ssl.key.pem"] = m.key.Reveal()
			if m.keyPass.IsSet() {
				p["ssl.key.password"] = m.keyPass.Reveal()
			}
		}
	}
	if s.Protocol.SASL() {
		p["sasl.mechanism"] = string(s.Mechanism)
		if s.Mechanism == OAuthBearer {
			p["sasl.oauthbearer.method"] = "oidc"
			p["sasl.oauthbearer.client.id"] = s.OAuth.ClientID
			p["sasl.oauthbearer.client.secret"] = m.oauth.Reveal()
			p["sasl.oauthbearer.token.endpoint.url"] = s.OAuth.TokenURL
			if s.OAuth.Scope != "" {
				p["sasl.oauthbearer.scope"] = s.OAuth.Scope
			}
			if s.OAuth.Extensions != "" {
				p["sasl.oauthbearer.extensions"] = s.OAuth.Extensions
			}
		} else {
			p["sasl.username"] = s.Username
			p["sasl.password"] = m.password.Reveal()
		}
	}
	return p
}

// ManagedProperties are the librdkafka properties that the security variables own: an override of one
// (KAFKA_CONSUMER_*, KAFKA_PRODUCER_*, the properties file) would bypass the checks and the rotation.
var ManagedProperties = map[string]bool{
	"security.protocol": true,
	"ssl.ca.location":   true, "ssl.ca.pem": true,
	"ssl.certificate.location": true, "ssl.certificate.pem": true,
	"ssl.key.location": true, "ssl.key.pem": true, "ssl.key.password": true,
	"ssl.endpoint.identification.algorithm": true,
	"sasl.mechanism":                        true, "sasl.mechanisms": true,
	"sasl.username": true, "sasl.password": true,
	"sasl.oauthbearer.method": true, "sasl.oauthbearer.client.id": true, "sasl.oauthbearer.client.secret": true,
	"sasl.oauthbearer.token.endpoint.url": true, "sasl.oauthbearer.scope": true, "sasl.oauthbearer.extensions": true,
}

// Summary describes the material for the start-up log: where each piece comes from, the client
// certificate's subject and end, never a secret.
func (m *Material) Summary() []any {
	s := m.Settings
	out := []any{"protocol", string(s.Protocol)}
	if s.Protocol.TLS() {
		ca := "system trust store"
		if s.CA.IsSet() {
			ca = fmt.Sprintf("%s (%d certificates)", s.CA.Describe(), len(m.caCerts))
		}
		out = append(out, "ca", ca, "verify_hostname", s.VerifyHostname)
		if m.leaf != nil {
			out = append(out, "client_cert", s.ClientCert.Describe(), "client_subject", subject(m.leaf),
				"client_cert_expires", stamp(m.leaf.NotAfter), "client_key", s.ClientKey.Describe(),
				"client_key_encrypted", m.keyPass.IsSet())
		}
	}
	if s.Protocol.SASL() {
		out = append(out, "sasl_mechanism", string(s.Mechanism))
		if s.Mechanism == OAuthBearer {
			out = append(out, "oauth_client_id", s.OAuth.ClientID, "oauth_token_endpoint", s.OAuth.TokenURL,
				"oauth_secret", s.OAuth.Secret.Describe())
		} else {
			out = append(out, "sasl_username", s.Username, "sasl_password", s.Password.Describe())
		}
	}
	if files := s.Files(); len(files) > 0 {
		names := make([]string, len(files))
		for i, f := range files {
			names[i] = f.Var
		}
		out = append(out, "watched_files", strings.Join(names, ","))
	}
	return out
}
