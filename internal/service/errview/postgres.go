package errview

import (
	"context"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/postgres"
)

// PostgresSource reads the dead-letter table of the PostgreSQL dead-letter
// sink through the sink's own reader. The filter goes into the WHERE clause
// of two queries: one counts by reason, dataset and the start of the error
// (GROUP BY, no data read), the other reads the newest q.Limit letters
// (ORDER BY … LIMIT), of each only the start of its data and of its error.
// Neither holds more than q.Limit letters in the worker, whatever the
// table's size.
type PostgresSource struct {
	Reader postgres.Reader
}

var _ Source = PostgresSource{}

func (s PostgresSource) Scan(ctx context.Context, q Query, t *Tally) (ScanStats, error) {
	st := ScanStats{Files: 1} // one table
	r := s.Reader
	pq := postgres.LetterQuery{Reasons: q.Reasons, Shard: q.Shard, Since: q.Since, Until: q.Until,
		Newest: q.Limit, ErrorChars: MaxErrorBytes + 1}
	// Only schema errors name a field; the others are counted by reason alone.
	err := r.CountDeadLetters(ctx, pq, []record.Reason{record.ReasonSchema}, func(c postgres.LetterCount) error {
		t.Count(c.Reason, c.Dataset, c.Error, c.N)
		return nil
	})
	// A Limit of 0 lists none, where Newest 0 would read every letter.
	if err != nil || q.Limit <= 0 {
		return st, err
	}
	rst, err := r.DeadLetters(ctx, pq, HeadBytes, func(l *postgres.Letter) error {
		t.Offer(&Letter{Origin: l.Origin, Dataset: l.Dataset, Reason: l.Reason, Error: l.Error, Size: l.Size, Head: l.Data})
		return nil
	})
	st.Skipped = rst.Skipped
	return st, err
}
