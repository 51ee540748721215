package tls_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/seldon-kafka/sidecar/tls"
)

// envByTag maps each of tls.Env's variables to its field.
func envByTag() map[string]int {
	out := map[string]int{}
	typ := reflect.TypeOf(tls.Env{})
	for i := range typ.NumField() {
		out[typ.Field(i).Tag.Get("envconfig")] = i
	}
	return out
}

func TestEveryVariableNamedInErrorsIsOneEnvReads(t *testing.T) {
	tags := envByTag()
	for _, v := range []string{tls.VarProtocol, tls.VarCACert, tls.VarCACertFile, tls.VarClientCert, tls.VarClientCertFile,
		tls.VarClientKey, tls.VarClientKeyFile, tls.VarClientKeyPass, tls.VarClientKeyPassFile, tls.VarVerifyHostname,
		tls.VarSASLMechanism, tls.VarSASLUsername, tls.VarSASLPassword, tls.VarSASLPasswordFile, tls.VarOAuthClientID,
		tls.VarOAuthSecret, tls.VarOAuthSecretFile, tls.VarOAuthTokenURL, tls.VarOAuthScope, tls.VarOAuthExtensions} {
		if _, ok := tags[v]; !ok {
			t.Errorf("%s is not a tag of tls.Env: an error would name a variable nobody reads", v)
		}
	}
	if len(tags) != 20 {
		t.Errorf("tls.Env has %d variables, the constants 20", len(tags))
	}
}

// The worked configurations in examples/security pass the sidecar's checks, and name no security
// variable it does not know.
func TestSecurityExamplesPassTheChecks(t *testing.T) {
	files, err := filepath.Glob("../examples/security/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	tags := envByTag()
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(raw), "\n---\n") {
			var sdep struct {
				Spec struct {
					Predictors []struct {
						SvcOrchSpec struct {
							Env []struct {
								Name      string `json:"name"`
								Value     string `json:"value"`
								ValueFrom any    `json:"valueFrom"`
							} `json:"env"`
						} `json:"svcOrchSpec"`
					} `json:"predictors"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal([]byte(doc), &sdep); err != nil {
				t.Fatalf("%s document %d: %v", file, i+1, err)
			}
			if len(sdep.Spec.Predictors) == 0 || len(sdep.Spec.Predictors[0].SvcOrchSpec.Env) == 0 {
				t.Fatalf("%s document %d: no svcOrchSpec env", file, i+1)
			}
			var env tls.Env
			v := reflect.ValueOf(&env).Elem()
			for _, e := range sdep.Spec.Predictors[0].SvcOrchSpec.Env {
				value := e.Value
				if e.ValueFrom != nil {
					value = "from-a-secret"
				}
				field, known := tags[e.Name]
				switch {
				case known:
					v.Field(field).SetString(value)
				case strings.HasPrefix(e.Name, "KAFKA_SSL_") || strings.HasPrefix(e.Name, "KAFKA_SASL_"):
					t.Errorf("%s: %s is not a variable the sidecar reads", file, e.Name)
				}
			}
			if env.Protocol == "" || strings.EqualFold(env.Protocol, "PLAINTEXT") {
				t.Errorf("%s document %d: not a secured configuration", file, i+1)
			}
			if _, err := tls.Parse(env); err != nil {
				t.Errorf("%s document %d: %v", file, i+1, err)
			}
		}
	}
}
