package executor

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

// Outputs leave a partition in the order its records were read, whatever order they finish in, so that
// a transaction holds a contiguous run of each partition's records and the offset committed with it is
// where its outputs end.
func TestOutputsLeaveInTheOrderTheirRecordsWereRead(t *testing.T) {
	tests := []struct {
		name     string
		read     []int64
		finished []int64   // in this order
		due      [][]int64 // what each finish lets out
	}{
		{"in order, each at once", []int64{5, 6, 7}, []int64{5, 6, 7}, [][]int64{{5}, {6}, {7}}},
		{"the first last: all at once", []int64{5, 6, 7}, []int64{7, 6, 5}, [][]int64{nil, nil, {5, 6, 7}}},
		{"a gap holds back what follows it", []int64{0, 1, 2, 3}, []int64{0, 2, 3, 1}, [][]int64{{0}, nil, nil, {1, 2, 3}}},
		// Offsets need not be dense: compacted topics and transaction markers leave holes.
		{"holes in the offsets", []int64{10, 13, 20}, []int64{13, 10, 20}, [][]int64{nil, {10, 13}, {20}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newPartOrder(1, tc.read[0])
			for _, off := range tc.read {
				o.consumed(off)
			}
			for i, off := range tc.finished {
				o.put(&job{offset: off})
				var got []int64
				for j := o.pop(); j != nil; j = o.pop() {
					got = append(got, j.offset)
				}
				if !slices.Equal(got, tc.due[i]) {
					t.Errorf("after %d finished: %v due, want %v", off, got, tc.due[i])
				}
			}
			if len(o.order) != 0 || len(o.ready) != 0 {
				t.Errorf("left over: order %v, ready %d", o.order, len(o.ready))
			}
			if o.base != tc.read[0] || o.next != tc.read[len(tc.read)-1]+1 {
				t.Errorf("base %d, next %d; want %d, %d", o.base, o.next, tc.read[0], tc.read[len(tc.read)-1]+1)
			}
		})
	}
}

func TestExactlyOnceSettings(t *testing.T) {
	on := map[string]string{"KAFKA_EXACTLY_ONCE": "true", "HOSTNAME": "iris-default-0-classifier-7d9f8-x2x4z"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range on {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	accepted := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{"off unless asked for", nil, func(t *testing.T, c Config) {
			if c.ExactlyOnce || c.TransactionalID != "" {
				t.Errorf("ExactlyOnce %v, TransactionalID %q: want off", c.ExactlyOnce, c.TransactionalID)
			}
		}},
		{"the transactional id is the group's and the pod's", on, func(t *testing.T, c Config) {
			if !c.ExactlyOnce || c.TransactionalID != "default.iris.models-iris-default-0-classifier-7d9f8-x2x4z" {
				t.Errorf("ExactlyOnce %v, TransactionalID %q", c.ExactlyOnce, c.TransactionalID)
			}
			if c.TransactionRecords != 0 {
				t.Errorf("TransactionRecords %d: want 0, the commit interval alone", c.TransactionRecords)
			}
		}},
		{"without HOSTNAME, the machine's name", with(map[string]string{"HOSTNAME": unset}), func(t *testing.T, c Config) {
			host, _ := os.Hostname()
			if c.TransactionalID != "default.iris.models-"+host {
				t.Errorf("TransactionalID %q, want default.iris.models-%s", c.TransactionalID, host)
			}
		}},
		{"KAFKA_TRANSACTIONAL_ID names it", with(map[string]string{"KAFKA_TRANSACTIONAL_ID": " replica-1 "}), func(t *testing.T, c Config) {
			if c.TransactionalID != "replica-1" {
				t.Errorf("TransactionalID %q, want replica-1", c.TransactionalID)
			}
		}},
		{"a transaction every N records", with(map[string]string{"KAFKA_TRANSACTION_RECORDS": "500"}), func(t *testing.T, c Config) {
			if c.TransactionRecords != 500 {
				t.Errorf("TransactionRecords %d, want 500", c.TransactionRecords)
			}
		}},
		{"a longer transaction timeout allows a longer interval", with(map[string]string{
			"KAFKA_COMMIT_INTERVAL": "90s", "KAFKA_PRODUCER_TRANSACTION_TIMEOUT_MS": "120000"}), func(t *testing.T, c Config) {
			if c.CommitInterval.Seconds() != 90 {
				t.Errorf("CommitInterval %v", c.CommitInterval)
			}
		}},
		{"read_committed said again is fine", with(map[string]string{"KAFKA_CONSUMER_ISOLATION_LEVEL": "read_committed"}), func(t *testing.T, c Config) {}},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}

	refused := []struct {
		name, wantName, wantMsg string
		env                     map[string]string
	}{
		{"a transactional id without exactly-once", "KAFKA_TRANSACTIONAL_ID", "KAFKA_EXACTLY_ONCE",
			map[string]string{"KAFKA_TRANSACTIONAL_ID": "x"}},
		{"not a switch", "KAFKA_EXACTLY_ONCE", "not on or off", map[string]string{"KAFKA_EXACTLY_ONCE": "sometimes"}},
		{"negative records per transaction", "KAFKA_TRANSACTION_RECORDS", "want 0", with(map[string]string{"KAFKA_TRANSACTION_RECORDS": "-1"})},
		{"an override that turns idempotence off", "KAFKA_PRODUCER_ENABLE_IDEMPOTENCE", "pins",
			with(map[string]string{"KAFKA_PRODUCER_ENABLE_IDEMPOTENCE": "false"})},
		{"an override that reads uncommitted records", "KAFKA_CONSUMER_ISOLATION_LEVEL", "read_committed",
			with(map[string]string{"KAFKA_CONSUMER_ISOLATION_LEVEL": "read_uncommitted"})},
		{"a transactional id as an override", "KAFKA_PRODUCER_TRANSACTIONAL_ID", "KAFKA_EXACTLY_ONCE",
			with(map[string]string{"KAFKA_PRODUCER_TRANSACTIONAL_ID": "x"})},
		{"a commit interval the broker would abort", "KAFKA_COMMIT_INTERVAL", "transaction.timeout.ms",
			with(map[string]string{"KAFKA_COMMIT_INTERVAL": "60s"})},
		{"a transaction timeout that is not a number", "KAFKA_PRODUCER_TRANSACTION_TIMEOUT_MS", "milliseconds",
			with(map[string]string{"KAFKA_PRODUCER_TRANSACTION_TIMEOUT_MS": "1m"})},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.env)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("LoadConfig: %v; want a *ConfigError naming %s", err, tc.wantName)
			}
			if ce.Name != tc.wantName || !strings.Contains(ce.Msg, tc.wantMsg) {
				t.Errorf("error %q; want it to name %s and say %q", err, tc.wantName, tc.wantMsg)
			}
		})
	}
}
