// Package executor is the sidecar: its configuration, and the data path that takes each request record
// from the input topic to the model and its answer to the output topic, committing only what is answered.
package executor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"google.golang.org/grpc/codes"

	"github.com/seldon-kafka/sidecar/executor/batch"
	"github.com/seldon-kafka/sidecar/executor/graph"
	"github.com/seldon-kafka/sidecar/kafka"
	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/sdep"
	"github.com/seldon-kafka/sidecar/tls"
)

// Env is the sidecar's environment, as svcOrchSpec.env sets it. The names are the legacy executor's
// where it had them.
type Env struct {
	Broker          string        `envconfig:"KAFKA_BROKER" required:"true"`
	InputTopic      string        `envconfig:"KAFKA_INPUT_TOPIC" required:"true"`
	OutputTopic     string        `envconfig:"KAFKA_OUTPUT_TOPIC" required:"true"`
	ErrorTopic      string        `envconfig:"KAFKA_ERROR_TOPIC"`
	GroupID         string        `envconfig:"KAFKA_GROUP_ID"`
	Workers         int           `envconfig:"KAFKA_WORKERS" default:"32"`
	AutoCommit      bool          `envconfig:"KAFKA_AUTO_COMMIT" default:"true"`
	CommitInterval  time.Duration `envconfig:"KAFKA_COMMIT_INTERVAL" default:"1s"`
	AutoOffsetReset string        `envconfig:"KAFKA_AUTO_OFFSET_RESET" default:"earliest"`
	FullGraph       string        `envconfig:"KAFKA_FULL_GRAPH"`
	Predictor       string        `envconfig:"ENGINE_PREDICTOR"`
	ModelTimeout    time.Duration `envconfig:"MODEL_TIMEOUT" default:"30s"`
	MaxAttempts     int           `envconfig:"MODEL_MAX_ATTEMPTS" default:"10"`
	BackoffMin      time.Duration `envconfig:"MODEL_BACKOFF_MIN" default:"100ms"`
	BackoffMax      time.Duration `envconfig:"MODEL_BACKOFF_MAX" default:"5s"`
	// RetryStatuses and RetryCodes are the HTTP statuses and gRPC codes a model call is made again for.
	RetryStatuses string `envconfig:"MODEL_RETRY_STATUSES" default:"408,429,502,503,504"`
	RetryCodes    string `envconfig:"MODEL_RETRY_CODES" default:"Unavailable,DeadlineExceeded,ResourceExhausted"`
	// RoutingInjection is the legacy executor's switch for writing the routes taken into meta.routing.
	RoutingInjection switchValue `envconfig:"SELDON_ENABLE_ROUTING_INJECTION" default:"false"`
	// BatchSize is the most records one model call carries (1: no batching); BatchWait the longest a
	// record waits for batch-mates.
	BatchSize int           `envconfig:"MODEL_BATCH_SIZE" default:"1"`
	BatchWait time.Duration `envconfig:"MODEL_BATCH_WAIT" default:"2ms"`
	// Exactly-once (see txn.go): answers, error records and input offsets committed in Kafka transactions.
	// TransactionalID defaults to <group>-<HOSTNAME>; TransactionRecords commits a transaction early.
	ExactlyOnce        switchValue `envconfig:"KAFKA_EXACTLY_ONCE" default:"false"`
	TransactionalID    string      `envconfig:"KAFKA_TRANSACTIONAL_ID"`
	TransactionRecords int         `envconfig:"KAFKA_TRANSACTION_RECORDS" default:"0"`
	Hostname           string      `envconfig:"HOSTNAME"`

	// Security: KAFKA_SECURITY_PROTOCOL, the KAFKA_SSL_* and KAFKA_SASL_* variables (see package tls).
	tls.Env
	// SecurityReload is how often file-based security material is re-read for changes; 0 never.
	SecurityReload time.Duration `envconfig:"KAFKA_SECURITY_RELOAD_INTERVAL" default:"30s"`
	// PropertiesFile holds further librdkafka properties, key=value a line (see kafka.ReadProperties).
	PropertiesFile string `envconfig:"KAFKA_PROPERTIES_FILE"`
	// Overrides are the KAFKA_CONSUMER_* and KAFKA_PRODUCER_* variables, gathered by loadEnv.
	Overrides []kafka.Override `ignored:"true"`
}

// Config is everything the sidecar runs on, parsed and checked once at start.
type Config struct {
	Brokers         string
	InputTopic      string
	OutputTopic     string
	ErrorTopic      string // where error records go; the output topic when not set
	GroupID         string
	ClientID        string
	AutoOffsetReset string
	// Workers is how many records are with the model at once. Records with the same key still go one at a
	// time, in order.
	Workers int
	// CommitInterval is how often finished offsets are committed.
	CommitInterval time.Duration
	// ExactlyOnce produces answers and error records, and commits the input offsets, in transactions of
	// the producer TransactionalID, committed every CommitInterval or, when not 0, every
	// TransactionRecords records; the consumer reads only committed records.
	ExactlyOnce        bool
	TransactionalID    string
	TransactionRecords int

	Deployment string
	Namespace  string
	Predictor  sdep.PredictorSpec
	Protocol   protocols.Name
	Transport  string // rest or grpc
	// Graph is the predictor's inference graph, parsed and checked: what each record walks.
	Graph *graph.Graph
	// RoutingInjection writes the routes taken into every answer's meta.routing (legacy
	// SELDON_ENABLE_ROUTING_INJECTION).
	RoutingInjection bool

	ModelTimeout time.Duration
	MaxAttempts  int
	BackoffMin   time.Duration
	BackoffMax   time.Duration
	// RetryStatuses and RetryCodes are what a failed call to a node is made again for (REST, gRPC);
	// connection errors and timeouts always are. Every other failure is the node's verdict.
	RetryStatuses []int
	RetryCodes    []codes.Code
	// BatchSize is the most records merged into one model call along the batch dimension; 1 is off.
	// BatchWait is the longest a record waits for batch-mates (see package batch).
	BatchSize int
	BatchWait time.Duration

	// Security is the Kafka security material (TLS, SASL), read and checked at start; never nil after
	// LoadConfig. SecurityReload is how often its files are re-read for a rotation; 0 never.
	Security       *tls.Material
	SecurityReload time.Duration
	// Overrides are further librdkafka properties the user set (KAFKA_CONSUMER_*, KAFKA_PRODUCER_*,
	// KAFKA_PROPERTIES_FILE); none touches kafka.Pinned or a security property.
	Overrides []kafka.Override

	HTTPPort        int
	GRPCPort        int // the synchronous gRPC API's, with --transport=grpc
	MetricsPath     string
	ShutdownGrace   time.Duration
	LogLevel        slog.Level
	IgnoredFlags    []string // legacy flags accepted and not used, for a warning at start
	PredictorSource string   // where the predictor came from, for the start-up log
}

// ConfigError is a bad or missing setting. It names the variable or flag and says what is wrong, never
// the value of a secret.
type ConfigError struct {
	Name string
	Msg  string
}

func (e *ConfigError) Error() string { return e.Name + ": " + e.Msg }

func bad(name, format string, args ...any) error {
	return &ConfigError{Name: name, Msg: fmt.Sprintf(format, args...)}
}

// LoadConfig builds the Config from the executor's arguments and the process environment.
func LoadConfig(args []string) (Config, error) {
	flags, ignored, err := ParseFlags(args)
	if err != nil {
		return Config{}, &ConfigError{Name: "arguments", Msg: err.Error()}
	}
	env, err := loadEnv()
	if err != nil {
		return Config{}, err
	}
	return build(flags, ignored, env)
}

func loadEnv() (Env, error) {
	var env Env
	if err := envconfig.Process("", &env); err != nil {
		return Env{}, envError(err)
	}
	env.Overrides = kafka.OverridesFromEnv(os.Environ())
	for _, req := range []struct{ name, v string }{
		{"KAFKA_BROKER", env.Broker}, {"KAFKA_INPUT_TOPIC", env.InputTopic}, {"KAFKA_OUTPUT_TOPIC", env.OutputTopic},
	} {
		if strings.TrimSpace(req.v) == "" {
			return Env{}, bad(req.name, "required, and empty")
		}
	}
	return env, nil
}

// switchValue is an on/off variable written as people write it in manifests: true/false, 1/0, yes/no,
// on/off, any case. (The legacy executor took any non-empty value as on, "false" included.)
type switchValue bool

func (v *switchValue) Decode(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "t", "yes", "y", "on":
		*v = true
	case "false", "0", "f", "no", "n", "off", "":
		*v = false
	default:
		return errors.New("want true or false")
	}
	return nil
}

// envError turns envconfig's errors into one line naming the variable. A value is echoed only for
// numbers and durations, which are never secrets.
func envError(err error) error {
	var pe *envconfig.ParseError
	if errors.As(err, &pe) {
		what := "not valid for " + pe.TypeName
		switch strings.TrimPrefix(pe.TypeName, "executor.") { // envconfig names a type of this package with it
		case "int":
			what = "not a whole number"
		case "bool":
			what = "not true or false"
		case "switchValue":
			what = "not on or off (true/false, yes/no, on/off, 1/0)"
		case "time.Duration":
			what = "not a duration (like 500ms, 30s, 2m)"
		}
		return bad(pe.KeyName, "%q is %s", pe.Value, what)
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "required key ") {
		name := strings.TrimSuffix(strings.TrimPrefix(msg, "required key "), " missing value")
		return bad(name, "required, and not set")
	}
	return &ConfigError{Name: "environment", Msg: msg}
}

func build(f Flags, ignored []string, env Env) (Config, error) {
	c := Config{
		Brokers:          strings.TrimSpace(env.Broker),
		InputTopic:       strings.TrimSpace(env.InputTopic),
		OutputTopic:      strings.TrimSpace(env.OutputTopic),
		ErrorTopic:       strings.TrimSpace(env.ErrorTopic),
		Workers:          env.Workers,
		CommitInterval:   env.CommitInterval,
		ModelTimeout:     env.ModelTimeout,
		MaxAttempts:      env.MaxAttempts,
		BackoffMin:       env.BackoffMin,
		BackoffMax:       env.BackoffMax,
		BatchSize:        env.BatchSize,
		BatchWait:        env.BatchWait,
		RoutingInjection: bool(env.RoutingInjection),
		Deployment:       f.Sdep,
		Namespace:        f.Namespace,
		Transport:        strings.ToLower(f.Transport),
		HTTPPort:         f.HTTPPort,
		GRPCPort:         f.GRPCPort,
		MetricsPath:      f.PrometheusPath,
		ShutdownGrace:    f.GracefulTimeout,
		IgnoredFlags:     ignored,
		AutoOffsetReset:  strings.ToLower(env.AutoOffsetReset),
	}
	if st := strings.ToLower(f.ServerType); st != "kafka" {
		return c, bad("--server_type", "%q: this executor serves only kafka", f.ServerType)
	}
	if err := validTopic("KAFKA_INPUT_TOPIC", c.InputTopic); err != nil {
		return c, err
	}
	if err := validTopic("KAFKA_OUTPUT_TOPIC", c.OutputTopic); err != nil {
		return c, err
	}
	if c.ErrorTopic != "" {
		if err := validTopic("KAFKA_ERROR_TOPIC", c.ErrorTopic); err != nil {
			return c, err
		}
	} else {
		c.ErrorTopic = c.OutputTopic
	}
	if c.InputTopic == c.OutputTopic {
		return c, bad("KAFKA_OUTPUT_TOPIC", "the answers would be read back as requests: it must differ from KAFKA_INPUT_TOPIC")
	}
	if c.InputTopic == c.ErrorTopic {
		return c, bad("KAFKA_ERROR_TOPIC", "error records would be read back as requests: it must differ from KAFKA_INPUT_TOPIC")
	}
	switch {
	case c.Workers < 1:
		return c, bad("KAFKA_WORKERS", "%d: at least 1 record must be in flight", c.Workers)
	case c.Workers > 10000:
		return c, bad("KAFKA_WORKERS", "%d: more than 10000 records in flight", c.Workers)
	}
	// KAFKA_AUTO_COMMIT is read for compatibility only: either value commits delivered offsets on the
	// interval. Its legacy meaning for true, commit what was read, would lose records in flight.
	if c.CommitInterval <= 0 {
		return c, bad("KAFKA_COMMIT_INTERVAL", "must be positive")
	}
	if c.AutoOffsetReset != "earliest" && c.AutoOffsetReset != "latest" {
		return c, bad("KAFKA_AUTO_OFFSET_RESET", "%q: want earliest or latest", env.AutoOffsetReset)
	}
	if err := c.loadSecurity(env); err != nil {
		return c, err
	}
	if env.FullGraph != "" {
		c.IgnoredFlags = append(c.IgnoredFlags, "KAFKA_FULL_GRAPH (the graph is walked by calling each node's container directly; see the README)")
	}
	if c.ModelTimeout <= 0 {
		return c, bad("MODEL_TIMEOUT", "must be positive")
	}
	if c.MaxAttempts < 1 {
		return c, bad("MODEL_MAX_ATTEMPTS", "%d: at least 1 attempt", c.MaxAttempts)
	}
	if c.BackoffMin <= 0 {
		return c, bad("MODEL_BACKOFF_MIN", "must be positive")
	}
	var err error
	if c.RetryStatuses, err = parseStatuses(env.RetryStatuses); err != nil {
		return c, bad("MODEL_RETRY_STATUSES", "%v", err)
	}
	if c.RetryCodes, err = parseCodes(env.RetryCodes); err != nil {
		return c, bad("MODEL_RETRY_CODES", "%v", err)
	}
	if c.BackoffMax < c.BackoffMin {
		return c, bad("MODEL_BACKOFF_MAX", "the backoff must be positive and MODEL_BACKOFF_MAX at least MODEL_BACKOFF_MIN")
	}
	if c.ShutdownGrace <= 0 {
		return c, bad("--graceful_timeout", "must be positive")
	}
	if c.HTTPPort < 0 || c.HTTPPort > 65535 {
		return c, bad("--http_port", "%d is not a port", c.HTTPPort)
	}
	if c.GRPCPort < 0 || c.GRPCPort > 65535 {
		return c, bad("--grpc_port", "%d is not a port", c.GRPCPort)
	}
	if !strings.HasPrefix(c.MetricsPath, "/") || c.MetricsPath == "/live" || c.MetricsPath == "/ready" {
		return c, bad("--prometheus_path", "%q: want a path like /metrics", c.MetricsPath)
	}
	lvl, err := parseLevel(f.LogLevel)
	if err != nil {
		return c, bad("--log_level", "%v", err)
	}
	c.LogLevel = lvl

	proto, err := protocols.ParseName(f.Protocol)
	if err != nil {
		return c, bad("--protocol", "%v", err)
	}
	c.Protocol = proto
	if c.Transport != "rest" && c.Transport != "grpc" {
		return c, bad("--transport", "%q: want rest or grpc", f.Transport)
	}

	if err := c.loadPredictor(f, env); err != nil {
		return c, err
	}
	if err := c.checkBatching(); err != nil {
		return c, err
	}
	if g := strings.TrimSpace(env.GroupID); g != "" {
		c.GroupID = g
	} else {
		// The legacy executor's group: KEDA triggers and existing committed offsets carry this name.
		for _, req := range []struct{ name, v string }{{"--sdep", c.Deployment}, {"--namespace", c.Namespace}} {
			if req.v == "" {
				return c, bad(req.name, "required to name the consumer group <predictor>.<sdep>.<namespace> (or set KAFKA_GROUP_ID)")
			}
		}
		c.GroupID = c.Predictor.Name + "." + c.Deployment + "." + c.Namespace
	}
	c.ClientID = "seldon-kafka-executor"
	if c.Deployment != "" {
		c.ClientID = c.Deployment + "-" + c.Predictor.Name + "-executor"
	}
	if err := c.checkExactlyOnce(env); err != nil {
		return c, err
	}
	return c, nil
}

func (c *Config) loadPredictor(f Flags, env Env) error {
	var err error
	switch {
	case f.File != "":
		c.Predictor, err = sdep.PredictorFromFile(f.File, f.Predictor)
		if err != nil {
			return bad("--file", "%v", err)
		}
		c.PredictorSource = "--file " + f.File
	case env.Predictor != "":
		c.Predictor, err = sdep.DecodePredictor(env.Predictor)
		if err != nil {
			return bad("ENGINE_PREDICTOR", "%v", err)
		}
		c.PredictorSource = "ENGINE_PREDICTOR"
	default:
		return bad("ENGINE_PREDICTOR", "not set, and no --file: the sidecar needs the predictor's graph")
	}
	if c.Predictor.Name == "" {
		c.Predictor.Name = f.Predictor
	}
	if f.Predictor != "" && c.Predictor.Name != f.Predictor {
		return bad("--predictor", "%q, but the predictor given is %q", f.Predictor, c.Predictor.Name)
	}
	if c.Predictor.Name == "" {
		return bad("--predictor", "required: the predictor has no name")
	}
	g, err := graph.Parse(c.Predictor, c.Protocol, c.Transport)
	if err != nil {
		return bad(c.PredictorSource, "%v", err)
	}
	c.Graph = g
	return nil
}

// checkBatching refuses batch settings that could not work: a batch larger than the records in flight
// would never fill, and a wait as long as the model's timeout would hold records for nothing.
func (c *Config) checkBatching() error {
	switch {
	case c.BatchSize < 1:
		return bad("MODEL_BATCH_SIZE", "%d: at least 1 (1 turns batching off)", c.BatchSize)
	case c.BatchSize > c.Workers:
		return bad("MODEL_BATCH_SIZE", "%d is more than KAFKA_WORKERS (%d), the records in flight: a batch could never fill",
			c.BatchSize, c.Workers)
	case c.BatchWait <= 0:
		return bad("MODEL_BATCH_WAIT", "must be positive")
	case c.BatchWait >= c.ModelTimeout:
		return bad("MODEL_BATCH_WAIT", "%v is not below MODEL_TIMEOUT (%v)", c.BatchWait, c.ModelTimeout)
	}
	if c.BatchSize > 1 {
		if err := batch.Supported(c.Graph); err != nil {
			return bad("MODEL_BATCH_SIZE", "%v", err)
		}
	}
	return nil
}

// defaultTransactionTimeout is librdkafka's transaction.timeout.ms: the broker aborts a transaction open
// longer than that.
const defaultTransactionTimeout = 60 * time.Second

// checkExactlyOnce reads the exactly-once settings and refuses what would break the guarantee: an
// override that reads uncommitted records, or transactions committed less often than the broker lets
// them live. (Idempotence and the transactional id cannot be overridden at all: kafka.Pinned.)
func (c *Config) checkExactlyOnce(env Env) error {
	id := strings.TrimSpace(env.TransactionalID)
	if !env.ExactlyOnce {
		if id != "" {
			return bad("KAFKA_TRANSACTIONAL_ID", "set, but KAFKA_EXACTLY_ONCE is not true: only exactly-once uses transactions")
		}
		return nil
	}
	c.ExactlyOnce = true
	if env.TransactionRecords < 0 {
		return bad("KAFKA_TRANSACTION_RECORDS", "%d: want 0 (commit every KAFKA_COMMIT_INTERVAL only) or more", env.TransactionRecords)
	}
	c.TransactionRecords = env.TransactionRecords
	if id == "" {
		// One id per live replica is all exactly-once v2 (KIP-447) needs: the group's generation, sent with
		// the offsets, fences a replica whose partitions moved on. A pod's name is unique among live pods
		// and survives a container restart, whose first transaction call then aborts what the crashed one
		// left open.
		host := strings.TrimSpace(env.Hostname)
		if host == "" {
			host, _ = os.Hostname()
		}
		if host == "" {
			return bad("KAFKA_TRANSACTIONAL_ID", "not set, and no HOSTNAME to make one from (<group>-<HOSTNAME>)")
		}
		id = c.GroupID + "-" + host
	}
	c.TransactionalID = id
	timeout := defaultTransactionTimeout
	for _, o := range c.Overrides {
		switch {
		case o.Key == "isolation.level" && o.Client != kafka.ProducerOnly && o.Value != "read_committed":
			return bad(o.From, "sets isolation.level=%s: exactly-once reads only committed records (read_committed)", o.Value)
		case o.Key == "transaction.timeout.ms" && o.Client != kafka.ConsumerOnly:
			ms, err := strconv.Atoi(o.Value)
			if err != nil || ms <= 0 {
				return bad(o.From, "transaction.timeout.ms %q: want a positive number of milliseconds", o.Value)
			}
			timeout = time.Duration(ms) * time.Millisecond
		}
	}
	if c.CommitInterval >= timeout {
		return bad("KAFKA_COMMIT_INTERVAL", "%v: with exactly-once a transaction is committed every interval, and the broker aborts one open longer than transaction.timeout.ms (%v)",
			c.CommitInterval, timeout)
	}
	return nil
}

// loadSecurity reads and checks the TLS and SASL material and the librdkafka overrides.
func (c *Config) loadSecurity(env Env) error {
	sec, err := tls.Parse(env.Env)
	if err != nil {
		return securityError(err)
	}
	if c.Security, err = tls.Load(sec, time.Now()); err != nil {
		return securityError(err)
	}
	if env.SecurityReload < 0 {
		return bad("KAFKA_SECURITY_RELOAD_INTERVAL", "must not be negative (0 turns the reload off)")
	}
	c.SecurityReload = env.SecurityReload

	overrides := env.Overrides
	if f := strings.TrimSpace(env.PropertiesFile); f != "" {
		fromFile, err := kafka.ReadProperties("KAFKA_PROPERTIES_FILE", f)
		if err != nil {
			return bad("KAFKA_PROPERTIES_FILE", "%v", err)
		}
		overrides = append(fromFile, overrides...) // a variable wins over the file
	}
	for _, o := range overrides {
		switch {
		case o.Key == "" || strings.ContainsAny(o.Key, " \t"):
			return bad(o.From, "names no librdkafka property")
		case o.Key == "transactional.id":
			return bad(o.From, "sets transactional.id: use KAFKA_EXACTLY_ONCE=true (and KAFKA_TRANSACTIONAL_ID), which makes the transactions it needs")
		case kafka.Pinned[o.Key]:
			return bad(o.From, "sets %s, which the sidecar pins: its delivery guarantees (commit only what is answered, idempotent writes) depend on it", o.Key)
		case tls.ManagedProperties[o.Key]:
			return bad(o.From, "sets %s, a security property: use KAFKA_SECURITY_PROTOCOL and the KAFKA_SSL_* and KAFKA_SASL_* variables, which are checked at start and reloaded on change", o.Key)
		}
	}
	c.Overrides = overrides
	return nil
}

// securityError turns the tls package's errors, which name their variable, into ConfigErrors.
func securityError(err error) error {
	var te *tls.Error
	if errors.As(err, &te) {
		return &ConfigError{Name: te.Var, Msg: te.Msg}
	}
	return &ConfigError{Name: "KAFKA_SECURITY_PROTOCOL", Msg: err.Error()}
}

// parseStatuses reads a comma-separated list of HTTP error statuses; an empty list retries none.
func parseStatuses(list string) ([]int, error) {
	out := []int{}
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 400 || n > 599 {
			return nil, fmt.Errorf("%q is not an HTTP error status (400 to 599)", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseCodes reads a comma-separated list of gRPC status codes, as Go names them (Unavailable) or as
// the gRPC specification does (UNAVAILABLE), any case; an empty list retries none.
func parseCodes(list string) ([]codes.Code, error) {
	out := []codes.Code{}
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		key := strings.ToLower(strings.ReplaceAll(f, "_", ""))
		found := false
		for c := codes.Canceled; c <= codes.Unauthenticated; c++ {
			if strings.ToLower(c.String()) == key {
				out, found = append(out, c), true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("%q is not a gRPC error code (Unavailable, DEADLINE_EXCEEDED, …)", f)
		}
	}
	return out, nil
}

func validTopic(name, topic string) error {
	if len(topic) > 249 {
		return bad(name, "a topic name has at most 249 characters")
	}
	if topic == "." || topic == ".." {
		return bad(name, "%q is not a valid topic name", topic)
	}
	for _, r := range topic {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return bad(name, "%q: a topic name has only letters, digits, '.', '_' and '-'", topic)
		}
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "DEBUG", "TRACE":
		return slog.LevelDebug, nil
	case "INFO", "":
		return slog.LevelInfo, nil
	case "WARN", "WARNING":
		return slog.LevelWarn, nil
	case "ERROR", "FATAL":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q: want DEBUG, INFO, WARN or ERROR", s)
}
