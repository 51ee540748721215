package testmodel

import (
	"math"
	"testing"
)

// The non-doubling roles round halves through float64ToHalf; doubling every half with it must give
// exactly what the bit arithmetic of doubleHalf gives, overflow included, which checks the conversion
// on every exponent and on the subnormals.
func TestHalfConversionAgreesWithExactDoublingOnEveryHalf(t *testing.T) {
	for h := 0; h <= math.MaxUint16; h++ {
		if (h>>10)&0x1f == 0x1f {
			continue // Inf and NaN are refused before any conversion.
		}
		want, wantErr := doubleHalf(uint16(h))
		got, ok := float64ToHalf(2 * halfToFloat64(uint16(h)))
		if ok != (wantErr == nil) || (ok && got != want) {
			t.Fatalf("half %#04x: conversion gives %#04x (ok %v), exact doubling %#04x (%v)", h, got, ok, want, wantErr)
		}
	}
}

func TestHalfConversionRoundsToNearestEven(t *testing.T) {
	tests := []struct {
		name string
		in   float64
		want uint16
		ok   bool
	}{
		{"largest half", 65504, 0x7bff, true},
		{"just below the rounding edge stays finite", 65519, 0x7bff, true},
		{"the rounding edge overflows", 65520, 0, false},
		{"tie rounds down to even", 2049, 0x6800, true},
		{"tie rounds up to even", 2051, 0x6802, true},
		{"smallest subnormal", math.Ldexp(1, -24), 0x0001, true},
		{"half the smallest subnormal rounds to zero", math.Ldexp(1, -25), 0x0000, true},
		{"just below the smallest normal rounds up to it", math.Ldexp(1, -14) - math.Ldexp(1, -26), 0x0400, true},
		{"negative zero keeps its sign", math.Copysign(0, -1), 0x8000, true},
		{"negative", -1.5, 0xbe00, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := float64ToHalf(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("float64ToHalf(%v) = %#04x, %v; want %#04x, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}
