package keda

import (
	"fmt"
	"strings"
)

// Severity says whether a Diagnostic stops the output.
type Severity int

const (
	Warning Severity = iota // printed; the objects are still written
	Error                   // printed; nothing is written
)

func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// ParseSeverity reads "error" or "warn"/"warning".
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "error":
		return Error, nil
	case "warn", "warning":
		return Warning, nil
	}
	return 0, fmt.Errorf("%q: want error or warn", s)
}

// Diagnostic is one thing the user needs to know about an input: where it is and what is wrong.
type Diagnostic struct {
	Severity Severity
	Where    string // file, SeldonDeployment, predictor, componentSpec, trigger
	Msg      string
}

func (d Diagnostic) String() string { return d.Severity.String() + ": " + d.Where + ": " + d.Msg }

type diags []Diagnostic

func (ds *diags) add(sev Severity, where, format string, args ...any) {
	*ds = append(*ds, Diagnostic{Severity: sev, Where: where, Msg: fmt.Sprintf(format, args...)})
}

func (ds *diags) errorf(where, format string, args ...any) { ds.add(Error, where, format, args...) }
func (ds *diags) warnf(where, format string, args ...any)  { ds.add(Warning, where, format, args...) }
