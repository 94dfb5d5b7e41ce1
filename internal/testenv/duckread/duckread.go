// Package duckread reads what the lake wrote with DuckDB, a reader
// independent of the writer: the tests count rows by id with read_parquet
// (or read_json) over the objects' files, as a user reading the lake would,
// with no manifest and no cleanup step first.
//
// DuckDB comes from npm (@duckdb/node-api, pinned in package-lock.json here,
// its native binary inside the package) and is installed by `make test-deps`;
// query.js runs one query and prints the rows as JSON.
package duckread

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// dir is this package's directory (query.js and node_modules).
func dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Query runs sql and returns its rows, each column as DuckDB's JSON form of
// the value (numbers beyond float64's exact range as strings). It fails the
// test if DuckDB is not installed or the query fails.
func Query(t testing.TB, sql string) []map[string]any {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir(), "node_modules", "@duckdb", "node-api")); err != nil {
		t.Fatalf("duckread: DuckDB is not installed: run `make test-deps` (npm ci in %s)", dir())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "query.js", sql)
	cmd.Dir = dir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("duckread: %s: %v\n%s", sql, err, stderr.String())
	}
	dec := json.NewDecoder(&stdout)
	dec.UseNumber()
	var rows []map[string]any
	if err := dec.Decode(&rows); err != nil {
		t.Fatalf("duckread: %s: output is not JSON rows: %v", sql, err)
	}
	return rows
}

// Quote makes s a SQL string literal.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// CountByID counts the rows of every Parquet file under root (recursively)
// by the value of column idCol, read as text: each id's number of rows.
// No file at all is an empty map, not an error.
func CountByID(t testing.TB, root, idCol string) map[string]int {
	t.Helper()
	return countBy(t, root, "*.parquet", "read_parquet(%s, union_by_name = true)", idCol)
}

// CountByIDJSON is CountByID for JSON Lines objects (.jsonl, .jsonl.gz,
// .jsonl.zst), which DuckDB decompresses itself.
func CountByIDJSON(t testing.TB, root, idCol string) map[string]int {
	t.Helper()
	return countBy(t, root, "*.jsonl*", "read_json(%s, format = 'newline_delimited', union_by_name = true)", idCol)
}

// countBy counts the rows of the files under root whose name matches
// pattern (DuckDB's glob, ** for any depth) by idCol.
func countBy(t testing.TB, root, pattern, reader, idCol string) map[string]int {
	t.Helper()
	if !anyFile(root, pattern) {
		// DuckDB refuses a glob that matches nothing.
		return map[string]int{}
	}
	glob := filepath.Join(root, "**", pattern)
	sql := fmt.Sprintf("SELECT CAST(%s AS VARCHAR) AS id, CAST(count(*) AS INTEGER) AS n FROM "+reader+" GROUP BY 1",
		`"`+strings.ReplaceAll(idCol, `"`, `""`)+`"`, Quote(glob))
	out := map[string]int{}
	for _, r := range Query(t, sql) {
		id, _ := r["id"].(string)
		n, err := r["n"].(json.Number).Int64()
		if err != nil {
			t.Fatalf("duckread: count of %q: %v", id, err)
		}
		out[id] = int(n)
	}
	return out
}

// anyFile reports whether a file under root has a name matching pattern.
func anyFile(root, pattern string) bool {
	found := false
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if ok, _ := filepath.Match(pattern, d.Name()); ok {
				found = true
				return filepath.SkipAll
			}
		}
		return nil
	})
	return found
}
