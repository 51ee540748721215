package kafka

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Client says which clients an Override applies to.
type Client int

// The clients an Override can apply to.
const (
	AllClients Client = iota
	ConsumerOnly
	ProducerOnly
)

// Override is one librdkafka property the user sets beyond the sidecar's own settings: the escape hatch
// for tuning and for anything the sidecar has no variable for.
type Override struct {
	Key    string
	Value  string
	Client Client
	// From says where it was set, for errors: the environment variable, or the properties file's
	// variable, path and line.
	From string
}

// Environment prefixes of overrides. The rest of the name is the property in upper case with '.'
// written '_': KAFKA_CONSUMER_FETCH_MAX_BYTES=... sets the consumer's fetch.max.bytes.
const (
	ConsumerEnvPrefix = "KAFKA_CONSUMER_"
	ProducerEnvPrefix = "KAFKA_PRODUCER_"
)

// OverridesFromEnv returns the overrides in environ (os.Environ's form), in name order. own are the
// sidecar's own variables that happen to share the prefixes (KAFKA_CONSUMER_GROUP_ID_PREFIX,
// KAFKA_PRODUCER_COMPRESSION): settings, not librdkafka properties.
func OverridesFromEnv(environ []string, own map[string]bool) []Override {
	var out []Override
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if own[name] {
			continue
		}
		var client Client
		var rest string
		switch {
		case strings.HasPrefix(name, ConsumerEnvPrefix):
			client, rest = ConsumerOnly, strings.TrimPrefix(name, ConsumerEnvPrefix)
		case strings.HasPrefix(name, ProducerEnvPrefix):
			client, rest = ProducerOnly, strings.TrimPrefix(name, ProducerEnvPrefix)
		default:
			continue
		}
		out = append(out, Override{
			Key:    strings.ReplaceAll(strings.ToLower(rest), "_", "."),
			Value:  value,
			Client: client,
			From:   name,
		})
	}
	slices.SortFunc(out, func(a, b Override) int { return strings.Compare(a.From, b.From) })
	return out
}

// ReadProperties reads a properties file: one key=value a line, blank lines and lines starting with #
// or ! ignored, space around the key and the value trimmed. A key prefixed consumer. or producer.
// applies to that client only; others to every client. fromVar names the variable that gave the path,
// for errors; a value never appears in one.
func ReadProperties(fromVar, path string) ([]Override, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, unwrapPath(err))
	}
	var out []Override
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return nil, fmt.Errorf("%s line %d: want key=value", path, n)
		}
		o := Override{Key: key, Value: strings.TrimSpace(value), From: fmt.Sprintf("%s (%s line %d)", fromVar, path, n)}
		switch {
		case strings.HasPrefix(key, "consumer."):
			o.Client, o.Key = ConsumerOnly, strings.TrimPrefix(key, "consumer.")
		case strings.HasPrefix(key, "producer."):
			o.Client, o.Key = ProducerOnly, strings.TrimPrefix(key, "producer.")
		}
		out = append(out, o)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return out, nil
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// Apply adds the overrides to the settings' extra properties; a later override of the same key and
// client wins.
func (s *Settings) Apply(overrides []Override) {
	set := func(m *map[string]string, k, v string) {
		if *m == nil {
			*m = map[string]string{}
		}
		(*m)[k] = v
	}
	for _, o := range overrides {
		switch o.Client {
		case ConsumerOnly:
			set(&s.ConsumerExtra, o.Key, o.Value)
		case ProducerOnly:
			set(&s.ProducerExtra, o.Key, o.Value)
		default:
			set(&s.Extra, o.Key, o.Value)
		}
	}
}
