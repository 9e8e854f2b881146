// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package judge // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"

import "fmt"

// cohortSamples is a cohort's sample count: the n of its best-covered policy signal.
func (j *Judge) cohortSamples(e *Evidence, c cohort) int64 {
	signals := e.cohort(c)
	var most int64
	for i := range j.policy.Signals {
		if s, ok := signals[j.policy.Signals[i].Attribute()]; ok && s.N > most {
			most = s.N
		}
	}
	return most
}

// immaturity says why the step has not reached its minimum duration and samples (nothing when
// it has): the step's own minimums, or the ramp's. At 100% the stable cohort receives no
// traffic and is exempt.
func immaturity(stableN, canaryN int64, minDuration float64, minSamples int64, elapsed float64, last bool) []string {
	var reasons []string
	if elapsed < minDuration {
		reasons = append(reasons, fmt.Sprintf("the step has run %s s of its %s s minimum", pyG(elapsed), pyG(minDuration)))
	}
	for _, c := range []struct {
		name cohort
		n    int64
	}{{canary, canaryN}, {stable, stableN}} {
		if c.name == stable && last {
			continue
		}
		if c.n < minSamples {
			reasons = append(reasons, fmt.Sprintf("the %s cohort has %d of the %d samples the step needs", c.name, c.n, minSamples))
		}
	}
	return reasons
}

// missingData says which must_have_data signals lack the step's minimum samples.
func (j *Judge) missingData(e *Evidence, minimum int64, last bool) []string {
	var reasons []string
	for i := range j.policy.Signals {
		s := &j.policy.Signals[i]
		if !s.MustHaveData {
			continue
		}
		for _, c := range []cohort{canary, stable} {
			if c == stable && last {
				continue
			}
			var n int64
			if st, ok := e.cohort(c)[s.Attribute()]; ok {
				n = st.N
			}
			if n < minimum {
				reasons = append(reasons, fmt.Sprintf("signal %s has %d of the %d %s samples it must have (must_have_data)", pyQuote(s.Name), n, minimum, c))
			}
		}
	}
	return reasons
}
