package executor

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/seldon-kafka/sidecar/executor/graph"
	"github.com/seldon-kafka/sidecar/protocols"
)

// metrics are the sidecar's Prometheus series, on a registry of its own so that tests and several
// pipelines in one process do not collide.
type metrics struct {
	reg           *prometheus.Registry
	consumed      prometheus.Counter
	produced      *prometheus.CounterVec // kind: answer | error
	errors        *prometheus.CounterVec // reason
	retries       prometheus.Counter
	latency       *prometheus.HistogramVec // outcome: ok | error
	inFlight      prometheus.Gauge
	inFlightBytes prometheus.Gauge
	unanswered    prometheus.Gauge
	paused        prometheus.Gauge
	assigned      prometheus.Gauge
	commits       prometheus.Counter
	commitErr     prometheus.Counter
	transactions  *prometheus.CounterVec // exactly-once transactions by outcome: committed | aborted
	stalls        prometheus.Counter     // partitions found assigned, with records waiting, and not read (stall.go)
	lag           *prometheus.GaugeVec   // partition: records waiting after the last one read (stall.go)
	e2e           prometheus.Histogram   // record timestamp → its answer or error record delivered
	ready         *prometheus.GaugeVec   // part: model | broker

	// Per graph node: its calls (by method and outcome), the records that failed there, its readiness.
	nodeCalls  *prometheus.HistogramVec // node, method, outcome
	nodeErrors *prometheus.CounterVec   // node, reason
	nodeReady  *prometheus.GaugeVec     // node

	api *prometheus.CounterVec // transport: http | grpc; outcome: ok | error
	// With MODEL_BATCH_SIZE > 1: the records each batched model call carried, and the records called
	// alone, by cause (batch.Cause*).
	batchSize  prometheus.Histogram
	batchAlone *prometheus.CounterVec
	// rotationRefused counts new security material that was not used: librdkafka or the broker refused it.
	rotationRefused prometheus.Counter
}

// callBuckets are the model call latencies histograms count in: a millisecond to the longest timeout.
var callBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

func newMetrics(g *graph.Graph) *metrics {
	const ns = "seldon_kafka"
	m := &metrics{
		reg: prometheus.NewRegistry(),
		consumed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "records_consumed_total",
			Help: "Request records read from the input topic."}),
		produced: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "records_produced_total",
			Help: "Records delivered: answers to the output topic, error records to the error topic."}, []string{"kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "record_errors_total",
			Help: "Records that could not be served, by reason; each became an error record."}, []string{"reason"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "model_call_retries_total",
			Help: "Model calls repeated after a transient failure."}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "model_call_duration_seconds",
			Help:    "Duration of single model calls, to any graph node.",
			Buckets: callBuckets}, []string{"outcome"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "records_in_flight",
			Help: "Records consumed and not yet delivered."}),
		inFlightBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "records_in_flight_bytes",
			Help: "Bytes of the requests consumed and not yet delivered (bounded by KAFKA_MAX_INFLIGHT_BYTES)."}),
		unanswered: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "records_unanswered",
			Help: "Records consumed whose answer or error record is not made yet: queued for or at the model (bounded by 2 × KAFKA_WORKERS)."}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "consumer_paused",
			Help: "1 while fetching is paused (records in flight at the limit, model not ready, or shutting down)."}),
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "partitions_assigned",
			Help: "Partitions of the input topic assigned to this replica."}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "offset_commits_total",
			Help: "Successful offset commits."}),
		commitErr: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "offset_commit_errors_total",
			Help: "Failed offset commits (retried)."}),
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "transactions_total",
			Help: "Exactly-once transactions (answers, error records and input offsets), by outcome."}, []string{"outcome"}),
		stalls: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "partition_stalls_total",
			Help: "Partitions found assigned, with records waiting, and not read while fetching was on; each was restarted."}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "consumer_lag",
			Help: "Records of the input partition after the last one this replica read, from the high watermark of its latest fetch; by partition, for the partitions assigned to it."},
			[]string{"partition"}),
		e2e: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "record_latency_seconds",
			Help:    "From a request record's timestamp to its answer or error record delivered: queueing in Kafka, the graph and the produce.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "ready",
			Help: "1 when the part (model: every graph node; broker) is reachable."}, []string{"part"}),
		nodeCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "node_call_duration_seconds",
			Help: "Duration of single calls to a graph node, by node, method and outcome.", Buckets: callBuckets},
			[]string{"node", "method", "outcome"}),
		nodeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "node_errors_total",
			Help: "Records that could not be served because of a graph node, by node and reason."}, []string{"node", "reason"}),
		nodeReady: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "node_ready",
			Help: "1 when the graph node's container answers its readiness check."}, []string{"node"}),
		api: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "api_requests_total",
			Help: "Requests to the synchronous API, by transport and outcome."}, []string{"transport", "outcome"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "model_batch_size",
			Help:    "Records carried by each model call the batcher made (1: no batch-mate came within MODEL_BATCH_WAIT).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11)}),
		batchAlone: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "model_batch_alone_total",
			Help: "Records called alone with batching on, by cause: unmergeable (not of a shape that batches), call_failed (their batch's call failed), answer_mismatch (their batch's answer could not be cut back)."},
			[]string{"cause"}),
		rotationRefused: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "security_rotations_refused_total",
			Help: "Security material changed on disk that was not used: librdkafka or the broker refused it; the current stays."}),
	}
	m.reg.MustRegister(m.consumed, m.produced, m.errors, m.retries, m.latency, m.inFlight, m.inFlightBytes, m.unanswered, m.paused, m.assigned,
		m.commits, m.commitErr, m.transactions, m.stalls, m.lag, m.e2e, m.ready, m.nodeCalls, m.nodeErrors, m.nodeReady, m.api, m.rotationRefused, m.batchSize, m.batchAlone,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, k := range []string{"answer", "error"} {
		m.produced.WithLabelValues(k)
	}
	for _, p := range []string{"model", "broker"} {
		m.ready.WithLabelValues(p)
	}
	if g != nil {
		for _, n := range g.Nodes {
			if n.Calls() {
				m.nodeReady.WithLabelValues(n.Name)
			}
		}
	}
	return m
}

// Called counts a call to a graph node (graph.Observer).
func (m *metrics) Called(node string, method protocols.Method, d time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.latency.WithLabelValues(outcome).Observe(d.Seconds())
	m.nodeCalls.WithLabelValues(node, string(method), outcome).Observe(d.Seconds())
}

// Batched counts a batched model call (batch.Observer).
func (m *metrics) Batched(records int) { m.batchSize.Observe(float64(records)) }

// Alone counts records called alone with batching on (batch.Observer).
func (m *metrics) Alone(cause string, records int) {
	m.batchAlone.WithLabelValues(cause).Add(float64(records))
}

// Retried counts a call to be made again after a transient failure (graph.Observer).
func (m *metrics) Retried(string, protocols.Method) { m.retries.Inc() }
