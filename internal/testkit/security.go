package testkit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// SecurityEnv is how to reach the test broker's secured listeners. test/kafka/broker.sh writes these
// into <state dir>/env; a variable of the same name in the process environment wins (for a broker
// started elsewhere).
type SecurityEnv struct {
	SASLPlaintext string // SASL_PLAINTEXT: PLAIN, SCRAM-SHA-512, OAUTHBEARER (unsecured JWTs)
	SSL           string // SSL, server authentication only
	MTLS          string // SSL, client certificate required
	SASLSSL       string // SASL_SSL: PLAIN, SCRAM-SHA-512

	// The test CA: it signed the broker's certificate (for 127.0.0.1 and localhost), and the mTLS
	// listener trusts client certificates it signs.
	CACertFile, CAKeyFile string

	PlainUser, PlainPassword string // a SASL/PLAIN user
	ScramUser, ScramPassword string // a SCRAM-SHA-512 user
}

// The env file's keys, in SecurityEnv's order.
var securityKeys = []string{
	"KAFKA_TEST_SASL_PLAINTEXT_BOOTSTRAP", "KAFKA_TEST_SSL_BOOTSTRAP", "KAFKA_TEST_MTLS_BOOTSTRAP",
	"KAFKA_TEST_SASL_SSL_BOOTSTRAP", "KAFKA_TEST_CA_CERT", "KAFKA_TEST_CA_KEY",
	"KAFKA_TEST_PLAIN_USER", "KAFKA_TEST_PLAIN_PASSWORD", "KAFKA_TEST_SCRAM_USER", "KAFKA_TEST_SCRAM_PASSWORD",
}

// Security returns the test broker's secured listeners and credentials, after checking that the first
// listener accepts connections. A broker started by an older broker.sh has none: outside CI the test
// is skipped with a note to restart the broker; in CI (CI set) it fails.
func Security(t testing.TB) SecurityEnv {
	t.Helper()
	vals, file, err := readSecurityEnv()
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("testkit: %v; restart the broker (test/kafka/broker.sh restart) to run the security tests", err)
		}
		t.Fatalf("testkit: %v", err)
	}
	s := SecurityEnv{
		SASLPlaintext: vals[0], SSL: vals[1], MTLS: vals[2], SASLSSL: vals[3],
		CACertFile: vals[4], CAKeyFile: vals[5],
		PlainUser: vals[6], PlainPassword: vals[7], ScramUser: vals[8], ScramPassword: vals[9],
	}
	conn, err := net.DialTimeout("tcp", s.SASLPlaintext, 5*time.Second)
	if err != nil {
		t.Fatalf("testkit: the broker's SASL_PLAINTEXT listener %s (from %s) is not reachable: %v", s.SASLPlaintext, file, err)
	}
	_ = conn.Close()
	return s
}

func readSecurityEnv() ([]string, string, error) {
	stateDir := os.Getenv(StateDirEnv)
	if stateDir == "" {
		root, err := RepoRoot()
		if err != nil {
			return nil, "", err
		}
		stateDir = filepath.Join(root, ".kafka")
	}
	file := filepath.Join(stateDir, "env")
	fromFile := map[string]string{}
	if f, err := os.Open(file); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok {
				fromFile[k] = v
			}
		}
		_ = f.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, file, err
	}
	out := make([]string, len(securityKeys))
	for i, k := range securityKeys {
		v := os.Getenv(k)
		if v == "" {
			v = fromFile[k]
		}
		if v == "" {
			return nil, file, fmt.Errorf("%s is not set and not in %s: the broker has no secured listeners", k, file)
		}
		out[i] = v
	}
	return out, file, nil
}

// CA is the test broker's CA, to issue client certificates the mTLS listener accepts.
func (s SecurityEnv) CA(t testing.TB) *CA {
	t.Helper()
	return LoadCA(t, s.CACertFile, s.CAKeyFile)
}

// CreateACLs creates ACL bindings on the broker through bootstrap (the PLAINTEXT listener, whose
// principal is a super user) and deletes them when the test ends.
func CreateACLs(t testing.TB, bootstrap string, acls []kafka.ACLBinding) {
	t.Helper()
	a := admin(t, bootstrap)
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	res, err := a.CreateACLs(ctx, acls)
	if err != nil {
		t.Fatalf("testkit: creating ACLs: %v", err)
	}
	for i, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			t.Fatalf("testkit: creating ACL %+v: %v", acls[i], r.Error)
		}
	}
	t.Cleanup(func() {
		a := admin(t, bootstrap)
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		var filters []kafka.ACLBindingFilter
		for _, b := range acls {
			filters = append(filters, kafka.ACLBindingFilter(b))
		}
		if _, err := a.DeleteACLs(ctx, filters); err != nil {
			t.Errorf("testkit: cleanup: deleting ACLs: %v", err)
		}
	})
}
