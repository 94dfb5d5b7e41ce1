package kcl

import (
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/getrecords"
)

// The client the KCL reads with decodes GetRecords with the fast path, also
// when the caller's client has it (kinesis.New resets the protocol of the
// options it copies) and when it does not.
func TestTheKCLReadsWithTheFastPath(t *testing.T) {
	for _, base := range []*kinesis.Client{
		kinesis.New(kinesis.Options{Region: "us-east-1"}),
		kinesis.New(kinesis.Options{Region: "us-east-1"}, getrecords.Option),
	} {
		kin := readClient(kinesis.New(base.Options()), nil, slog.Default())
		if !getrecords.Installed(kin.Options()) {
			t.Fatal("the KCL's client decodes GetRecords with the SDK's deserializer")
		}
	}
}
