package tls

import (
	"fmt"
	"log/slog"
)

// Secret holds a password, a key or a token. It prints as [redacted] however it is formatted or
// logged, and, held in a struct, as a pointer: the value comes out only through Reveal.
type Secret struct{ p *string }

// NewSecret wraps s; an empty s gives the zero Secret.
func NewSecret(s string) Secret {
	if s == "" {
		return Secret{}
	}
	return Secret{p: &s}
}

// Reveal returns the secret value, for librdkafka's configuration only.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// IsSet says whether there is a value.
func (s Secret) IsSet() bool { return s.p != nil }

const redacted = "[redacted]"

func (s Secret) String() string               { return redacted }
func (s Secret) GoString() string             { return redacted }
func (s Secret) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte(redacted)) }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
