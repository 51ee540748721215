package keda

import (
	"bytes"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/yaml"
)

// EncodeYAML writes the objects as one YAML stream, each document after a "---" line, with a comment
// naming what made them. The objects' status is left out.
func EncodeYAML(objs []Object, header string) ([]byte, error) {
	var buf bytes.Buffer
	if header != "" {
		for _, line := range bytes.Split([]byte(header), []byte("\n")) {
			buf.WriteString("# ")
			buf.Write(line)
			buf.WriteByte('\n')
		}
	}
	for _, o := range objs {
		raw, err := json.Marshal(o.Value)
		if err != nil {
			return nil, fmt.Errorf("%s %s/%s: %w", o.Kind, o.Namespace, o.Name, err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		delete(m, "status")
		dropEmptyScalingModifiers(m)
		if md, ok := m["metadata"].(map[string]any); ok && md["creationTimestamp"] == nil {
			delete(md, "creationTimestamp")
		}
		out, err := yaml.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("%s %s/%s: %w", o.Kind, o.Namespace, o.Name, err)
		}
		buf.WriteString("---\n")
		buf.Write(out)
	}
	return buf.Bytes(), nil
}

// dropEmptyScalingModifiers removes the "scalingModifiers: {}" that KEDA's AdvancedConfig always encodes.
func dropEmptyScalingModifiers(m map[string]any) {
	spec, _ := m["spec"].(map[string]any)
	adv, _ := spec["advanced"].(map[string]any)
	if sm, ok := adv["scalingModifiers"].(map[string]any); ok && len(sm) == 0 {
		delete(adv, "scalingModifiers")
	}
}
