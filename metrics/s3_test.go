package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	s3sink "github.com/kinesis-ingest/kinesis-ingest/sinks/s3"
)

var _ s3sink.Observer = (*S3)(nil)

// What an s3 sink reports lands in its series, by sink and dataset; its
// duplicates in the counter every de-duplicating sink shares.
func TestS3Observer(t *testing.T) {
	m := New(prometheus.NewRegistry())
	o := m.S3("lake")
	o.Uploaded("orders", 1000, 20*time.Millisecond, false)
	o.Uploaded("orders", 30<<20, 2*time.Second, true)
	o.Uploaded("users", 10, time.Millisecond, false)
	o.UploadFailed("orders")
	o.Conflict("orders")
	o.Conflict("orders")
	o.Duplicates("orders", 150)
	o.Duplicates("users", 50)
	o.Flushed("orders", s3sink.FlushAge)
	o.Buffered("orders", 4096)
	o.Buffered("orders", -1000)

	for _, tc := range []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"objects", m.s3.objects.WithLabelValues("lake", "orders"), 2},
		{"bytes", m.s3.bytes.WithLabelValues("lake", "orders"), 1000 + 30<<20},
		{"multipart", m.s3.multipart.WithLabelValues("lake", "orders"), 1},
		{"objects of users", m.s3.objects.WithLabelValues("lake", "users"), 1},
		{"failures", m.s3.failures.WithLabelValues("lake", "orders"), 1},
		{"conflicts", m.s3.conflicts.WithLabelValues("lake", "orders"), 2},
		{"duplicates, per sink", m.SinkDuplicates.WithLabelValues("lake"), 200},
		{"flushes by age", m.s3.flushes.WithLabelValues("lake", "orders", s3sink.FlushAge), 1},
		{"buffered", m.s3.buffered.WithLabelValues("lake", "orders"), 3096},
	} {
		if got := testutil.ToFloat64(tc.c); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(m.s3.seconds); n != 2 {
		t.Errorf("%d upload_seconds series, want one per dataset", n)
	}
	got, err := testutil.CollectAndFormat(m.s3.seconds, expfmt.TypeTextPlain, "kinesis_ingest_s3_upload_seconds")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{`kinesis_ingest_s3_upload_seconds_sum{dataset="orders",sink="lake"} 2.02`, `kinesis_ingest_s3_upload_seconds_count{dataset="orders",sink="lake"} 2`} {
		if !strings.Contains(string(got), line) {
			t.Errorf("upload_seconds lacks %s:\n%s", line, got)
		}
	}
}

// The lake's metrics are in the registry and on the dashboard.
func TestS3MetricsOnTheDashboard(t *testing.T) {
	names := []string{
		"kinesis_ingest_s3_objects_written_total", "kinesis_ingest_s3_bytes_written_total", "kinesis_ingest_s3_upload_seconds",
		"kinesis_ingest_s3_upload_failures_total", "kinesis_ingest_s3_conflicts_resolved_total", "kinesis_ingest_s3_flushes_total",
		"kinesis_ingest_s3_buffered_bytes", "kinesis_ingest_s3_multipart_uploads_total",
	}
	cat := catalog(t)
	var all strings.Builder
	for _, e := range dashboardExprs(t) {
		all.WriteString(e + "\n")
	}
	for _, n := range names {
		if _, ok := cat[n]; !ok {
			t.Errorf("the registry lacks %s", n)
		}
		if !strings.Contains(all.String(), n) {
			t.Errorf("no dashboard panel uses %s", n)
		}
	}
	if got := cat["kinesis_ingest_s3_flushes_total"]; strings.Join(got, ",") != "sink,dataset,reason" {
		t.Errorf("flushes_total labels %v, want sink, dataset, reason", got)
	}
}
