// Command kedatls loads TLS client material with KEDA v2.21's own code, the call its kafka and
// apache-kafka scalers make (pkg/scalers/kafka_scaler.go, getKafkaClientConfig:
// kedautil.NewTLSConfigWithPassword(cert, key, keyPassword, ca, unsafeSsl)).
//
// It is a module of its own so that the generator's module need not require what KEDA's pkg/util
// imports; keda's TestKEDALoadsTheKeyTheTriggerAuthenticationGives runs it. It reads a JSON array of
// cases on stdin and writes, for each, the error KEDA returns ("" when it loads a client certificate).
package main

import (
	"encoding/json"
	"fmt"
	"os"

	kedautil "github.com/kedacore/keda/v2/pkg/util"
)

// tlsCase holds the authentication parameters KEDA resolved from a TriggerAuthentication.
type tlsCase struct {
	Name        string `json:"name"`
	CA          string `json:"ca"`
	Cert        string `json:"cert"`
	Key         string `json:"key"`
	KeyPassword string `json:"keyPassword"`
}

type result struct {
	Name  string `json:"name"`
	Error string `json:"error"`
}

func main() {
	var cases []tlsCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintln(os.Stderr, "kedatls: reading the cases:", err)
		os.Exit(2)
	}
	out := make([]result, 0, len(cases))
	for _, c := range cases {
		r := result{Name: c.Name}
		cfg, err := kedautil.NewTLSConfigWithPassword(c.Cert, c.Key, c.KeyPassword, c.CA, false)
		switch {
		case err != nil:
			r.Error = err.Error()
		case len(cfg.Certificates) != 1:
			r.Error = fmt.Sprintf("KEDA loaded %d client certificates, want 1", len(cfg.Certificates))
		}
		out = append(out, r)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "kedatls:", err)
		os.Exit(2)
	}
}
