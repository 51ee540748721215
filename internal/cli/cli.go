// Package cli is what the project's commands share about their command lines: a bad one is a
// UsageError, which a command reports on one line of stderr and exits 2 for, as the flag package's
// own errors do; --help (flag.ErrHelp) prints the usage and exits 0.
package cli

import "fmt"

// UsageError is a bad command line: a flag that does not parse, a required one missing, a value out
// of range. Err says what is wrong.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }

func (e UsageError) Unwrap() error { return e.Err }

// Usagef is a UsageError made as fmt.Errorf makes an error (%w keeps a cause).
func Usagef(format string, args ...any) error {
	return UsageError{fmt.Errorf(format, args...)}
}
