// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

// Package stats holds mergeable sufficient statistics of one signal, exactly as the project's
// Python engine defines them (otel_prompt_canary.analysis.stats), so that statistics built
// here and there merge without rounding and both judges see the same numbers:
//
//   - a proportion (boolean check): n samples, successes of them true;
//   - a mean (numeric score): n samples, and sum and sum_sq of the values in millionths. Each
//     value x counts as q = roundHalfEven(x * 1e6) computed in float64, adding q to sum and q*q
//     to sum_sq. Sums are arbitrary-precision integers; JSON carries them as decimal strings.
//     They are kept in native integers (sum in an int64, sum_sq in an unsigned 128-bit pair)
//     while they fit, and in math/big integers from the first addition that would overflow,
//     so the span path does no big-integer arithmetic and the values stay exact.
//
// JSON forms: {"kind": "proportion", "n": 200, "successes": 197} and
// {"kind": "mean", "n": 3, "sum": "2350000", "sum_sq": "1852500000000"}.
//
// moments.go derives what the sequential test uses of a cohort (its count, estimate and
// per-sample variance), computed exactly on the integers and rounded once, as in Python.
package stats // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
)

// Scale is the unit of mean sums: values are counted in millionths.
const Scale = 1_000_000

// MaxMagnitude is the largest accepted score magnitude (the Python engine's bound); it keeps a
// quantized value within 64 bits.
const MaxMagnitude = 1e12

// Kind says how a signal is summarised.
type Kind string

const (
	// Proportion is a boolean check.
	Proportion Kind = "proportion"
	// Mean is a numeric score.
	Mean Kind = "mean"
)

// Quantize returns x in millionths, rounded half to even, and false when x is not finite or
// exceeds MaxMagnitude.
func Quantize(x float64) (int64, bool) {
	if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > MaxMagnitude {
		return 0, false
	}
	return int64(math.RoundToEven(x * Scale)), true
}

// Stat holds the statistics of one signal. The zero value is not usable: create it with New.
// The sums (see Sum and SumSq) are meaningful for Mean only, Successes for Proportion only.
type Stat struct {
	Kind      Kind
	N         int64
	Successes int64

	// sum and sumSqHi:sumSqLo hold the exact sums while wide is nil. sum_sq is a sum of
	// squares, never negative, so an unsigned 128-bit pair holds it.
	sum     int64
	sumSqHi uint64
	sumSqLo uint64
	// wide holds the sums once one of them would overflow its native integer.
	wide *wideSums
}

type wideSums struct {
	sum, sumSq big.Int
}

// New returns empty statistics of kind.
func New(kind Kind) *Stat { return &Stat{Kind: kind} }

// AddOutcome counts one check outcome.
func (s *Stat) AddOutcome(pass bool) {
	s.N++
	if pass {
		s.Successes++
	}
}

// AddValue counts one quantized score q. While the sums fit their native integers it does
// no big-integer arithmetic and no allocation.
func (s *Stat) AddValue(q int64) {
	s.N++
	if s.wide == nil {
		sum, sumOverflow := addInt64(s.sum, q)
		hi, lo := square(q)
		lo, carry := bits.Add64(s.sumSqLo, lo, 0)
		hi, carry = bits.Add64(s.sumSqHi, hi, carry)
		if !sumOverflow && carry == 0 {
			s.sum, s.sumSqHi, s.sumSqLo = sum, hi, lo
			return
		}
		s.widen()
	}
	var v big.Int
	v.SetInt64(q)
	s.wide.sum.Add(&s.wide.sum, &v)
	v.Mul(&v, &v)
	s.wide.sumSq.Add(&s.wide.sumSq, &v)
}

// Merge adds other into s; both must be of the same kind.
func (s *Stat) Merge(other *Stat) {
	s.N += other.N
	s.Successes += other.Successes
	if s.wide == nil && other.wide == nil {
		sum, sumOverflow := addInt64(s.sum, other.sum)
		lo, carry := bits.Add64(s.sumSqLo, other.sumSqLo, 0)
		hi, carry := bits.Add64(s.sumSqHi, other.sumSqHi, carry)
		if !sumOverflow && carry == 0 {
			s.sum, s.sumSqHi, s.sumSqLo = sum, hi, lo
			return
		}
	}
	s.widen()
	s.wide.sum.Add(&s.wide.sum, other.Sum())
	s.wide.sumSq.Add(&s.wide.sumSq, other.SumSq())
}

// Clone returns an independent copy.
func (s *Stat) Clone() *Stat {
	c := *s
	if s.wide != nil {
		c.wide = &wideSums{}
		c.wide.sum.Set(&s.wide.sum)
		c.wide.sumSq.Set(&s.wide.sumSq)
	}
	return &c
}

// Sum returns a copy of the sum of the values, in millionths.
func (s *Stat) Sum() *big.Int {
	if s.wide != nil {
		return new(big.Int).Set(&s.wide.sum)
	}
	return big.NewInt(s.sum)
}

// SumSq returns a copy of the sum of the squared values, in millionths squared.
func (s *Stat) SumSq() *big.Int {
	if s.wide != nil {
		return new(big.Int).Set(&s.wide.sumSq)
	}
	v := new(big.Int).SetUint64(s.sumSqHi)
	v.Lsh(v, 64)
	return v.Or(v, new(big.Int).SetUint64(s.sumSqLo))
}

// setSums stores exact sums, natively when they fit.
func (s *Stat) setSums(sum, sumSq *big.Int) {
	s.sum, s.sumSqHi, s.sumSqLo, s.wide = 0, 0, 0, nil
	if sum.IsInt64() && sumSq.Sign() >= 0 && sumSq.BitLen() <= 128 {
		s.sum = sum.Int64()
		s.sumSqLo = new(big.Int).And(sumSq, new(big.Int).SetUint64(math.MaxUint64)).Uint64()
		s.sumSqHi = new(big.Int).Rsh(sumSq, 64).Uint64()
		return
	}
	s.wide = &wideSums{}
	s.wide.sum.Set(sum)
	s.wide.sumSq.Set(sumSq)
}

// widen moves the native sums to big integers; a no-op once done.
func (s *Stat) widen() {
	if s.wide != nil {
		return
	}
	w := &wideSums{}
	w.sum.SetInt64(s.sum)
	w.sumSq.Set(s.SumSq())
	s.wide = w
	s.sum, s.sumSqHi, s.sumSqLo = 0, 0, 0
}

// sumStrings returns the decimal forms of the sums.
func (s *Stat) sumStrings() (sum, sumSq string) {
	if s.wide != nil {
		return s.wide.sum.String(), s.wide.sumSq.String()
	}
	if s.sumSqHi == 0 {
		return strconv.FormatInt(s.sum, 10), strconv.FormatUint(s.sumSqLo, 10)
	}
	return strconv.FormatInt(s.sum, 10), s.SumSq().String()
}

// addInt64 returns a+b and whether it overflowed.
func addInt64(a, b int64) (int64, bool) {
	r := a + b
	return r, (a^r)&(b^r) < 0
}

// square returns q*q as an unsigned 128-bit pair.
func square(q int64) (hi, lo uint64) {
	abs := uint64(q)
	if q < 0 {
		abs = -abs
	}
	return bits.Mul64(abs, abs)
}

// Estimate returns the proportion of true outcomes or the mean value (correctly rounded from
// the exact sums), and false without samples.
func (s *Stat) Estimate() (float64, bool) {
	if s.N == 0 {
		return 0, false
	}
	switch s.Kind {
	case Proportion:
		return float64(s.Successes) / float64(s.N), true
	default:
		den := new(big.Int).Mul(big.NewInt(s.N), big.NewInt(Scale))
		f, _ := new(big.Rat).SetFrac(s.Sum(), den).Float64()
		return f, true
	}
}

type proportionJSON struct {
	Kind      Kind  `json:"kind"`
	N         int64 `json:"n"`
	Successes int64 `json:"successes"`
}

type meanJSON struct {
	Kind  Kind   `json:"kind"`
	N     int64  `json:"n"`
	Sum   string `json:"sum"`
	SumSq string `json:"sum_sq"`
}

// MarshalJSON writes the project's JSON form.
func (s *Stat) MarshalJSON() ([]byte, error) {
	switch s.Kind {
	case Proportion:
		return json.Marshal(proportionJSON{Kind: Proportion, N: s.N, Successes: s.Successes})
	case Mean:
		sum, sumSq := s.sumStrings()
		return json.Marshal(meanJSON{Kind: Mean, N: s.N, Sum: sum, SumSq: sumSq})
	default:
		return nil, fmt.Errorf("unknown statistics kind %q", s.Kind)
	}
}

// UnmarshalJSON reads the project's JSON form.
func (s *Stat) UnmarshalJSON(data []byte) error {
	var head struct {
		Kind Kind `json:"kind"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return err
	}
	switch head.Kind {
	case Proportion:
		var p proportionJSON
		if err := json.Unmarshal(data, &p); err != nil {
			return err
		}
		if p.N < 0 || p.Successes < 0 || p.Successes > p.N {
			return fmt.Errorf("proportion statistics need 0 <= successes <= n, got n %d and successes %d", p.N, p.Successes)
		}
		*s = Stat{Kind: Proportion, N: p.N, Successes: p.Successes}
	case Mean:
		var m meanJSON
		if err := json.Unmarshal(data, &m); err != nil {
			return err
		}
		sum, ok := new(big.Int).SetString(m.Sum, 10)
		if !ok {
			return fmt.Errorf("mean sum %q is not a decimal integer", m.Sum)
		}
		sumSq, ok := new(big.Int).SetString(m.SumSq, 10)
		if !ok {
			return fmt.Errorf("mean sum_sq %q is not a decimal integer", m.SumSq)
		}
		*s = Stat{Kind: Mean, N: m.N}
		s.setSums(sum, sumSq)
		return s.checkMoments()
	default:
		return errors.New(`statistics "kind" must be "proportion" or "mean"`)
	}
	return nil
}

// checkMoments refuses mean statistics no set of values can have, as the Python engine does.
func (s *Stat) checkMoments() error {
	if s.N < 0 {
		return fmt.Errorf("mean statistics need n >= 0, got %d", s.N)
	}
	sum, sumSq := s.Sum(), s.SumSq()
	if s.N == 0 && (sum.Sign() != 0 || sumSq.Sign() != 0) {
		return errors.New("mean statistics: sum and sum_sq must be 0 when n is 0")
	}
	// Cauchy-Schwarz: n * sum(q^2) >= (sum q)^2 holds for every real set of values.
	lhs := new(big.Int).Mul(big.NewInt(s.N), sumSq)
	if sumSq.Sign() < 0 || lhs.Cmp(new(big.Int).Mul(sum, sum)) < 0 {
		return errors.New("mean statistics: inconsistent moments, n * sum_sq must be at least sum ** 2")
	}
	return nil
}
