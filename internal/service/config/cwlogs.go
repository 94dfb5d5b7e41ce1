package config

import (
	"strings"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/decompress"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

// FormatCloudWatchLogs: records of a CloudWatch Logs subscription (gzip
// envelopes of log events), one row per event.
const FormatCloudWatchLogs = "cloudwatch_logs"

// Inner formats of a CloudWatch Logs event's message.
const (
	CloudWatchLogsJSON = "json"
	CloudWatchLogsStr  = "str"
)

// sources[i].kinesis.format.cloudwatch_logs.
const (
	keyCloudWatchLogs = "cloudwatch_logs"
	keyMessage        = "message"
)

// CloudWatchLogs is format cloudwatch_logs (decoders/cwlogs).
type CloudWatchLogs struct {
	// Message (message) is how an event's message is read: json (its
	// members are the payload's) or str (the default: the payload is one
	// member, message).
	Message string
}

// cloudWatchLogs reads format: {cloudwatch_logs: {message: ...}}.
func (l *loader) cloudWatchLogs(format *mapNode) Format {
	if format.has(keyAvro) {
		l.softErrorf(format.path, nil, "has both avro and cloudwatch_logs; keep one")
	}
	m := l.mapping(join(format.path, keyCloudWatchLogs), format.vals[keyCloudWatchLogs], keyMessage)
	c := &CloudWatchLogs{Message: CloudWatchLogsStr}
	if m.has(keyMessage) {
		switch v := l.str(m, keyMessage); v {
		case CloudWatchLogsJSON, CloudWatchLogsStr:
			c.Message = v
		default:
			l.errorf(join(m.path, keyMessage), m.vals[keyMessage], "%q is not a message format; use json (the message's JSON members are the fields) or str (the message is the one field, message)", v)
		}
	}
	return Format{Kind: FormatCloudWatchLogs, CloudWatchLogs: c}
}

// cloudWatchLogsCompression: a subscription's records are gzip, which the
// format reads itself, within max_decompressed_bytes.
func (l *loader) cloudWatchLogsCompression(km *mapNode, k *Kinesis) {
	if k.Compression != CompressionNone {
		l.errorf(join(km.path, keyCompression), km.vals[keyCompression], "format cloudwatch_logs reads the subscription's gzip itself; remove compression (max_decompressed_bytes still bounds each record)")
		k.Compression = CompressionNone
	}
	k.MaxDecompressedBytes = l.integer(km, keyMaxDecompressedBytes, DefaultMaxDecompressedBytes, 1, decompress.MaxBound)
}

// checkLogEventRefs: only a cloudwatch_logs source's records are log events,
// so only its datasets may read $log_group, ...; and a source that keeps
// messages as str has one payload member, message, so its datasets read no
// other.
func (l *loader) checkLogEventRefs(cfg *Config) {
	for i, d := range cfg.Datasets {
		// Sources of one dataset share their format (or fail for it), so
		// the first that exists speaks for all.
		var src *Source
		for _, name := range d.Sources {
			if src = cfg.Source(name); src != nil {
				break
			}
		}
		if src == nil || d.CDC == CDCDebezium {
			continue
		}
		f := src.Kinesis.Format
		path := index(keyDatasets, i)
		for j, sp := range d.Fields {
			p := path + "." + inputPath(index(keyFields, j), len(d.Fields)-d.Inputs)
			if f.Kind != FormatCloudWatchLogs {
				if isLogEventRef(sp.Ref) {
					l.errorf(p+".ref", nil, "%s is a CloudWatch Logs event's, and source %q's format is %s, whose records have none; read it from a source with format: cloudwatch_logs", sp.Ref, src.Name, f.Kind)
				}
				continue
			}
			if f.CloudWatchLogs == nil || f.CloudWatchLogs.Message != CloudWatchLogsStr || sp.Expr != "" || sp.HasConst || schema.IsMetadataRef(sp.Ref) {
				continue
			}
			ref := sp.Ref
			if ref == "" {
				ref = sp.Name
			}
			if head := refHead(ref); head != keyMessage {
				l.errorf(p, nil, "field %q reads the payload's %q, but source %q keeps CloudWatch Logs messages as str, so its payload is only message; read JSON messages with format: {cloudwatch_logs: {message: json}}, or ref: message", sp.Name, head, src.Name)
			}
		}
	}
}

// isLogEventRef reports whether ref is the name of a log event's metadata.
func isLogEventRef(ref string) bool {
	for _, m := range schema.MetadataNames() {
		if m.Name == ref {
			return m.LogEvent
		}
	}
	return false
}

// refHead is the payload member a ref starts at: `a.b[0]` → a,
// `["x.y"].z` → x.y.
func refHead(ref string) string {
	if rest, ok := strings.CutPrefix(ref, `["`); ok {
		if end := strings.Index(rest, `"]`); end >= 0 {
			return rest[:end]
		}
		return rest
	}
	if i := strings.IndexAny(ref, ".["); i >= 0 {
		return ref[:i]
	}
	return ref
}

// knownMetadata lists, for an error, the metadata dataset d may read.
func (l *loader) knownMetadata(d *Dataset) []string {
	// A log event's metadata is known only when every source of the
	// dataset reads log events: the others' records have none.
	logEvents := len(d.Sources) > 0
	for _, src := range d.Sources {
		logEvents = logEvents && l.logEventSources[src]
	}
	var known []string
	for _, m := range schema.MetadataNames() {
		if !m.LogEvent || logEvents {
			known = append(known, m.Name)
		}
	}
	return known
}

// noteLogEventSources notes the sources whose records are log events, for
// knownMetadata.
func (l *loader) noteLogEventSources(cfg *Config) {
	l.logEventSources = map[string]bool{}
	for _, s := range cfg.Sources {
		if s.Kinesis.Format.Kind == FormatCloudWatchLogs {
			l.logEventSources[s.Name] = true
		}
	}
}
