// Package executor is the sidecar: its configuration, and the data path that takes each request record
// from the input topic to the model and its answer to the output topic, committing only what is answered.
package executor

import (
	"cmp"
	"crypto/sha256"
	cryptotls "crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"google.golang.org/grpc/codes"

	"github.com/seldon-kafka/sidecar/executor/batch"
	"github.com/seldon-kafka/sidecar/executor/graph"
	"github.com/seldon-kafka/sidecar/executor/registry"
	"github.com/seldon-kafka/sidecar/kafka"
	"github.com/seldon-kafka/sidecar/payloadlog"
	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/sdep"
	"github.com/seldon-kafka/sidecar/tls"
	"github.com/seldon-kafka/sidecar/tracing"
)

// Env is the sidecar's environment, as svcOrchSpec.env sets it. The names are the legacy executor's
// where it had them.
type Env struct {
	Broker string `envconfig:"KAFKA_BROKER" required:"true"`
	// The topics and the group. With the legacy naming (the default) the input and output topics are
	// required; KAFKA_TOPIC_NAMING=core2 names those not set as Seldon Core 2 does (sdep.Naming).
	InputTopic  string `envconfig:"KAFKA_INPUT_TOPIC"`
	OutputTopic string `envconfig:"KAFKA_OUTPUT_TOPIC"`
	ErrorTopic  string `envconfig:"KAFKA_ERROR_TOPIC"`
	GroupID     string `envconfig:"KAFKA_GROUP_ID"`
	// TopicNaming is legacy (unset) or core2; TopicPrefix is Core 2's topicPrefix (seldon when unset),
	// only with core2; GroupPrefix is Core 2's consumerGroupIdPrefix, put before the group the sidecar
	// names (not before KAFKA_GROUP_ID).
	TopicNaming     string        `envconfig:"KAFKA_TOPIC_NAMING"`
	TopicPrefix     string        `envconfig:"KAFKA_TOPIC_PREFIX"`
	GroupPrefix     string        `envconfig:"KAFKA_CONSUMER_GROUP_ID_PREFIX"`
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
	// CloudEvents answers plain requests with CloudEvents too; a CloudEvent is always answered with one.
	CloudEvents switchValue `envconfig:"KAFKA_CLOUDEVENTS" default:"false"`
	// Tracing is read from the OTEL_* variables and the legacy JAEGER_* ones by package tracing.
	Tracing tracing.Settings `ignored:"true"`
	// The payload logger's destinations, as the operator and the legacy executor name them.
	LoggerDefaultURL  string `envconfig:"REQUEST_LOGGER_DEFAULT_ENDPOINT"`
	LoggerKafkaBroker string `envconfig:"LOGGER_KAFKA_BROKER"`
	LoggerKafkaTopic  string `envconfig:"LOGGER_KAFKA_TOPIC"`

	// The Confluent Schema Registry wire format (see package registry): off unless the URL is set.
	RegistryURL            string        `envconfig:"SCHEMA_REGISTRY_URL"`
	RegistryUserInfo       string        `envconfig:"SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"`
	RegistryUserInfoFile   string        `envconfig:"SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO_FILE"`
	RegistryCACert         string        `envconfig:"SCHEMA_REGISTRY_SSL_CA_CERT"`
	RegistryCACertFile     string        `envconfig:"SCHEMA_REGISTRY_SSL_CA_CERT_FILE"`
	RegistryClientCert     string        `envconfig:"SCHEMA_REGISTRY_SSL_CLIENT_CERT"`
	RegistryClientCertFile string        `envconfig:"SCHEMA_REGISTRY_SSL_CLIENT_CERT_FILE"`
	RegistryClientKey      string        `envconfig:"SCHEMA_REGISTRY_SSL_CLIENT_KEY"`
	RegistryClientKeyFile  string        `envconfig:"SCHEMA_REGISTRY_SSL_CLIENT_KEY_FILE"`
	RegistryKeyPass        string        `envconfig:"SCHEMA_REGISTRY_SSL_CLIENT_KEY_PASS"`
	RegistryKeyPassFile    string        `envconfig:"SCHEMA_REGISTRY_SSL_CLIENT_KEY_PASS_FILE"`
	RegistryAutoRegister   switchValue   `envconfig:"SCHEMA_REGISTRY_AUTO_REGISTER" default:"false"`
	RegistryUseLatest      switchValue   `envconfig:"SCHEMA_REGISTRY_USE_LATEST_VERSION" default:"false"`
	RegistryStrategy       string        `envconfig:"SCHEMA_REGISTRY_SUBJECT_NAME_STRATEGY" default:"TopicNameStrategy"`
	RegistryCacheCapacity  int           `envconfig:"SCHEMA_REGISTRY_CACHE_CAPACITY" default:"1000"`
	RegistryTimeout        time.Duration `envconfig:"SCHEMA_REGISTRY_REQUEST_TIMEOUT" default:"10s"`
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
	// MessageMaxBytes is the largest request or answer; the Kafka clients' fetch and message limits and
	// the model clients' limits are derived from it (messageLimits). 64 MiB: the model clients' limit
	// before it existed; Seldon Core 2's default is 1000000000.
	MessageMaxBytes int `envconfig:"KAFKA_MESSAGE_MAX_BYTES" default:"67108864"`
	// MaxInflightBytes bounds the requests held — consumed and not finished — in bytes, beside the
	// bounds in records (2 × KAFKA_WORKERS not yet answered, and those awaiting delivery). 256 MiB: no
	// bound at all for records of a few KiB, four 64 MiB requests at once.
	MaxInflightBytes int64 `envconfig:"KAFKA_MAX_INFLIGHT_BYTES" default:"268435456"`
	// Compression is the producer's codec for answers and error records.
	Compression string `envconfig:"KAFKA_PRODUCER_COMPRESSION" default:"lz4"`
	// PropertiesFile holds further librdkafka properties, key=value a line (see kafka.ReadProperties).
	PropertiesFile string `envconfig:"KAFKA_PROPERTIES_FILE"`
	// Overrides are the KAFKA_CONSUMER_* and KAFKA_PRODUCER_* variables, gathered by loadEnv.
	Overrides []kafka.Override `ignored:"true"`
	// Pprof serves Go's profiles (net/http/pprof) under /debug/pprof/ on the health port.
	Pprof switchValue `envconfig:"SIDECAR_PPROF" default:"false"`
}

// Config is everything the sidecar runs on, parsed and checked once at start.
type Config struct {
	Brokers     string
	InputTopic  string
	OutputTopic string
	ErrorTopic  string // where error records go; the output topic when not set
	GroupID     string
	// TopicNaming is how the names not set were made: sdep.NamingLegacy or sdep.NamingCore2.
	TopicNaming     string
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
	// CloudEvents answers plain requests with CloudEvents (binary mode) too (KAFKA_CLOUDEVENTS); a
	// CloudEvent request is answered with one in its own mode whatever this says.
	CloudEvents bool
	// Tracing says where spans go and which are sampled (OTEL_*, legacy JAEGER_*); Tracing.Provider
	// replaces the tracer provider it describes (tests).
	Tracing tracing.Settings
	// PayloadLog configures the payload logger of the graph nodes with a logger; nil when none has one.
	// Its KafkaSecurity is filled from Security when the logger is built.
	PayloadLog *payloadlog.Settings

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

	// SchemaRegistry turns on the Confluent Schema Registry wire format: framed requests are taken,
	// their answers framed (see package registry). Nil when SCHEMA_REGISTRY_URL is not set.
	SchemaRegistry *registry.Options
	// registryFiles is where the registry's credentials and TLS material come from, and what was read
	// at start, for the rotation watch (watchRegistry); zero when none of it is a file.
	registryFiles registryFiles
	// Warnings are problems found at start that do not stop the sidecar, for the log; they name
	// variables and hold no secrets.
	Warnings []string

	// Security is the Kafka security material (TLS, SASL), read and checked at start; never nil after
	// LoadConfig. SecurityReload is how often its files are re-read for a rotation; 0 never.
	Security       *tls.Material
	SecurityReload time.Duration
	// MessageMaxBytes bounds a request and an answer, in Kafka and between the sidecar and the nodes
	// (KAFKA_MESSAGE_MAX_BYTES); Compression is the producer's codec (KAFKA_PRODUCER_COMPRESSION).
	MessageMaxBytes int
	Compression     string
	// MaxInflightBytes is the most bytes of requests held at once (KAFKA_MAX_INFLIGHT_BYTES): fetching
	// stops at it; one record is always taken, however large.
	MaxInflightBytes int64
	// Overrides are further librdkafka properties: first those made from MessageMaxBytes and
	// Compression, then the user's (KAFKA_CONSUMER_*, KAFKA_PRODUCER_*, KAFKA_PROPERTIES_FILE), which win;
	// none touches kafka.Pinned or a security property.
	Overrides []kafka.Override

	HTTPPort    int
	GRPCPort    int // the synchronous gRPC API's, with --transport=grpc
	MetricsPath string
	// Pprof serves /debug/pprof/ on the health port (SIDECAR_PPROF): off by default, since a profile
	// costs CPU and shows the process's insides to whoever reaches the port.
	Pprof           bool
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
	env.Overrides = kafka.OverridesFromEnv(os.Environ(), envNames(reflect.TypeFor[Env]()))
	tr, err := tracing.FromEnv()
	if err != nil {
		var te *tracing.EnvError
		if errors.As(err, &te) {
			return Env{}, &ConfigError{Name: te.Var, Msg: te.Msg}
		}
		return Env{}, &ConfigError{Name: "tracing", Msg: err.Error()}
	}
	env.Tracing = tr
	if strings.TrimSpace(env.Broker) == "" {
		return Env{}, bad("KAFKA_BROKER", "required, and empty")
	}
	return env, nil
}

// envNames are the variables a struct of envconfig fields reads, embedded structs included.
func envNames(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for f := range t.Fields() {
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			maps.Copy(out, envNames(f.Type))
		} else if name := f.Tag.Get("envconfig"); name != "" {
			out[name] = true
		}
	}
	return out
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
		case "switchValue", "executor.switchValue": // envconfig names it with its package
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
		Workers:          env.Workers,
		CommitInterval:   env.CommitInterval,
		ModelTimeout:     env.ModelTimeout,
		MaxAttempts:      env.MaxAttempts,
		BackoffMin:       env.BackoffMin,
		BackoffMax:       env.BackoffMax,
		BatchSize:        env.BatchSize,
		BatchWait:        env.BatchWait,
		RoutingInjection: bool(env.RoutingInjection),
		CloudEvents:      bool(env.CloudEvents),
		Tracing:          env.Tracing,
		Deployment:       f.Sdep,
		Namespace:        f.Namespace,
		Transport:        strings.ToLower(f.Transport),
		HTTPPort:         f.HTTPPort,
		GRPCPort:         f.GRPCPort,
		MetricsPath:      f.PrometheusPath,
		Pprof:            bool(env.Pprof),
		ShutdownGrace:    f.GracefulTimeout,
		IgnoredFlags:     ignored,
		AutoOffsetReset:  strings.ToLower(env.AutoOffsetReset),
	}
	if st := strings.ToLower(f.ServerType); st != "kafka" {
		return c, bad("--server_type", "%q: this executor serves only kafka", f.ServerType)
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
	if err := c.loadLimits(env); err != nil {
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
	if c.Pprof && strings.HasPrefix(c.MetricsPath, "/debug/pprof/") {
		return c, bad("--prometheus_path", "%q: SIDECAR_PPROF serves /debug/pprof/", c.MetricsPath)
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
	c.Graph.MaxMessageBytes = c.MessageMaxBytes
	if err := c.loadNames(env); err != nil {
		return c, err
	}
	if err := c.loadPayloadLog(f, env); err != nil {
		return c, err
	}
	if err := c.loadRegistry(env); err != nil {
		return c, err
	}
	if c.CloudEvents {
		// The events answered are named after the deployment: seldon.<sdep>.<namespace>.response.
		for _, req := range []struct{ name, v string }{{"--sdep", c.Deployment}, {"--namespace", c.Namespace}} {
			if req.v == "" {
				return c, bad(req.name, "required with KAFKA_CLOUDEVENTS=true: the answers' source is seldon.<sdep>.<namespace>")
			}
		}
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

// loadPayloadLog reads the payload logger's settings when a graph node has a logger: the legacy
// executor's flags and variables, checked.
func (c *Config) loadPayloadLog(f Flags, env Env) error {
	var loggers []*graph.Node
	for _, n := range c.Graph.Nodes {
		if n.Logger != nil {
			loggers = append(loggers, n)
		}
	}
	if len(loggers) == 0 {
		return nil
	}
	s := &payloadlog.Settings{
		DefaultURL:  strings.TrimSpace(env.LoggerDefaultURL),
		KafkaBroker: cmp.Or(strings.TrimSpace(f.LogKafkaBroker), strings.TrimSpace(env.LoggerKafkaBroker)),
		KafkaTopic:  cmp.Or(strings.TrimSpace(f.LogKafkaTopic), strings.TrimSpace(env.LoggerKafkaTopic)),
		Workers:     f.LoggerWorkers,
		Buffer:      f.LogWorkBufferSize,
		Timeout:     time.Duration(f.LogWriteTimeoutMs) * time.Millisecond,
		Source:      "http://localhost:" + strconv.Itoa(c.HTTPPort) + "/",
		Deployment:  c.Deployment, Namespace: c.Namespace, Predictor: c.Predictor.Name, Protocol: string(c.Protocol),
	}
	switch {
	case s.Workers < 1:
		return bad("--logger_workers", "%d: at least 1", s.Workers)
	case s.Buffer < 1:
		return bad("--log_work_buffer_size", "%d: at least 1", s.Buffer)
	case s.Timeout <= 0:
		return bad("--log_write_timeout_ms", "%d: must be positive", f.LogWriteTimeoutMs)
	}
	if s.KafkaTopic != "" {
		if err := sdep.ValidTopic(s.KafkaTopic); err != nil {
			return bad("LOGGER_KAFKA_TOPIC", "%v", err)
		}
	}
	if s.KafkaBroker == "" {
		if s.DefaultURL != "" && !httpURL(s.DefaultURL) {
			return bad("REQUEST_LOGGER_DEFAULT_ENDPOINT", "%q: want an http:// or https:// URL", s.DefaultURL)
		}
		for _, n := range loggers {
			switch {
			case n.Logger.URL != nil && !httpURL(*n.Logger.URL):
				return bad(c.PredictorSource, "graph node %q: logger url %q: want an http:// or https:// URL", n.Name, *n.Logger.URL)
			case n.Logger.URL == nil && s.DefaultURL == "":
				return bad(c.PredictorSource, "graph node %q: its logger has no url, and neither REQUEST_LOGGER_DEFAULT_ENDPOINT nor LOGGER_KAFKA_BROKER says where payloads go", n.Name)
			}
		}
	}
	c.PayloadLog = s
	return nil
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// loadNames works out the topics and the group as seldon-keda does for the same SeldonDeployment
// (sdep.Naming): from the variables, or made from the operator's flags.
func (c *Config) loadNames(env Env) error {
	n, err := sdep.NewNaming(env.TopicNaming, env.TopicPrefix, env.GroupPrefix, c.Deployment, c.Namespace, c.Predictor.Name)
	if err != nil {
		return nameError(err)
	}
	var given [4]sdep.Given
	for r, v := range []string{env.InputTopic, env.OutputTopic, env.ErrorTopic, env.GroupID} {
		given[r].Value = strings.TrimSpace(v)
	}
	names, err := n.Resolve(given)
	if err != nil {
		return nameError(err)
	}
	c.InputTopic, c.OutputTopic, c.ErrorTopic, c.GroupID = names[sdep.Input], names[sdep.Output], names[sdep.Errors], names[sdep.Group]
	c.TopicNaming = n.Scheme
	return nil
}

func nameError(err error) error {
	var ne *sdep.NameError
	if errors.As(err, &ne) {
		return &ConfigError{Name: ne.Var, Msg: ne.Msg}
	}
	return err
}

// The bounds of KAFKA_MESSAGE_MAX_BYTES: librdkafka's range for message.max.bytes and
// max.partition.fetch.bytes.
const (
	minMessageBytes = 1000
	maxMessageBytes = 1000000000
	// maxFetchBytes is librdkafka's default fetch.max.bytes, kept as the most a fetch of small records
	// brings: a larger record still comes, alone, as the first batch of its fetch (KIP-74).
	// minFetchBytes is the least librdkafka takes: its consumer's message.max.bytes.
	maxFetchBytes = 52428800
	minFetchBytes = 1000000
	// minReceiveBytes is librdkafka's default receive.message.max.bytes, kept as a floor.
	minReceiveBytes = 100000000
	// partitionFetchBytes is librdkafka's default max.partition.fetch.bytes, kept as the most one
	// partition brings to a fetch, so that a fetch is shared among the partitions with a backlog.
	partitionFetchBytes = 1048576
)

// compressions are the codecs librdkafka's producer offers (compression.codec).
var compressions = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// loadLimits checks KAFKA_MESSAGE_MAX_BYTES and KAFKA_PRODUCER_COMPRESSION and puts the librdkafka
// properties made from them before the user's overrides, which may still set any of them.
func (c *Config) loadLimits(env Env) error {
	c.MessageMaxBytes = env.MessageMaxBytes
	if c.MessageMaxBytes < minMessageBytes || c.MessageMaxBytes > maxMessageBytes {
		return bad("KAFKA_MESSAGE_MAX_BYTES", "%d: want %d to %d bytes (librdkafka's range)", c.MessageMaxBytes, minMessageBytes, maxMessageBytes)
	}
	c.MaxInflightBytes = env.MaxInflightBytes
	if c.MaxInflightBytes < minMessageBytes {
		return bad("KAFKA_MAX_INFLIGHT_BYTES", "%d: want at least %d bytes", c.MaxInflightBytes, minMessageBytes)
	}
	c.Compression = strings.ToLower(strings.TrimSpace(env.Compression))
	if !slices.Contains(compressions, c.Compression) {
		return bad("KAFKA_PRODUCER_COMPRESSION", "%q: want one of %s", env.Compression, strings.Join(compressions, ", "))
	}
	made := messageLimits(c.MessageMaxBytes, c.Compression, c.MaxInflightBytes)
	// A user's override of a property, under any of its names, replaces the one made here.
	set := map[string]bool{}
	for _, o := range c.Overrides {
		set[propertyAliases[o.Key]] = true
		set[o.Key] = true
	}
	var kept []kafka.Override
	for _, o := range made {
		if !set[o.Key] {
			kept = append(kept, o)
		}
	}
	c.Overrides = append(kept, c.Overrides...)
	return nil
}

// messageLimits are the librdkafka properties one message limit and the codec make:
//   - the producer's message.max.bytes: an answer larger than the limit is refused before it is sent
//     (a produce_failed error record), as the broker refuses one larger than the topic takes;
//   - the consumer's max.partition.fetch.bytes: the limit, but at most librdkafka's default 1 MiB. A
//     larger record still comes whole: the broker returns a fetch's first record batch whatever its
//     size (KIP-74), and librdkafka grows its request for a partition whose next record did not fit.
//     At the limit itself, one partition's backlog could fill a whole fetch (50 MiB) and the prefetch
//     queue, and the other partitions would wait for it to drain: the soak saw partitions go more than a
//     minute without a commit while another caught up;
//   - fetch.max.bytes: the limit, but at most librdkafka's default, so a backlog of small records does
//     not arrive a gigabyte at a time when the limit is large (and at least the 1000000 librdkafka takes);
//   - receive.message.max.bytes: room for the largest fetch response, a record of the limit with its
//     framing (librdkafka wants at least fetch.max.bytes + 512), never below librdkafka's default;
//   - the producer's compression.codec;
//   - the consumer's queued.max.messages.kbytes, what librdkafka prefetches ahead of the records held: a
//     quarter of the in-flight bound, at most the 16 MiB package kafka sets (so with the default bound it
//     is that), at least 1 MiB.
func messageLimits(limit int, compression string, inflight int64) []kafka.Override {
	fetch := min(max(limit, minFetchBytes), maxFetchBytes)
	partition := min(limit, partitionFetchBytes)
	receive := max(minReceiveBytes, max(limit, fetch)+1<<20)
	queued := min(max(inflight/4/1024, 1024), 16384)
	from := "KAFKA_MESSAGE_MAX_BYTES"
	return []kafka.Override{
		{Key: "message.max.bytes", Value: strconv.Itoa(limit), Client: kafka.ProducerOnly, From: from},
		{Key: "max.partition.fetch.bytes", Value: strconv.Itoa(partition), Client: kafka.ConsumerOnly, From: from},
		{Key: "fetch.max.bytes", Value: strconv.Itoa(fetch), Client: kafka.ConsumerOnly, From: from},
		{Key: "receive.message.max.bytes", Value: strconv.Itoa(receive), Client: kafka.ConsumerOnly, From: from},
		{Key: "compression.codec", Value: compression, Client: kafka.ProducerOnly, From: "KAFKA_PRODUCER_COMPRESSION"},
		{Key: "queued.max.messages.kbytes", Value: strconv.FormatInt(queued, 10), Client: kafka.ConsumerOnly, From: "KAFKA_MAX_INFLIGHT_BYTES"},
	}
}

// propertyAliases are librdkafka's other names of the properties messageLimits sets.
var propertyAliases = map[string]string{
	"fetch.message.max.bytes": "max.partition.fetch.bytes",
	"compression.type":        "compression.codec",
}

// Registry requests that fail in a way that may pass (no answer, a 5xx, 408, 429) are made up to four
// times, about 1 s, 2 s and 4 s apart, as Confluent's clients retry by default (max.retries=3,
// retries.wait.ms=1000): long enough for a registry's leader election, short enough that a registry that
// is gone turns records into error records rather than holding them.
var (
	registryAttempts = 4
	registryBackoff  = protocols.Backoff{Min: time.Second, Max: 20 * time.Second}
)

// loadRegistry checks the SCHEMA_REGISTRY_* variables and reads the registry's credentials and TLS
// material. Without SCHEMA_REGISTRY_URL the wire format is off, and any other of them is an error: it
// would be silently ignored.
func (c *Config) loadRegistry(env Env) error {
	const urlVar = "SCHEMA_REGISTRY_URL"
	sources := []struct{ valueVar, value, fileVar, file string }{
		{"SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", env.RegistryUserInfo, "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO_FILE", env.RegistryUserInfoFile},
		{"SCHEMA_REGISTRY_SSL_CA_CERT", env.RegistryCACert, "SCHEMA_REGISTRY_SSL_CA_CERT_FILE", env.RegistryCACertFile},
		{"SCHEMA_REGISTRY_SSL_CLIENT_CERT", env.RegistryClientCert, "SCHEMA_REGISTRY_SSL_CLIENT_CERT_FILE", env.RegistryClientCertFile},
		{"SCHEMA_REGISTRY_SSL_CLIENT_KEY", env.RegistryClientKey, "SCHEMA_REGISTRY_SSL_CLIENT_KEY_FILE", env.RegistryClientKeyFile},
		{"SCHEMA_REGISTRY_SSL_CLIENT_KEY_PASS", env.RegistryKeyPass, "SCHEMA_REGISTRY_SSL_CLIENT_KEY_PASS_FILE", env.RegistryKeyPassFile},
	}
	src := make([]tls.Source, len(sources))
	for i, v := range sources {
		var err error
		if src[i], err = tls.SourceOf(v.valueVar, v.value, v.fileVar, v.file); err != nil {
			return securityError(err)
		}
	}
	userInfo, ca, cert, key, pass := src[0], src[1], src[2], src[3], src[4]

	urls := strings.TrimSpace(env.RegistryURL)
	if urls == "" {
		for _, s := range src {
			if s.IsSet() {
				return bad(s.Var, "set, but %s is not: the Schema Registry wire format is off without it", urlVar)
			}
		}
		for name, on := range map[string]switchValue{"SCHEMA_REGISTRY_AUTO_REGISTER": env.RegistryAutoRegister, "SCHEMA_REGISTRY_USE_LATEST_VERSION": env.RegistryUseLatest} {
			if on {
				return bad(name, "on, but %s is not set: the Schema Registry wire format is off without it", urlVar)
			}
		}
		return nil
	}
	https := false
	for _, u := range strings.Split(urls, ",") {
		pu, err := url.Parse(strings.TrimSpace(u))
		switch {
		case err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "":
			return bad(urlVar, "want http:// or https:// URLs, comma-separated")
		case pu.User != nil:
			// A URL is logged; credentials in it would be too.
			return bad(urlVar, "holds credentials: give them in SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO (from a Secret), not in the URL")
		}
		https = https || pu.Scheme == "https"
	}
	o := &registry.Options{
		Registry: registry.Registry{URL: urls, Timeout: env.RegistryTimeout, CacheCapacity: env.RegistryCacheCapacity,
			Attempts: registryAttempts, Backoff: registryBackoff},
		Transport: c.Transport, Protocol: c.Protocol, OutputTopic: c.OutputTopic,
		AutoRegister: bool(env.RegistryAutoRegister), UseLatest: bool(env.RegistryUseLatest),
	}
	for _, s := range []tls.Source{ca, cert, key, pass} {
		if s.IsSet() && !https {
			return bad(s.Var, "set, but %s has no https:// URL to use it with", urlVar)
		}
	}
	switch {
	case cert.IsSet() && !key.IsSet():
		return bad("SCHEMA_REGISTRY_SSL_CLIENT_KEY", "required with %s: a client certificate needs its private key", cert.Var)
	case key.IsSet() && !cert.IsSet():
		return bad("SCHEMA_REGISTRY_SSL_CLIENT_CERT", "required with %s: a private key needs its client certificate", key.Var)
	case pass.IsSet() && !key.IsSet():
		return bad(pass.Var, "set, but there is no client key")
	}
	files := registryFiles{userInfo: userInfo, ca: ca, cert: cert, key: key, pass: pass}
	creds, err := files.read(time.Now())
	if err != nil {
		return err
	}
	o.Registry.UserInfo, o.Registry.TLS = creds.userInfo, creds.tls
	c.Warnings = append(c.Warnings, creds.warnings...)
	if files.watched() {
		files.atStart = creds.digest
		c.registryFiles = files
	}
	if o.Strategy, err = registry.ParseStrategy(env.RegistryStrategy); err != nil {
		return bad("SCHEMA_REGISTRY_SUBJECT_NAME_STRATEGY", "%v", err)
	}
	switch {
	case o.AutoRegister && o.UseLatest:
		return bad("SCHEMA_REGISTRY_USE_LATEST_VERSION", "on, and so is SCHEMA_REGISTRY_AUTO_REGISTER: answers are framed with the subject's latest schema or with their own, registered; pick one")
	case o.CacheCapacity < 1 || o.CacheCapacity > 1_000_000:
		return bad("SCHEMA_REGISTRY_CACHE_CAPACITY", "%d: want 1 to 1000000 schemas", o.CacheCapacity)
	case o.Timeout <= 0:
		return bad("SCHEMA_REGISTRY_REQUEST_TIMEOUT", "must be positive")
	}
	c.SchemaRegistry = o
	return nil
}

// registryFiles is where the Schema Registry's credentials and TLS material come from: read and checked
// at start (loadRegistry), and again by the rotation watch when any of it is a file (watchRegistry).
type registryFiles struct {
	userInfo, ca, cert, key, pass tls.Source
	atStart                       [sha256.Size]byte // the digest of what was read at start
}

// registryCreds is the registry's material as read.
type registryCreds struct {
	userInfo tls.Secret        // "user:password"; unset for none
	tls      *cryptotls.Config // nil for none
	warnings []string          // a certificate near its end, …: for the log
	digest   [sha256.Size]byte // of everything read: new material on disk is a new digest
}

// watched says whether any of the material is a file, which may change while the sidecar runs.
func (f registryFiles) watched() bool {
	for _, s := range []tls.Source{f.userInfo, f.ca, f.cert, f.key, f.pass} {
		if s.IsFile() {
			return true
		}
	}
	return false
}

// read reads the material and checks it as of now: the credentials are user:password, the TLS material
// passes every check of tls.Load. An error names the variable, never the secret.
func (f registryFiles) read(now time.Time) (registryCreds, error) {
	var out registryCreds
	h := sha256.New()
	if f.userInfo.IsSet() {
		b, err := f.userInfo.Read()
		if err != nil {
			return out, securityError(err)
		}
		v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if user, _, ok := strings.Cut(v, ":"); !ok || user == "" {
			return out, bad(f.userInfo.Var, "want user:password (for Confluent Cloud, the API key and secret)")
		}
		out.userInfo = tls.NewSecret(v)
		fmt.Fprintf(h, "%d\x00", len(v))
		h.Write([]byte(v))
	}
	if f.ca.IsSet() || f.cert.IsSet() || f.key.IsSet() || f.pass.IsSet() {
		m, err := tls.Load(tls.Settings{Protocol: tls.SSL, CA: f.ca, ClientCert: f.cert, ClientKey: f.key, KeyPassword: f.pass, VerifyHostname: true}, now)
		if err != nil {
			return out, securityError(err)
		}
		if out.tls, err = m.ClientTLS(); err != nil {
			return out, securityError(err)
		}
		out.warnings = m.Warnings
		fp := m.Fingerprint()
		h.Write(fp[:])
	}
	copy(out.digest[:], h.Sum(nil))
	return out, nil
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
