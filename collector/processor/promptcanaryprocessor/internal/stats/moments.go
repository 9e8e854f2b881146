// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package stats // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"

import "math/big"

// Moments is what the sequential test uses of one cohort: its sample count, its estimate and
// its per-sample variance.
type Moments struct {
	N        int64
	Estimate float64
	Variance float64
}

// ProportionMoments returns the moments of a proportion of successes out of n (n at least 1):
// the estimate successes/n and the regularised variance q(1-q) with q = (2*successes+1)/(2n+2),
// half a pseudo-success and half a pseudo-failure (Jeffreys' prior) keeping the variance away
// from 0 while every sample agrees. Counts stay far below 2^52, so each operand is exact and each
// division is the correctly rounded one, as in Python.
func ProportionMoments(n, successes int64) Moments {
	q := float64(2*successes+1) / float64(2*n+2)
	return Moments{N: n, Estimate: float64(successes) / float64(n), Variance: q * (1.0 - q)}
}

// Variance returns the sample variance of a mean (divisor n-1), (n*sum_sq - sum^2) /
// (n*(n-1)*10^12), computed exactly on the integers and rounded once; false below two
// samples or for a proportion.
func (s *Stat) Variance() (float64, bool) {
	if s.Kind != Mean || s.N < 2 {
		return 0, false
	}
	n := big.NewInt(s.N)
	sum := s.Sum()
	num := new(big.Int).Mul(n, s.SumSq())
	num.Sub(num, sum.Mul(sum, sum))
	den := new(big.Int).Mul(n, big.NewInt(s.N-1))
	den.Mul(den, big.NewInt(Scale*Scale))
	f, _ := new(big.Rat).SetFrac(num, den).Float64()
	return f, true
}

// Moments returns the moments the sequential test uses, and false when there are too few
// samples: none, or fewer than two for a mean.
func (s *Stat) Moments() (Moments, bool) {
	switch s.Kind {
	case Proportion:
		if s.N < 1 {
			return Moments{}, false
		}
		return ProportionMoments(s.N, s.Successes), true
	case Mean:
		estimate, ok := s.Estimate()
		if !ok {
			return Moments{}, false
		}
		variance, ok := s.Variance()
		if !ok {
			return Moments{}, false
		}
		return Moments{N: s.N, Estimate: estimate, Variance: variance}, true
	default:
		return Moments{}, false
	}
}

// Sum returns the statistics of both sample sets, leaving a and b unchanged; both must be of
// the same kind.
func Sum(a, b *Stat) *Stat {
	out := a.Clone()
	out.Merge(b)
	return out
}

// Reset empties s, keeping its kind; its sums return to native integers.
func (s *Stat) Reset() {
	*s = Stat{Kind: s.Kind}
}
