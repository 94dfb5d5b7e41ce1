package kcl

import (
	"bytes"
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"
	deagg "github.com/awslabs/kinesis-aggregation/go/v2/deaggregator"
)

// The KCL de-aggregates KPL records after GetRecords, and one malformed
// aggregate (valid magic and MD5, bad protobuf) makes it drop the whole batch;
// a bad partition-key index panics the process. The library takes only a
// *kinesis.Client, so the guard sits on that client: a middleware, run once the response is decoded,
// that tries each aggregate alone and, when it would fail, wraps its bytes in a
// marker the de-aggregator does not recognise. The processor unwraps the marker
// and hands the original bytes on as an invalid record, which becomes a
// decode_error dead letter.

var kplMagic = []byte("\xf3\x89\x9a\xc2")

// badAggregateMarker starts the data of a record whose aggregate is malformed;
// the reason follows, then a NUL, then the original bytes.
var badAggregateMarker = []byte("\x00kinesis-ingest:malformed-kpl-aggregate\x00")

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
		data := make([]byte, 0, len(badAggregateMarker)+len(err.Error())+1+len(r.Data))
		data = append(data, badAggregateMarker...)
		data = append(data, err.Error()...)
		data = append(data, 0)
		r.Data = append(data, r.Data...)
	}
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

// unwrapInvalid returns the original bytes and the reason of a record the guard
// marked, or ok=false.
func unwrapInvalid(data []byte) (orig []byte, reason string, ok bool) {
	if !bytes.HasPrefix(data, badAggregateMarker) {
		return nil, "", false
	}
	rest := data[len(badAggregateMarker):]
	i := bytes.IndexByte(rest, 0)
	if i < 0 {
		return nil, "", false
	}
	return rest[i+1:], string(rest[:i]), true
}
