package kcl

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"
	deagg "github.com/awslabs/kinesis-aggregation/go/v2/deaggregator"
)

// The KCL de-aggregates KPL records after GetRecords, and one malformed
// aggregate (valid magic and MD5, bad protobuf) makes it drop the whole batch;
// a bad partition-key index panics the process. The library takes only a
// *kinesis.Client, so the guard sits on that client: a middleware, run once
// the response is decoded, that tries each aggregate alone and, when it would
// fail, turns it into a plain record the de-aggregator does not recognise
// (its first byte inverted, so the KPL magic no longer matches) and flags it
// in the record's EncryptionType, which Kinesis alone sets (NONE or KMS) and
// the KCL passes on untouched. The processor (takeInvalid) restores the
// original bytes of a flagged record and hands them on as an invalid record,
// a decode_error dead letter. The flag travels with the record, never in its
// data: a plain record cannot forge it, whatever it starts with.

var kplMagic = []byte("\xf3\x89\x9a\xc2")

// malformedFlag starts the EncryptionType of a record the guard flagged;
// the reason follows it.
const malformedFlag = "kinesis-ingest/malformed-kpl-aggregate:"

// GuardAggregates is a kinesis.Options function installing the guard.
func GuardAggregates(o *kinesis.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		// The Initialize step is outermost: its handler returns after the
		// response is fully deserialized, retries included.
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("kinesis-ingest-guard-kpl",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if err != nil {
					return out, md, err
				}
				if res, ok := out.Result.(*kinesis.GetRecordsOutput); ok {
					for i := range res.Records {
						guardRecord(&res.Records[i])
					}
				}
				return out, md, err
			}), middleware.Before)
	})
}

func guardRecord(r *types.Record) {
	if !bytes.HasPrefix(r.Data, kplMagic) {
		return
	}
	if err := tryDeaggregate(*r); err != nil {
		r.Data = invertFirst(r.Data)
		r.EncryptionType = types.EncryptionType(malformedFlag + err.Error())
	}
}

// invertFirst returns a copy of b with its first byte inverted; applied
// twice it gives b back.
func invertFirst(b []byte) []byte {
	c := bytes.Clone(b)
	c[0] = ^c[0]
	return c
}

func tryDeaggregate(r types.Record) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed KPL aggregate: de-aggregation panicked: %v", p)
		}
	}()
	if _, err := deagg.DeaggregateRecords([]types.Record{r}); err != nil {
		return fmt.Errorf("malformed KPL aggregate: %w", err)
	}
	return nil
}

// takeInvalid returns the original bytes and the reason of a record the
// guard flagged; ok=false for every other record, whatever its bytes.
func takeInvalid(r types.Record) (orig []byte, reason string, ok bool) {
	reason, ok = strings.CutPrefix(string(r.EncryptionType), malformedFlag)
	if !ok || len(r.Data) == 0 {
		return nil, "", false
	}
	return invertFirst(r.Data), reason, true
}
