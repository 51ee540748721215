package executor

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The dashboard and alert rules in examples/observability query only series the sidecar exports: a
// renamed or removed metric fails here, not silently on someone's Grafana.
func TestObservabilityExamplesQueryOnlyExportedMetrics(t *testing.T) {
	exported := map[string]bool{}
	ch := make(chan *prometheus.Desc)
	go func() { newMetrics(nil).reg.Describe(ch); close(ch) }()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			exported[m[1]] = true
		}
	}
	if !exported["seldon_kafka_consumer_lag"] || !exported["go_goroutines"] {
		t.Fatalf("the registry's descriptions were not read: %d names", len(exported))
	}
	series := regexp.MustCompile(`\b(?:seldon_kafka_[a-z0-9_]+|process_[a-z_]+|go_[a-z_]+)\b`)
	for _, file := range []string{"../examples/observability/dashboard.json", "../examples/observability/alerts.yaml"} {
		body, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		names := series.FindAllString(string(body), -1)
		if len(names) < 8 {
			t.Fatalf("%s: %d series found; the pattern no longer matches its queries", file, len(names))
		}
		for _, n := range names {
			base := n
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(n, suffix); ok && exported[b] {
					base = b
				}
			}
			if !exported[base] {
				t.Errorf("%s queries %s, which the sidecar does not export", file, n)
			}
		}
	}
}
