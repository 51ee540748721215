// Package testkit holds helpers for integration tests that run against a real
// Kafka broker: the single-node KRaft broker started by test/kafka/broker.sh.
//
// A test finds the broker with [Bootstrap], creates its own topics with
// [Topic] or [CreateTopic] (the broker does not auto-create topics), writes
// with [Produce], reads back with [Consume] or [ConsumeAll], and checks
// consumer-group progress with [CommittedOffsets], [EndOffsets] and
// [WaitCommitted].
//
// Every helper takes a [testing.TB], marks itself as a helper, fails the test
// with t.Fatalf on any error, and registers a t.Cleanup for whatever it
// creates on the broker. Helpers open and close their own short-lived
// clients, so they may be called from parallel tests.
//
// [Security] returns the broker's secured listeners (SASL_PLAINTEXT, SSL,
// mTLS, SASL_SSL) with the test CA and SASL users broker.sh made at start;
// [NewCA] and [CA.Issue] make certificates at test time, [EncryptKeyPKCS8]
// and [EncryptKeyLegacy] encrypt keys, and [CreateACLs] adds ACLs for the
// secured listeners' principals. The package only talks
// to the broker; it does not start one:
//
//	test/kafka/broker.sh start   # once, before `go test`
//	go test ./...
//	test/kafka/broker.sh stop
package testkit

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// BootstrapEnv is the environment variable that, when set, overrides the
// bootstrap address written by test/kafka/broker.sh.
const BootstrapEnv = "KAFKA_TEST_BOOTSTRAP"

// StateDirEnv is the environment variable test/kafka/broker.sh reads for its
// state directory (default <repo root>/.kafka); Bootstrap honours it too.
const StateDirEnv = "KAFKA_STATE_DIR"

const (
	// adminTimeout bounds one admin or metadata request.
	adminTimeout = 30 * time.Second
	// readyTimeout bounds waiting for a new topic's partitions to get leaders.
	readyTimeout = 30 * time.Second
	// deliveryTimeout bounds waiting for the producer's delivery reports.
	deliveryTimeout = 60 * time.Second
	// catchUpTimeout bounds how long ConsumeAll may take to reach the end of
	// every partition for the first time.
	catchUpTimeout = 60 * time.Second
)

// Bootstrap returns the bootstrap address ("host:port") of the test broker.
//
// It uses $KAFKA_TEST_BOOTSTRAP when set; otherwise it reads the file
// "bootstrap" that test/kafka/broker.sh writes into its state directory
// ($KAFKA_STATE_DIR, or .kafka in the repository root, found by walking up
// from the working directory to the directory holding go.mod). It fails the
// test when neither is available, or when nothing listens at the address.
func Bootstrap(t testing.TB) string {
	t.Helper()
	addr, source, err := findBootstrap()
	if err != nil {
		t.Fatalf("testkit: no Kafka broker for the integration tests: %v\n"+
			"run `test/kafka/broker.sh start` in the repository root, or set %s=host:port", err, BootstrapEnv)
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("testkit: Kafka broker at %s (from %s) is not reachable: %v\n"+
			"run `test/kafka/broker.sh start` (or `test/kafka/broker.sh status` to check it)", addr, source, err)
	}
	_ = conn.Close()
	return addr
}

// findBootstrap returns the bootstrap address and where it came from.
func findBootstrap() (addr, source string, err error) {
	if v := strings.TrimSpace(os.Getenv(BootstrapEnv)); v != "" {
		return v, "$" + BootstrapEnv, nil
	}
	stateDir := os.Getenv(StateDirEnv)
	if stateDir == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", "", fmt.Errorf("%s is not set and %w", BootstrapEnv, err)
		}
		stateDir = filepath.Join(root, ".kafka")
	}
	file := filepath.Join(stateDir, "bootstrap")
	f, err := os.Open(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", "", fmt.Errorf("%s is not set and %s does not exist (broker not started?)", BootstrapEnv, file)
		}
		return "", "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			return line, file, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("reading %s: %w", file, err)
	}
	return "", "", fmt.Errorf("%s is empty", file)
}

// RepoRoot returns the nearest directory at or above the working directory
// that contains a go.mod file.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found above the working directory")
		}
		dir = parent
	}
}

// baseConfig is the configuration shared by every client testkit creates.
func baseConfig(bootstrap string) *kafka.ConfigMap {
	return &kafka.ConfigMap{
		"bootstrap.servers": bootstrap,
		// The test broker listens on 127.0.0.1 only; never try ::1.
		"broker.address.family": "v4",
		// librdkafka logs to stderr; keep it to errors (syslog level 3).
		"log_level": 3,
		"client.id": "testkit",
	}
}

// config returns baseConfig plus extra settings.
func config(bootstrap string, extra kafka.ConfigMap) *kafka.ConfigMap {
	c := baseConfig(bootstrap)
	for k, v := range extra {
		(*c)[k] = v
	}
	return c
}

// admin returns the process's admin client for bootstrap. One client per broker serves every helper
// for the life of the test binary: the polling helpers (WaitCommitted, EndOffsets in a wait loop) would
// otherwise make and destroy librdkafka clients many times a second.
func admin(t testing.TB, bootstrap string) *kafka.AdminClient {
	t.Helper()
	a, err := sharedAdmin(bootstrap)
	if err != nil {
		t.Fatalf("testkit: creating admin client for %s: %v", bootstrap, err)
	}
	return a
}

var (
	adminsMu sync.Mutex
	admins   = map[string]*kafka.AdminClient{}
)

// CloseAdmin closes the shared admin client for bootstrap, for a test that stops a broker of its own:
// otherwise the client would go on trying to reach it for the rest of the test binary.
func CloseAdmin(bootstrap string) {
	adminsMu.Lock()
	defer adminsMu.Unlock()
	if a := admins[bootstrap]; a != nil {
		a.Close()
		delete(admins, bootstrap)
	}
}

func sharedAdmin(bootstrap string) (*kafka.AdminClient, error) {
	adminsMu.Lock()
	defer adminsMu.Unlock()
	if a := admins[bootstrap]; a != nil {
		return a, nil
	}
	a, err := kafka.NewAdminClient(baseConfig(bootstrap))
	if err != nil {
		return nil, err
	}
	admins[bootstrap] = a
	return a, nil
}
