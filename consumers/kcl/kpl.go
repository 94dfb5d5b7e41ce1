package kcl

import (
	"bytes"
	"context"
	"fmt"
	"sync"

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
// fail, replaces its data with a fresh placeholder the de-aggregator does not
// recognise, and files the original bytes and the reason under that
// placeholder's address. The de-aggregator passes a record it does not
// recognise on with its Data untouched, so the processor finds it by address
// (takeInvalid) and hands the original bytes on as an invalid record, a
// decode_error dead letter. The flag travels beside the bytes, never in them:
// a plain record cannot forge it, whatever it starts with.

var kplMagic = []byte("\xf3\x89\x9a\xc2")

// invalidAggregate is what the guard filed for a placeholder.
type invalidAggregate struct {
	orig   []byte
	reason string
}

// invalid maps the first byte of a placeholder's Data to its
// invalidAggregate. An entry lives from GetRecords to the processor's
// takeInvalid; only a batch the KCL drops in between (a shutdown) leaves
// one behind.
var invalid sync.Map

// placeholder is the data a malformed aggregate is replaced with; each one
// is a fresh copy, so its address is its own.
const placeholder = "malformed KPL aggregate"

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
		p := []byte(placeholder)
		invalid.Store(&p[0], invalidAggregate{orig: r.Data, reason: err.Error()})
		r.Data = p
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

// takeInvalid returns the original bytes and the reason of a record whose
// data is a placeholder the guard filed, and forgets it; ok=false for every
// other record, whatever its bytes.
func takeInvalid(data []byte) (orig []byte, reason string, ok bool) {
	if len(data) == 0 {
		return nil, "", false
	}
	v, ok := invalid.LoadAndDelete(&data[0])
	if !ok {
		return nil, "", false
	}
	a := v.(invalidAggregate)
	return a.orig, a.reason, true
}
