package config

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// Store is where a sink or the dead-letter sink writes: exactly one kind's
// settings are set (validation refuses none or several).
type Store struct {
	File     *FileSink
	Iceberg  *IcebergSink
	Postgres *PostgresSink
	S3       *S3Sink
}

// Kind names the store's kind, its key in the config ("file", "postgres"),
// "" when none is set: internal/service/sinkreg looks the kind's sinks up by it.
func (s Store) Kind() string {
	for _, k := range sinkKinds {
		if k.set(s) {
			return k.key
		}
	}
	return ""
}

// SinkKinds lists the kinds of sink the config accepts, sorted.
func SinkKinds() []string {
	out := make([]string, len(sinkKinds))
	for i, k := range sinkKinds {
		out[i] = k.key
	}
	return out
}

// sinkKind is one kind of sink as the config knows it: its key, its spec
// (docs and JSON Schema), how it is loaded, printed and checked across the
// whole config. A kind's sinks are internal/service/sinkreg's, under the same key.
type sinkKind struct {
	key     string
	example string // how the kind's section starts, for messages
	// rowsDoc and lettersDoc document the kind under sinks[] and
	// dead_letter.
	rowsDoc, lettersDoc string
	spec                func(doc string) *spec
	load                func(l *loader, path string, n *yaml.Node, s *Store)
	set                 func(s Store) bool
	print               func(p printer, s Store) *yaml.Node // nil when not set
	// lint checks what no single sink shows: two sinks writing one place.
	lint func(l *loader, cfg *Config)
	// lettersSpec, loadLetters and printLetters, when set, stand for spec,
	// load and print under dead_letter, where the kind takes fewer
	// settings than under sinks[].
	lettersSpec  func(doc string) *spec
	loadLetters  func(l *loader, path string, n *yaml.Node, s *Store)
	printLetters func(p printer, s Store) *yaml.Node
	// rowsOnly kinds hold no dead letters.
	rowsOnly bool
}

// sinkKinds are the kinds, in key order.
var sinkKinds = []sinkKind{
	{
		key: keyFile, example: "file: {path: ...}",
		rowsDoc: "JSON Lines files.", lettersDoc: "JSON Lines files.",
		spec:  fileSinkSpec,
		load:  func(l *loader, path string, n *yaml.Node, s *Store) { s.File = l.fileSink(path, n) },
		set:   func(s Store) bool { return s.File != nil },
		print: func(p printer, s Store) *yaml.Node { return p.fileSink(s.File) },
		lint:  (*loader).checkFilePaths,
	},
	{
		key: keyIceberg, example: "iceberg: {catalog: ..., warehouse: ..., namespace: ...}",
		rowsDoc:  "An Apache Iceberg table: Parquet data files on S3, committed with each shard's position in one catalog swap (exactly once).",
		spec:     icebergSinkSpec,
		load:     func(l *loader, path string, n *yaml.Node, s *Store) { s.Iceberg = l.icebergSink(path, n) },
		set:      func(s Store) bool { return s.Iceberg != nil },
		print:    func(p printer, s Store) *yaml.Node { return p.icebergSink(s.Iceberg) },
		lint:     (*loader).checkIceberg,
		rowsOnly: true,
	},
	{
		key: keyPostgres, example: "postgres: {dsn: ..., table: ...}",
		rowsDoc: "A PostgreSQL table, written effectively once.", lettersDoc: "A PostgreSQL table.",
		spec:  postgresSinkSpec,
		load:  func(l *loader, path string, n *yaml.Node, s *Store) { s.Postgres = l.postgresSink(path, n) },
		set:   func(s Store) bool { return s.Postgres != nil },
		print: func(p printer, s Store) *yaml.Node { return p.postgresSink(s.Postgres) },
		lint:  (*loader).checkPostgresTables,
	},
	{
		key: keyS3, example: "s3: {bucket: ...}",
		rowsDoc:      "Objects in an S3 bucket (the lake): Parquet or JSON Lines, written effectively once.",
		lettersDoc:   "JSON Lines objects in an S3 bucket (the file sink's lines), written effectively once.",
		spec:         s3SinkSpec,
		load:         func(l *loader, path string, n *yaml.Node, s *Store) { s.S3 = l.s3Sink(path, n) },
		set:          func(s Store) bool { return s.S3 != nil },
		print:        func(p printer, s Store) *yaml.Node { return p.s3Sink(s.S3) },
		lint:         (*loader).checkS3,
		lettersSpec:  s3DeadLetterSpec,
		loadLetters:  func(l *loader, path string, n *yaml.Node, s *Store) { s.S3 = l.s3DeadLetter(path, n) },
		printLetters: func(p printer, s Store) *yaml.Node { return p.s3DeadLetter(s.S3) },
	},
}

// sinkKindKeys are the kinds' keys, after the keys of the section itself.
func sinkKindKeys(section ...string) []string {
	for _, k := range sinkKinds {
		section = append(section, k.key)
	}
	return section
}

// store decodes the one store of a sink or of the dead-letter section:
// exactly one kind. bothHint says what to do when several are given.
func (l *loader) store(path string, n *yaml.Node, m *mapNode, rows bool, bothHint string) Store {
	var s Store
	var given []sinkKind
	kinds := sinkKinds
	for _, k := range kinds {
		if m.has(k.key) {
			given = append(given, k)
		}
	}
	switch len(given) {
	case 1:
		k := given[0]
		load := k.load
		if !rows && k.loadLetters != nil {
			load = k.loadLetters
		}
		load(l, join(path, k.key), m.vals[k.key], &s)
	case 0:
		var examples []string
		for _, k := range kinds {
			if rows || !k.rowsOnly {
				examples = append(examples, k.example)
			}
		}
		l.softErrorf(path, n, "needs exactly one of %s", strings.Join(examples, " or "))
	default:
		keys := make([]string, len(given))
		for i, k := range given {
			keys[i] = k.key
		}
		l.softErrorf(path, nil, "has both %s; %s", strings.Join(keys, " and "), bothHint)
	}
	return s
}

// storeSpecs are the kinds' keys of a sink (rows) or of the dead-letter
// section.
func storeSpecs(rows bool) []keySpec {
	var out []keySpec
	for _, k := range sinkKinds {
		if !rows && k.rowsOnly {
			continue
		}
		doc, sp := k.rowsDoc, k.spec
		if !rows {
			doc = k.lettersDoc
			if k.lettersSpec != nil {
				sp = k.lettersSpec
			}
		}
		out = append(out, key(k.key, sp(doc)))
	}
	return out
}

// letterKinds are the kinds that hold dead letters.
func letterKinds() []string {
	var out []string
	for _, k := range sinkKinds {
		if !k.rowsOnly {
			out = append(out, k.key)
		}
	}
	return out
}

// printStore is the kinds' part of a sink (rows) or the dead-letter section.
func (p printer) printStore(s Store, rows bool) []any {
	var kv []any
	for _, k := range sinkKinds {
		if !rows && k.rowsOnly {
			continue
		}
		print := k.print
		if !rows && k.printLetters != nil {
			print = k.printLetters
		}
		kv = append(kv, k.key, print(p, s))
	}
	return kv
}
