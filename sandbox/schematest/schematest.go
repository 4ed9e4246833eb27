// Package schematest validates JSON documents against the subset of JSON
// Schema that warden's documented schemas use. Tests only.
package schematest

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
)

// Validate checks doc against the schema file; it returns one line per
// violation.
func Validate(schemaPath string, doc []byte) ([]string, error) {
	b, err := os.ReadFile(schemaPath)
	if err != nil {
		return nil, err
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		return nil, fmt.Errorf("schema %s: %w", schemaPath, err)
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("document is not JSON: %w", err)
	}
	return validate(schema, v, "$"), nil
}

// validate checks v against the subset of JSON Schema that
// docs/report.schema.json uses: type, enum, required, properties,
// additionalProperties (false), items.
func validate(schema map[string]any, v any, at string) []string {
	var errs []string
	if t, ok := schema["type"]; ok {
		types := []string{}
		switch tt := t.(type) {
		case string:
			types = append(types, tt)
		case []any:
			for _, x := range tt {
				types = append(types, x.(string))
			}
		}
		okType := false
		for _, t := range types {
			if jsonType(v, t) {
				okType = true
			}
		}
		if !okType {
			return []string{fmt.Sprintf("%s: %v is not of type %v", at, v, types)}
		}
	}
	if enum, ok := schema["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if fmt.Sprint(e) == fmt.Sprint(v) {
				found = true
			}
		}
		if !found {
			errs = append(errs, fmt.Sprintf("%s: %v not in %v", at, v, enum))
		}
	}
	if obj, ok := v.(map[string]any); ok {
		props, _ := schema["properties"].(map[string]any)
		for _, r := range asStrings(schema["required"]) {
			if _, ok := obj[r]; !ok {
				errs = append(errs, fmt.Sprintf("%s: missing required %q", at, r))
			}
		}
		for k, val := range obj {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if schema["additionalProperties"] == false {
					errs = append(errs, fmt.Sprintf("%s: unexpected property %q", at, k))
				}
				continue
			}
			errs = append(errs, validate(ps, val, at+"."+k)...)
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := schema["items"].(map[string]any); ok {
			for i, x := range arr {
				errs = append(errs, validate(items, x, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return errs
}

func jsonType(v any, t string) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == float64(int64(f))
	case "null":
		return v == nil
	case "boolean":
		_, ok := v.(bool)
		return ok
	}
	return false
}

func asStrings(v any) []string {
	var out []string
	if a, ok := v.([]any); ok {
		for _, x := range a {
			out = append(out, x.(string))
		}
	}
	sort.Strings(out)
	return out
}
