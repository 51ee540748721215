package executor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/executor/registry"
	"github.com/seldon-kafka/sidecar/internal/testkit"
	"github.com/seldon-kafka/sidecar/protocols"
)

func TestSchemaRegistrySettingsNameTheBadVariable(t *testing.T) {
	ca := testkit.NewCA(t, "registry-ca")
	cert, key := ca.Issue(t, "sidecar", testkit.CertOptions{})
	const url = "https://registry:8081"
	for _, tc := range []struct {
		name     string
		env      map[string]string
		wantName string
		wantMsg  string
	}{
		{"credentials without a URL", map[string]string{"SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": "u:p"}, "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "SCHEMA_REGISTRY_URL is not"},
		{"registration without a URL", map[string]string{"SCHEMA_REGISTRY_AUTO_REGISTER": "true"}, "SCHEMA_REGISTRY_AUTO_REGISTER", "off without it"},
		{"latest version without a URL", map[string]string{"SCHEMA_REGISTRY_USE_LATEST_VERSION": "yes"}, "SCHEMA_REGISTRY_USE_LATEST_VERSION", "off without it"},
		{"a URL without a scheme", map[string]string{"SCHEMA_REGISTRY_URL": "registry:8081"}, "SCHEMA_REGISTRY_URL", "http:// or https://"},
		{"an ftp URL among others", map[string]string{"SCHEMA_REGISTRY_URL": "http://a:8081, ftp://b"}, "SCHEMA_REGISTRY_URL", "http:// or https://"},
		{"credentials in the URL", map[string]string{"SCHEMA_REGISTRY_URL": "https://key:Secret-Pw@registry"}, "SCHEMA_REGISTRY_URL", "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"},
		{"user info without a password", map[string]string{"SCHEMA_REGISTRY_URL": url, "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": "just-a-key"}, "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "user:password"},
		{"user info as a value and a file", map[string]string{"SCHEMA_REGISTRY_URL": url, "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": "u:p", "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO_FILE": "/x"}, "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "not both"},
		{"user info file missing", map[string]string{"SCHEMA_REGISTRY_URL": url, "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO_FILE": "/nonexistent/user-info"}, "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO_FILE", "cannot read"},
		{"a CA for a plain http registry", map[string]string{"SCHEMA_REGISTRY_URL": "http://registry:8081", "SCHEMA_REGISTRY_SSL_CA_CERT": string(ca.CertPEM)}, "SCHEMA_REGISTRY_SSL_CA_CERT", "no https://"},
		{"a CA that is not PEM", map[string]string{"SCHEMA_REGISTRY_URL": url, "SCHEMA_REGISTRY_SSL_CA_CERT": "not a certificate"}, "SCHEMA_REGISTRY_SSL_CA_CERT", "no PEM certificate"},
		{"a client certificate without its key", map[string]string{"SCHEMA_REGISTRY_URL": url, "SCHEMA_REGISTRY_SSL_CLIENT_CERT": string(cert)}, "SCHEMA_REGISTRY_SSL_CLIENT_KEY", "needs its private key"},
		{"a key of another certificate", map[string]string{"SCHEMA_REGISTRY_URL": url, "SCHEMA_REGISTRY_SSL_CLIENT_CERT": string(cert), "SCHEMA_REGISTRY_SSL_CLIENT_KEY": string(ca.KeyPEM)}, "SCHEMA_REGISTRY_SSL_CLIENT_KEY", "does not belong"},
		{"an encrypted key without its password", map[string]string{"SCHEMA_REGISTRY_URL": url, "SCHEMA_REGISTRY_SSL_CLIENT_CERT": string(cert),
			"SCHEMA_REGISTRY_SSL_CLIENT_KEY": string(testkit.EncryptKeyPKCS8(t, key, "Key-Pass-9", "aes-256-cbc"))}, "SCHEMA_REGISTRY_SSL_CLIENT_KEY", "set SCHEMA_REGISTRY_SSL_CLIENT_KEY_PASS"},
		{"registering and the latest version both", map[string]string{"SCHEMA_REGISTRY_URL": url, "SCHEMA_REGISTRY_AUTO_REGISTER": "true", "SCHEMA_REGISTRY_USE_LATEST_VERSION": "true"}, "SCHEMA_REGISTRY_USE_LATEST_VERSION", "pick one"},
		{"registering, as people do not write a switch", map[string]string{"SCHEMA_REGISTRY_URL": url, "SCHEMA_REGISTRY_AUTO_REGISTER": "maybe"}, "SCHEMA_REGISTRY_AUTO_REGISTER", "not on or off"},
		{"an unknown subject strategy", map[string]string{"SCHEMA_REGISTRY_URL": url, "SCHEMA_REGISTRY_SUBJECT_NAME_STRATEGY": "TopicName"}, "SCHEMA_REGISTRY_SUBJECT_NAME_STRATEGY", "RecordNameStrategy"},
		{"no cache", map[string]string{"SCHEMA_REGISTRY_URL": url, "SCHEMA_REGISTRY_CACHE_CAPACITY": "0"}, "SCHEMA_REGISTRY_CACHE_CAPACITY", "1 to 1000000"},
		{"a cache of words", map[string]string{"SCHEMA_REGISTRY_URL": url, "SCHEMA_REGISTRY_CACHE_CAPACITY": "lots"}, "SCHEMA_REGISTRY_CACHE_CAPACITY", "not a whole number"},
		{"no time for a request", map[string]string{"SCHEMA_REGISTRY_URL": url, "SCHEMA_REGISTRY_REQUEST_TIMEOUT": "0s"}, "SCHEMA_REGISTRY_REQUEST_TIMEOUT", "positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.env)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("LoadConfig error %v, want a *ConfigError naming %s", err, tc.wantName)
			}
			if ce.Name != tc.wantName || !strings.Contains(ce.Msg, tc.wantMsg) {
				t.Errorf("error %v, want %s saying %q", err, tc.wantName, tc.wantMsg)
			}
			for _, secret := range []string{"Secret-Pw", "just-a-key", "Key-Pass-9", "PRIVATE KEY"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows a secret: %v", err)
				}
			}
		})
	}
}

func TestSchemaRegistrySettingsAreLoaded(t *testing.T) {
	if c, err := load(t, nil); err != nil || c.SchemaRegistry != nil {
		t.Fatalf("without SCHEMA_REGISTRY_URL: wire format %+v, %v; want off", c.SchemaRegistry, err)
	}

	ca := testkit.NewCA(t, "registry-ca")
	cert, key := ca.Issue(t, "sidecar", testkit.CertOptions{})
	dir := t.TempDir()
	userInfo := filepath.Join(dir, "user-info")
	if err := os.WriteFile(userInfo, []byte("API_KEY:api/secret:with-colon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := load(t, map[string]string{
		"SCHEMA_REGISTRY_URL":                       "https://a.registry:8081,https://b.registry:8081",
		"SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO_FILE": userInfo,
		"SCHEMA_REGISTRY_SSL_CA_CERT":               string(ca.CertPEM),
		"SCHEMA_REGISTRY_SSL_CLIENT_CERT":           string(cert),
		"SCHEMA_REGISTRY_SSL_CLIENT_KEY":            string(testkit.EncryptKeyPKCS8(t, key, "Key-Pass-9", "aes-256-cbc")),
		"SCHEMA_REGISTRY_SSL_CLIENT_KEY_PASS":       "Key-Pass-9",
		"SCHEMA_REGISTRY_USE_LATEST_VERSION":        "on",
		"SCHEMA_REGISTRY_SUBJECT_NAME_STRATEGY":     "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy",
		"SCHEMA_REGISTRY_CACHE_CAPACITY":            "50",
		"SCHEMA_REGISTRY_REQUEST_TIMEOUT":           "3s",
	}, "--transport=grpc", "--protocol=v2")
	if err != nil {
		t.Fatal(err)
	}
	o := c.SchemaRegistry
	if o == nil {
		t.Fatal("the wire format is off")
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"URL", o.URL, "https://a.registry:8081,https://b.registry:8081"},
		{"user info, the file's line end dropped", o.UserInfo.Reveal(), "API_KEY:api/secret:with-colon"},
		{"a client certificate", o.TLS != nil && len(o.TLS.Certificates) == 1 && o.TLS.RootCAs != nil, true},
		{"use the latest version", o.UseLatest, true},
		{"auto register (off by default)", o.AutoRegister, false},
		{"strategy", o.Strategy, registry.TopicRecordName},
		{"cache capacity", o.CacheCapacity, 50},
		{"timeout", o.Timeout, 3 * time.Second},
		{"transport", o.Transport, "grpc"},
		{"protocol", o.Protocol, protocols.V2},
		{"the answers' topic", o.OutputTopic, "answers"},
		{"attempts", o.Attempts, 4},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.what, ch.got, ch.want)
		}
	}

	c, err = load(t, map[string]string{"SCHEMA_REGISTRY_URL": "http://registry:8081"})
	if err != nil {
		t.Fatal(err)
	}
	if o := c.SchemaRegistry; o.Strategy != registry.TopicName || o.AutoRegister || o.UseLatest || o.CacheCapacity != 1000 || o.Timeout != 10*time.Second || o.TLS != nil || o.UserInfo.IsSet() {
		t.Errorf("defaults: %+v", o)
	}
}
