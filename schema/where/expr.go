package where

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

// Expr is a computed field's expression (a field's expr, Fennel's preproc
// eval), in the same language as a where: it reads the dataset's fields that
// are not computed, typed as the row holds them (see the package doc), and
// gives the field's value. It is immutable and safe for concurrent use.
type Expr struct {
	prog *vm.Program
	vars []exprVar
	pool sync.Pool // *state
}

type exprVar struct {
	name  string
	idx   int // in the row
	shape *shape
}

var _ schema.Expr = (*Expr)(nil)

// CompileExpr is a schema.ExprCompiler: it compiles the expr of field i of
// specs against the other fields that are not computed and checks, at load,
// that what it gives fits the field's type want (an int for a float is
// fine; a str for an int is not). A result whose type is only known when
// it runs (an element of a list of any) is checked then, on each row.
func CompileExpr(src string, i int, specs []schema.FieldSpec, want schema.Type) (schema.Expr, error) {
	env := types.Map{}
	shapes := map[string]*shape{}
	index := map[string]int{}
	for j := range specs {
		sp := &specs[j]
		if sp.Name == "" || sp.Expr != "" {
			continue
		}
		t, sh := specType(sp)
		env[sp.Name], shapes[sp.Name], index[sp.Name] = t, sh, j
	}
	prog, err := expr.Compile(src, expr.Env(env), expr.Timezone("UTC"))
	if err != nil {
		msg := metadataHint(exprMessage(err))
		if specs[i].Name != "" {
			for j := range specs {
				if j != i && specs[j].Expr != "" && specs[j].Name != "" && isUnknown(msg, specs[j].Name) {
					msg += fmt.Sprintf(" (%s is computed too; an expr reads only fields that are not)", specs[j].Name)
				}
			}
		}
		return nil, errors.New(msg)
	}
	if err := fits(prog.Node().Type(), want); err != nil {
		return nil, err
	}
	e := &Expr{prog: prog}
	u := usedNames(prog.Node())
	for j := range specs {
		sp := &specs[j]
		if _, ok := index[sp.Name]; ok && (u.all || u.names[sp.Name]) {
			e.vars = append(e.vars, exprVar{name: sp.Name, idx: j, shape: shapes[sp.Name]})
		}
	}
	n := len(e.vars)
	e.pool.New = func() any { return &state{env: make(map[string]any, n)} }
	return e, nil
}

func isUnknown(msg, name string) bool {
	return msg == "unknown name "+name || len(msg) > len("unknown name "+name+" ") && msg[:len("unknown name "+name+" ")] == "unknown name "+name+" "
}

// Eval runs the expression on a row.
func (e *Expr) Eval(row []record.Field) (any, error) {
	st := e.pool.Get().(*state)
	defer e.pool.Put(st)
	for _, v := range e.vars {
		val := row[v.idx].Value
		if v.shape.adapt {
			val = v.shape.value(val)
		}
		st.env[v.name] = val
	}
	out, err := st.vm.Run(e.prog, st.env)
	clear(st.env)
	if err != nil {
		return nil, errors.New(exprMessage(err))
	}
	return out, nil
}

var (
	intKinds   = []reflect.Kind{reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64}
	floatKinds = []reflect.Kind{reflect.Float32, reflect.Float64}
	timeRType  = reflect.TypeOf(time.Time{})
)

// fits checks an expression's static result type against a field's type.
// An interface (not known until run time) always fits here.
func fits(got reflect.Type, want schema.Type) error {
	if got == nil || got.Kind() == reflect.Interface {
		return nil
	}
	field := want
	for want.Kind == schema.KindOptional && want.Elem != nil {
		want = *want.Elem
	}
	if got.Kind() == reflect.Pointer {
		got = got.Elem()
	}
	in := func(ks []reflect.Kind) bool {
		for _, k := range ks {
			if got.Kind() == k {
				return true
			}
		}
		return false
	}
	ok := true
	switch want.Kind {
	case schema.KindInt:
		ok = in(intKinds)
	case schema.KindFloat, schema.KindDecimal:
		ok = in(intKinds) || in(floatKinds)
	case schema.KindBool:
		ok = got.Kind() == reflect.Bool
	case schema.KindStr:
		ok = got.Kind() == reflect.String
	case schema.KindDatetime:
		ok = got == timeRType || got.Kind() == reflect.String || in(intKinds) || in(floatKinds)
	case schema.KindDate:
		ok = got == timeRType || got.Kind() == reflect.String
	case schema.KindList, schema.KindEmbedding:
		ok = got.Kind() == reflect.Slice || got.Kind() == reflect.Array
	case schema.KindMap, schema.KindStruct:
		ok = got.Kind() == reflect.Map
	}
	if !ok {
		return fmt.Errorf("gives %s, but the field is %s", goTypeName(got), field)
	}
	return nil
}

func goTypeName(t reflect.Type) string {
	switch {
	case t == timeRType:
		return "a datetime"
	case t.Kind() == reflect.String:
		return "a str"
	case t.Kind() == reflect.Bool:
		return "a bool"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a float"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "an int"
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		return "a list"
	case t.Kind() == reflect.Map:
		return "a map"
	}
	return t.String()
}
