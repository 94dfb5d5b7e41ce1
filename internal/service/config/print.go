package config

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/kit/redact"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"gopkg.in/yaml.v3"
)

// Print renders cfg as the YAML of its effective configuration: every key
// with the value the worker uses (defaults filled in, computed ones such as
// consumer.application and worker_id included, ${VAR} already expanded,
// relative paths resolved) and every secret replaced by redact.Mask: PostgreSQL
// passwords in DSNs, registry passwords and tokens, a URL's userinfo (of the
// registry URL or a DSN) and query parameters named like a credential
// (token, key, secret, ...), and external_id: internal/kit/redact masks them,
// as it does in logs and errors. Keys are in the order of the spec
// (spec.go); a literal ${ in a value is written as $${, so the output loads
// back to the same config.
func Print(cfg *Config) ([]byte, error) {
	return render(cfg, true)
}

func render(cfg *Config, mask bool) ([]byte, error) {
	p := printer{mask: mask}
	root := p.mapping(
		keySources, p.seq(len(cfg.Sources), func(i int) *yaml.Node { return p.source(cfg.Sources[i]) }),
		keyDatasets, p.seq(len(cfg.Datasets), func(i int) *yaml.Node { return p.dataset(cfg.Datasets[i]) }),
		keySinks, p.seq(len(cfg.Sinks), func(i int) *yaml.Node { return p.sink(cfg.Sinks[i]) }),
		keyDeadLetter, p.deadLetter(cfg.DeadLetter),
		keyConsumer, p.consumer(cfg.Consumer),
		keyMetrics, p.mapping(keyListen, p.str(cfg.Metrics.Listen)),
		keyErrors, p.mapping(keyListen, p.str(cfg.Errors.Listen)),
		keyLog, p.mapping(keyLevel, p.str(cfg.Log.Level), keyFormat, p.str(cfg.Log.Format)),
	)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("print config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("print config: %w", err)
	}
	return buf.Bytes(), nil
}

type printer struct{ mask bool }

// mapping builds a mapping from key, value pairs; a nil value leaves its key
// out (an optional key that is not set and has no default).
func (p printer) mapping(kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		v, _ := kv[i+1].(*yaml.Node)
		if v == nil {
			continue
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: kv[i].(string)}, v)
	}
	return n
}

func (p printer) seq(n int, item func(int) *yaml.Node) *yaml.Node {
	s := &yaml.Node{Kind: yaml.SequenceNode}
	for i := range n {
		s.Content = append(s.Content, item(i))
	}
	return s
}

// str is a string scalar, quoted when YAML would read it as something else.
func (p printer) str(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.ReplaceAll(s, "${", "$${")}
	return n
}

// optStr is str, or nil (key left out) for "".
func (p printer) optStr(s string) *yaml.Node {
	if s == "" {
		return nil
	}
	return p.str(s)
}

func (p printer) secret(s string) *yaml.Node {
	if s == "" {
		return nil
	}
	if p.mask {
		return p.str(redact.Mask)
	}
	return p.str(s)
}

func (p printer) int(v int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v, 10)}
}

// optInt is int, or nil (key left out) for 0.
func (p printer) optInt(v int64) *yaml.Node {
	if v == 0 {
		return nil
	}
	return p.int(v)
}

func (p printer) bool(v bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}
}

func (p printer) dur(d time.Duration) *yaml.Node { return p.str(d.String()) }

func (p printer) value(v any) *yaml.Node {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return p.str(fmt.Sprint(v))
	}
	return &n
}

func (p printer) source(s Source) *yaml.Node {
	k := s.Kinesis
	var role *yaml.Node
	if k.RoleARN != nil {
		role = p.str(k.RoleARN.String())
	}
	return p.mapping(
		keyName, p.str(s.Name),
		keyKinesis, p.mapping(
			keyStreamARN, p.str(k.StreamARN.String()),
			keyRoleARN, role,
			keyExternalID, p.secret(k.ExternalID),
			keyInitPosition, p.str(k.InitPosition.String()),
			keyFormat, p.format(k.Format),
			keyCompression, p.str(k.Compression),
			keyMaxDecompressedBytes, p.optInt(k.MaxDecompressedBytes),
			keyEFO, p.efo(k.EFO),
		),
		keyEnv, p.strs(s.Env),
		keyBounded, p.bool(s.Bounded),
		keyIdleness, p.optDur(s.Idleness),
		keyMaxRecordAge, p.optDur(s.MaxRecordAge),
		keyExpired, p.optStr(s.Expired),
	)
}

// sources is a dataset's source: its one name as written before lists
// were allowed, else the list.
func (p printer) sources(v []string) *yaml.Node {
	if len(v) == 1 {
		return p.str(v[0])
	}
	return p.strs(v)
}

// strs is a list of strings, or nil (key left out) for none.
func (p printer) strs(v []string) *yaml.Node {
	if len(v) == 0 {
		return nil
	}
	n := p.seq(len(v), func(i int) *yaml.Node { return p.str(v[i]) })
	n.Style = yaml.FlowStyle
	return n
}

func (p printer) optDur(d time.Duration) *yaml.Node {
	if d == 0 {
		return nil
	}
	return p.dur(d)
}

// instant is a since or until bound, or nil when unbounded.
func (p printer) instant(t time.Time) *yaml.Node {
	if t.IsZero() {
		return nil
	}
	return p.str(t.UTC().Format(time.RFC3339Nano))
}

func (p printer) efo(e *EFO) *yaml.Node {
	if e == nil {
		return nil
	}
	return p.mapping(keyConsumerName, p.optStr(e.ConsumerName), keyConsumerARN, p.optStr(e.ConsumerARN))
}

func (p printer) format(f Format) *yaml.Node {
	if f.Kind == FormatCloudWatchLogs && f.CloudWatchLogs != nil {
		return p.mapping(keyCloudWatchLogs, p.mapping(keyMessage, p.str(f.CloudWatchLogs.Message)))
	}
	if f.Kind != FormatAvro || f.Avro == nil {
		return p.str(FormatJSON)
	}
	a := f.Avro
	if a.Registry != nil && a.Registry.Glue != nil {
		g := a.Registry.Glue
		return p.mapping(keyAvro, p.mapping(keyRegistry, p.mapping(keyGlue, p.mapping(
			keyRegistryName, p.str(g.RegistryName),
			keyRegion, p.optStr(g.Region),
			keyRoleARN, p.roleARN(g.RoleARN),
			keyExternalID, p.secret(g.ExternalID),
		))))
	}
	if a.Registry != nil {
		r := a.Registry
		return p.mapping(keyAvro, p.mapping(keyRegistry, p.mapping(
			keyURL, p.str(p.maskURL(r.URL)),
			keyUsername, p.optStr(r.Username),
			keyPassword, p.secret(r.Password),
			keyToken, p.secret(r.Token),
			keyCAFile, p.optStr(r.CAFile),
		)))
	}
	framing := a.Framing
	if framing == "" {
		framing = AvroFramingAuto
	}
	return p.mapping(keyAvro, p.mapping(keySchemaFile, p.str(a.SchemaFile), keyFraming, p.str(framing)))
}

func (p printer) dataset(d Dataset) *yaml.Node {
	var disorder *yaml.Node
	if d.Disorder > 0 {
		disorder = p.dur(d.Disorder) // 1h0m0s reads back in Fennel's syntax too
	}
	return p.mapping(
		keyName, p.str(d.Name),
		keySource, p.sources(d.Sources),
		keyTimestamp, p.optStr(d.Timestamp),
		keyWhere, p.optStr(d.Where),
		keyCDC, p.str(d.CDC),
		keyDisorder, disorder,
		keyFields, p.fields(d.Fields[:len(d.Fields)-d.Inputs]),
		keySink, p.str(d.Sink),
		keySince, p.instant(d.Since),
		keyUntil, p.instant(d.Until),
		keySample, p.sample(d.Sample),
		keyEnv, p.strs(d.Env),
		keyInputs, p.inputs(d.Fields[len(d.Fields)-d.Inputs:]),
	)
}

// inputs are the fields Load appended, flagged Input, after the dataset's
// own: they print as the inputs list they came from.
func (p printer) inputs(fs []schema.FieldSpec) *yaml.Node {
	if len(fs) == 0 {
		return nil
	}
	return p.fields(fs)
}

func (p printer) sample(s *Sample) *yaml.Node {
	if s == nil {
		return nil
	}
	return p.mapping(keyRate, p.value(s.Rate), keyUsing, p.strs(s.Using))
}

func (p printer) fields(fs []schema.FieldSpec) *yaml.Node {
	return p.seq(len(fs), func(i int) *yaml.Node {
		f := fs[i]
		var cst, sub, oneof, between, key *yaml.Node
		if f.Key {
			key = p.bool(true)
		}
		if f.HasConst {
			cst = p.value(f.Const)
		}
		if len(f.Fields) > 0 {
			sub = p.fields(f.Fields)
		}
		if len(f.Oneof) > 0 {
			oneof = p.value(f.Oneof)
		}
		if b := f.Between; b != nil {
			var lo, hi *yaml.Node
			if b.Min != nil {
				lo = p.value(b.Min)
			}
			if b.Max != nil {
				hi = p.value(b.Max)
			}
			between = p.mapping("min", lo, "max", hi, "strict_min", p.bool(b.StrictMin), "strict_max", p.bool(b.StrictMax))
		}
		n := p.mapping(
			"name", p.str(f.Name),
			"type", p.str(f.Type),
			"ref", p.optStr(f.Ref),
			"const", cst,
			"expr", p.optStr(f.Expr),
			"fields", sub,
			"oneof", oneof,
			"between", between,
			"regex", p.optStr(f.Regex),
			"key", key,
		)
		if sub == nil {
			n.Style = yaml.FlowStyle // one line per field, as configs write them
		}
		return n
	})
}

func (p printer) sink(s Sink) *yaml.Node {
	return p.mapping(append([]any{keyName, p.str(s.Name), keyMaxRetryDuration, p.optDur(s.MaxRetryDuration)}, p.printStore(s.Store, true)...)...)
}

func (p printer) deadLetter(d DeadLetter) *yaml.Node {
	return p.mapping(append(p.printStore(d.Store, false), keyUnrouted, p.bool(d.Unrouted))...)
}

func (p printer) fileSink(f *FileSink) *yaml.Node {
	if f == nil {
		return nil
	}
	return p.mapping(keyPath, p.str(f.Path), keyMaxBytes, p.int(f.MaxBytes), keyMode, p.str(fmt.Sprintf("%04o", f.Mode)))
}

func (p printer) postgresSink(s *PostgresSink) *yaml.Node {
	if s == nil {
		return nil
	}
	dsn := s.DSN
	if p.mask {
		dsn = redact.DSN(dsn)
	}
	return p.mapping(
		keyDSN, p.str(dsn),
		keyTable, p.str(s.Table),
		keyCreateTable, p.bool(s.CreateTable),
		keyBatchRows, p.int(int64(s.BatchRows)),
		keyBatchBytes, p.int(s.BatchBytes),
		keyBatchInterval, p.dur(s.BatchInterval),
	)
}

func (p printer) consumer(c Consumer) *yaml.Node {
	var role *yaml.Node
	if c.RoleARN != nil {
		role = p.str(c.RoleARN.String())
	}
	return p.mapping(
		keyApplication, p.str(c.Application),
		keyWorkerID, p.str(c.WorkerID),
		keyRoleARN, role,
		keyShardSyncInterval, p.dur(c.ShardSyncInterval),
		keyLeaseDuration, p.dur(c.LeaseDuration),
		keyLeaseRefresh, p.dur(c.LeaseRefresh),
		keyCheckpointInterval, p.dur(c.CheckpointInterval),
		keyMaxRecords, p.int(int64(c.MaxRecords)),
		keyIdleBetweenReads, p.dur(c.IdleBetweenReads),
		keyLeaseStealing, p.bool(c.LeaseStealing),
		keyBalance, p.str(c.Balance),
		keyMaxLeases, p.int(int64(c.MaxLeases)),
		keyMaxLeasesPerPass, p.int(int64(c.MaxLeasesPerPass)),
		keyShutdownTimeout, p.dur(c.ShutdownTimeout),
		keyCallTimeout, p.dur(c.CallTimeout),
		keyMaxInflightBytes, p.int(c.MaxInflightBytes),
		keyMinReadInterval, p.dur(c.MinReadInterval),
		keyMaxReadsPerSecond, p.int(int64(c.MaxReadsPerSecond)),
	)
}

func (p printer) maskURL(s string) string {
	if !p.mask {
		return s
	}
	return redact.URL(s)
}
