// Command demo is the client side of the local demo (make demo): it creates the demo's topics, sends a
// few inference requests to the input topic and prints each answer the sidecar writes back.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func main() {
	bootstrap := flag.String("bootstrap", "127.0.0.1:9092", "Kafka bootstrap servers")
	in := flag.String("in", "iris-requests", "input topic")
	out := flag.String("out", "iris-answers", "output topic")
	errs := flag.String("errors", "iris-errors", "error topic")
	create := flag.Bool("create", false, "create the topics and exit")
	timeout := flag.Duration("timeout", 60*time.Second, "how long to wait for the answers")
	flag.Parse()
	var err error
	if *create {
		err = createTopics(*bootstrap, *in, *out, *errs)
	} else {
		err = roundTrip(*bootstrap, *in, *out, *errs, *timeout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func createTopics(bootstrap string, topics ...string) error {
	a, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		return err
	}
	defer a.Close()
	var specs []kafka.TopicSpecification
	for _, t := range topics {
		specs = append(specs, kafka.TopicSpecification{Topic: t, NumPartitions: 2, ReplicationFactor: 1})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := a.CreateTopics(ctx, specs)
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError && r.Error.Code() != kafka.ErrTopicAlreadyExists {
			return fmt.Errorf("creating %s: %v", r.Topic, r.Error)
		}
		fmt.Printf("topic %s ready\n", r.Topic)
	}
	return nil
}

// The requests: three flowers for the model, and one record that is not a request at all, to show an
// error record.
var requests = []struct{ key, value string }{
	{"flower-1", `{"data":{"names":["sepal_length","sepal_width"],"ndarray":[[5.1,3.5]]}}`},
	{"flower-2", `{"data":{"names":["sepal_length","sepal_width"],"ndarray":[[6.2,2.9],[7.7,3.0]]}}`},
	{"flower-3", `{"data":{"tensor":{"shape":[1,2],"values":[4.9,3.1]}}}`},
	{"not-json", `this is not JSON`},
}

func roundTrip(bootstrap, in, out, errs string, timeout time.Duration) error {
	p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "enable.idempotence": true})
	if err != nil {
		return err
	}
	defer p.Close()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap,
		"group.id": fmt.Sprintf("demo-reader-%d", time.Now().UnixNano()), "auto.offset.reset": "latest",
		"enable.auto.commit": false})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SubscribeTopics([]string{out, errs}, nil); err != nil {
		return err
	}
	// Wait for the assignment so that the answers are not missed with auto.offset.reset=latest.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.Poll(100)
		parts, _ := c.Assignment()
		if len(parts) > 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no partitions of %s/%s assigned", out, errs)
		}
	}
	time.Sleep(500 * time.Millisecond) // let the fetch positions settle at the end of the topics

	for i, r := range requests {
		puid := fmt.Sprintf("demo-%d", i+1)
		fmt.Printf("→ %-9s %s  (Seldon-Puid %s)\n", r.key, r.value, puid)
		if err := p.Produce(&kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &in, Partition: kafka.PartitionAny},
			Key:            []byte(r.key), Value: []byte(r.value),
			Headers: []kafka.Header{{Key: "Seldon-Puid", Value: []byte(puid)}},
		}, nil); err != nil {
			return err
		}
	}
	p.Flush(10000)

	got := 0
	deadline = time.Now().Add(timeout)
	for got < len(requests) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d answers within %v", got, len(requests), timeout)
		}
		msg, err := c.ReadMessage(200 * time.Millisecond)
		if err != nil {
			continue
		}
		got++
		hs := map[string]string{}
		for _, h := range msg.Headers {
			hs[h.Key] = string(h.Value)
		}
		if reason := hs["Seldon-Error-Reason"]; reason != "" {
			fmt.Printf("← %-9s error record on %s: %s — %s\n", msg.Key, *msg.TopicPartition.Topic, reason, hs["Seldon-Error-Message"])
			continue
		}
		fmt.Printf("← %-9s %s  (Seldon-Puid %s)\n", msg.Key, strings.TrimSpace(string(msg.Value)), hs["Seldon-Puid"])
	}
	return nil
}
