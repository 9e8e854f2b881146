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
// Sum and SumSq are meaningful for Mean only, Successes for Proportion only.
type Stat struct {
	Kind      Kind
	N         int64
	Successes int64
	Sum       big.Int
	SumSq     big.Int
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

// AddValue counts one quantized score q; scratch is reused to keep the hot path free of
// allocations once the sums have grown to their size.
func (s *Stat) AddValue(q int64, scratch *big.Int) {
	s.N++
	scratch.SetInt64(q)
	s.Sum.Add(&s.Sum, scratch)
	scratch.Mul(scratch, scratch)
	s.SumSq.Add(&s.SumSq, scratch)
}

// Merge adds other into s; both must be of the same kind.
func (s *Stat) Merge(other *Stat) {
	s.N += other.N
	s.Successes += other.Successes
	s.Sum.Add(&s.Sum, &other.Sum)
	s.SumSq.Add(&s.SumSq, &other.SumSq)
}

// Clone returns an independent copy.
func (s *Stat) Clone() *Stat {
	c := &Stat{Kind: s.Kind, N: s.N, Successes: s.Successes}
	c.Sum.Set(&s.Sum)
	c.SumSq.Set(&s.SumSq)
	return c
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
		f, _ := new(big.Rat).SetFrac(&s.Sum, den).Float64()
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
		return json.Marshal(meanJSON{Kind: Mean, N: s.N, Sum: s.Sum.String(), SumSq: s.SumSq.String()})
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
		*s = Stat{Kind: Mean, N: m.N}
		if _, ok := s.Sum.SetString(m.Sum, 10); !ok {
			return fmt.Errorf("mean sum %q is not a decimal integer", m.Sum)
		}
		if _, ok := s.SumSq.SetString(m.SumSq, 10); !ok {
			return fmt.Errorf("mean sum_sq %q is not a decimal integer", m.SumSq)
		}
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
	if s.N == 0 && (s.Sum.Sign() != 0 || s.SumSq.Sign() != 0) {
		return errors.New("mean statistics: sum and sum_sq must be 0 when n is 0")
	}
	// Cauchy-Schwarz: n * sum(q^2) >= (sum q)^2 holds for every real set of values.
	lhs := new(big.Int).Mul(big.NewInt(s.N), &s.SumSq)
	if s.SumSq.Sign() < 0 || lhs.Cmp(new(big.Int).Mul(&s.Sum, &s.Sum)) < 0 {
		return errors.New("mean statistics: inconsistent moments, n * sum_sq must be at least sum ** 2")
	}
	return nil
}
