// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package stats

import (
	"encoding/json"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reference is the definition: sums of q and q*q as arbitrary-precision integers.
type reference struct {
	n          int64
	sum, sumSq big.Int
}

func (r *reference) add(q int64) {
	r.n++
	v := big.NewInt(q)
	r.sum.Add(&r.sum, v)
	r.sumSq.Add(&r.sumSq, v.Mul(v, v))
}

func (r *reference) merge(o *reference) {
	r.n += o.n
	r.sum.Add(&r.sum, &o.sum)
	r.sumSq.Add(&r.sumSq, &o.sumSq)
}

func requireSame(t *testing.T, ref *reference, s *Stat, msg string) {
	t.Helper()
	require.Equal(t, ref.n, s.N, msg)
	require.Equal(t, ref.sum.String(), s.Sum().String(), msg)
	require.Equal(t, ref.sumSq.String(), s.SumSq().String(), msg)
	got, err := json.Marshal(s)
	require.NoError(t, err)
	want := `{"kind":"mean","n":` + big.NewInt(ref.n).String() + `,"sum":"` + ref.sum.String() + `","sum_sq":"` + ref.sumSq.String() + `"}`
	require.Equal(t, want, string(got), msg)
	var back Stat
	require.NoError(t, json.Unmarshal(got, &back), msg)
	require.Equal(t, ref.sum.String(), back.Sum().String(), msg)
	require.Equal(t, ref.sumSq.String(), back.SumSq().String(), msg)
}

// TestNativeSumsMatchBigIntegers checks the native accumulation against the big-integer
// definition across the overflow of the int64 sum, of the 128-bit sum of squares, and of
// merges of native and widened statistics.
func TestNativeSumsMatchBigIntegers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	values := map[string]func() int64{
		"scores":    func() int64 { return rng.Int64N(2_000_001) - 1_000_000 },
		"tokens":    func() int64 { return rng.Int64N(100_000) * Scale },
		"extremes":  func() int64 { return []int64{1e18, -1e18, 1e18 - 1, 0, 1}[rng.IntN(5)] },
		"positive":  func() int64 { return 1e18 },
		"negative":  func() int64 { return -1e18 },
		"min_int64": func() int64 { return []int64{math.MinInt64, math.MaxInt64}[rng.IntN(2)] },
	}
	for name, next := range values {
		t.Run(name, func(t *testing.T) {
			var refs [3]reference
			stats := [3]*Stat{New(Mean), New(Mean), New(Mean)}
			for i := range 3000 {
				k := i % 3
				q := next()
				refs[k].add(q)
				stats[k].AddValue(q)
				if i%97 == 0 {
					requireSame(t, &refs[k], stats[k], name)
				}
				if i%500 == 499 {
					// Merge a native or wide statistic into another and check both the
					// merged result and that the argument is left unchanged.
					a, b := (k+1)%3, (k+2)%3
					before := stats[b].Clone()
					refs[a].merge(&refs[b])
					stats[a].Merge(stats[b])
					requireSame(t, &refs[a], stats[a], name+" merge")
					requireSame(t, &refs[b], stats[b], name+" merged argument")
					assert.Equal(t, before.Sum().String(), stats[b].Sum().String())
				}
			}
			for k := range 3 {
				requireSame(t, &refs[k], stats[k], name)
				c := stats[k].Clone()
				c.AddValue(7)
				requireSame(t, &refs[k], stats[k], name+" clone is independent")
				if v, ok := stats[k].Variance(); ok {
					n := big.NewInt(refs[k].n)
					num := new(big.Int).Mul(n, &refs[k].sumSq)
					num.Sub(num, new(big.Int).Mul(&refs[k].sum, &refs[k].sum))
					den := new(big.Int).Mul(n, big.NewInt(refs[k].n-1))
					den.Mul(den, big.NewInt(Scale*Scale))
					want, _ := new(big.Rat).SetFrac(num, den).Float64()
					assert.Equal(t, want, v)
				}
				stats[k].Reset()
				requireSame(t, &reference{}, stats[k], name+" reset")
			}
		})
	}
}

// TestAddValueDoesNoBigIntegerWork pins the span path's cost: a fresh statistic counts values
// that fit native integers without allocating.
func TestAddValueDoesNoBigIntegerWork(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		s := Stat{Kind: Mean}
		s.AddValue(850_000)
		s.AddValue(-1_000_000_000_000_000_000 / 10)
		s.AddValue(math.MaxInt32)
		if s.N != 3 {
			t.Fatal("lost a value")
		}
	})
	assert.Zero(t, allocs)
}
