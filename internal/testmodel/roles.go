package testmodel

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
)

// Role is the part a tensorflow or v2 test model plays in an inference graph. With those protocols the
// executor calls the same infer route of a transformer as of a model, so only the process knows what it
// is: each role applies its own element-wise function, and a test can tell from the numbers which nodes a
// request went through (and in which order, as the functions do not commute).
//
//	RoleModel             x * 2   (the zero Role means RoleModel)
//	RoleTransformer       x + 1
//	RoleOutputTransformer x * 10
//
// The seldon protocol names the part in the route instead (/predict, /transform-input, ...), so a seldon
// node answers every part whatever its Role.
type Role string

// The roles a test model can play.
const (
	RoleModel             Role = "model"
	RoleTransformer       Role = "transformer"
	RoleOutputTransformer Role = "output_transformer"
)

// ParseRole returns the Role named s, refusing unknown names so that a typo in a graph's flags fails at
// start rather than as wrong numbers.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if _, err := r.arith(); err != nil {
		return "", err
	}
	if r == "" {
		return RoleModel, nil
	}
	return r, nil
}

// String returns the role's name, "model" for the zero Role.
func (r Role) String() string {
	if r == "" {
		return string(RoleModel)
	}
	return string(r)
}

// MarshalText and UnmarshalText let a Role be a flag (flag.TextVar) or a configuration field.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText sets r to the role named by text; see ParseRole.
func (r *Role) UnmarshalText(text []byte) error {
	parsed, err := ParseRole(string(text))
	if err != nil {
		return err
	}
	*r = parsed
	return nil
}

// arith is the element-wise function x*mul + add of a role. Every representation (JSON numbers, typed
// protobuf values, raw little-endian bytes) goes through it, so the protocols agree by construction.
type arith struct {
	mul, add int64
	// what describes the operation on a value, for errors: fmt.Sprintf(what, v).
	what string
}

var (
	doubling      = arith{mul: 2, what: "doubling %v"}
	addingOne     = arith{mul: 1, add: 1, what: "adding 1 to %v"}
	multiplyByTen = arith{mul: 10, what: "multiplying %v by 10"}
)

func (r Role) arith() (arith, error) {
	switch r {
	case RoleModel, "":
		return doubling, nil
	case RoleTransformer:
		return addingOne, nil
	case RoleOutputTransformer:
		return multiplyByTen, nil
	}
	return arith{}, fmt.Errorf("unknown role %q (want %s, %s or %s)", string(r), RoleModel, RoleTransformer, RoleOutputTransformer)
}

// overflows is the error for a result out of the representation's range.
func (a arith) overflows(v any) error {
	return fmt.Errorf("%s overflows", fmt.Sprintf(a.what, v))
}

func (a arith) float(v float64) float64 { return v*float64(a.mul) + float64(a.add) }

// bigInt returns i*mul + add in a new big.Int.
func (a arith) bigInt(i *big.Int) *big.Int {
	r := new(big.Int).Mul(i, big.NewInt(a.mul))
	return r.Add(r, big.NewInt(a.add))
}

// jsonNumber applies a to a JSON number, staying in int64 when n is an integer whose result fits, so
// integer inputs come back as exact integers; anything else is computed in float64.
func (a arith) jsonNumber(n json.Number) (any, error) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		if r := a.bigInt(big.NewInt(i)); r.IsInt64() {
			return r.Int64(), nil
		}
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return nil, fmt.Errorf("parse number %s: %w", abbreviate([]byte(n)), err)
	}
	r := a.float(f)
	if math.IsInf(r, 0) {
		return nil, fmt.Errorf("%s float64", a.overflows(n))
	}
	return r, nil
}

// int applies a to v, an integer of the range t.
func (a arith) int(v int64, t tfInt) (int64, error) {
	if v < t.min || v > t.max {
		return 0, fmt.Errorf("value %d is out of range", v)
	}
	r := a.bigInt(big.NewInt(v))
	if !r.IsInt64() || r.Int64() < t.min || r.Int64() > t.max {
		return 0, a.overflows(v)
	}
	return r.Int64(), nil
}

// uint applies a to v, an unsigned integer no larger than max.
func (a arith) uint(v, max uint64) (uint64, error) {
	if v > max {
		return 0, fmt.Errorf("value %d is out of range", v)
	}
	r := a.bigInt(new(big.Int).SetUint64(v))
	if !r.IsUint64() || r.Uint64() > max {
		return 0, a.overflows(v)
	}
	return r.Uint64(), nil
}

func (a arith) float64(v float64) (float64, error) {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("value %v is not a finite number", v)
	}
	r := a.float(v)
	if math.IsInf(r, 0) {
		return 0, a.overflows(v)
	}
	return r, nil
}

// float32 computes in float64 and rounds once, and refuses what float32 cannot hold rather than
// answering an infinity.
func (a arith) float32(v float32) (float32, error) {
	if math.IsInf(float64(v), 0) || math.IsNaN(float64(v)) {
		return 0, fmt.Errorf("value %v is not a finite number", v)
	}
	r := a.float(float64(v))
	if math.Abs(r) > math.MaxFloat32 {
		return 0, a.overflows(v)
	}
	return float32(r), nil
}

// half applies a to an IEEE 754 half-precision number given as its bits. Doubling keeps its exact bit
// arithmetic (doubleHalf); the other roles go through float64, which holds every half and every result
// exactly, and round back to the nearest half.
func (a arith) half(h uint16) (uint16, error) {
	if a == doubling {
		return doubleHalf(h)
	}
	if (h>>10)&0x1f == 0x1f {
		return 0, fmt.Errorf("half value %#04x is not a finite number", h)
	}
	r, ok := float64ToHalf(a.float(halfToFloat64(h)))
	if !ok {
		return 0, a.overflows(fmt.Sprintf("half value %#04x", h))
	}
	return r, nil
}

// halfToFloat64 decodes the bits of a finite half.
func halfToFloat64(h uint16) float64 {
	exp, mant := int((h>>10)&0x1f), float64(h&0x3ff)
	var f float64
	if exp == 0 {
		f = math.Ldexp(mant, -24)
	} else {
		f = math.Ldexp(1024+mant, exp-25)
	}
	if h&0x8000 != 0 {
		f = -f
	}
	return f
}

// float64ToHalf rounds f to the nearest half, ties to even, as IEEE 754 conversion does; false when
// the result would be infinite.
func float64ToHalf(f float64) (uint16, bool) {
	var sign uint16
	if math.Signbit(f) {
		sign, f = 0x8000, -f
	}
	if f < math.Ldexp(1, -14) {
		// Subnormal: a multiple of 2^-24. Rounding up to 1024 lands on the smallest normal, whose bits
		// are the same sum.
		return sign | uint16(math.RoundToEven(math.Ldexp(f, 24))), true
	}
	frac, exp := math.Frexp(f) // f = frac * 2^exp, frac in [0.5, 1)
	e := exp - 1               // f = 1.m * 2^e
	mant := math.RoundToEven((frac*2 - 1) * 1024)
	if mant == 1024 {
		mant, e = 0, e+1
	}
	if e > 15 {
		return 0, false
	}
	return sign | uint16(e+15)<<10 | uint16(mant), true
}

// RouteFor is the test router's rule, given the number it routes on: -2 (Seldon's "skip the
// children") for -2, -1 ("all children") for other negatives, 7 for 1e6 and above (deliberately a
// child no graph has, so tests can provoke a bad route), otherwise the integer part modulo 2.
func RouteFor(v float64) int {
	switch {
	case v == -2:
		return -2
	case v < 0:
		return -1
	case v >= 1e6:
		return 7
	}
	return int(v) % 2
}
