// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package policy // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decodeText reads YAML or JSON into maps, lists and scalars. Like the Python engine, text that
// starts with "{" is read as JSON first (numbers keep their exact spelling), and as YAML when it
// is not JSON (a YAML flow mapping).
func decodeText(data []byte) (any, error) {
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err == nil && !dec.More() {
			return v, nil
		}
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	return normalize(v), nil
}

// normalize turns the map[any]any that YAML produces for non-string keys into map[string]any.
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, item := range t {
			t[k] = normalize(item)
		}
		return t
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, item := range t {
			out[fmt.Sprint(k)] = normalize(item)
		}
		return out
	case []any:
		for i, item := range t {
			t[i] = normalize(item)
		}
		return t
	default:
		return v
	}
}

// problems collects validation errors with their location, in document order, the way the
// Python engine reports them: "signals.0.harmful: Field required".
type problems struct{ list []string }

func (p *problems) add(loc, msg string) {
	if loc == "" {
		p.list = append(p.list, msg)
		return
	}
	p.list = append(p.list, loc+": "+msg)
}

func (p *problems) count() int { return len(p.list) }

func join(loc string, key any) string {
	if loc == "" {
		return fmt.Sprint(key)
	}
	return loc + "." + fmt.Sprint(key)
}

// object reads the fields of one mapping, reporting missing, mistyped and unknown fields.
type object struct {
	loc   string
	m     map[string]any
	known map[string]bool
	probs *problems
}

func newObject(v any, loc, what string, probs *problems) (*object, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		probs.add(loc, "Input should be a valid dictionary or instance of "+what)
		return nil, false
	}
	return &object{loc: loc, m: m, known: map[string]bool{}, probs: probs}, true
}

// get returns the field's value; a missing required field is reported.
func (o *object) get(key string, required bool) (any, bool) {
	o.known[key] = true
	v, ok := o.m[key]
	if !ok && required {
		o.probs.add(join(o.loc, key), "Field required")
	}
	return v, ok
}

// finish reports the fields the model does not know, worded as the Python engine words them
// ("unknown field", not pydantic's "Extra inputs are not permitted").
func (o *object) finish() {
	var extra []string
	for k := range o.m {
		if !o.known[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		o.probs.add(join(o.loc, k), "unknown field")
	}
}

func (o *object) str(key string, required bool) (string, bool) {
	v, ok := o.get(key, required)
	if !ok {
		return "", false
	}
	s, isStr := v.(string)
	if !isStr {
		o.probs.add(join(o.loc, key), "Input should be a valid string")
		return "", false
	}
	return s, true
}

// choice reads a string that must be one of choices.
func (o *object) choice(key string, choices ...string) (string, bool) {
	v, ok := o.get(key, true)
	if !ok {
		return "", false
	}
	s, _ := v.(string)
	for _, c := range choices {
		if s == c {
			return s, true
		}
	}
	quoted := make([]string, len(choices))
	for i, c := range choices {
		quoted[i] = "'" + c + "'"
	}
	msg := "Input should be " + quoted[0]
	if n := len(quoted); n > 1 {
		msg = "Input should be " + strings.Join(quoted[:n-1], ", ") + " or " + quoted[n-1]
	}
	o.probs.add(join(o.loc, key), msg)
	return "", false
}

func (o *object) boolean(key string, def bool) bool {
	v, ok := o.get(key, false)
	if !ok {
		return def
	}
	b, valid := toBool(v)
	if !valid {
		o.probs.add(join(o.loc, key), "Input should be a valid boolean")
	}
	return b
}

// number reads a float field; finite refuses infinities and NaN.
func (o *object) number(key string, finite bool, def float64) (float64, bool) {
	v, ok := o.get(key, false)
	if !ok {
		return def, true
	}
	return numberValue(v, join(o.loc, key), finite, o.probs)
}

// optionalNumber reads a float field that may be null or missing (nil then).
func (o *object) optionalNumber(key string) (*float64, bool) {
	v, ok := o.get(key, false)
	if !ok || v == nil {
		return nil, true
	}
	f, valid := numberValue(v, join(o.loc, key), true, o.probs)
	if !valid {
		return nil, false
	}
	return &f, true
}

// integer reads an integer field. A whole number beyond the int64 range is refused as the
// Python engine refuses it (its bound is the store's, 2**63 - 1); one below it reads as the
// smallest int64, so that the caller's lower bound refuses it in the same words.
func (o *object) integer(key string, def int64) (int64, bool) {
	v, ok := o.get(key, false)
	if !ok {
		return def, true
	}
	n, valid := toInt(v)
	if !valid {
		switch beyondInt64(v) {
		case 1:
			o.probs.add(join(o.loc, key), maxIntMessage)
		case -1:
			return math.MinInt64, true
		default:
			o.probs.add(join(o.loc, key), "Input should be a valid integer")
		}
	}
	return n, valid
}

// maxIntMessage is how the Python engine refuses an integer above the store's range.
const maxIntMessage = "Input should be less than or equal to 9223372036854775807"

// beyondInt64 is 1 for a whole number above the int64 range, -1 for one below it, 0 otherwise
// (an int64, or not a whole number at all).
func beyondInt64(v any) int {
	var text string
	switch t := v.(type) {
	case uint64:
		if t > math.MaxInt64 {
			return 1
		}
		return 0
	case float64:
		if t != math.Trunc(t) || math.IsInf(t, 0) {
			return 0
		}
		text = strconv.FormatFloat(t, 'f', -1, 64)
	case json.Number:
		text = t.String()
	case string:
		text = strings.ReplaceAll(strings.TrimSpace(t), "_", "")
	default:
		return 0
	}
	f, _, err := big.ParseFloat(text, 10, 0, big.ToNearestEven)
	if err != nil || !f.IsInt() {
		return 0
	}
	n, _ := f.Int(nil)
	switch {
	case n.Cmp(big.NewInt(math.MaxInt64)) > 0:
		return 1
	case n.Cmp(big.NewInt(math.MinInt64)) < 0:
		return -1
	default:
		return 0
	}
}

func numberValue(v any, loc string, finite bool, probs *problems) (float64, bool) {
	f, ok := toFloat(v)
	if !ok {
		probs.add(loc, "Input should be a valid number")
		return 0, false
	}
	if finite && (math.IsInf(f, 0) || math.IsNaN(f)) {
		probs.add(loc, "Input should be a finite number")
		return 0, false
	}
	return f, true
}

// decimal is the spelling of a number in a string that the Python engine accepts.
var decimal = regexp.MustCompile(`^[+-]?([0-9]+(_[0-9]+)*\.?([0-9]+(_[0-9]+)*)?|\.[0-9]+(_[0-9]+)*)([eE][+-]?[0-9]+)?$`)

// toFloat converts what the Python engine accepts as a float in lax mode: numbers, booleans
// and numeric strings.
func toFloat(v any) (float64, bool) {
	switch t := v.(type) {
	case float64:
		return t, true
	case int:
		return float64(t), true
	case int64:
		return float64(t), true
	case uint64:
		return float64(t), true
	case json.Number:
		f, err := strconv.ParseFloat(t.String(), 64)
		return f, err == nil
	case bool:
		if t {
			return 1, true
		}
		return 0, true
	case string:
		s := strings.TrimSpace(t)
		switch strings.ToLower(strings.TrimLeft(s, "+-")) {
		case "inf", "infinity":
			if strings.HasPrefix(s, "-") {
				return math.Inf(-1), true
			}
			return math.Inf(1), true
		case "nan":
			return math.NaN(), true
		}
		if !decimal.MatchString(s) {
			return 0, false
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
		return f, err == nil
	default:
		return 0, false
	}
}

// toInt converts what the Python engine accepts as an int in lax mode: integers, booleans,
// floats without a fractional part and integer strings.
func toInt(v any) (int64, bool) {
	switch t := v.(type) {
	case int:
		return int64(t), true
	case int64:
		return t, true
	case uint64:
		if t > math.MaxInt64 {
			return 0, false
		}
		return int64(t), true
	case bool:
		if t {
			return 1, true
		}
		return 0, true
	case json.Number:
		if n, err := t.Int64(); err == nil {
			return n, true
		}
		return floatToInt(toFloat(t))
	case float64:
		return floatToInt(t, true)
	case string:
		s := strings.ReplaceAll(strings.TrimSpace(t), "_", "")
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, true
		}
		return floatToInt(toFloat(t))
	default:
		return 0, false
	}
}

func floatToInt(f float64, ok bool) (int64, bool) {
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) || math.Abs(f) >= 1<<63 {
		return 0, false
	}
	return int64(f), true
}

// toBool converts what the Python engine accepts as a boolean in lax mode.
func toBool(v any) (bool, bool) {
	switch t := v.(type) {
	case bool:
		return t, true
	case string:
		switch strings.ToLower(t) {
		case "1", "on", "t", "true", "y", "yes":
			return true, true
		case "0", "off", "f", "false", "n", "no":
			return false, true
		}
		return false, false
	default:
		if n, ok := toInt(v); ok && (n == 0 || n == 1) {
			if f, isFloat := toFloat(v); isFloat && f != float64(n) {
				return false, false
			}
			return n == 1, true
		}
		return false, false
	}
}

// truthy mirrors Python's truthiness for the scalars a document holds.
func truthy(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case string:
		return t != ""
	case bool:
		return t
	case map[string]any:
		return len(t) > 0
	case []any:
		return len(t) > 0
	default:
		f, ok := toFloat(v)
		return !ok || f != 0
	}
}
