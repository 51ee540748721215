package executor_test

import (
	"strings"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/internal/testkit"
)

// TestCore2NamingConsumesAndAnswersOnCore2Topics: with KAFKA_TOPIC_NAMING=core2 and both prefixes, and
// no topic or group variable, the sidecar reads Core 2's input topic of the SeldonDeployment, answers on
// its output topic, sends error records to the namespace's error topic, and commits in the prefixed
// group.
func TestCore2NamingConsumesAndAnswersOnCore2Topics(t *testing.T) {
	h := newHarness(t, "seldon", 1)
	prefix := "tenant-" + strings.ToLower(strings.ReplaceAll(time.Now().Format("150405.000000"), ".", ""))
	// The harness's sidecar is SeldonDeployment iris in namespace test, predictor default.
	h.in = prefix + ".test.model.iris.inputs"
	h.out = prefix + ".test.model.iris.outputs"
	h.errs = prefix + ".test.errors.errors"
	h.group = prefix + "-default.iris.test"
	for _, topic := range []string{h.in, h.out, h.errs} {
		testkit.CreateTopic(t, h.bootstrap, topic, 1)
	}
	for _, v := range []string{"KAFKA_INPUT_TOPIC", "KAFKA_OUTPUT_TOPIC", "KAFKA_GROUP_ID"} {
		h.env[v] = "" // not set
	}
	h.env["KAFKA_TOPIC_NAMING"] = "core2"
	h.env["KAFKA_TOPIC_PREFIX"] = prefix
	h.env["KAFKA_CONSUMER_GROUP_ID_PREFIX"] = prefix
	h.start()

	good := records("seldon", 3)
	testkit.Produce(t, h.bootstrap, h.in, append(good, testkit.Record{Key: []byte("poison"), Value: []byte("not json")}))
	answers := testkit.Consume(t, h.bootstrap, h.out, len(good), 60*time.Second)
	for _, a := range answers {
		i := strings.TrimPrefix(string(a.Key), "key-")
		if a.Headers["Seldon-Error-Reason"] != "" || a.Headers["Seldon-Puid"] != "puid-"+i {
			t.Errorf("answer %s: headers %v", a.Key, a.Headers)
		}
	}
	errs := testkit.Consume(t, h.bootstrap, h.errs, 1, 60*time.Second)
	if string(errs[0].Key) != "poison" || errs[0].Headers["Seldon-Error-Reason"] != "invalid_request" {
		t.Errorf("error record %s: %v", errs[0].Key, errs[0].Headers)
	}
	h.waitAllCommitted(30 * time.Second)
}
