package protocols_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/seldon-kafka/sidecar/protocols"
)

func TestParseNameReadsTheOperatorsNames(t *testing.T) {
	tests := []struct {
		in   string
		want protocols.Name
	}{
		{"seldon", protocols.Seldon},
		{"Seldon", protocols.Seldon},
		{" seldon ", protocols.Seldon},
		{"tensorflow", protocols.Tensorflow},
		{"TENSORFLOW", protocols.Tensorflow},
		{"v2", protocols.V2},
		{"V2", protocols.V2},
		{"kfserving", protocols.V2}, // the operator's older name for v2
		{"KFServing", protocols.V2},
		{"kserve", protocols.V2},
		{"oip", protocols.V2},
	}
	for _, tc := range tests {
		got, err := protocols.ParseName(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseName(%q) = (%q, %v), want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseNameRejectsUnknownNames(t *testing.T) {
	for _, in := range []string{"", "grpc", "rest", "v1", "tf", "seldon-v2", "kfserving2"} {
		got, err := protocols.ParseName(in)
		if err == nil {
			t.Errorf("ParseName(%q) = %q, want an error", in, got)
			continue
		}
		if got != "" {
			t.Errorf("ParseName(%q) returned %q with its error", in, got)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", in)) || !strings.Contains(err.Error(), "seldon, tensorflow or v2") {
			t.Errorf("ParseName(%q) error %q does not name the value and the choices", in, err)
		}
	}
}

func TestCallErrorFormatsWhatIsKnown(t *testing.T) {
	cause := errors.New("connection refused")
	tests := []struct {
		name string
		err  *protocols.CallError
		want string
	}{
		{"message only", &protocols.CallError{Msg: "not a seldon request"}, "not a seldon request"},
		{"HTTP status", &protocols.CallError{Msg: "model answered Bad Request: no", Status: 400}, "model answered Bad Request: no (HTTP 400)"},
		{"gRPC code", &protocols.CallError{Msg: "model refused", Code: "InvalidArgument"}, "model refused (gRPC InvalidArgument)"},
		{"cause", &protocols.CallError{Msg: "model unreachable", Err: cause}, "model unreachable: connection refused"},
		{"everything", &protocols.CallError{Msg: "m", Status: 503, Code: "Unavailable", Err: cause}, "m (HTTP 503) (gRPC Unavailable): connection refused"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%s: Error() = %q, want %q", tc.name, got, tc.want)
		}
	}
	if !errors.Is(&protocols.CallError{Msg: "x", Err: io.ErrUnexpectedEOF}, io.ErrUnexpectedEOF) {
		t.Error("a CallError does not unwrap to its cause")
	}
}

func TestInvalidIsANonTransientInvalidRequest(t *testing.T) {
	e := protocols.Invalid("not a %s request: %d", "v2", 7)
	if e.Reason != protocols.ReasonInvalidRequest || e.Transient || e.Msg != "not a v2 request: 7" || e.Status != 0 {
		t.Fatalf("Invalid = %+v", e)
	}
}

func TestAsCallError(t *testing.T) {
	t.Run("a plain error is transient", func(t *testing.T) {
		cause := errors.New("something odd")
		ce := protocols.AsCallError(cause)
		if !ce.Transient || ce.Reason != protocols.ReasonRetriesExhausted || !errors.Is(ce, cause) {
			t.Fatalf("AsCallError(plain) = %+v, want transient, %s, wrapping the cause", ce, protocols.ReasonRetriesExhausted)
		}
	})
	t.Run("a CallError is returned as is, also when wrapped", func(t *testing.T) {
		orig := &protocols.CallError{Reason: protocols.ReasonModelRejected, Status: 422, Msg: "no"}
		if got := protocols.AsCallError(orig); got != orig {
			t.Errorf("AsCallError(CallError) = %p, want the same %p", got, orig)
		}
		if got := protocols.AsCallError(fmt.Errorf("calling: %w", orig)); got != orig {
			t.Errorf("AsCallError(wrapped CallError) = %+v, want the CallError inside", got)
		}
	})
}

func TestTruncateKeepsHeadAndTailWholeCharactersAndPlainSpaces(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"short text is kept", "model said no", 100, "model said no"},
		{"long text keeps both ends", "0123456789abcdefghij", 10, "01234…fghij"},
		{"a character is never cut at the head", "ééééé" + "xxxxxxxxxx", 9, "éé…xxxxx"},
		{"a character is never cut at the tail", "xxxxxxxxxx" + "ééééé", 9, "xxxx…éé"},
		{"protobuf's non-breaking space becomes a space", "proto:\u00a0cannot parse", 100, "proto: cannot parse"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := protocols.Truncate(tc.in, tc.max)
			if got != tc.want {
				t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
			if !utf8.ValidString(got) {
				t.Errorf("Truncate(%q, %d) = %q is not valid UTF-8", tc.in, tc.max, got)
			}
		})
	}
}
