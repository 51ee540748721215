package tls

import (
	"encoding/hex"
	"time"
)

// Watcher notices when file-based material changes on disk: a Kubernetes secret update, a Strimzi or
// cert-manager renewal. librdkafka reads its certificates and passwords only when a client is made, so
// new material means new clients; Watcher only says when, and with what.
type Watcher struct {
	current  *Material
	rejected string // what was last refused (a content hash or a read error), so that it is reported once
}

// NewWatcher watches the files m was loaded from.
func NewWatcher(m *Material) *Watcher { return &Watcher{current: m} }

// Current is the material in use.
func (w *Watcher) Current() *Material { return w.current }

// Watching says whether any material comes from files.
func (w *Watcher) Watching() bool { return len(w.current.Settings.Files()) > 0 }

// Poll re-reads the files. When their content differs from the material in use and passes every check
// of Load, it returns the new material (call Accept once it is in use). When it differs and fails a
// check, it returns the error, once for each distinct content: a secret volume caught mid-update, or a
// renewal gone wrong; the material in use stays. Otherwise it returns nil, nil. An unreadable file is
// reported like a failed check.
func (w *Watcher) Poll(now time.Time) (*Material, error) {
	_, fp, err := readFiles(w.current.Settings)
	if err != nil {
		return nil, w.refuse("read:"+err.Error(), err)
	}
	if fp == w.current.fingerprint {
		w.rejected = ""
		return nil, nil
	}
	key := "content:" + hex.EncodeToString(fp[:])
	if key == w.rejected {
		return nil, nil
	}
	m, err := Load(w.current.Settings, now)
	if err != nil {
		return nil, w.refuse(key, err)
	}
	return m, nil
}

func (w *Watcher) refuse(key string, err error) error {
	if key == w.rejected {
		return nil
	}
	w.rejected = key
	return err
}

// Accept makes m the material in use.
func (w *Watcher) Accept(m *Material) {
	w.current = m
	w.rejected = ""
}

// Refuse marks m's content as unusable (librdkafka would not take it), so that it is not offered again
// until the files change once more.
func (w *Watcher) Refuse(m *Material) {
	w.rejected = "content:" + hex.EncodeToString(m.fingerprint[:])
}
