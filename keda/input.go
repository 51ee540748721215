package keda

import (
	"encoding/json"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/seldon-kafka/sidecar/sdep"
)

// Input is what the generator reads: SeldonDeployments, and the partition counts of topics it learns from
// Strimzi KafkaTopic documents given alongside them.
type Input struct {
	Deployments []Located
	Partitions  map[string]int32 // topic -> partitions
}

// Located is a SeldonDeployment and where it was read.
type Located struct {
	Source string // "file.yaml, document 2"
	sdep.SeldonDeployment
}

// Read adds the documents of one file (or stdin) to the input: SeldonDeployments (machinelearning.seldon.io,
// alone or in a List as `kubectl get -o yaml` prints them) and kafka.strimzi.io KafkaTopics. Other kinds
// are skipped.
func (in *Input) Read(source string, data []byte) error {
	docs, err := sdep.SplitYAML(data)
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	for i, doc := range docs {
		where := source
		if len(docs) > 1 {
			where = fmt.Sprintf("%s, document %d", source, i+1)
		}
		if err := in.readDoc(where, doc); err != nil {
			return err
		}
	}
	return nil
}

func (in *Input) readDoc(where string, doc []byte) error {
	var probe struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []json.RawMessage `json:"items"`
	}
	if err := yaml.Unmarshal(doc, &probe); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	group, _, _ := strings.Cut(probe.APIVersion, "/")
	switch {
	case probe.Kind == "SeldonDeployment" && group == "machinelearning.seldon.io":
		var d sdep.SeldonDeployment
		if err := yaml.Unmarshal(doc, &d); err != nil {
			return fmt.Errorf("%s: SeldonDeployment: %w", where, err)
		}
		if d.Metadata.Name == "" {
			return fmt.Errorf("%s: SeldonDeployment has no metadata.name", where)
		}
		in.Deployments = append(in.Deployments, Located{Source: where, SeldonDeployment: d})
	case strings.HasSuffix(probe.Kind, "List") && probe.Items != nil:
		for i, item := range probe.Items {
			if err := in.readDoc(fmt.Sprintf("%s, items[%d]", where, i), item); err != nil {
				return err
			}
		}
	case probe.Kind == "KafkaTopic" && group == "kafka.strimzi.io":
		var t struct {
			Metadata sdep.ObjectMeta `json:"metadata"`
			Spec     struct {
				TopicName  string `json:"topicName"`
				Partitions int32  `json:"partitions"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(doc, &t); err != nil {
			return fmt.Errorf("%s: KafkaTopic: %w", where, err)
		}
		name := t.Spec.TopicName
		if name == "" {
			name = t.Metadata.Name
		}
		if name != "" && t.Spec.Partitions > 0 {
			if in.Partitions == nil {
				in.Partitions = map[string]int32{}
			}
			in.Partitions[name] = t.Spec.Partitions
		}
	}
	return nil
}
