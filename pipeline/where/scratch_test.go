package where

import (
	"fmt"
	"testing"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/types"
)

func TestScratch(t *testing.T) {
	env := types.Map{"amount": types.Float64, "note": types.String, "ts": types.TypeOf(time.Time{}), "id": types.Int64, "tags": types.Array(types.String),
		"user": types.Map{"city": types.String}, "m": types.Map{types.Extra: types.Int64}}
	for _, src := range []string{"amount > 0", "amont > 0", "amount == \"x\"", "note == nil", "note != nil && note == \"x\"", "(note ?? \"d\") == \"d\"",
		"ts > date(\"2024-01-01\")", "id > 10", "id == 1.5", "amount", "amount + 1", "'a' in tags", "user.city == 'x'", "user.zip == 'x'", "m.foo > 1", "m['foo'] > 1", "len(tags) > 1", "note startsWith 'a'", "note?.x", "amount > 0 &&", "note > 3", "id in [1,2]", "ts.Year() == 2024", "now() > ts", "1"} {
		p, err := expr.Compile(src, expr.Env(env), expr.AsBool())
		if err != nil {
			fmt.Printf("%-35s COMPILE ERR %v\n", src, err)
			continue
		}
		for _, vars := range []map[string]any{
			{"amount": 1.5, "note": "x", "ts": time.Now(), "id": int64(3), "tags": []any{"a"}, "user": map[string]any{"city": "x"}, "m": map[string]any{"foo": int64(2)}},
			{"amount": nil, "note": nil, "ts": nil, "id": nil, "tags": nil, "user": nil, "m": nil},
		} {
			out, err := expr.Run(p, vars)
			fmt.Printf("%-35s -> %v %v\n", src, out, err)
		}
	}
}
