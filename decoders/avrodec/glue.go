package avrodec

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/aws/aws-sdk-go-v2/service/glue/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/kinesis-ingest/kinesis-ingest/decoders"
)

// Glue is an AWS Glue Schema Registry, for records framed by Glue's
// serializers (the AWS Glue Schema Registry library's, which KCL-Java, Flink
// and the Kinesis Producer Library use):
//
//	byte 0       header version, 3
//	byte 1       compression: 0 none, 5 zlib
//	bytes 2-17   the schema version id, a UUID, most significant byte first
//	bytes 18-    the Avro binary record, zlib-compressed when byte 1 is 5
//
// Schemas are fetched by version id with GetSchemaVersion and cached; ids are
// unique across an account's registries.
type Glue struct {
	// Client calls Glue, normally a *glue.Client. Each GetSchemaVersion is one
	// attempt (the SDK's retries are turned off for it): a failed one makes
	// Decode return decoders.ErrTransient at once, and the pipeline retries
	// the record with its backoff, the one layer that retries.
	Client GlueClient
	// RegistryName names the registry in messages.
	RegistryName string
	// Timeout bounds one GetSchemaVersion; default 5s.
	Timeout time.Duration
	// NotFoundTTL is how long a version id Glue answered
	// EntityNotFoundException for stays unknown before Glue is asked again;
	// default 30s. Within it such records fail at once.
	NotFoundTTL time.Duration
	// MaxInflatedBytes bounds a zlib-compressed record's inflated size; a
	// record over it is a decode error naming the bound. Default 10 MiB.
	MaxInflatedBytes int64
}

// GlueClient is the call of *glue.Client a Glue registry makes.
type GlueClient interface {
	GetSchemaVersion(ctx context.Context, in *glue.GetSchemaVersionInput, optFns ...func(*glue.Options)) (*glue.GetSchemaVersionOutput, error)
}

// Glue's wire format.
const (
	glueHeaderVersion = 3
	glueNone          = 0
	glueZlib          = 5
	glueHeaderLen     = 18
	// defaultMaxInflated is the bound on a zlib record's inflated size: the
	// largest record Kinesis accepts, as the sources' compression bound.
	defaultMaxInflated = 10 << 20
)

// glueVersionID is a schema version id as Glue's wire format carries it.
type glueVersionID [16]byte

// String is the id in UUID form, as Glue's API and console show it.
func (id glueVersionID) String() string { return formatUUID(id[:]) }

type glueRegistry struct {
	client   GlueClient
	name     string
	timeout  time.Duration
	max      int64
	onError  func()
	log      *slog.Logger
	now      func() time.Time
	down     atomic.Bool
	versions *schemaCache[glueVersionID]
	zr       sync.Pool // zlib readers, reset per record
}

func newGlueRegistry(cfg *Glue, onError func(), log *slog.Logger) (*glueRegistry, error) {
	if cfg.Client == nil {
		return nil, errors.New("avrodec: Glue registry: Client is required")
	}
	g := &glueRegistry{client: cfg.Client, name: cfg.RegistryName, timeout: cfg.Timeout, max: cfg.MaxInflatedBytes,
		onError: onError, log: log, now: time.Now}
	if g.timeout <= 0 {
		g.timeout = defaultTimeout
	}
	if g.max <= 0 {
		g.max = defaultMaxInflated
	}
	ttl := cfg.NotFoundTTL
	if ttl <= 0 {
		ttl = defaultNotFoundTTL
	}
	g.versions = newSchemaCache[glueVersionID](ttl, func() time.Time { return g.now() })
	return g, nil
}

// glueFrame is a record's Glue header, read.
type glueFrame struct {
	id   glueVersionID
	zlib bool
}

// readGlueFrame reads the header of data; a malformed one is a decode error.
func readGlueFrame(data []byte) (glueFrame, error) {
	var f glueFrame
	switch {
	case len(data) == 0:
		return f, &Error{Offset: 0, Msg: "empty payload"}
	case data[0] != glueHeaderVersion:
		return f, &Error{Offset: 0, Msg: fmt.Sprintf("wrong header version byte 0x%02x: want 0x03 (AWS Glue Schema Registry wire format)", data[0])}
	case len(data) < glueHeaderLen:
		return f, &Error{Offset: len(data), Msg: fmt.Sprintf("payload ends inside the Glue header (header version, compression byte, 16-byte schema version id): %d of 18 bytes", len(data))}
	}
	switch data[1] {
	case glueNone:
	case glueZlib:
		f.zlib = true
	default:
		return f, &Error{Offset: 1, Msg: fmt.Sprintf("unknown compression byte 0x%02x: want 0x00 (none) or 0x05 (zlib)", data[1])}
	}
	copy(f.id[:], data[2:glueHeaderLen])
	return f, nil
}

// schema returns the writer schema of version id, fetching it once.
func (g *glueRegistry) schema(id glueVersionID) (*schemaEntry, error) {
	c, err := g.versions.get(id, g.fetch)
	var me *missingError
	if errors.As(err, &me) {
		return nil, &Error{Offset: 2, Msg: fmt.Sprintf("schema version %s is not in the Glue Schema Registry (%s)", id, me.msg)}
	}
	if err != nil {
		return nil, err
	}
	return c.use(2, "schema version "+id.String())
}

// oneAttempt turns the SDK's retries off for a call: the pipeline's retry of
// the record is the only layer.
func oneAttempt(o *glue.Options) { o.Retryer = aws.NopRetryer{} }

func (g *glueRegistry) fetch(id glueVersionID) (*cached, error) {
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	out, err := g.client.GetSchemaVersion(ctx, &glue.GetSchemaVersionInput{SchemaVersionId: aws.String(id.String())}, oneAttempt)
	if err == nil {
		if g.down.Swap(false) {
			g.log.Info("glue schema registry answers again", "registry", g.name)
		}
		return compileGlue(out), nil
	}
	var nf *types.EntityNotFoundException
	if errors.As(err, &nf) {
		return nil, &missingError{msg: "EntityNotFoundException: " + clip(nf.ErrorMessage())}
	}
	if g.onError != nil {
		g.onError()
	}
	hint := ""
	if accessDenied(err) {
		hint = fmt.Sprintf(" (access denied: grant the credentials glue:GetSchemaVersion on the schemas of registry %q, or set format.avro.registry.glue.role_arn to a role that has it)", g.name)
	}
	// Once per outage: the pipeline logs each retry of a record.
	if !g.down.Swap(true) {
		g.log.Warn("glue schema registry unavailable; records that need it are retried without checkpointing",
			"registry", g.name, "schema_version_id", id.String(), "err", err)
	}
	return nil, fmt.Errorf("avrodec: glue schema registry %q unavailable: GetSchemaVersion %s: %w%s: %w", g.name, id, err, hint, decoders.ErrTransient)
}

// accessDenied reports whether Glue refused the call for want of a permission.
func accessDenied(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "AccessDeniedException" || ae.ErrorCode() == "AccessDenied") {
		return true
	}
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == 403
}

func compileGlue(out *glue.GetSchemaVersionOutput) *cached {
	if out.DataFormat != types.DataFormatAvro {
		return &cached{err: "is a " + string(out.DataFormat) + " schema, not Avro"}
	}
	e, err := compileSchema(aws.ToString(out.SchemaDefinition))
	if err != nil {
		return &cached{err: "has an unusable schema: " + err.Error()}
	}
	return &cached{entry: e}
}

// decodeGlue decodes a Glue-framed record.
func (d *Decoder) decodeGlue(data []byte, direct bool) (any, error) {
	f, err := readGlueFrame(data)
	if err != nil {
		return nil, err
	}
	e, err := d.glue.schema(f.id)
	if err != nil {
		return nil, err
	}
	if !f.zlib {
		return e.decode(data, glueHeaderLen, direct)
	}
	body, err := d.glue.inflate(data[glueHeaderLen:])
	if err != nil {
		return nil, err
	}
	v, err := e.decode(body, 0, direct)
	var de *Error
	if errors.As(err, &de) {
		de.Msg += " (offset in the record inflated from zlib)"
	}
	return v, err
}

// inflate decompresses a zlib record body, to at most g.max bytes.
func (g *glueRegistry) inflate(body []byte) ([]byte, error) {
	src := bytes.NewReader(body)
	var zr io.ReadCloser
	var err error
	if r, ok := g.zr.Get().(io.ReadCloser); ok {
		zr, err = r, r.(zlib.Resetter).Reset(src, nil)
	} else {
		zr, err = zlib.NewReader(src)
	}
	if err != nil {
		return nil, &Error{Offset: glueHeaderLen, Msg: "compression byte says zlib, but the record is not zlib: " + err.Error()}
	}
	out, err := io.ReadAll(io.LimitReader(zr, g.max+1))
	if err == nil && int64(len(out)) <= g.max {
		// A reader that saw the whole stream (checksum included) is reused.
		g.zr.Put(zr)
	}
	switch {
	case err != nil:
		return nil, &Error{Offset: glueHeaderLen, Msg: "zlib record does not inflate: " + err.Error()}
	case int64(len(out)) > g.max:
		return nil, &Error{Offset: glueHeaderLen, Msg: fmt.Sprintf("zlib record inflates to more than %d bytes, the bound", g.max)}
	case src.Len() > 0:
		return nil, &Error{Offset: len(body) - src.Len() + glueHeaderLen, Msg: fmt.Sprintf("%d trailing bytes after the zlib stream", src.Len())}
	}
	return out, nil
}

// glueEntry is entryFor for a Glue record: its schema from the cache only,
// and the buffer its record is in (inflated when compressed).
func (d *Decoder) glueEntry(data []byte) (e *schemaEntry, buf []byte, off int, ok bool) {
	f, err := readGlueFrame(data)
	if err != nil {
		return nil, nil, 0, false
	}
	if e = d.glue.versions.peek(f.id); e == nil {
		return nil, nil, 0, false
	}
	if !f.zlib {
		return e, data, glueHeaderLen, true
	}
	if e.root.kind != kRecord || e.root.noDirect {
		return nil, nil, 0, false // DecodeNamed would decline: inflate once, in Decode
	}
	body, err := d.glue.inflate(data[glueHeaderLen:])
	if err != nil {
		return nil, nil, 0, false
	}
	return e, body, 0, true
}
