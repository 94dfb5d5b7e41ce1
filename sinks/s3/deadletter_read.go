package s3

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/klauspost/compress/zstd"

	"github.com/kinesis-ingest/kinesis-ingest/sinks/letterjson"
)

// ReadAPI is the part of the S3 client a LetterReader calls; *s3.Client
// has it.
type ReadAPI interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// LetterReader reads back the dead letters a DeadLetterSink wrote under
// Prefix: the objects of every chain (whatever their compression), in key
// order, so each shard's letters in stream order. The errors view and the
// tests read them through here.
type LetterReader struct {
	Client ReadAPI
	Bucket string
	Prefix string
}

// Letter is a dead letter read back. Its Data may be only the start of the
// record's data (DeadLetters' head); Size is the length of all of it.
type Letter = letterjson.Letter

// LetterStats says what a read found.
type LetterStats struct {
	Objects int // objects read
	// SkippedLines are lines that are not dead letters.
	SkippedLines int
	// SkippedObjects are keys under the prefix that are no chain's object
	// (validate's probe, something else written there).
	SkippedObjects int
}

// letterExts are the extensions of the sink's objects, by compression.
var letterExts = []string{".jsonl", ".jsonl.gz", ".jsonl.zst"}

// DeadLetters calls fn with each dead letter under the prefix, only those
// of shard when it is not "", its Data cut to its first head bytes (all of
// it when head < 0). Each object is read as a stream, so a letter of a 1
// MiB record costs about its line, never the object. l is valid only
// during the call; an error from fn stops the read and is returned.
func (r LetterReader) DeadLetters(ctx context.Context, shard string, head int, fn func(l *Letter) error) (LetterStats, error) {
	var st LetterStats
	root := ""
	if r.Prefix != "" {
		root = strings.Trim(r.Prefix, "/") + "/"
	}
	sc := &letterScan{dec: letterjson.Decoder{Head: head}}
	defer sc.close()
	read := func(key string) error {
		chainShard, ok := letterKeyShard(root, key)
		switch {
		case !ok:
			st.SkippedObjects++
			return nil
		case shard != "" && chainShard != shard:
			return nil // another shard whose id starts with this one's
		}
		n, skipped, err := r.readObject(ctx, sc, key, fn)
		st.SkippedLines += skipped
		if err != nil || n < 0 {
			return err
		}
		st.Objects++
		return nil
	}
	if shard == "" {
		return st, r.list(ctx, root, "", read, nil)
	}
	// A shard's chains: one per source, each listed on its own.
	var sources []string
	if err := r.list(ctx, root, "/", nil, func(p string) error { sources = append(sources, p); return nil }); err != nil {
		return st, err
	}
	for _, src := range sources {
		if err := r.list(ctx, src+shard+"-", "", read, nil); err != nil {
			return st, err
		}
	}
	return st, nil
}

// letterKeyShard returns the shard of key when key (under root) is an
// object of a chain, <source>/<shard>-<seq>-<sub><ext>.
func letterKeyShard(root, key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, root)
	if !ok {
		return "", false
	}
	source, name, ok := strings.Cut(rest, "/")
	if !ok || source == "" || strings.Contains(name, "/") {
		return "", false
	}
	for _, ext := range letterExts {
		base, ok := strings.CutSuffix(name, ext)
		if !ok || len(base) < seqWidth+subWidth+3 {
			continue
		}
		shard := base[:len(base)-seqWidth-subWidth-2]
		return shard, base[len(shard)] == '-' && isChainKey(root+source+"/"+shard+"-", key, ext)
	}
	return "", false
}

// list calls key with each key under prefix, or, with a delimiter, prefix
// with each common prefix (the "directories"), page after page.
func (r LetterReader) list(ctx context.Context, prefix, delimiter string, key, common func(string) error) error {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(r.Bucket), Prefix: aws.String(prefix)}
	if delimiter != "" {
		in.Delimiter = aws.String(delimiter)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		out, err := r.Client.ListObjectsV2(ctx, in)
		if err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", r.Bucket, prefix, err)
		}
		for _, o := range out.Contents {
			if key != nil {
				if err := key(aws.ToString(o.Key)); err != nil {
					return err
				}
			}
		}
		for _, p := range out.CommonPrefixes {
			if common != nil {
				if err := common(aws.ToString(p.Prefix)); err != nil {
					return err
				}
			}
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			return nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}

// letterScan is the state of one read: buffers and decoders reused from
// object to object.
type letterScan struct {
	dec  letterjson.Decoder
	line []byte
	br   *bufio.Reader
	zr   *zstd.Decoder
}

func (sc *letterScan) close() {
	if sc.zr != nil {
		sc.zr.Close()
	}
}

// readObject calls fn with each letter of the object key and returns how
// many lines it read (-1 when the object was gone: removed since the
// listing) and how many were not letters.
func (r LetterReader) readObject(ctx context.Context, sc *letterScan, key string, fn func(*Letter) error) (n, skipped int, err error) {
	obj, err := r.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.Bucket), Key: aws.String(key)})
	if err != nil {
		var gone *types.NoSuchKey
		if errors.As(err, &gone) {
			return -1, 0, nil
		}
		return 0, 0, fmt.Errorf("get s3://%s/%s: %w", r.Bucket, key, err)
	}
	defer obj.Body.Close()
	var body io.Reader = obj.Body
	switch {
	case strings.HasSuffix(key, ".gz"):
		gz, err := gzip.NewReader(body)
		if err != nil {
			return 0, 0, fmt.Errorf("read s3://%s/%s: %w", r.Bucket, key, err)
		}
		body = gz
	case strings.HasSuffix(key, ".zst"):
		if sc.zr == nil {
			if sc.zr, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1)); err != nil {
				return 0, 0, fmt.Errorf("zstd: %w", err)
			}
		}
		if err := sc.zr.Reset(body); err != nil {
			return 0, 0, fmt.Errorf("read s3://%s/%s: %w", r.Bucket, key, err)
		}
		body = sc.zr
	}
	if sc.br == nil {
		sc.br = bufio.NewReaderSize(body, 256<<10)
	} else {
		sc.br.Reset(body)
	}
	for {
		if n%64 == 0 && ctx.Err() != nil {
			return n, skipped, ctx.Err()
		}
		// A line may be of any length: a letter of a 1 MiB record is a line
		// of about 1.4 MB.
		sc.line = sc.line[:0]
		var rerr error
		for {
			chunk, err := sc.br.ReadSlice('\n')
			sc.line = append(sc.line, chunk...)
			if !errors.Is(err, bufio.ErrBufferFull) {
				rerr = err
				break
			}
		}
		if len(sc.line) > 0 {
			n++
			var d Letter
			if err := sc.dec.Decode(bytes.TrimSuffix(sc.line, []byte("\n")), &d); err != nil {
				skipped++
			} else if err := fn(&d); err != nil {
				return n, skipped, err
			}
		}
		if errors.Is(rerr, io.EOF) {
			return n, skipped, nil
		}
		if rerr != nil {
			return n, skipped, fmt.Errorf("read s3://%s/%s: %w", r.Bucket, key, rerr)
		}
	}
}
